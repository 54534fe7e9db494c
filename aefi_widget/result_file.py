"""Result files: ``.npz`` of plain arrays plus a JSON header, written atomically, read defensively.

Format version 2 (this release), members:

- ``header``: uint8 UTF-8 JSON: format, version, names, labels, settings, groups, progress, the
  declared shapes of every array member, and the resume position and identity (JSON scalars);
- ``importances``: float64 (F, R);
- ``extra.<name>``: float64, one per named extra array;
- ``resume.<name>``: float64, one per resume array.

Version 1 (the first release: ``delta_sum``, a ``resume`` JSON member and
``resume_partial_delta_sum``) still loads, without its resume state: it carries no identity to
check a continuation against.

Reading trusts nothing: only the members the header declares are read, each after checking its
stored size against its declared shape; every field is checked for type, range and finiteness,
and any problem is a ``ValueError`` naming the file. No pickle, ever.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aefi_widget.resume_state import ResumeState

__all__ = ["FORMAT", "VERSION", "FileProblem", "fields_from_arrays", "load_fields", "read_fields",
           "read_npz", "save_arrays", "to_arrays"]  # fmt: skip

FORMAT = "aefi_widget.ImportanceResult"
VERSION = 2
# A header holds names (20,000 genes of ~40 characters is under 1 MB) and settings.
_MAX_HEADER_BYTES = 64 * 2**20
# Room for an .npy member's own header beyond its data.
_NPY_HEADER_BYTES = 4096
_MAX_ELEMENTS = 2**40


class FileProblem(ValueError):
    """A result or checkpoint file that is not what it claims; the message names the problem."""


# ---------------------------------------------------------------------------- writing
def _json_bytes(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def to_arrays(result: Any) -> dict[str, np.ndarray]:
    """``result`` (an ImportanceResult) as the named arrays of format version 2."""
    resume = result.resume
    header = {
        "format": FORMAT,
        "version": VERSION,
        "feature_names": list(result.feature_names),
        "output_names": list(result.output_names),
        "baseline_error": float(result.baseline_error),
        "settings": result.settings,
        "groups": {k: list(v) for k, v in result.groups.items()},
        "labels": dict(result.labels),
        "evaluations_done": int(result.evaluations_done),
        "evaluations_total": int(result.evaluations_total),
        "elapsed_s": float(result.elapsed_s),
        "importances_shape": list(result.importances.shape),
        "extras": {k: list(v.shape) for k, v in result.extras.items()},
        "resume": None
        if resume is None
        else {
            "method": resume.method,
            "position": dict(resume.position),
            "identity": dict(resume.identity),
            "arrays": {k: list(v.shape) for k, v in resume.arrays.items()},
        },
    }
    arrays = {"header": _json_bytes(header), "importances": np.asarray(result.importances)}
    arrays.update({f"extra.{k}": np.asarray(v) for k, v in result.extras.items()})
    if resume is not None:
        arrays.update({f"resume.{k}": np.asarray(v) for k, v in resume.arrays.items()})
    return arrays


def save_arrays(
    arrays: Mapping[str, np.ndarray], path: str | os.PathLike[str], *, compressed: bool = True
) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` appended when missing) atomically; the path written.

    The file is written beside its destination, flushed, then renamed over it: a crash leaves the
    old file or the new one, never a torn one. An existing file keeps its permission bits; a
    read-only one is not replaced (``PermissionError``).
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name such as {path}/run.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = None
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is read-only; it was not replaced")
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            (np.savez_compressed if compressed else np.savez)(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is None:  # a new file gets the usual permissions, not mkstemp's 0600
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------- reading
def read_npz(path: str | os.PathLike[str], what: str = "result file") -> _Members:
    """Open ``path`` as an npz archive whose members are read one at a time, size-checked."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an aefi_widget {what}")
    if not path.exists():
        raise FileNotFoundError(f"no such {what}: {path}")
    try:
        archive = zipfile.ZipFile(path)
        names = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise FileProblem(f"not an npz archive ({error})") from None
    return _Members(path, archive, names, what)


