"""Any sciml dataset written as netCDF-4 (through h5netcdf) or as a zarr store, atomically.

xarray's own ``Dataset.to_netcdf`` picks the first netCDF library installed: without the netCDF4 package
and without h5netcdf it silently writes a classic CDF-2 file through scipy (64-bit offsets, no
compression, no chunks, no groups, 32-bit sizes). :func:`write_netcdf` writes netCDF-4 (HDF5) through
h5netcdf, which needs no netCDF C library, unless ``engine="netcdf4"`` is asked for.

Layout (what :class:`~sciml.datasets.readers.netcdf.NetCDFReader` and
:class:`~sciml.datasets.readers.netcdf.ZarrReader` read back without options): that of
:func:`~sciml.datasets.xarray_view.trajectories_to_xarray`, one variable per channel over
``(sample, time, *spatial_dims)`` chunked one frame at a time, coordinates ``sample``, ``time`` and the
spatial axes, and the metadata as global attributes. Trajectories are read and written one at a time, so
memory holds one trajectory, whatever the size of the dataset. A pair dataset (or an ``xarray.Dataset``)
is written through xarray with the same engine.

Nothing half-written is left: a netCDF file is written under a temporary name and renamed into place; a
zarr store is written into a temporary folder that replaces the target when complete.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sciml.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

NETCDF_ENGINES = {"h5netcdf": "h5netcdf", "netcdf4": "netCDF4"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def _require(engine: str) -> None:
    if engine not in NETCDF_ENGINES:
        raise ConfigError(f"netCDF engine must be one of {sorted(NETCDF_ENGINES)}, got {engine!r}")
    package = NETCDF_ENGINES[engine]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"writing netCDF-4 with engine {engine!r} needs the package {package} (pip install {package})"
        )


def _view(dataset: Any) -> tuple[Any, Any | None]:
    """``(xarray view, trajectory dataset or None)`` of what is to be written."""
    import xarray as xr

    if isinstance(dataset, xr.Dataset):
        return dataset, None
    if callable(getattr(dataset, "read", None)) and hasattr(dataset, "metadata"):
        from sciml.datasets.xarray_view import trajectories_to_xarray

        return trajectories_to_xarray(dataset, cache_bytes=0), dataset
    to_xarray = getattr(dataset, "to_xarray", None)
    if callable(to_xarray):
        return to_xarray(), None
    raise ConfigError(
        f"cannot write a {type(dataset).__name__}: expected a sciml dataset or an xarray.Dataset"
    )


def _frame_chunks(view: Any, name: str) -> tuple[int, ...]:
    """One frame per chunk: 1 along ``sample`` and ``time``, the whole extent of the other dims."""
    return tuple(1 if dim in ("sample", "time") else int(view.sizes[dim]) for dim in view[name].dims)


def _channel_frames(dataset: Any, view: Any, index: int) -> dict[str, np.ndarray]:
    """Every variable's ``[T, *grid]`` frames of trajectory ``index`` (one read of the trajectory)."""
    frames = dataset.read(index).numpy()
    return {
        name: frames[:, int(view[name].attrs["channel"])].astype(view[name].dtype, copy=False)
        for name in view.data_vars
    }


