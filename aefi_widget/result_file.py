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

The header holds a checksum (BLAKE2b) of itself and every array: a file edited or damaged after
it was written is refused (required when it has a resume state; results written before version
2 had checksums load without one).

Reading trusts nothing: only the members the header declares are read, each after checking its
stored size and .npy header against its declared shape (:mod:`aefi_widget.npz_io`); every field
is checked for type, range and finiteness, and any problem is a ``ValueError`` naming the file.
No pickle, ever.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from aefi_widget.npz_io import FileProblem, InMemory, Members, read_npz, read_only, save_arrays
from aefi_widget.result_extras import check_extra_shape, input_columns
from aefi_widget.resume_state import ResumeState

__all__ = ["FORMAT", "VERSION", "FileProblem", "fields_from_arrays", "load_fields", "read_fields",
           "read_npz", "read_only", "save_arrays", "sealed", "to_arrays"]  # fmt: skip

FORMAT = "aefi_widget.ImportanceResult"
VERSION = 2
# A header holds names (20,000 genes of ~40 characters is under 1 MB) and settings.
_MAX_HEADER_BYTES = 64 * 2**20
_MAX_ELEMENTS = 2**40
# The most estimates any method computes (the engine's MAX_ESTIMATES: F x repeats, permutations
# or samples, 1.6 GB of float64): a file declaring more was not written by aefi_widget.
MAX_IMPORTANCES = 200_000_000


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
    arrays = {"importances": np.asarray(result.importances)}
    arrays.update({f"extra.{k}": np.asarray(v) for k, v in result.extras.items()})
    if resume is not None:
        arrays.update({f"resume.{k}": np.asarray(v) for k, v in resume.arrays.items()})
    return sealed(header, arrays)


def sealed(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The members of a file: ``header`` (as JSON, with the checksum of itself and ``arrays``)
    followed by ``arrays`` (every member but the header)."""
    # The header as a reader will parse it (tuples become lists, keys strings), then checksummed.
    header = json.loads(json.dumps(header))
    header["checksum"] = _checksum(_canonical(header), arrays)
    return {"header": _json_bytes(header), **arrays}


def _canonical(header: dict[str, Any]) -> bytes:
    """The header without its checksum, as one canonical JSON text."""
    rest = {k: v for k, v in header.items() if k != "checksum"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _checksum(header: bytes, arrays: Mapping[str, np.ndarray]) -> str:
    """Digest of the header and every array (name, dtype, shape, bytes), in name order.

    It guards against edits and damage that keep the file readable (a hand-edited position, a
    changed number): a file whose contents do not match it is refused. BLAKE2b because it hashes
    a large per-output accumulator about twice as fast as SHA-256.
    """
    digest = hashlib.blake2b(header, digest_size=16)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data if array.size else b"")
    return f"blake2b-128:{digest.hexdigest()}"


# ---------------------------------------------------------------------------- reading
def read_fields(members: Members) -> dict[str, Any]:
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
        return _fields(InMemory(arrays))
    except FileProblem as error:
        raise FileProblem(f"{source} is not a valid aefi_widget result: {error}") from None


class _Recorded:
    """Members as they are read, kept for the checksum (the header apart)."""

    def __init__(self, members: Any) -> None:
        self.members, self.read = members, {}

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        array = self.members.array(name, max_bytes)
        if name != "header":
            self.read[name] = array
        return array


def _fields(members: Any) -> dict[str, Any]:
    recorded = _Recorded(members)
    header, canonical = _header(recorded)
    fields = _fields_of(recorded, header)
    if header["version"] >= 2:
        _check_checksum(header.get("checksum"), canonical, recorded.read, fields["resume"])
    return fields


def _check_checksum(
    stored: Any, canonical: bytes, arrays: dict[str, np.ndarray], resume: Any
) -> None:
    """The stored checksum matches what was read; required with a resume state, whose position
    and partial sums no other check can prove consistent."""
    if stored is None and resume is None:
        return  # a result written before checksums, with nothing to continue from
    if stored is None:
        raise FileProblem("it has a resume state but no checksum, so it cannot be trusted")
    if stored != _checksum(canonical, arrays):
        raise FileProblem(
            "its contents do not match the checksum stored in it: it was edited or damaged "
            "after it was written"
        )


def _fields_of(members: Any, header: dict[str, Any]) -> dict[str, Any]:
    version = header["version"]
    F, d = len(header["feature_names"]), len(header["output_names"])
    if version == 1:
        return _fields_v1(members, header, F, d)
    shape = _shape(header.get("importances_shape"), "importances_shape")
    if len(shape) != 2 or shape[0] != F or shape[1] < 1:
        raise FileProblem(f"importances_shape {shape} does not fit {F} features")
    if shape[0] * shape[1] > MAX_IMPORTANCES:
        raise FileProblem(
            f"importances_shape {shape} declares {shape[0] * shape[1]:,} estimates, more than "
            f"any method computes ({MAX_IMPORTANCES:,})"
        )
    common = _common(header)
    declared = {
        name: _shape(dims, f"extras[{name!r}]")
        for name, dims in _dict(header.get("extras", {}), "extras").items()
    }
    # Every declared extra checked against the method's table before any member is read.
    sizes = (F, d, shape[1], input_columns(F, common["groups"]))
    method = str(common["settings"].get("method", ""))
    for name, dims in declared.items():
        if problem := check_extra_shape(method, name, dims, sizes):
            raise FileProblem(problem)
    extras = {name: _float_array(members, f"extra.{name}", dims) for name, dims in declared.items()}
    if "delta_sum" in extras and extras["delta_sum"].shape != (F, d):
        raise FileProblem(f"extra 'delta_sum' has shape {extras['delta_sum'].shape}, not {(F, d)}")
    if "settled" in extras and not np.isin(extras["settled"], (-1.0, 0.0, 1.0)).all():
        raise FileProblem("extra 'settled' holds values other than the codes -1, 0 and 1")
    return {
        **common,
        "importances": _float_array(members, "importances", shape),
        "extras": extras,
        "labels": {str(k): _str(v, "labels") for k, v in _dict(header["labels"], "labels").items()},
        "resume": _resume(members, header.get("resume")),
    }


def _header(members: Any) -> tuple[dict[str, Any], bytes]:
    """The checked header, and its canonical text (for the checksum) as it was stored."""
    raw = members.array("header", _MAX_HEADER_BYTES)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise FileProblem("its header is not a JSON byte string")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_no_infinity)
        canonical = _canonical(header) if isinstance(header, dict) else b""
    except FileProblem:
        raise
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON, a 5,000-digit integer
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
    return header, canonical


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
