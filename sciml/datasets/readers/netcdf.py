"""netCDF trajectory files (classic CDF-1/2/5 or netCDF-4/HDF5) and zarr stores, read lazily through xarray.

Two layouts are read:

(a) **One variable per channel** (the de facto convention of jax-cfd's evaluation sets, Kochkov et al.,
    "Machine learning-accelerated computational fluid dynamics", PNAS 2021; also POSEIDON's netCDF
    exports): data variables such as ``u``, ``v``, ``vorticity``, each with dims ``(sample, time, x, y)``.
    The dims of a variable may come in any order (e.g. ``(sample, time, y, x)``); frames are returned with
    the spatial axes in the order of ``dims``. Without ``dims=``, the sample dim is ``sample`` or ``batch``
    and the time dim ``time`` or ``t`` (an alias is used only when the file has exactly one of the two; a
    file without a sample or time dim holds one trajectory or one frame), and the spatial dims are ``x``,
    ``y`` (and ``z`` when the file has it). Channels are the selected variables (``variables=``), by default
    every numeric data variable with exactly those dims, in file order (in the order of their ``channel``
    attributes when each has a distinct integer one, as sciml's writers store).
(b) **One variable holding all channels**, e.g. ``(N, T, C, X, Y)``: pass ``variable=`` and ``layout=``, a
    string with one letter per dim of the variable among ``n t c x y z`` (see
    :func:`sciml.datasets.readers._layout.parse_layout`), e.g. ``"ntcxy"``. Channel names come from
    ``field_names=``, else from string coordinate values of the channel dim, else from a
    ``field_names`` attribute of the variable, else ``c0, c1, ...``.

Coordinates are the file's 1D coordinate variables of the spatial dims (uniform ``i * L / n`` when absent);
times are the coordinate of the time dim, undecoded (``decode_times=False``: the numbers stored, in the
file's units), or ``None``. Packed variables are unpacked and ``_FillValue`` entries become NaN
(``mask_and_scale``), which a read then reports as non-finite data.

Periodicity, unless given by ``periodic=``: a ``periodic`` attribute of a spatial coordinate variable, else
a global attribute ``periodic_<dim>``, else a global attribute ``periodic`` (one value, or one per spatial
dim), else :data:`DEFAULT_PERIODIC` (``False``). Attribute values are read by
:func:`~sciml.datasets.readers._layout.parse_flag` (``0``/``1``, booleans, or texts such as ``"true"``,
``"periodic"``, ``"wall"``); any other value is a :class:`DataFormatError`. The viscosity is the global
attribute ``viscosity`` or ``nu`` unless given; the other scalar global attributes become
``metadata.parameters``.

Engines: h5netcdf for netCDF-4 files (no netCDF C library needed; netCDF4 when h5netcdf is missing),
netCDF4 or scipy for classic files, whichever is installed; ``engine=`` forces one. A URL
(:mod:`sciml.datasets.remote`) is read through h5netcdf from an fsspec file object, lazily; classic files
are not streamed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciml.datasets.base import LOW_LEVEL_ERRORS, TrajectoryDataset, check_read_size, describe_error
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers._layout import (
    Layout,
    attribute_key,
    box_length,
    parse_flag,
    parse_layout,
    per_axis_flags,
    per_axis_floats,
    select_frames,
)
from sciml.datasets.readers.hdf5_common import as_str, open_hdf5, plain_scalar
from sciml.datasets.registry import register_reader
from sciml.datasets.remote import (
    RemoteOptions,
    active_options,
    is_remote,
    is_url,
    local_path,
    open_binary,
    open_url,
    remote_errors,
    suffix_of,
)
from sciml.errors import DataFormatError, SciMLError

logger = logging.getLogger(__name__)

CLASSIC_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SAMPLE_NAMES = ("sample", "batch")
TIME_NAMES = ("time", "t")
SPATIAL_NAMES = ("x", "y", "z")
#: The NAME attribute netCDF-C gives the dimension scale of a dimension without a coordinate variable.
_PURE_DIMENSION_NAME = "This is a netCDF dimension but not a netCDF variable"
_ENGINE_PACKAGE = {"netcdf4": "netCDF4", "h5netcdf": "h5netcdf", "scipy": "scipy"}
#: Periodicity of an axis no attribute speaks of. The CF conventions define no periodicity attribute, so a
#: file that says nothing gives no hint; ``False`` because data wrongly taken as periodic are silently
#: wrapped around by spectral methods, while periodic data taken as non-periodic only get the node span as
#: their box length. ``periodic=`` overrides it.
DEFAULT_PERIODIC = False


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def choose_engine(path: str, header: bytes, engine: str | None = None) -> str:
    """The xarray engine for this file: ``engine`` if given, else the first installed that can read it."""
    classic = header[:4] in CLASSIC_MAGICS
    if engine is not None:
        if engine not in _ENGINE_PACKAGE:
            raise DataFormatError(
                path, "unknown option engine=", expected=sorted(_ENGINE_PACKAGE), found=engine
            )
        if not _installed(_ENGINE_PACKAGE[engine]):
            raise DataFormatError(path, f"engine {engine!r} needs the package {_ENGINE_PACKAGE[engine]!r}")
        return engine
    if classic:
        options = ("netcdf4", "scipy") if header[:4] != b"CDF\x05" else ("netcdf4",)
    else:  # netCDF-4 through h5netcdf first: no netCDF C library needed
        options = ("h5netcdf", "netcdf4")
    for name in options:
        if _installed(_ENGINE_PACKAGE[name]):
            return name
    packages = " or ".join(_ENGINE_PACKAGE[name] for name in options)
    raise DataFormatError(
        path,
        f"reading this {'classic netCDF' if classic else 'netCDF-4 (HDF5)'} file needs the package "
        f"{packages}, which is not installed (pip install {_ENGINE_PACKAGE[options[0]]})",
    )


def choose_url_engine(url: str, header: bytes, engine: str | None = None) -> str:
    """The engine for a remote netCDF file: h5netcdf, the one that reads a Python file object.

    A classic (CDF-1/2/5) file is refused: its readers load whole variables, so it is not streamed.
    """
    if header[:4] in CLASSIC_MAGICS:
        raise DataFormatError(
            url,
            "a classic netCDF file is not streamed (only netCDF-4/HDF5 is); make a local copy first "
            "(sciml datasets download URL)",
        )
    if engine not in (None, "h5netcdf"):
        raise DataFormatError(
            url, "a URL is read with engine h5netcdf only", expected="h5netcdf", found=engine
        )
    return choose_engine(url, header, "h5netcdf")


class _ReadsWithinFile:
    """A binary file whose ``read(n)`` asks for no more than what is left of the file.

    scipy's netCDF-3 parser reads as many bytes as a header count says, and Python allocates a read's full
    size before reading: a damaged count (e.g. 2**31 attribute values) would allocate gigabytes.
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self._size = os.fstat(fh.fileno()).st_size

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` is negative or ``None``)."""
        left = max(self._size - self._fh.tell(), 0)
        return self._fh.read(left if n is None or n < 0 else min(n, left))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def check_classic_complete(path: str) -> None:
    """Raise :class:`DataFormatError` when a classic (CDF-1/2) file is shorter than its header says.

    netCDF-C reads the missing bytes of a truncated classic file as zeros without any error, so the file is
    checked once with scipy's netCDF-3 parser, which maps the file and lays every variable over it.
    """
    try:
        import scipy.io
    except ImportError:  # pragma: no cover - scipy is a dependency of sciml
        logger.warning("%s: scipy missing; a truncated classic netCDF file would read as zeros", path)
        return
    problem = None
    with warnings.catch_warnings():
        # scipy warns when a map it cannot close is collected; the traceback of a failed parse holds one, so
        # the error is kept as text only and the parser's objects are freed inside this block
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            with open(path, "rb") as fh:
                f = scipy.io.netcdf_file(_ReadsWithinFile(fh), "r", mmap=True)
                try:
                    names = list(f.variables)
                    f.variables.clear()  # drop the arrays over the map before closing it
                finally:
                    f.close()
                    del f
        except LOW_LEVEL_ERRORS as err:
            problem = describe_error(err)
    if problem is not None:
        raise DataFormatError(
            path, f"classic netCDF file shorter than its header says ({problem}); is the file truncated?"
        )
    logger.debug("%s: classic netCDF file complete (%d variables)", path, len(names))


def check_netcdf4_coordinates(path: str, options: RemoteOptions | None = None) -> None:
    """Refuse a netCDF-4 file whose dimension coordinates exceed the read limit, before xarray opens it.

    xarray loads the coordinate variable of every dimension when it opens a file (to index it); in a
    netCDF-4 file that is an HDF5 dimension scale, which can declare any length while holding no data.
    Dimensions without a coordinate variable are dimension scales too, but are never read.
    """
    import h5py

    with open_hdf5(path, options) as f:
        for name, obj in f.items():
            if not isinstance(obj, h5py.Dataset) or as_str(obj.attrs.get("CLASS", "")) != "DIMENSION_SCALE":
                continue
            if as_str(obj.attrs.get("NAME", "")).startswith(_PURE_DIMENSION_NAME):
                continue
            check_read_size(
                path, obj.shape or (), obj.dtype.itemsize, key=name, what="opening (xarray loads coordinates)"
            )


# ----------------------------------------------------------------------------------------------------------
# One handle per file and process
# ----------------------------------------------------------------------------------------------------------
# netCDF-C/HDF5 crash (segfault) when a netCDF-4 file is open twice at once in one process and a string
# variable is read through one handle (HDF5 issue #5359, netcdf-c #2510, netcdf4-python #1444). xarray reads
# string coordinates when it opens a file, so two readers of one file would crash. Readers therefore share
# one xarray handle per (file, engine, process), closed when the last reader lets go of it.
_SHARED: dict[tuple[str, str, int], list[Any]] = {}  # key -> [xarray.Dataset, number of holders]
_SHARED_LOCK = threading.Lock()
_PENDING: list[tuple[str, str, int]] = []  # releases requested while the lock was busy (e.g. by the GC)


class SharedDataset:
    """A reader's hold on the process-wide ``xarray.Dataset`` of a file; ``close()`` lets go of it."""

    def __init__(self, key: tuple[str, str, int], dataset: Any) -> None:
        self.dataset = dataset
        self._release = weakref.finalize(self, _release_shared, key)

    def close(self) -> None:
        """Release this hold (idempotent); the file is closed when no reader holds it."""
        self._release()


def open_xarray(path: str, engine: str, options: RemoteOptions | None = None) -> Any:
    """``xarray.open_dataset`` of a local file, a URL (through an fsspec file object) or a zarr store.

    Values are read lazily (no dask), undecoded times, packed values unpacked and fill values as NaN.
    """
    import xarray as xr

    if engine == "zarr":
        opts = options or active_options()
        storage = dict(opts.storage_options) if is_remote(path) else None
        target = path if is_remote(path) or not is_url(path) else str(local_path(path))
        with warnings.catch_warnings():  # a store without consolidated metadata is read without it
            warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated", RuntimeWarning)
            return xr.open_dataset(
                target,
                engine="zarr",
                chunks=None,
                consolidated=None,
                storage_options=storage,
                decode_times=False,
                mask_and_scale=True,
                cache=False,
            )
    source: Any = open_url(path, options) if is_remote(path) else path
    return xr.open_dataset(source, engine=engine, decode_times=False, mask_and_scale=True, cache=False)


def acquire_shared(path: str, engine: str, options: RemoteOptions | None = None) -> SharedDataset:
    """Hold the shared ``xarray.Dataset`` of ``path`` in this process, opening it when nobody holds it."""
    key = (path if is_url(path) else os.path.realpath(path), engine, os.getpid())
    with _SHARED_LOCK:
        to_close = _apply_pending()
        entry = _SHARED.get(key)
        if entry is None:
            what = "a zarr store" if engine == "zarr" else "netCDF"
            try:
                dataset = open_xarray(path, engine, options)
            except SciMLError:
                raise
            except LOW_LEVEL_ERRORS as err:
                raise DataFormatError(
                    path, f"cannot open as {what} ({describe_error(err)}); is the file truncated?"
                ) from err
            entry = _SHARED[key] = [dataset, 0]
        entry[1] += 1
        held = SharedDataset(key, entry[0])
    _close_all(to_close)
    return held


def _release_shared(key: tuple[str, str, int]) -> None:
    """Drop one hold on ``key``; deferred when the lock is busy (a finalizer may run inside it)."""
    _PENDING.append(key)
    if not _SHARED_LOCK.acquire(blocking=False):
        return
    try:
        to_close = _apply_pending()
    finally:
        _SHARED_LOCK.release()
    _close_all(to_close)


def _apply_pending() -> list[tuple[tuple[str, str, int], Any]]:
    """Apply the queued releases (lock held); returns the handles nobody holds any more."""
    to_close = []
    while _PENDING:
        key = _PENDING.pop()
        entry = _SHARED.get(key)
        if entry is None:
            continue
        entry[1] -= 1
        if entry[1] <= 0:
            del _SHARED[key]
            to_close.append((key, entry[0]))
    return to_close


def _close_all(handles: list[tuple[tuple[str, str, int], Any]]) -> None:
    for key, dataset in handles:
        if key[2] == os.getpid():  # a forked child never closes its parent's handle
            dataset.close()


def _in_channel_order(ds: Any, names: list[str]) -> list[str]:
    """``names`` ordered by their integer ``channel`` attributes (what sciml's writers and xarray views
    store) when every one has a distinct one; else unchanged. A zarr store lists its variables by name,
    not in the order they were written."""
    channels = [ds[name].attrs.get("channel") for name in names]
    if not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in channels):
        return names
    if len(set(map(int, channels))) != len(channels):
        return names
    return [name for _, name in sorted(zip(map(int, channels), names, strict=True))]


@register_reader
class NetCDFReader(TrajectoryDataset):
    """Trajectories from a netCDF file through xarray, read lazily (see the module docstring for layouts).

    Args:
        path: the ``.nc`` file.
        variables: layout (a): the data variables to read as channels, in order (default: all numeric data
            variables with the trajectory dims).
        dims: layout (a): the dim names ``(sample, time, *spatial)`` (1-3 spatial); no aliases are tried
            when given. The sample and time names may be absent from the file (one trajectory / frame).
        variable: layout (b): the one variable holding every channel (needs ``layout=``).
        layout: layout (b): one letter per dim of ``variable`` among ``n t c x y z``, e.g. ``"ntcxy"``.
        field_names: layout (b): channel names.
        periodic: periodicity per spatial axis, or one for all (default: from attributes, else ``False``).
        domain_lengths: box length per spatial axis, or one for all (default: from the coordinates —
            ``n * dx`` when periodic, the span otherwise — else 1.0).
        viscosity: kinematic viscosity (default: global attribute ``viscosity`` or ``nu``).
        engine: xarray engine (``"netcdf4"``, ``"h5netcdf"``, ``"scipy"``); chosen from the installed ones.
    """

    format_name = "netcdf"
    suffixes: tuple[str, ...] = (".nc", ".nc4", ".netcdf", ".cdf")
    reads_urls = True  # netCDF-4 (HDF5) only

    @classmethod
    def sniff(cls, path: Path | str, header: bytes) -> bool:
        """Classic magic ``CDF\\x01``/``CDF\\x02``/``CDF\\x05``, or an HDF5 file that is netCDF-4 (a netCDF
        suffix, or the root attribute ``_NCProperties``)."""
        if header[:4] in CLASSIC_MAGICS:
            return True
        if not header.startswith(HDF5_SIGNATURE):
            return False
        if suffix_of(path) in cls.suffixes:
            return True
        try:
            with open_hdf5(path) as f:
                return "_NCProperties" in f.attrs
        except Exception:  # a sniffer never raises
            return False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        variables: Sequence[str] | str | None = None,
        dims: Sequence[str] | None = None,
        variable: str | None = None,
        layout: str | None = None,
        field_names: Sequence[str] | None = None,
        periodic: bool | Sequence[bool] | None = None,
        domain_lengths: float | Sequence[float] | None = None,
        viscosity: float | None = None,
        engine: str | None = None,
    ) -> None:
        super().__init__(path)
        p = self.path
        self._engine = self._prepare(engine)
        try:
            ds = self._dataset()
            if variable is not None or layout is not None:
                if variables is not None or dims is not None:
                    raise DataFormatError(
                        p,
                        "options variable=/layout= (one variable) exclude variables=/dims= (one per channel)",
                    )
                if variable is None or layout is None:
                    raise DataFormatError(
                        p, "options variable= and layout= go together", found=f"{variable=}, {layout=}"
                    )
                names, spatial_names = self._setup_single(ds, variable, layout, field_names)
            else:
                if field_names is not None:
                    raise DataFormatError(p, "option field_names= applies to variable=/layout= only")
                names, spatial_names = self._setup_multi(ds, variables, dims)
            self.metadata = self._metadata(ds, names, spatial_names, periodic, domain_lengths, viscosity)
        except BaseException:
            self.close()
            raise
        logger.debug("opened %s (engine %s) as %s", p, self._engine, self)

    # ------------------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------------------
    def _prepare(self, engine: str | None) -> str:
        """Check the file before xarray opens it (complete, coordinates within the read limit); the engine."""
        p = self.path
        try:
            with open_binary(p, self.remote_options) as fh:
                header = fh.read(8)
        except OSError as err:
            raise DataFormatError(p, f"cannot read the file ({describe_error(err)})") from err
        if is_remote(p):
            chosen = choose_url_engine(p, header, engine)
        else:
            chosen = choose_engine(p, header, engine)
            if header[:4] in CLASSIC_MAGICS[:2]:
                check_classic_complete(p)
        if header.startswith(HDF5_SIGNATURE):
            check_netcdf4_coordinates(p, self.remote_options)
        return chosen

    def _open_handle(self) -> SharedDataset:
        return acquire_shared(self.path, self._engine, self.remote_options)

    def _dataset(self) -> Any:
        """The (shared) lazily loaded ``xarray.Dataset`` of this process."""
        return self.handle().dataset

    def _data_vars(self, ds: Any) -> dict[str, tuple[str, ...]]:
        return {str(k): tuple(str(d) for d in v.dims) for k, v in ds.data_vars.items()}

    def _require_var(self, ds: Any, name: str, what: str) -> Any:
        if name not in ds.variables:
            raise DataFormatError(
                self.path,
                "no such variable",
                key=name,
                expected=what,
                found=f"data variables {self._data_vars(ds)}",
            )
        var = ds[name]
        if var.dtype.kind not in "fiub":
            raise DataFormatError(self.path, "not a real numeric variable", key=name, found=str(var.dtype))
        return var

    def _resolve(self, file_dims: Sequence[str], candidates: Sequence[str], role: str) -> str | None:
        present = [c for c in candidates if c in file_dims]
        if len(present) > 1:
            raise DataFormatError(
                self.path,
                f"ambiguous {role} dim; pass dims=(sample, time, x, y) naming the dims to use",
                expected=f"one of {list(candidates)}",
                found=present,
            )
        return present[0] if present else None

    def _setup_multi(
        self, ds: Any, variables: Sequence[str] | str | None, dims: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Layout (a): one channel per variable with dims ``(sample, time, *spatial)`` in any order."""
        p = self.path
        file_dims = [str(d) for d in ds.dims]
        if dims is not None:
            dims = tuple(str(d) for d in dims)
            if not 3 <= len(dims) <= 5 or len(set(dims)) != len(dims):
                raise DataFormatError(
                    p,
                    "invalid option dims=",
                    expected="(sample, time, *spatial) with 1-3 spatial",
                    found=dims,
                )
            missing = [d for d in dims[2:] if d not in file_dims]
            if missing:
                raise DataFormatError(
                    p, "spatial dims of option dims= not in the file", expected=file_dims, found=missing
                )
            sample = dims[0] if dims[0] in file_dims else None
            time = dims[1] if dims[1] in file_dims else None
            spatial = dims[2:]
        else:
            sample = self._resolve(file_dims, SAMPLE_NAMES, "sample")
            time = self._resolve(file_dims, TIME_NAMES, "time")
            spatial = tuple(d for d in SPATIAL_NAMES if d in file_dims)
            if spatial[:2] != ("x", "y") and spatial != ("x",):
                raise DataFormatError(
                    p,
                    "no spatial dims x, y; pass dims=(sample, time, *spatial), or variable= and layout=",
                    expected="dims (sample, time, x, y)",
                    found=f"dims {file_dims}",
                )
        letters = {sample: "n", time: "t", **{d: "xyz"[k] for k, d in enumerate(spatial)}}
        letters.pop(None, None)
        wanted = set(letters)
        if variables is None:
            chosen = [
                name
                for name, var_dims in self._data_vars(ds).items()
                if set(var_dims) == wanted and len(var_dims) == len(wanted) and ds[name].dtype.kind in "fiub"
            ]
            chosen = _in_channel_order(ds, chosen)
            if not chosen:
                raise DataFormatError(
                    p,
                    "no numeric data variable with the trajectory dims; pass variables=/dims=, or variable= "
                    "and layout= for one variable holding every channel",
                    expected=f"dims {tuple(letters)} in any order",
                    found=f"data variables {self._data_vars(ds)}",
                )
        else:
            chosen = [variables] if isinstance(variables, str) else [str(v) for v in variables]
            if not chosen or len(set(chosen)) != len(chosen):
                raise DataFormatError(p, "option variables= must name distinct variables", found=chosen)
            for name in chosen:
                var = self._require_var(ds, name, f"a variable with dims {tuple(letters)}")
                if set(var.dims) != wanted or var.ndim != len(wanted):
                    raise DataFormatError(
                        p,
                        "wrong dims",
                        key=name,
                        expected=f"{tuple(letters)} in any order",
                        found=tuple(var.dims),
                    )
        self._reads = [(name, Layout("".join(letters[str(d)] for d in ds[name].dims))) for name in chosen]
        self._dim_of = {letter: name for name, letter in letters.items()}
        return tuple(chosen), tuple(spatial)

    def _setup_single(
        self, ds: Any, variable: str, layout: str, field_names: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Layout (b): one variable whose dims are named by ``layout`` letters."""
        p = self.path
        parsed = parse_layout(layout, p)
        var = self._require_var(
            ds, variable, f"a variable with {len(parsed.letters)} dims ({parsed.letters!r})"
        )
        if var.ndim != len(parsed.letters):
            raise DataFormatError(
                p,
                "number of dims does not match the layout",
                key=variable,
                expected=f"{len(parsed.letters)} dims ({parsed.letters!r})",
                found=f"dims {tuple(var.dims)}, shape {tuple(var.shape)}",
            )
        self._reads = [(variable, parsed)]
        self._dim_of = {letter: str(d) for letter, d in zip(parsed.letters, var.dims, strict=True)}
        c_dim = self._dim_of.get("c")
        n_c = 1 if c_dim is None else int(ds.sizes[c_dim])
        names: tuple[str, ...] | None = None
        if field_names is not None:
            names = (field_names,) if isinstance(field_names, str) else tuple(str(s) for s in field_names)
        elif c_dim is not None and c_dim in ds.coords and ds[c_dim].dtype.kind in "USO":
            names = tuple(str(s) for s in np.asarray(ds[c_dim].values).reshape(-1))
        elif "field_names" in var.attrs:
            raw = var.attrs["field_names"]
            names = tuple(raw.replace(",", " ").split()) if isinstance(raw, str) else tuple(map(str, raw))
        if names is None:
            names = (variable,) if n_c == 1 else tuple(f"c{k}" for k in range(n_c))
        if len(names) != n_c:
            raise DataFormatError(
                p, "channel names do not match the channels", key=variable, expected=n_c, found=list(names)
            )
        return names, tuple(self._dim_of[a] for a in parsed.spatial)

    def _metadata(
        self,
        ds: Any,
        names: tuple[str, ...],
        spatial: tuple[str, ...],
        periodic: bool | Sequence[bool] | None,
        domain_lengths: float | Sequence[float] | None,
        viscosity: float | None,
    ) -> DatasetMetadata:
        p = self.path
        grid = tuple(int(ds.sizes[d]) for d in spatial)
        if min(grid) == 0:
            raise DataFormatError(p, "empty spatial dim", found=dict(zip(spatial, grid, strict=True)))
        per = (
            per_axis_flags(periodic, len(spatial), option="periodic", path=p)
            if periodic is not None
            else self._periodic(ds, spatial)
        )
        file_coords: dict[str, np.ndarray] = {}
        for d in spatial:
            if d in ds.coords and ds[d].ndim == 1 and ds[d].dtype.kind in "fiu":
                file_coords[d] = np.asarray(ds[d].values, dtype=np.float64)
        if domain_lengths is not None:
            lengths = per_axis_floats(domain_lengths, len(spatial), option="domain_lengths", path=p)
        else:
            lengths = tuple(
                box_length(file_coords[d], periodic=q)
                if d in file_coords and len(file_coords[d]) > 1
                else 1.0
                for d, q in zip(spatial, per, strict=True)
            )
        coords = {
            d: file_coords.get(d, np.arange(n, dtype=np.float64) * length / n)
            for d, n, length in zip(spatial, grid, lengths, strict=True)
        }
        t_dim = self._dim_of.get("t")
        n_t = 1 if t_dim is None else int(ds.sizes[t_dim])
        times = None
        if t_dim is not None and t_dim in ds.coords and ds[t_dim].dtype.kind in "fiu":
            times = np.asarray(ds[t_dim].values, dtype=np.float64).reshape(-1)
        n_dim = self._dim_of.get("n")
        parameters: dict[str, Any] = {}
        for key, value in ds.attrs.items():
            v = plain_scalar(value)
            if v is not None and not str(key).startswith("_"):
                parameters[str(key)] = v
        if viscosity is None:
            for key in ("viscosity", "nu"):
                if isinstance(parameters.get(key), int | float) and not isinstance(parameters.get(key), bool):
                    viscosity = float(parameters[key])
                    break
        parameters["variables"] = [name for name, _ in self._reads]
        return DatasetMetadata(
            path=p,
            format=self.format_name,
            field_names=names,
            spatial_dims=spatial,
            grid_shape=grid,
            n_trajectories=1 if n_dim is None else int(ds.sizes[n_dim]),
            n_times=n_t,
            coords=coords,
            times=times,
            periodic=per,
            domain_lengths=lengths,
            viscosity=viscosity,
            parameters=parameters,
        )

    def _periodic(self, ds: Any, spatial: tuple[str, ...]) -> tuple[bool, ...]:
        """Periodicity per spatial dim from the attributes, in the order of the module docstring."""
        p = self.path
        out = list(self._global_periodic(ds, spatial))
        for k, d in enumerate(spatial):
            if d in ds.variables and "periodic" in ds[d].attrs:
                out[k] = parse_flag(ds[d].attrs["periodic"], path=p, key=attribute_key(d, "periodic"))
            elif f"periodic_{d}" in ds.attrs:
                name = f"periodic_{d}"
                out[k] = parse_flag(ds.attrs[name], path=p, key=attribute_key("", name))
        return tuple(out)

    def _global_periodic(self, ds: Any, spatial: tuple[str, ...]) -> tuple[bool, ...]:
        """The global attribute ``periodic`` (one value, or one per spatial dim), else the default."""
        n = len(spatial)
        value = ds.attrs.get("periodic")
        key = attribute_key("", "periodic")
        if value is None:
            return (DEFAULT_PERIODIC,) * n
        values = np.atleast_1d(np.asarray(value, dtype=object)).reshape(-1)
        if isinstance(value, str) and len(value.split()) == n > 1:
            values = np.asarray(value.split(), dtype=object)
        if values.size not in (1, n):
            raise DataFormatError(
                self.path, "wrong number of values", key=key, expected=f"1 or {n}", found=repr(value)
            )
        flags = tuple(parse_flag(v, path=self.path, key=key) for v in values)
        return flags * n if len(flags) == 1 else flags

    # ------------------------------------------------------------------------------------------------------
    # reading
    # ------------------------------------------------------------------------------------------------------
    def _read(self, index: int, times: slice) -> np.ndarray:
        ds = self._dataset()
        blocks = []
        for name, layout in self._reads:
            try:
                blocks.append(
                    select_frames(ds[name].variable, layout, index, times, path=self.path, key=name)
                )
            except (OSError, RuntimeError, ValueError, IndexError, KeyError, TypeError) as err:
                raise DataFormatError(
                    self.path,
                    f"cannot read trajectory {index} ({describe_error(err)}); is the file truncated?",
                    key=name,
                ) from err
        if len(blocks) == 1:
            return blocks[0]
        return np.concatenate(blocks, axis=1)


# ----------------------------------------------------------------------------------------------------------
# zarr stores
# ----------------------------------------------------------------------------------------------------------
#: Files at the top of a zarr store: v3's group metadata, v2's group and consolidated metadata.
STORE_MARKERS = ("zarr.json", ".zgroup", ".zmetadata")


def open_zarr_group(path: str, options: RemoteOptions) -> Any:
    """The root ``zarr.Group`` of a local or remote store, read-only (errors name the store)."""
    if importlib.util.find_spec("zarr") is None:
        raise DataFormatError(path, "reading a zarr store needs the package zarr (pip install zarr)")
    import zarr

    storage = dict(options.storage_options) if is_remote(path) else None
    with remote_errors(path, "open as a zarr store"):
        return zarr.open_group(path, mode="r", storage_options=storage)


def check_zarr_coordinates(path: str, group: Any) -> None:
    """Refuse a store whose one-dimensional arrays (the coordinates xarray loads) exceed the read limit."""
    for name, array in group.arrays():
        if len(array.shape) == 1:
            check_read_size(
                path, array.shape, array.dtype.itemsize, key=name, what="opening (xarray loads coordinates)"
            )


@register_reader
class ZarrReader(NetCDFReader):
    """Trajectories from a zarr store (v2 or v3), with the layouts and options of :class:`NetCDFReader`
    (``engine=`` may only be ``"zarr"``).

    A store written by xarray holds what a netCDF file holds (dimensions, coordinate variables, data
    variables with attributes), so the layouts are the same;
    :func:`sciml.datasets.writers.xarray_formats.write_zarr` writes one. A store is a folder (recognized
    by its ``zarr.json``, or ``.zgroup``/``.zmetadata`` for zarr v2) or a URL ending in ``.zarr``
    (``s3://bucket/run.zarr``, ``memory://x.zarr``, ...), whose chunks are fetched as they are read. Before
    xarray opens it (and loads its dimension coordinates), every one-dimensional array is checked against
    the read limit.
    """

    format_name = "zarr"
    suffixes = (".zarr",)
    reads_urls = True

    @classmethod
    def sniff(cls, path: Path | str, header: bytes) -> bool:
        """Never: a store is a folder, recognized by :meth:`is_store` rather than by a file's first bytes."""
        return False

    @classmethod
    def is_store(cls, path: str | os.PathLike[str]) -> bool:
        """Whether a local folder is a zarr store (holds one of :data:`STORE_MARKERS`)."""
        folder = Path(path)
        return folder.is_dir() and any((folder / marker).is_file() for marker in STORE_MARKERS)

    def _prepare(self, engine: str | None) -> str:
        """Check the store (a group whose coordinates fit the read limit); the engine is ``"zarr"``."""
        p = self.path
        if engine not in (None, "zarr"):
            raise DataFormatError(p, "a zarr store is read with engine zarr", expected="zarr", found=engine)
        if not is_remote(p) and not self.is_store(p):
            raise DataFormatError(p, "not a zarr store", expected=f"a folder holding one of {STORE_MARKERS}")
        try:
            group = open_zarr_group(p, self.remote_options)
            check_zarr_coordinates(p, group)
        except DataFormatError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise DataFormatError(p, f"cannot open as a zarr store ({describe_error(err)})") from err
        logger.debug("%s: zarr v%s store", p, group.metadata.zarr_format)
        return "zarr"