def write_netcdf(dataset: Any, path: str | os.PathLike[str], *, engine: str = "h5netcdf") -> Path:
    """Write a dataset as a netCDF-4 (HDF5) file, atomically; returns the path.

    Args:
        dataset: a trajectory dataset (streamed one trajectory at a time), a pair dataset or an
            ``xarray.Dataset``.
        path: the ``.nc`` file.
        engine: ``"h5netcdf"`` (no netCDF C library needed) or ``"netcdf4"``.

    Raises:
        ConfigError: an unknown engine, or its package is not installed.
        DataFormatError: the file cannot be written (the message names it).
    """
    _require(engine)
    path = Path(path)
    view, trajectories = _view(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        if trajectories is None:
            view.to_netcdf(tmp, engine=engine, format="NETCDF4")
        else:
            _stream_netcdf(view, trajectories, tmp, engine)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise DataFormatError(path, f"cannot write netCDF ({err})") from err
        raise
    logger.info("wrote %s (netCDF-4 through %s)", path, engine)
    return path


def _stream_netcdf(view: Any, dataset: Any, tmp: Path, engine: str) -> None:
    """Create the variables of ``view`` in ``tmp`` and fill them one trajectory at a time."""
    if engine == "h5netcdf":
        from h5netcdf.legacyapi import Dataset
    else:  # pragma: no cover - the netCDF4 package has the same API
        from netCDF4 import Dataset

    with Dataset(tmp, "w") as nc:
        for dim, size in view.sizes.items():
            nc.createDimension(str(dim), int(size))
        for name, coord in view.coords.items():
            variable = nc.createVariable(str(name), coord.dtype, tuple(map(str, coord.dims)))
            variable[:] = coord.values
        for name, var in view.data_vars.items():
            variable = nc.createVariable(
                str(name), var.dtype, tuple(map(str, var.dims)), chunksizes=_frame_chunks(view, name)
            )
            for key, value in var.attrs.items():
                variable.setncattr(str(key), value)
        for key, value in view.attrs.items():
            nc.setncattr(str(key), value)
        for i in range(int(view.sizes["sample"])):
            for name, frames in _channel_frames(dataset, view, i).items():
                nc[str(name)][i] = frames


def write_zarr(dataset: Any, path: str | os.PathLike[str]) -> Path:
    """Write a dataset as a zarr (v3) store, replacing ``path`` only when complete; returns the path.

    A trajectory dataset is written one trajectory at a time (appended along ``sample``), one chunk per
    frame; anything else through ``xarray.Dataset.to_zarr``.

    Raises:
        ConfigError: the zarr package is not installed.
        DataFormatError: the store cannot be written (the message names it).
    """
    if importlib.util.find_spec("zarr") is None:
        raise ConfigError("writing a zarr store needs the package zarr (pip install zarr)")
    path = Path(path)
    view, trajectories = _view(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        if trajectories is None:
            view.to_zarr(tmp, mode="w", consolidated=False)
        else:
            _stream_zarr(view, trajectories, tmp)
        _replace_folder(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise DataFormatError(path, f"cannot write the zarr store ({err})") from err
        raise
    logger.info("wrote %s (zarr store)", path)
    return path


def _stream_zarr(view: Any, dataset: Any, tmp: Path) -> None:
    """The first trajectory creates the store; each next one is appended along ``sample``."""
    import xarray as xr

    encoding = {name: {"chunks": _frame_chunks(view, name)} for name in view.data_vars}
    for i in range(int(view.sizes["sample"])):
        frames = _channel_frames(dataset, view, i)
        part = xr.Dataset(
            {name: (view[name].dims, frames[name][np.newaxis], view[name].attrs) for name in view.data_vars},
            coords={
                name: coord.isel(sample=[i]) if "sample" in coord.dims else coord
                for name, coord in view.coords.items()
            },
            attrs=view.attrs,
        )
        if i == 0:
            part.to_zarr(tmp, mode="w", consolidated=False, encoding=encoding)
        else:
            part.drop_vars([n for n, c in view.coords.items() if "sample" not in c.dims]).to_zarr(
                tmp, append_dim="sample", consolidated=False
            )


def _replace_folder(tmp: Path, path: Path) -> None:
    """Move the complete folder ``tmp`` to ``path``; an existing ``path`` is set aside, then deleted."""
    if not path.exists():
        os.replace(tmp, path)
        return
    if not path.is_dir():
        raise DataFormatError(path, "exists and is not a folder; remove it or choose another name")
    old = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.old")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def is_netcdf4(path: str | os.PathLike[str]) -> bool:
    """Whether a file starts with the HDF5 signature (netCDF-4), not a classic ``CDF`` magic."""
    with open(path, "rb") as fh:
        return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
