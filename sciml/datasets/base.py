"""The two dataset shapes every reader returns.

* :class:`TrajectoryDataset`: a file of trajectories; ``read(i, times)`` gives ``[T, C, *grid]`` frames of
  trajectory ``i`` and reads only those frames from disk. Time windows and the "initial state -> state at T"
  view (``sciml.datasets.windows``) turn it into input/output samples.
* :class:`PairDataset`: a file of input/output pairs with no time axis (neuraloperator ``.pt`` files);
  ``__getitem__`` gives ``{"x": [C_in, *grid], "y": [C_out, *grid]}`` directly.

Both hold a :class:`~sciml.datasets.metadata.DatasetMetadata`, check every frame they return for NaN/inf,
and turn low-level I/O failures into one :class:`~sciml.errors.DataFormatError` that names the file.

Read limit: a file can declare arrays far larger than itself (an HDF5 dataset with no chunk written, a
compressed MAT-file). Before a reader allocates an array it checks the bytes against :func:`max_read_bytes`
(environment variable ``SCIML_MAX_READ_BYTES``; default the smaller of 8 GiB and half the physical memory)
and refuses a larger read with a :class:`~sciml.errors.DataFormatError` naming the file, shape and limit.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import math
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sciml.datasets.metadata import DatasetMetadata
from sciml.errors import ConfigError, DataFormatError, SciMLError

TimeIndex = slice | int

#: Environment variable holding the read limit in bytes (e.g. ``SCIML_MAX_READ_BYTES=2e9``).
MAX_READ_BYTES_ENV = "SCIML_MAX_READ_BYTES"
#: Upper bound of the default read limit; the default is the smaller of this and half the physical memory.
DEFAULT_MAX_READ_BYTES = 8 * 2**30
#: What h5py, numpy, scipy, zlib, torch and netCDF raise on corrupt or truncated files.
LOW_LEVEL_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    RuntimeError,
    OverflowError,
    struct.error,
    zlib.error,
)
_MAX_DETAIL_CHARS = 120


@functools.lru_cache(maxsize=1)
def default_max_read_bytes() -> int:
    """The read limit without ``SCIML_MAX_READ_BYTES``: 8 GiB, or half the physical memory if less."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or unknown names
        return DEFAULT_MAX_READ_BYTES
    return min(DEFAULT_MAX_READ_BYTES, physical // 2) if physical > 0 else DEFAULT_MAX_READ_BYTES


def max_read_bytes() -> int:
    """The most bytes one read may allocate: ``SCIML_MAX_READ_BYTES`` if set, else the default.

    Raises:
        ConfigError: the environment variable is not a positive number of bytes.
    """
    raw = os.environ.get(MAX_READ_BYTES_ENV, "").strip()
    if not raw:
        return default_max_read_bytes()
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 1:
        raise ConfigError(
            f"environment variable {MAX_READ_BYTES_ENV}={raw!r}: "
            "expected a positive number of bytes (e.g. 4e9)"
        )
    return int(value)


def format_bytes(n: int) -> str:
    """``n`` bytes in a readable unit (``"48.0 GiB"``)."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    size, k = float(n), 0
    while size >= 1024 and k < len(units) - 1:
        size, k = size / 1024, k + 1
    return f"{n} bytes" if k == 0 else f"{size:.1f} {units[k]}"


def check_read_size(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    itemsize: int,
    *,
    key: str | None = None,
    what: str = "the read",
) -> None:
    """Raise :class:`DataFormatError` when an array of ``shape`` with ``itemsize``-byte values would exceed
    :func:`max_read_bytes`; call it before allocating the array."""
    shape = tuple(int(n) for n in shape)
    nbytes = math.prod(shape) * int(itemsize)
    limit = max_read_bytes()
    if nbytes > limit:
        raise DataFormatError(
            path,
            f"{what} would allocate more than the read limit",
            key=key,
            expected=f"at most {format_bytes(limit)} (raise it with {MAX_READ_BYTES_ENV}=<bytes>)",
            found=f"shape {shape} x {itemsize} bytes = {format_bytes(nbytes)}",
        )


def selection_shape(shape: Sequence[int], selection: Any) -> tuple[int, ...]:
    """Shape of ``array[selection]`` for basic indexing (integers and slices) of an array of ``shape``.

    An index of any other kind counts as its whole axis (an upper bound).
    """
    items = selection if isinstance(selection, tuple) else (selection,)
    out: list[int] = []
    for axis, n in enumerate(shape):
        item = items[axis] if axis < len(items) else slice(None)
        if isinstance(item, slice):
            out.append(len(range(*item.indices(int(n)))))
        elif not isinstance(item, int | np.integer):
            out.append(int(n))
    return tuple(out)


def describe_error(err: BaseException) -> str:
    """``"TypeName: first line of the message"``, cut at a word boundary to at most ~120 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > _MAX_DETAIL_CHARS:
        cut = text[:_MAX_DETAIL_CHARS].rsplit(" ", 1)[0].rstrip(" ,;:([")
        text = f"{cut} ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def data_format_errors(path: str | os.PathLike[str], doing: str) -> Iterator[None]:
    """Turn what low-level libraries raise on a bad file into one :class:`DataFormatError` naming it.

    sciml's own errors pass unchanged; ``doing`` says what failed (e.g. ``"open as the_well"``).
    """
    try:
        yield
    except SciMLError:
        raise
    except MemoryError as err:
        raise DataFormatError(
            path, f"cannot {doing}: out of memory (the file declares more data than fits)"
        ) from err
    except LOW_LEVEL_ERRORS as err:
        raise DataFormatError(
            path, f"cannot {doing} ({describe_error(err)}); is the file truncated or corrupt?"
        ) from err


def check_finite(array: np.ndarray, path: str, key: str | None, where: str) -> None:
    """Raise :class:`DataFormatError` if ``array`` holds NaN or inf values."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise DataFormatError(path, f"{bad} non-finite values (NaN/inf) in {where}", key=key)


def check_numeric(array: np.ndarray, path: str, key: str | None, where: str) -> None:
    """Raise :class:`DataFormatError` unless ``array`` holds real numbers (float, int or bool)."""
    if array.dtype.kind not in "fiub":
        raise DataFormatError(
            path,
            f"{where} holds no real numbers",
            key=key,
            expected="float/int/bool",
            found=f"dtype {array.dtype}",
        )


def normalize_index(index: int, length: int, where: str) -> int:
    """Turn a possibly negative sample index into ``0 <= i < length`` or raise ``IndexError``."""
    if not isinstance(index, int | np.integer):
        raise TypeError(f"{where}: sample index must be an integer, got {type(index).__name__}")
    i = int(index)
    if i < 0:
        i += length
    if not 0 <= i < length:
        raise IndexError(f"{where}: sample index {index} out of range for {length} samples")
    return i


class _FileBacked:
    """Shared plumbing: the path, a per-process file handle, closing, context management."""

    metadata: DatasetMetadata

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from sciml.datasets.remote import active_options

        self.path = os.fspath(path)
        # how a URL is read (sciml.datasets.remote); kept so that DataLoader workers reopen it the same way
        self.remote_options = active_options()
        self._handle: Any = None
        self._handle_pid: int | None = None

    def _open_handle(self) -> Any:
        """Open the underlying file (readers override this when they keep a handle open)."""
        return None

    def handle(self) -> Any:
        """The open file handle of this process, reopened after a fork (DataLoader workers)."""
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = self._open_handle()
            self._handle_pid = os.getpid()
        return self._handle

    @contextlib.contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the handle when the body fails (a constructor that raises leaves no open file behind)."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the underlying file, if open."""
        handle, self._handle = self._handle, None
        if handle is not None and hasattr(handle, "close") and self._handle_pid == os.getpid():
            handle.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_handle_pid"] = None
        return state

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"{type(self).__name__}({self.path!r}, n={m.n_trajectories}, times={m.n_times}, "
            f"fields={list(m.field_names)}, grid={list(m.grid_shape)})"
        )


