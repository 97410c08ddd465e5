"""Lazy ``xarray.Dataset`` views of sciml datasets.

:func:`trajectories_to_xarray` turns a trajectory dataset into an ``xarray.Dataset`` with one data
variable per channel over ``(sample, time, *spatial_dims)``; :func:`pairs_to_xarray` turns an input/output
pair dataset into variables ``x_<field>``/``y_<field>`` over ``(sample, *spatial_dims)``.

Nothing is read when the view is built. Each variable wraps an :class:`xarray.backends.BackendArray` in an
:class:`xarray.core.indexing.LazilyIndexedArray`, so ``isel``/``sel`` only compose indexers; when values are
needed (``.values``, ``.load()``, ``.to_netcdf()``) only the selected trajectories and frames are read,
through ``ds.read(i, times)`` (trajectories) or ``ds[i]`` (pairs). Variables of the same dataset share a
small cache of recent reads so that loading all channels of a selection reads each frame once. Spatial
selections are applied after reading (``read`` always returns whole frames).

The result can be written in one call with ``.to_netcdf(path)``: attributes are reduced to the types
netCDF holds (strings, numbers, numeric arrays; booleans as ints).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.windows import read_frames
from sciml.errors import ConfigError

logger = logging.getLogger(__name__)

SAMPLE_DIM = "sample"
TIME_DIM = "time"
DEFAULT_CACHE_BYTES = 32 * 2**20


# ---------------------------------------------------------------------------------------------- reading
class _ReadCache:
    """A thread-safe LRU cache of recent reads, bounded in bytes, shared by the variables of one view."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(int(max_bytes), 0)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(value: Any) -> int:
        if isinstance(value, tuple):
            return sum(v.nbytes for v in value)
        return int(value.nbytes)

    def get_or_read(self, key: Hashable, read: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = read()
        size = self._size(value)
        if size <= self.max_bytes:
            with self._lock:
                if key not in self._items:
                    self._items[key] = value
                    self._bytes += size
                while self._bytes > self.max_bytes and self._items:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= self._size(old)
        return value


def _dtype_of(ds: Any, dtype: Any) -> np.dtype:
    """The dtype the view declares: ``dtype`` if given, else ``ds.dtype`` when present, else float32."""
    if dtype is not None:
        return np.dtype(dtype)
    declared = getattr(ds, "dtype", None)
    if declared is not None:
        try:
            return np.dtype(declared)
        except TypeError:
            logger.debug("ignoring dataset dtype %r that NumPy does not understand", declared)
    return np.dtype(np.float32)


def _key_length(key: Any, size: int) -> int | None:
    """Length of the axis a backend key leaves (``None`` for an int key, which drops the axis)."""
    if isinstance(key, int | np.integer):
        return None
    if isinstance(key, slice):
        return len(range(*key.indices(size)))
    return len(np.asarray(key))


def _positions(key: Any, size: int) -> list[int]:
    """The indices along an axis that a backend key selects, in order."""
    if isinstance(key, int | np.integer):
        return [int(key) + (size if key < 0 else 0)]
    if isinstance(key, slice):
        return list(range(*key.indices(size)))
    array = np.asarray(key, dtype=np.int64).reshape(-1)
    return np.where(array < 0, array + size, array).tolist()


def _apply_outer(array: np.ndarray, keys: Sequence[Any], first_axis: int) -> np.ndarray:
    """Index ``array`` orthogonally with ``keys`` on axes ``first_axis, first_axis + 1, ...``."""
    for offset in range(len(keys) - 1, -1, -1):  # last axis first, so axis numbers stay valid
        axis, key = first_axis + offset, keys[offset]
        if isinstance(key, slice):
            if key != slice(None):
                index: list[Any] = [slice(None)] * array.ndim
                index[axis] = key
                array = array[tuple(index)]
        else:
            array = np.take(array, np.asarray(key, dtype=np.int64), axis=axis)
    return array


class _TrajectorySource:
    """Reads frames of trajectories for the variables of one view, through ``ds.read`` and a cache."""

    def __init__(self, ds: Any, dtype: np.dtype, cache_bytes: int) -> None:
        self.ds = ds
        self.dtype = dtype
        self.cache = _ReadCache(cache_bytes)

    def frames(self, index: int, time_key: Any, n_times: int) -> np.ndarray:
        """Frames ``time_key`` (an int, a slice or an index array) of trajectory ``index``: ``[T, C, *grid]``.

        An int key keeps a time axis of length 1.
        """
        if isinstance(time_key, int | np.integer):
            t = int(time_key) + (n_times if time_key < 0 else 0)
            return self._read(index, slice(t, t + 1, 1))
        if isinstance(time_key, slice):
            return self._read(index, slice(*time_key.indices(n_times)))
        wanted = _positions(time_key, n_times)
        if not wanted:
            return self._read(index, slice(0, 0, 1))
        unique, inverse = np.unique(np.asarray(wanted, dtype=np.int64), return_inverse=True)
        frames = unique.tolist()
        key = (index, "frames", tuple(frames))

        def read() -> np.ndarray:
            return self._as_array(read_frames(self.ds, index, frames))

        block = self.cache.get_or_read(key, read)
        return (
            block
            if len(frames) == len(wanted) and (inverse == np.arange(len(wanted))).all()
            else block[inverse]
        )

    def _read(self, index: int, times: slice) -> np.ndarray:
        key = (index, "slice", times.start, times.stop, times.step)
        return self.cache.get_or_read(key, lambda: self._as_array(self.ds.read(index, times)))

    def _as_array(self, tensor: Any) -> np.ndarray:
        array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        return array.astype(self.dtype, copy=False)


class TrajectoryChannelArray(BackendArray):
    """One channel of a trajectory dataset as a lazily indexable array ``(sample, time, *grid)``."""

    def __init__(self, source: _TrajectorySource, channel: int, shape: tuple[int, ...]) -> None:
        self.source = source
        self.channel = channel
        self.shape = shape
        self.dtype = source.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._raw_getitem
        )

    def _raw_getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        n_samples, n_times = self.shape[:2]
        sample_key, time_key, *grid_keys = key
        samples = _positions(sample_key, n_samples)
        parts = []
        for i in samples:
            frames = self.source.frames(i, time_key, n_times)[:, self.channel]
            parts.append(_apply_outer(frames, grid_keys, first_axis=1))
        if parts:
            out = np.stack(parts, axis=0)
        else:
            lengths = [_key_length(k, s) for k, s in zip(key, self.shape, strict=True)]
            shape = [0] + [1 if n is None else n for n in lengths[1:2]]
            shape += [n for n in lengths[2:] if n is not None]
            out = np.empty(shape, dtype=self.dtype)
        if isinstance(time_key, int | np.integer):
            out = out[:, 0]
        if isinstance(sample_key, int | np.integer):
            out = out[0]
        return out


