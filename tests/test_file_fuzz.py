"""Crafted-file fuzz (issue 14): mutated results and checkpoints load equal or raise ValueError.

Hypothesis edits the JSON header (types, huge and non-finite numbers such as 1e400, 5,000-digit
integers, negative and out-of-range positions, deleted and extra keys) and the arrays (NaN, inf,
wrong shapes and dtypes, dropped members, extra members, one claiming 10^8 values) of a real saved
result and a real mid-run checkpoint. Each mutated file is written either as is (its checksum no
longer matches) or resealed with a fresh checksum, as a deliberate crafter would, so the deeper
checks are exercised too. Every file must load to a result equal to the original or raise a
``ValueError`` naming the file; a checkpoint must be refused with ``ValueError`` or resumed to the
end. Never another exception, never a hang (each test runs under a timeout).
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import aefi_widget as aefi
from aefi_widget.result_file import sealed

pytestmark = pytest.mark.timeout(60)

D, N = 4, 20
FUZZ = settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip


def _model() -> torch.nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(D, 3), torch.nn.Tanh(), torch.nn.Linear(3, D))


X = torch.randn(N, D, generator=torch.Generator().manual_seed(3))


def _engine() -> aefi.PermutationImportance:
    return aefi.PermutationImportance(_model(), X, n_repeats=2, batch_size=8)


def _members(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    return json.loads(arrays.pop("header").tobytes()), arrays


@functools.cache
def originals() -> dict[str, tuple[Path, aefi.ImportanceResult]]:
    """A complete saved result, and a checkpoint written in the middle of a unit (made once)."""
    folder = Path(tempfile.mkdtemp(prefix="aefi_fuzz_"))
    result = _engine().run()
    result_path = result.save(folder / "result.npz")
    increments = _engine().increments(checkpoint=folder / "checkpoint.npz")
    for _ in range(3):  # 24 of 20-sample units: partial sums present
        snapshot = next(increments)
    increments.close()
    return {"result": (result_path, result), "checkpoint": (folder / "checkpoint.npz", snapshot)}


# ---------------------------------------------------------------------------- mutations
RAW = {  # JSON texts json.dumps cannot produce, substituted for these markers after dumping
    "@1e400": "1e400",
    "@-1e400": "-1e400",
    "@digits": "1" + "0" * 5000,
    "@deep": "[" * 100_000 + "]" * 100_000,
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 7, 2**31, 2**53 + 1, 2**63, 2**64, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(sorted(RAW)),
    st.text(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
)


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path in a JSON tree (into objects and lists)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def header_edit(draw, header: dict):
    path = draw(st.sampled_from(_paths(header)))
    action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    value = draw(VALUES)
    return ("header", path, action, value)


ARRAY_ACTIONS = ["nan", "inf", "huge", "negate", "shape", "int", "float32", "transpose", "drop",
                 "empty", "extra", "extra_claiming_1e8"]  # fmt: skip


@st.composite
def array_edit(draw, names: list[str]):
    return ("array", draw(st.sampled_from(names)), draw(st.sampled_from(ARRAY_ACTIONS)), None)


def _edit_header(header: dict, path: tuple, action: str, value) -> None:
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        parent.pop(last)
    elif isinstance(parent, dict):
        parent[f"extra_{last}"] = value
    else:
        parent.append(value)


def _edit_array(arrays: dict[str, np.ndarray], name: str, action: str) -> None:
    array = arrays[name]
    if action == "drop":
        del arrays[name]
    elif action == "extra":
        arrays[f"{name}_spare"] = np.ones(3)
    elif action in ("nan", "inf", "huge", "negate") and array.size and array.dtype.kind == "f":
        changed = array.astype(np.float64).copy()
        flat = changed.reshape(-1)
        flat[0] = {"nan": np.nan, "inf": np.inf, "huge": 1e308, "negate": -flat[0] - 1}[action]
        arrays[name] = changed
    elif action == "shape":
        arrays[name] = np.concatenate([array.reshape(-1), array.reshape(-1)[:1]])
    elif action == "int":
        arrays[name] = np.zeros(array.shape, dtype=np.int64)
    elif action == "float32":
        arrays[name] = array.astype(np.float32)
    elif action == "transpose":
        arrays[name] = np.ascontiguousarray(array.T)
    elif action == "empty":
        arrays[name] = np.zeros((0,))


def _write(path: Path, header: dict, arrays: dict, reseal: bool, claim: bool) -> None:
    if reseal:
        members = sealed({k: v for k, v in header.items() if k != "checksum"}, arrays)
        text = members.pop("header").tobytes()
    else:
        members, text = dict(arrays), json.dumps(header).encode()
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker).encode(), raw.encode())
    path.unlink(missing_ok=True)
    np.savez(path, header=np.frombuffer(text, np.uint8), **members)
    if claim:  # a member whose .npy header claims 10^8 float64s (800 MB) over 16 bytes
        with zipfile.ZipFile(path, "a") as archive, archive.open("unused.npy", "w") as stream:
            np.lib.format.write_array_header_1_0(
                stream, {"descr": "<f8", "fortran_order": False, "shape": (10**8,)}
            )
            stream.write(b"\0" * 16)


@st.composite
def mutations(draw, which: str):
    header, arrays = _members(originals()[which][0])
    edits = draw(st.lists(st.one_of(header_edit(header), array_edit(sorted(arrays))),
                          min_size=1, max_size=3))  # fmt: skip
    return edits, draw(st.booleans())


def _mutated(original: Path, target: Path, edits, reseal: bool) -> bool:
    """Write ``original`` with ``edits`` to ``target``; whether anything changed."""
    header, arrays = _members(original)
    before = (json.dumps(header, sort_keys=True), {k: v.tobytes() for k, v in arrays.items()})
    claim = False
    for kind, where, action, value in edits:
        try:
            if kind == "header":
                _edit_header(header, where, action, value)
            elif action == "extra_claiming_1e8":
                claim = True
            elif where in arrays:
                _edit_array(arrays, where, action)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit removed or retyped this place
    _write(target, header, arrays, reseal, claim)
    # Extra members nothing declares are never read: adding one changes nothing.
    kept = {k: v.tobytes() for k, v in arrays.items() if not k.endswith("_spare")}
    after = (json.dumps(header, sort_keys=True), kept)
    return before != after or any(isinstance(e[3], str) and e[3] in RAW for e in edits)


def _usable(result: aefi.ImportanceResult, folder: Path) -> None:
    """What a user does with a loaded result works (or says ValueError)."""
    repr(result)
    result.summary()
    again = aefi.ImportanceResult.load(result.save(folder / "again.npz"))
    assert again == result


# ---------------------------------------------------------------------------- the properties
@FUZZ
@given(mutations("result"))
def test_mutated_result_files_load_equal_or_raise_value_error(tmp_path, mutation):
    _check_load("result", tmp_path, *mutation)


@FUZZ
@given(mutations("checkpoint"))
def test_mutated_checkpoint_files_load_equal_or_raise_value_error(tmp_path, mutation):
    _check_load("checkpoint", tmp_path, *mutation)


def _check_load(which: str, folder: Path, edits, reseal: bool) -> None:
    original, expected = originals()[which]
    target = folder / "mutated.npz"
    changed = _mutated(original, target, edits, reseal)
    try:
        loaded = aefi.ImportanceResult.load(target)
    except ValueError as error:
        assert "mutated.npz" in str(error), error
        assert "delete" not in str(error)
        event(f"refused ({'resealed' if reseal else 'stale checksum'})")
        return
    event(f"loaded ({'resealed' if reseal else 'as is'}, {'changed' if changed else 'same'})")
    if not reseal or not changed:
        # Without a fresh checksum only edits that change nothing can load.
        assert loaded == expected
        assert loaded.resume == expected.resume
        assert loaded.evaluations_done == expected.evaluations_done
    _usable(loaded, folder)


ENGINE = functools.cache(_engine)
FULL = functools.cache(lambda: _engine().run())


@FUZZ
@given(mutations("checkpoint"))
def test_mutated_checkpoints_are_refused_or_resume_to_the_end(tmp_path, mutation):
    edits, reseal = mutation
    target = tmp_path / "checkpoint.npz"
    changed = _mutated(originals()["checkpoint"][0], target, edits, reseal)
    try:
        result = _resume(ENGINE(), target)
    except ValueError as error:
        assert "delete" not in str(error)
        event(f"refused ({'resealed' if reseal else 'stale checksum'}): {str(error)[-50:]}")
        return
    event(f"resumed ({'resealed' if reseal else 'as is'}, {'changed' if changed else 'same'})")
    assert result.evaluations_done == ENGINE().evaluations_total
    if not reseal or not changed:  # without a fresh checksum only no-op edits get this far
        np.testing.assert_array_equal(result.importances, FULL().importances)
    assert not np.isnan(result.importances).any()


def _resume(engine: aefi.PermutationImportance, path: Path) -> aefi.ImportanceResult:
    """Run ``engine`` resuming from the checkpoint at ``path`` (saved back when it ends)."""
    last = None
    for last in engine.increments(checkpoint=path):  # noqa: B007
        pass
    if last is None:  # the checkpoint was already complete
        last = aefi.ImportanceResult.load(path)
    return last


def test_fuzz_markers_are_what_json_cannot_write():
    assert math.isinf(json.loads(RAW["@1e400"]))
    with pytest.raises(ValueError):  # Python refuses to parse 5,000-digit integers
        json.loads(RAW["@digits"])