class _Members:
    """Members of an open npz archive, read on request with a size cap."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, infos: dict, what: str) -> None:
        self.path, self.archive, self.infos, self.what = path, archive, infos, what

    def __enter__(self) -> _Members:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def __contains__(self, name: str) -> bool:
        return name in self.infos

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        """Member ``name`` as an array, refused when its stored size exceeds ``max_bytes``."""
        info = self.infos.get(name)
        if info is None:
            raise FileProblem(f"member {name!r} is missing")
        if info.file_size > max_bytes + _NPY_HEADER_BYTES:
            raise FileProblem(
                f"member {name!r} holds {info.file_size:,} bytes, more than its declared shape"
            )
        try:
            with self.archive.open(info) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except Exception as error:  # zlib, zipfile and numpy raise many kinds on broken data
            raise FileProblem(
                f"member {name!r} is unreadable ({type(error).__name__}: {error})"
            ) from None


def read_fields(members: _Members) -> dict[str, Any]:
    """Keyword arguments of ``ImportanceResult`` read and validated from an open archive."""
    return _fields(members)


def load_fields(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Keyword arguments of ``ImportanceResult`` read and validated from the file at ``path``."""
    try:
        with read_npz(path) as members:
            return _fields(members)
    except FileProblem as error:
        raise FileProblem(f"{path} is not a valid aefi_widget result file: {error}") from None


def fields_from_arrays(arrays: Mapping[str, np.ndarray], source: str = "arrays") -> dict[str, Any]:
    """Like :func:`load_fields`, from arrays in memory (e.g. :func:`to_arrays`' output)."""
    try:
        return _fields(_InMemory(arrays))
    except FileProblem as error:
        raise FileProblem(f"{source} is not a valid aefi_widget result: {error}") from None


class _InMemory:
    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        if name not in self.arrays:
            raise FileProblem(f"member {name!r} is missing")
        return np.asarray(self.arrays[name])


def _fields(members: Any) -> dict[str, Any]:
    header = _header(members)
    version = header["version"]
    F, d = len(header["feature_names"]), len(header["output_names"])
    if version == 1:
        return _fields_v1(members, header, F, d)
    shape = _shape(header.get("importances_shape"), "importances_shape")
    if len(shape) != 2 or shape[0] != F or shape[1] < 1:
        raise FileProblem(f"importances_shape {shape} does not fit {F} features")
    extras = {
        name: _float_array(members, f"extra.{name}", _shape(dims, f"extras[{name!r}]"))
        for name, dims in _dict(header.get("extras", {}), "extras").items()
    }
    if "delta_sum" in extras and extras["delta_sum"].shape != (F, d):
        raise FileProblem(f"extra 'delta_sum' has shape {extras['delta_sum'].shape}, not {(F, d)}")
    return {
        **_common(header),
        "importances": _float_array(members, "importances", shape),
        "extras": extras,
        "labels": {str(k): _str(v, "labels") for k, v in _dict(header["labels"], "labels").items()},
        "resume": _resume(members, header.get("resume")),
    }


