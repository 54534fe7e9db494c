"""Checkpoints: a run's latest snapshot on disk, written atomically, refused when it does not fit.

A checkpoint is an ordinary result file (:mod:`aefi_widget.result_file`, no pickle) whose resume
state carries the run's identity: digests of the model's parameters, of its outputs on probe rows,
of X and of every setting that fixes the numbers. Loading it for another run raises ``ValueError``
naming what differs; a file that is not an aefi_widget checkpoint is refused without ever being
touched. ``n_repeats`` may grow between runs: the method continues exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

from aefi_widget.result import ImportanceResult
from aefi_widget.result_file import FileProblem, read_fields, read_npz, read_only, save_arrays

__all__ = ["check_checkpoint_path", "load_checkpoint", "save_checkpoint"]

_WHAT = {
    "model": "the model's parameters",
    "outputs": "the model's outputs on the first rows of X",
    "data": "the data X",
    "settings": "the settings that fix the numbers",
    "method": "the method",
}


def check_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path after checking a checkpoint can be written there (``OSError`` if not).

    Runs when an engine is made, so a bad path fails before the work, not at the first save.
    """
    given = Path(path)
    if given.is_dir():
        raise IsADirectoryError(
            f"checkpoint {given} is a directory; give a file path like {given}/run.npz"
        )
    path = given if given.suffix == ".npz" else given.with_name(given.name + ".npz")
    if path.is_dir():
        raise IsADirectoryError(
            f"checkpoint {path} is a directory; give a file path like {path}/run.npz"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise NotADirectoryError(
            f"checkpoint folder {parent} {what}; create it or choose another path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"checkpoint folder {parent} is not writable; choose another path")
    if path.exists() and not path.is_file():
        raise OSError(f"checkpoint {path} is not a regular file (a pipe, socket or device)")
    if path.exists() and read_only(path):
        raise PermissionError(
            f"checkpoint {path} is read-only, so it could not be updated; make it writable or "
            "choose another path (it was not changed)"
        )
    return path


def save_checkpoint(path: Path, snapshot: ImportanceResult) -> None:
    """Write ``snapshot`` (with its resume state and identity) to ``path`` atomically, keeping
    the file's permissions. Uncompressed: a (F x d) float64 accumulator compresses slowly and
    barely."""
    save_arrays(snapshot.to_arrays(), path, compressed=False)


def load_checkpoint(path: Path, identity: dict[str, str]) -> ImportanceResult:
    """The snapshot stored at ``path``, after checking it belongs to the run of ``identity``.

    Raises ``ValueError`` naming what differs or what is wrong with the file.
    """
    try:
        with read_npz(path, "checkpoint") as members:
            snapshot = ImportanceResult(**read_fields(members))
    except FileProblem as error:
        raise ValueError(
            f"checkpoint {path} is truncated or corrupt, or not an aefi_widget checkpoint "
            f"({error}); it was left untouched: choose another checkpoint path"
        ) from None
    if snapshot.resume is None:
        raise ValueError(
            f"checkpoint {path} is a saved result without a resume state, not a checkpoint; it "
            "was left untouched; choose another checkpoint path"
        )
    stored = snapshot.resume.identity
    differs = [_WHAT.get(k, k) for k in identity if stored.get(k) != identity[k]]
    if differs:
        raise ValueError(
            f"checkpoint {path} does not belong to this run: {' and '.join(differs)} differ. "
            "It is not mixed in and was left untouched; use another checkpoint path for this run."
        )
    return snapshot
