"""Checkpoints: a run's state on disk, written atomically, refused when it does not match.

A checkpoint is an ``.npz`` file (no pickle) holding the latest snapshot's arrays, its resume
position, and fingerprints of the model's parameters, of X and of the settings that fix the
numbers. Loading it for a different model, data set or settings raises ``ValueError``; so does a
truncated or corrupt file. ``n_repeats`` may grow between runs: rounds are prefix-consistent, so
only the new rounds are computed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from aefi_widget.result import ImportanceResult

__all__ = ["load_checkpoint", "save_checkpoint"]

_FINGERPRINT_KEY = "checkpoint_fingerprint"
_WHAT = {
    "model": "the model's parameters",
    "data": "the data X",
    "settings": "the settings (seed, metric, target, groups, max_samples or per_output)",
}


def save_checkpoint(path: Path, snapshot: ImportanceResult, fingerprint: dict[str, str]) -> None:
    """Write ``snapshot`` and ``fingerprint`` to ``path`` atomically.

    The file is written next to its destination, flushed to disk, then renamed over it: a crash
    at any moment leaves either the old checkpoint or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = snapshot.to_arrays()
    arrays[_FINGERPRINT_KEY] = np.frombuffer(json.dumps(fingerprint).encode(), dtype=np.uint8)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            # Uncompressed: a (F x d) float64 accumulator compresses slowly and barely.
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, fingerprint: dict[str, str]) -> ImportanceResult:
    """The snapshot stored at ``path``, after checking it belongs to ``fingerprint``'s run.

    Raises ``ValueError`` naming what differs (model, data or settings) or what is broken.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        stored = json.loads(bytes(arrays.pop(_FINGERPRINT_KEY)).decode())
    except FileNotFoundError:
        raise
    except Exception as error:  # zip, zlib, numpy and json raise many kinds on broken files
        raise ValueError(
            f"checkpoint {path} is truncated or corrupt ({type(error).__name__}: {error}); "
            "delete it to start afresh"
        ) from error
    differs = [_WHAT[k] for k in ("model", "data", "settings") if stored.get(k) != fingerprint[k]]
    if differs:
        raise ValueError(
            f"checkpoint {path} does not belong to this run: {' and '.join(differs)} differ. "
            "It is not mixed in; use another checkpoint path, or delete the file to start afresh."
        )
    snapshot = ImportanceResult.from_arrays(arrays, source=f"checkpoint {path}")
    if snapshot.resume is None:
        raise ValueError(f"checkpoint {path} has no resume state; delete it to start afresh")
    return snapshot