class _PairSource:
    """Reads input/output pairs for the variables of one view, through ``ds[i]`` and a cache."""

    def __init__(self, ds: Any, dtype: np.dtype, cache_bytes: int) -> None:
        self.ds = ds
        self.dtype = dtype
        self.cache = _ReadCache(cache_bytes)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        def read() -> tuple[np.ndarray, np.ndarray]:
            item = self.ds[index]
            return tuple(  # type: ignore[return-value]
                (
                    item[k].detach().cpu().numpy() if hasattr(item[k], "detach") else np.asarray(item[k])
                ).astype(self.dtype, copy=False)
                for k in ("x", "y")
            )

        return self.cache.get_or_read(index, read)


class PairChannelArray(BackendArray):
    """One channel of the inputs (``which="x"``) or outputs (``"y"``) of pairs, ``(sample, *grid)``."""

    def __init__(self, source: _PairSource, which: str, channel: int, shape: tuple[int, ...]) -> None:
        self.source = source
        self.which = 0 if which == "x" else 1
        self.channel = channel
        self.shape = shape
        self.dtype = source.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._raw_getitem
        )

    def _raw_getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        sample_key, *grid_keys = key
        samples = _positions(sample_key, self.shape[0])
        parts = [
            _apply_outer(self.source.pair(i)[self.which][self.channel], grid_keys, first_axis=0)
            for i in samples
        ]
        if parts:
            out = np.stack(parts, axis=0)
        else:
            lengths = [_key_length(k, s) for k, s in zip(key[1:], self.shape[1:], strict=True)]
            out = np.empty([0] + [n for n in lengths if n is not None], dtype=self.dtype)
        if isinstance(sample_key, int | np.integer):
            out = out[0]
        return out


