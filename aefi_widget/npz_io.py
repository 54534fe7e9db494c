"""Plain-array ``.npz`` files: written atomically, read member by member with size caps.

The storage layer under :mod:`aefi_widget.result_file` (which defines what the members mean):
``save_arrays`` writes beside the destination and renames over it, keeping the file's mode and
never replacing a read-only file; ``read_npz`` opens an archive whose members are read only on
request, each after checking its stored size and its .npy header against what the caller expects,
so a file cannot make us allocate what it merely claims. No pickle, ever.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FileProblem", "InMemory", "Members", "read_npz", "read_only", "save_arrays"]

# Room for an .npy member's own header beyond its data.
_NPY_HEADER_BYTES = 4096


class FileProblem(ValueError):
    """A result or checkpoint file that is not what it claims; the message names the problem."""


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
        if read_only(path):
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


def read_only(path: Path) -> bool:
    """Whether the existing file at ``path`` must not be replaced: no write permission for us,
    or no write bit at all (a file made read-only on purpose, even for root)."""
    return not os.access(path, os.W_OK) or not stat.S_IMODE(path.stat().st_mode) & 0o222


def read_npz(path: str | os.PathLike[str], what: str = "result file") -> Members:
    """Open ``path`` as an npz archive whose members are read one at a time, size-checked."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an aefi_widget {what}")
    if not path.exists():
        raise FileNotFoundError(f"no such {what}: {path}")
    if not path.is_file():  # a pipe or device could block a read forever
        raise FileProblem(f"{path} is not a regular file (a pipe, socket or device)")
    try:
        archive = zipfile.ZipFile(path)
        names = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise FileProblem(f"not an npz archive ({error})") from None
    return Members(path, archive, names, what)


class Members:
    """Members of an open npz archive, read on request with a size cap."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, infos: dict, what: str) -> None:
        self.path, self.archive, self.infos, self.what = path, archive, infos, what

    def __enter__(self) -> Members:
        return self

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def __contains__(self, name: str) -> bool:
        return name in self.infos

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        """Member ``name`` as an array, refused when its stored or declared size exceeds
        ``max_bytes`` (its .npy header is read first: no allocation the file merely claims)."""
        info = self.infos.get(name)
        if info is None:
            raise FileProblem(f"member {name!r} is missing")
        if info.file_size > max_bytes + _NPY_HEADER_BYTES:
            raise FileProblem(
                f"member {name!r} holds {info.file_size:,} bytes, more than its declared shape"
            )
        try:
            with self.archive.open(info) as stream:
                return _read_npy(stream, name, max_bytes)
        except FileProblem:
            raise
        except Exception as error:  # zlib, zipfile and numpy raise many kinds on broken data
            raise FileProblem(
                f"member {name!r} is unreadable ({type(error).__name__}: {error})"
            ) from None


def _read_npy(stream: Any, name: str, max_bytes: int) -> np.ndarray:
    """An .npy array from ``stream``, its header checked before any data is read."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise FileProblem(f"member {name!r} has .npy format version {version}")
    if dtype.hasobject:
        raise FileProblem(f"member {name!r} holds Python objects; it is never unpickled")
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise FileProblem(f"member {name!r} declares {size:,} bytes, more than its declared shape")
    data = stream.read(size)
    if len(data) != size:
        raise FileProblem(f"member {name!r} is truncated ({len(data):,} of {size:,} bytes)")
    flat = np.frombuffer(data, dtype=dtype)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


class InMemory:
    """Arrays in memory, read like an archive's members (same checks)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def array(self, name: str, max_bytes: int) -> np.ndarray:
        if name not in self.arrays:
            raise FileProblem(f"member {name!r} is missing")
        array = np.asarray(self.arrays[name])
        if array.dtype.hasobject or array.nbytes > max_bytes:
            raise FileProblem(f"member {name!r} is not an array of its declared shape")
        return array