def _header(members: Any) -> dict[str, Any]:
    raw = members.array("header", _MAX_HEADER_BYTES)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise FileProblem("its header is not a JSON byte string")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_no_infinity)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise FileProblem(f"its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise FileProblem(f"its header is a JSON {type(header).__name__}, not an object")
    if header.get("format") != FORMAT:
        raise FileProblem(f"format is {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("version")
    if not _is_int(version) or version < 1:
        raise FileProblem(f"version {version!r} is not a format version")
    if version > VERSION:
        raise FileProblem(f"written by a newer aefi_widget (format version {version}); upgrade")
    header["feature_names"] = _names(header.get("feature_names"), "feature_names")
    header["output_names"] = _names(header.get("output_names"), "output_names")
    header.setdefault("labels", {})
    return header


def _no_infinity(constant: str) -> float:
    if constant == "NaN":
        return math.nan
    raise FileProblem(f"its header holds {constant}, which no field may be")


def _common(header: dict[str, Any]) -> dict[str, Any]:
    """Fields shared by both versions, checked."""
    done = _int(header.get("evaluations_done", 0), "evaluations_done", 0)
    total = _int(header.get("evaluations_total", 0), "evaluations_total", 0)
    elapsed = _number(header.get("elapsed_s", 0.0), "elapsed_s")
    if not math.isfinite(elapsed) or elapsed < 0:
        raise FileProblem(f"elapsed_s is {elapsed!r}, not a finite number of seconds >= 0")
    baseline = _number(header.get("baseline_error"), "baseline_error")  # NaN: not computed yet
    groups = {
        _str(k, "groups"): tuple(_names(v, f"groups[{k!r}]"))
        for k, v in _dict(header.get("groups", {}), "groups").items()
    }
    return {
        "feature_names": tuple(header["feature_names"]),
        "output_names": tuple(header["output_names"]),
        "baseline_error": baseline,
        "settings": _dict(header.get("settings", {}), "settings"),
        "groups": groups,
        "evaluations_done": done,
        "evaluations_total": total,
        "elapsed_s": elapsed,
    }


def _fields_v1(members: Any, header: dict[str, Any], F: int, d: int) -> dict[str, Any]:
    raw = members.array("importances", _MAX_HEADER_BYTES * 16)
    if raw.ndim != 2 or raw.shape[0] != F or raw.shape[1] < 1:
        raise FileProblem(f"importances have shape {raw.shape}, not ({F}, repeats)")
    importances = _checked_values(raw, "importances")
    extras = {}
    if "delta_sum" in members:
        extras["delta_sum"] = _float_array(members, "delta_sum", (F, d))
    settings = _dict(header.get("settings", {}), "settings")
    settings.setdefault("method", "permutation")
    return {
        **_common({**header, "settings": settings}),
        "importances": importances,
        "extras": extras,
        "labels": {},
        "resume": None,  # version 1 carries no identity to check a continuation against
    }


def _resume(members: Any, info: Any) -> ResumeState | None:
    if info is None:
        return None
    info = _dict(info, "resume")
    position = _dict(info.get("position", {}), "resume position")
    for key, value in position.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FileProblem(f"resume position {key!r} is {value!r}, not a number")
        if not math.isfinite(value):
            raise FileProblem(f"resume position {key!r} is {value!r}, not finite")
    arrays = {
        name: _float_array(members, f"resume.{name}", _shape(dims, f"resume array {name!r}"))
        for name, dims in _dict(info.get("arrays", {}), "resume arrays").items()
    }
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise FileProblem(f"resume array {name!r} holds NaN or inf")
    identity = {
        str(k): _str(v, "resume identity")
        for k, v in _dict(info.get("identity", {}), "resume identity").items()
    }
    return ResumeState(_str(info.get("method"), "resume method"), position, arrays, identity)


# ---------------------------------------------------------------------------- field checks
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any, what: str, low: int) -> int:
    if not _is_int(value) or value < low or value > 2**62:
        raise FileProblem(f"{what} is {value!r}, not an integer in [{low}, 2**62]")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FileProblem(f"{what} is {value!r}, not a number")
    value = float(value)
    if math.isinf(value):
        raise FileProblem(f"{what} is infinite")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise FileProblem(f"{what} holds {value!r}, not a string")
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FileProblem(f"{what} is a {type(value).__name__}, not a JSON object")
    return dict(value)


def _names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FileProblem(f"{what} is not a list of strings")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_is_int(v) and 0 <= v <= 2**40 for v in value):
        raise FileProblem(f"{what} is {value!r}, not a list of sizes")
    if math.prod(value) > _MAX_ELEMENTS:
        raise FileProblem(f"{what} declares {math.prod(value):,} elements")
    return tuple(value)


def _float_array(members: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Member ``name``: a float array of exactly ``shape``, read within its declared size."""
    array = members.array(name, 8 * math.prod(shape))
    if array.shape != shape:
        raise FileProblem(f"member {name!r} has shape {array.shape}, not {shape}")
    return _checked_values(array, name)


def _checked_values(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind != "f":
        raise FileProblem(f"member {name!r} has dtype {array.dtype}, not floating point")
    values = np.array(array, dtype=np.float64)
    if np.isinf(values).any():
        raise FileProblem(f"member {name!r} holds inf")
    return values