class TrajectoryDataset(_FileBacked, Dataset, abc.ABC):
    """A file of trajectories of fields on a grid; item ``i`` is ``{"fields": [T, C, *grid]}``."""

    #: ``True`` for a reader whose ``_read`` already refuses NaN/inf (naming the key): ``read`` then does
    #: not scan the frames a second time.
    checks_finite = False

    def __len__(self) -> int:
        return self.metadata.n_trajectories

    @abc.abstractmethod
    def _read(self, index: int, times: slice) -> np.ndarray:
        """Read frames ``times`` of trajectory ``index`` as an array ``[T_sel, C, *grid]``."""

    def read(self, index: int, times: TimeIndex = slice(None)) -> torch.Tensor:
        """Frames of trajectory ``index`` as a float tensor ``[T_sel, C, *grid]``.

        Only the requested frames are read from disk. ``times`` is a slice (or one frame index, which keeps
        the time axis with length 1). Raises :class:`DataFormatError` naming the file if the data hold
        NaN/inf or cannot be read.
        """
        m = self.metadata
        i = normalize_index(index, m.n_trajectories, self.path)
        if isinstance(times, int | np.integer):
            t = int(times) + (m.n_times if times < 0 else 0)
            if not 0 <= t < m.n_times:
                raise IndexError(f"{self.path}: time index {times} out of range for {m.n_times} frames")
            times = slice(t, t + 1)
        frames = range(*times.indices(m.n_times))
        n_sel = len(frames)
        reverse = frames.step < 0 and n_sel > 0
        if reverse:  # readers only see ascending slices; a reversed request is read forward, then flipped
            frames = frames[::-1]
        start, stop, step = frames.start, frames.stop, frames.step
        if n_sel == 0:
            start, stop, step = 0, 0, 1
        expected = (n_sel, m.n_channels, *m.grid_shape)
        # the float tensor handed out takes at least 4 bytes a value; readers check their own arrays too
        check_read_size(self.path, expected, 4, what=f"reading trajectory {i}")
        with data_format_errors(self.path, f"read trajectory {i}"):
            array = self._read(i, slice(start, stop, step))
            if reverse:
                array = array[::-1]
        if tuple(array.shape) != expected:
            raise DataFormatError(
                self.path, f"trajectory {i} read with a wrong shape", expected=expected, found=array.shape
            )
        check_numeric(array, self.path, None, f"trajectory {i}")
        if not self.checks_finite:
            check_finite(array, self.path, None, f"trajectory {i}, frames {start}:{stop}:{step}")
        return torch.from_numpy(_owned(array))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"fields": self.read(index)}

    def to_xarray(self) -> Any:
        """This dataset as an ``xarray.Dataset`` with dims ``(sample, time, *spatial_dims)``, read lazily."""
        from sciml.datasets.xarray_view import trajectories_to_xarray

        return trajectories_to_xarray(self)

    def to_netcdf(self, path: str | os.PathLike[str], *, engine: str = "h5netcdf") -> Any:
        """Write this dataset as a netCDF-4 file (:func:`sciml.datasets.writers.xarray_formats.write_netcdf`:
        h5netcdf by default, one trajectory in memory at a time, atomically); returns the path."""
        from sciml.datasets.writers.xarray_formats import write_netcdf

        return write_netcdf(self, path, engine=engine)

    def to_zarr(self, path: str | os.PathLike[str]) -> Any:
        """Write this dataset as a zarr store (:func:`sciml.datasets.writers.xarray_formats.write_zarr`);
        returns the path."""
        from sciml.datasets.writers.xarray_formats import write_zarr

        return write_zarr(self, path)


