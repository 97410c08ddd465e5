"""Helpers shared by the HDF5 readers (PDEBench, The Well): detection, checked access, attribute decoding.

Every failure of h5py becomes one :class:`~sciml.errors.DataFormatError` naming the file and the key, and
every read is checked against the read limit (:func:`sciml.datasets.base.max_read_bytes`) first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sciml.datasets.base import check_read_size, describe_error, selection_shape
from sciml.datasets.remote import RemoteOptions, is_url, local_path, open_hdf5_url
from sciml.errors import DataFormatError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PREADV = getattr(os, "preadv", None)
HDF5_SUFFIXES = (".hdf5", ".h5", ".he5", ".hdf")


def looks_like_hdf5(path: Path | str, header: bytes) -> bool:
    """Whether ``path`` is a plain HDF5 file (not a MATLAB v7.3 ``.mat``, which carries a user block).

    The HDF5 signature sits at offset 0, or at 512, 1024, 2048, ... after a user block.
    """
    if header.startswith(b"MATLAB"):
        return False
    for offset in range(0, len(header) - len(HDF5_SIGNATURE) + 1, 512):
        if header[offset : offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return True
    if len(header) < 1024 or is_url(path):
        return False
    try:  # signature beyond the header bytes we were given (user block >= 1024 bytes)
        return bool(h5py.is_hdf5(path))
    except Exception:  # pragma: no cover - is_hdf5 only fails on unreadable files
        return False


def peek_hdf5(path: Path | str, header: bytes, test: Callable[[h5py.File], bool]) -> bool:
    """Open ``path`` (a local file or a URL) read-only and apply ``test`` to it; ``False`` on any failure
    (for ``sniff``).

    netCDF-4 files (HDF5 underneath, root attribute ``_NCProperties``) are left to the netCDF reader.
    """
    if not looks_like_hdf5(path, header):
        return False
    try:
        with open_hdf5(path) as f:
            if "_NCProperties" in f.attrs:
                return False
            return bool(test(f))
    except Exception:  # a sniffer never raises: unreadable means "not mine"
        return False


def open_hdf5(
    path: str | os.PathLike[str], options: RemoteOptions | None = None, **h5py_options: Any
) -> h5py.File:
    """Open an HDF5 file read-only, turning h5py's errors into :class:`DataFormatError`.

    ``path`` may be a URL (:mod:`sciml.datasets.remote`): the file is then read through an fsspec file
    object with ``options`` (default: those of :func:`~sciml.datasets.remote.active_options`).
    """
    if is_url(path):
        local = local_path(str(path))
        if local is None:
            return open_hdf5_url(str(path), options, **h5py_options)
        path = local
    try:
        return h5py.File(path, "r", **h5py_options)
    except FileNotFoundError as err:
        raise DataFormatError(path, "no such file") from err
    except OSError as err:
        raise DataFormatError(
            path,
            f"cannot open as HDF5 ({describe_error(err)}); is the file truncated or still being written?",
        ) from err


def key_of(obj: h5py.HLObject) -> str:
    """The path of an HDF5 object inside its file, without the leading slash."""
    return (obj.name or "").lstrip("/")


def require_dataset(
    group: h5py.Group, key: str, path: str, *, ndim: int | None = None, what: str = ""
) -> h5py.Dataset:
    """``group[key]`` as a dataset of real numbers, or a :class:`DataFormatError` naming the file and key."""
    full = f"{key_of(group)}/{key}".lstrip("/")
    try:
        obj = group.get(key)
    except (OSError, KeyError, RuntimeError) as err:
        raise DataFormatError(path, f"cannot read ({describe_error(err)})", key=full) from err
    if obj is None:
        raise DataFormatError(path, "missing", key=full, expected=what or "a dataset", found="nothing")
    if not isinstance(obj, h5py.Dataset):
        raise DataFormatError(path, "not a dataset", key=full, expected=what or "a dataset", found="a group")
    if obj.dtype.kind not in "fiub":
        raise DataFormatError(
            path,
            "not a real numeric dataset",
            key=full,
            expected="float/int/bool",
            found=f"dtype {obj.dtype}",
        )
    if ndim is not None and obj.ndim != ndim:
        raise DataFormatError(
            path,
            "wrong number of dimensions",
            key=full,
            expected=f"{ndim} axes{f' ({what})' if what else ''}",
            found=f"shape {obj.shape}",
        )
    return obj


def require_group(group: h5py.Group, key: str, path: str) -> h5py.Group:
    """``group[key]`` as a group, or a :class:`DataFormatError` naming the file and the key."""
    full = f"{key_of(group)}/{key}".lstrip("/")
    try:
        obj = group.get(key)
    except (OSError, KeyError, RuntimeError) as err:
        raise DataFormatError(path, f"cannot read ({describe_error(err)})", key=full) from err
    if not isinstance(obj, h5py.Group):
        raise DataFormatError(
            path,
            "missing group",
            key=full,
            expected="a group",
            found="nothing" if obj is None else "a dataset",
        )
    return obj


def read_array(dataset: h5py.Dataset, path: str, selection: Any = (), *, numeric: bool = True) -> np.ndarray:
    """Read ``dataset[selection]`` (integers and slices), turning low-level failures into
    :class:`DataFormatError`.

    The size of the selection is checked against the read limit before anything is read, and with
    ``numeric`` (the default) a dataset that does not hold real numbers is refused unread.
    """
    key = key_of(dataset)
    if dataset.shape is None:
        raise DataFormatError(path, "dataset without a dataspace (h5py.Empty)", key=key, expected="an array")
    if numeric and dataset.dtype.kind not in "fiub":
        raise DataFormatError(
            path,
            "not a real numeric dataset",
            key=key,
            expected="float/int/bool",
            found=f"dtype {dataset.dtype}",
        )
    shape = selection_shape(dataset.shape, selection)
    check_read_size(path, shape, dataset.dtype.itemsize, key=key, what="reading this dataset")
    try:
        return np.asarray(dataset[selection])
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as err:
        raise DataFormatError(
            path, f"cannot read ({describe_error(err)}); is the file truncated?", key=key
        ) from err


class FrameBytes:
    """Where each frame ``[i, t]`` of an uncompressed HDF5 dataset ``[B, T, *frame]`` lies in its file, so
    that a window's frames are read with one ``readinto`` each, straight into the caller's array.

    Raw h5py slicing allocates its output and copies each chunk into it; a reader that must then move the
    frames into another layout (The Well's components-last fields into ``[T, C, X, Y]``) copies them a
    second time. Reading the bytes of a frame directly saves HDF5's per-read overhead and, for a field
    whose frame already has the wanted layout, that second copy. Only the plain case is served (see
    :meth:`of`): no filters (compression, shuffle, checksums), a native float type, no user block, no
    external or virtual storage, and either contiguous storage or one chunk per frame; anything else is
    read through h5py.
    """

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset = dataset
        self.n_times = int(dataset.shape[1])
        self.frame_bytes = int(np.prod(dataset.shape[2:], dtype=np.int64)) * dataset.dtype.itemsize
        self.base = None if dataset.chunks is not None else int(dataset.id.get_offset())
        self._chunk_offsets: dict[tuple[int, int], int | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, dataset: h5py.Dataset) -> FrameBytes | None:
        """The frame locator of ``dataset``, or ``None`` when its frames are not plain byte ranges."""
        try:
            shape, chunks, dtype = dataset.shape, dataset.chunks, dataset.dtype
            plist = dataset.id.get_create_plist()
            plain = (
                len(shape) >= 3
                and dtype.kind == "f"
                and dtype.isnative
                and not dataset.is_virtual
                and plist.get_nfilters() == 0
                and plist.get_external_count() == 0
                and dataset.file.userblock_size == 0
            )
            if not plain or min(shape) == 0:
                return None
            if chunks is not None:
                return cls(dataset) if tuple(chunks) == (1, 1, *shape[2:]) else None
            return cls(dataset) if dataset.id.get_offset() is not None else None
        except Exception:  # an unusual dataset: h5py reads it
            return None

    def offset(self, index: int, t: int) -> int | None:
        """The file offset of frame ``[index, t]`` (``None``: a chunk never written, h5py gives its fill)."""
        if self.base is not None:
            return self.base + (index * self.n_times + t) * self.frame_bytes
        key = (index, t)
        if key not in self._chunk_offsets:
            coord = (index, t) + (0,) * (len(self.dataset.shape) - 2)
            info = self.dataset.id.get_chunk_info_by_coord(coord)
            ok = info.byte_offset is not None and info.size == self.frame_bytes
            self._chunk_offsets[key] = int(info.byte_offset) if ok else None
        return self._chunk_offsets[key]

    def read_into(self, fileobj: Any, path: str, index: int, frames: range, out: np.ndarray) -> bool:
        """Read frames ``frames`` of trajectory ``index`` into ``out`` (``[len(frames), *frame]``, each
        ``out[k]`` C-contiguous, of the dataset's dtype) from the raw binary ``fileobj``; ``False`` (nothing
        promised in ``out``) when a frame has no plain byte range.

        Raises:
            DataFormatError: the file ends inside a frame (truncated), naming the file and the key.
        """
        offsets = [self.offset(index, t) for t in frames]
        if any(o is None for o in offsets):
            return False
        for k, start in enumerate(offsets):
            buffer = memoryview(out[k]).cast("B")
            if _PREADV is not None:  # positional: safe beside other threads reading the same file
                got = _PREADV(fileobj.fileno(), [buffer], start)
            else:  # pragma: no cover - systems without preadv (Windows)
                with self._lock:
                    fileobj.seek(start)
                    got = fileobj.readinto(buffer)
            if got != self.frame_bytes:
                raise DataFormatError(
                    path,
                    "the file ends inside a frame; is it truncated?",
                    key=self.dataset.name.lstrip("/"),
                    expected=f"{self.frame_bytes} bytes at offset {start}",
                    found=f"{got} bytes",
                )
        return True


def frame_count(times: slice) -> int:
    """Number of frames of an ascending slice with explicit bounds (what the base class passes)."""
    return len(range(times.start, times.stop, times.step))


def as_str(value: Any) -> str:
    """Decode an HDF5 string attribute (``str``, ``bytes``, numpy string scalar or 1-element array)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def as_str_list(value: Any) -> list[str]:
    """Decode an HDF5 list-of-strings attribute (array of bytes/str, or one string)."""
    if value is None:
        return []
    if isinstance(value, str | bytes | np.bytes_ | np.str_):
        return [as_str(value)]
    return [as_str(v) for v in np.asarray(value).reshape(-1)]


def plain_scalar(value: Any) -> Any:
    """A Python scalar for a numeric or string HDF5 attribute, or ``None`` when it is not a scalar."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, bool | int | float | str):
        return value
    return None