# ---------------------------------------------------------------------------------------------- naming
def _unique_names(names: Sequence[str], reserved: set[str], prefix: str = "") -> list[str]:
    """Variable names for the channels: ``prefix + name`` with ``/`` replaced, unique, not reserved."""
    out: list[str] = []
    taken = set(reserved)
    for k, raw in enumerate(names):
        base = prefix + (str(raw).replace("/", "_") or f"c{k}")
        name = base if base not in taken else f"{base}_field"
        n = 1
        while name in taken:
            name = f"{base}_{n}"
            n += 1
        taken.add(name)
        out.append(name)
    return out


def _attr_value(value: Any) -> Any:
    """``value`` as a netCDF attribute (str, number, numeric array), or ``None`` to leave it out."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.size == 0:
            return None
        if array.dtype.kind == "b":
            return array.astype(np.int32).reshape(-1)
        if array.dtype.kind in "iuf":
            return array.reshape(-1)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def metadata_attrs(metadata: DatasetMetadata) -> dict[str, Any]:
    """The metadata as netCDF-compatible dataset attributes (parameters as ``param_<name>``)."""
    m = metadata
    raw: dict[str, Any] = {
        "format": m.format,
        "path": m.path,
        "field_names": ",".join(m.field_names),
        "spatial_dims": ",".join(m.spatial_dims),
        "grid_shape": list(m.grid_shape),
        "n_trajectories": m.n_trajectories,
        "n_times": m.n_times,
        "periodic": [int(p) for p in m.periodic],
        "domain_lengths": [float(v) for v in m.domain_lengths],
        "viscosity": m.viscosity,
        "dt": m.dt,
    }
    for name, value in m.parameters.items():
        raw[f"param_{name}"] = value
    attrs = {}
    for name, value in raw.items():
        converted = _attr_value(value)
        if converted is not None:
            attrs[name] = converted
    return attrs


def _spatial_coords(metadata: DatasetMetadata, dims: Sequence[str]) -> dict[str, Any]:
    """Coordinates of the spatial axes that the metadata hold with the right length."""
    coords: dict[str, Any] = {}
    for name, dim, size in zip(metadata.spatial_dims, dims, metadata.grid_shape, strict=False):
        values = metadata.coords.get(name) if metadata.coords else None
        if values is None:
            continue
        values = np.asarray(values).reshape(-1)
        if values.shape[0] != size:
            logger.debug("coordinate %s has %d values for %d points; left out", name, values.shape[0], size)
            continue
        coords[dim] = (dim, values)
    return coords


def _check_metadata(ds: Any, who: str) -> DatasetMetadata:
    metadata = getattr(ds, "metadata", None)
    if not isinstance(metadata, DatasetMetadata):
        raise ConfigError(f"{who}: expected a sciml dataset with DatasetMetadata, got {type(ds).__name__}")
    if len(metadata.spatial_dims) != len(metadata.grid_shape):
        raise ConfigError(
            f"{who}: metadata of {metadata.path} name {len(metadata.spatial_dims)} spatial dims "
            f"{metadata.spatial_dims} for a {len(metadata.grid_shape)}-D grid {metadata.grid_shape}"
        )
    return metadata


# ---------------------------------------------------------------------------------------------- views
def trajectories_to_xarray(
    ds: Any, *, dtype: Any = None, cache_bytes: int = DEFAULT_CACHE_BYTES
) -> xr.Dataset:
    """A lazy ``xarray.Dataset`` view of a trajectory dataset.

    One data variable per channel, named as in ``metadata.field_names`` (vector components stay separate
    variables), over ``(sample, time, *spatial_dims)``. Coordinates: ``sample`` (trajectory numbers),
    ``time`` (``metadata.times`` when known) and the spatial axes (``metadata.coords`` when they have the
    grid's length). Attributes: the metadata (:func:`metadata_attrs`).

    Args:
        ds: a trajectory dataset (``metadata``, ``len``, ``read(i, times)``).
        dtype: dtype of the variables; default ``ds.dtype`` when the dataset has one, else float32
            (values are cast to it when read).
        cache_bytes: size of the read cache shared by the variables (0 disables it).

    Returns:
        The view; nothing has been read yet.
    """
    m = _check_metadata(ds, "trajectories_to_xarray")
    if not callable(getattr(ds, "read", None)):
        raise ConfigError(f"trajectories_to_xarray: {type(ds).__name__} has no read(i, times)")
    value_dtype = _dtype_of(ds, dtype)
    source = _TrajectorySource(ds, value_dtype, cache_bytes)
    dims = (SAMPLE_DIM, TIME_DIM, *m.spatial_dims)
    shape = (m.n_trajectories, m.n_times, *m.grid_shape)
    names = _unique_names(m.field_names, set(dims))
    data_vars = {}
    for channel, (name, field) in enumerate(zip(names, m.field_names, strict=True)):
        array = indexing.LazilyIndexedArray(TrajectoryChannelArray(source, channel, shape))
        data_vars[name] = xr.Variable(dims, array, attrs={"field_name": field, "channel": channel})
    coords: dict[str, Any] = {SAMPLE_DIM: (SAMPLE_DIM, np.arange(m.n_trajectories))}
    if m.times is not None and len(m.times) == m.n_times:
        coords[TIME_DIM] = (TIME_DIM, np.asarray(m.times, dtype=np.float64))
    coords.update(_spatial_coords(m, m.spatial_dims))
    view = xr.Dataset(data_vars, coords=coords, attrs=metadata_attrs(m))
    logger.debug("xarray view of %s: %s", m.path, dict(view.sizes))
    return view


def pairs_to_xarray(ds: Any, *, dtype: Any = None, cache_bytes: int = DEFAULT_CACHE_BYTES) -> xr.Dataset:
    """A lazy ``xarray.Dataset`` view of an input/output pair dataset.

    Variables ``x_<field>`` (one per input channel, from ``ds.metadata``) over ``(sample, *spatial_dims)``
    and ``y_<field>`` (one per output channel, from ``ds.output_metadata``). When an output axis shares a
    name with an input axis but not its size, the output axis is named ``<name>_out``.

    Args:
        ds: a pair dataset (``metadata``, ``output_metadata``, ``len``, ``ds[i] -> {"x", "y"}``).
        dtype: dtype of the variables; default ``ds.dtype`` when present, else float32.
        cache_bytes: size of the read cache shared by the variables (0 disables it).

    Returns:
        The view; nothing has been read yet.
    """
    mx = _check_metadata(ds, "pairs_to_xarray")
    my = getattr(ds, "output_metadata", None)
    if not isinstance(my, DatasetMetadata):
        raise ConfigError(f"pairs_to_xarray: {type(ds).__name__} has no output_metadata")
    value_dtype = _dtype_of(ds, dtype)
    source = _PairSource(ds, value_dtype, cache_bytes)
    n = len(ds)
    in_dims = tuple(mx.spatial_dims)
    in_sizes = dict(zip(mx.spatial_dims, mx.grid_shape, strict=True))
    out_dims = tuple(
        f"{d}_out" if d in in_sizes and in_sizes[d] != s else d
        for d, s in zip(my.spatial_dims, my.grid_shape, strict=True)
    )
    reserved = {SAMPLE_DIM, *in_dims, *out_dims}
    data_vars = {}
    for which, meta, dims in (("x", mx, in_dims), ("y", my, out_dims)):
        names = _unique_names(meta.field_names, reserved | set(data_vars), prefix=f"{which}_")
        shape = (n, *meta.grid_shape)
        for channel, (name, field) in enumerate(zip(names, meta.field_names, strict=True)):
            array = indexing.LazilyIndexedArray(PairChannelArray(source, which, channel, shape))
            data_vars[name] = xr.Variable(
                (SAMPLE_DIM, *dims), array, attrs={"field_name": field, "channel": channel, "role": which}
            )
    coords: dict[str, Any] = {SAMPLE_DIM: (SAMPLE_DIM, np.arange(n))}
    coords.update(_spatial_coords(my, out_dims))
    coords.update(_spatial_coords(mx, in_dims))
    attrs = metadata_attrs(mx)
    for name, value in metadata_attrs(my).items():
        if attrs.get(name) is None or not _same(attrs[name], value):
            attrs[f"output_{name}"] = value
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _same(a: Any, b: Any) -> bool:
    """Whether two attribute values are equal (arrays elementwise)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return bool(a == b)