class PairDataset(_FileBacked, Dataset, abc.ABC):
    """A file of input/output pairs without a time axis; item ``i`` is ``{"x": ..., "y": ...}``.

    ``metadata`` describes the input ``x``; ``output_metadata`` describes ``y``.
    """

    output_metadata: DatasetMetadata

    def __len__(self) -> int:
        return self.metadata.n_trajectories

    @abc.abstractmethod
    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Read pair ``index`` as arrays ``([C_in, *grid], [C_out, *grid])``."""

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = normalize_index(index, len(self), self.path)
        for name, meta in (("x", self.metadata), ("y", self.output_metadata)):
            check_read_size(
                self.path, (meta.n_channels, *meta.grid_shape), 4, key=name, what=f"reading sample {i}"
            )
        with data_format_errors(self.path, f"read sample {i}"):
            x, y = self._read_pair(i)
        for name, array, meta in (("x", x, self.metadata), ("y", y, self.output_metadata)):
            expected = (meta.n_channels, *meta.grid_shape)
            if tuple(array.shape) != expected:
                raise DataFormatError(
                    self.path,
                    f"sample {i} read with a wrong shape",
                    key=name,
                    expected=expected,
                    found=array.shape,
                )
            check_numeric(array, self.path, name, f"sample {i}")
            check_finite(array, self.path, name, f"sample {i}")
        return {
            "x": torch.from_numpy(np.array(x, dtype=_float_dtype(x.dtype), order="C")),
            "y": torch.from_numpy(np.array(y, dtype=_float_dtype(y.dtype), order="C")),
        }

    def to_xarray(self) -> Any:
        """This dataset as an ``xarray.Dataset`` of the inputs and outputs over ``(sample, *grid)``."""
        from sciml.datasets.xarray_view import pairs_to_xarray

        return pairs_to_xarray(self)

    def to_netcdf(self, path: str | os.PathLike[str], *, engine: str = "h5netcdf") -> Any:
        """Write this dataset as a netCDF-4 file through xarray with ``engine`` (h5netcdf by default),
        atomically; returns the path."""
        from sciml.datasets.writers.xarray_formats import write_netcdf

        return write_netcdf(self, path, engine=engine)

    def to_zarr(self, path: str | os.PathLike[str]) -> Any:
        """Write this dataset as a zarr store through xarray, atomically; returns the path."""
        from sciml.datasets.writers.xarray_formats import write_zarr

        return write_zarr(self, path)


def _owned(array: np.ndarray) -> np.ndarray:
    """``array`` as a float array the caller owns: itself when it is a fresh, writable, C-ordered float
    array (what most readers build), else a copy (readers may hand back views of read-only memory maps)."""
    dtype = _float_dtype(array.dtype)
    flags = array.flags
    if array.dtype == dtype and flags.owndata and flags.writeable and flags.c_contiguous:
        return array
    return np.array(array, dtype=dtype, order="C")


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """Floating dtype a tensor of this data should have (bool/int data become float32)."""
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return dtype
    return np.dtype(np.float32)
