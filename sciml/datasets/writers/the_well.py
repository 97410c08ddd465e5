"""Generated 2D periodic Navier-Stokes trajectories written in The Well's HDF5 schema.

The file written (``B`` trajectories, ``T`` frames, an ``X x Y`` grid)::

    / attrs: dataset_name, grid_type="cartesian", n_spatial_dims=2, n_trajectories=B,
             simulation_parameters=["viscosity"], viscosity, + every writer attribute (e.g. recipe)
    dimensions/            attrs spatial_dims=["x", "y"]
        time (T,)          attrs sample_varying=False, time_varying=True
        x (X,), y (Y,)     x_i = i * Lx / X; attrs sample_varying=False, time_varying=False
    boundary_conditions/
        x_periodic/, y_periodic/   attrs associated_dims, associated_fields=[], bc_type="PERIODIC",
                                   sample_varying=False, time_varying=False; mask (bool, ends True)
    scalars/               attrs field_names=["viscosity"]
        viscosity ()       attrs sample_varying=False, time_varying=False
    t0_fields/             attrs field_names=["vorticity"]
        vorticity (B, T, X, Y) float32, chunks (1, T, X, Y)
    t1_fields/             attrs field_names=["velocity"]
        velocity (B, T, X, Y, 2) float32, chunks (1, T, X, Y, 2)
    t2_fields/             attrs field_names=[]

Each field carries ``dim_varying=[True, True]``, ``sample_varying=True``, ``time_varying=True``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import h5py
import numpy as np

from sciml.datasets.writers.base import TrajectoryWriter, close_hdf5
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

_STR = h5py.string_dtype("utf-8")
_RESERVED = ("grid_type", "n_spatial_dims", "n_trajectories", "simulation_parameters", "viscosity")


def _str_array(values: list[str]) -> np.ndarray:
    """A list of strings as an HDF5 variable-length UTF-8 string array (works for an empty list)."""
    return np.array(values, dtype=_STR)


def _attr_value(name: str, value: Any) -> Any:
    """A value HDF5 can store as an attribute, or ``None`` to skip it (strings stay UTF-8 ``str``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | np.generic):
        return value
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind != "U" else value.astype(object).astype(_STR)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return _str_array(list(value))
        if all(isinstance(v, bool | int | float) for v in value):
            return np.asarray(value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    logger.debug("attribute %r of type %s stored as its str()", name, type(value).__name__)
    return str(value)


class TheWellWriter(TrajectoryWriter):
    """Writes vorticity and velocity trajectories in The Well's HDF5 schema (see the module docstring).

    Written atomically: the data go to a temporary file of its own (``.<name>.<pid>.<random>.partial``)
    and are renamed on a clean close. The dataset name is ``attributes["dataset_name"]`` or the file
    stem. Every entry of ``attributes`` is stored as a root attribute (strings as UTF-8 ``str``, dicts as
    JSON text, ``None`` skipped); entries named like the schema's own attributes (``grid_type``,
    ``n_trajectories``, ...) are ignored with a warning.
    """

    _file: h5py.File | None = None

    def _create(self) -> None:
        b = self.n_trajectories
        t = len(self.times)
        nx, ny = self.grid_shape
        lx, ly = self.domain_lengths
        try:
            f = h5py.File(self.tmp_path, "x")
        except OSError as err:
            raise DataFormatError(self.tmp_path, f"cannot create the file ({err})") from err
        self._file = f
        try:
            self._write_layout(f, b, t, nx, ny, lx, ly)
        except Exception:
            self._flush_and_close()
            self.tmp_path.unlink(missing_ok=True)
            raise

    def _write_layout(self, f: h5py.File, b: int, t: int, nx: int, ny: int, lx: float, ly: float) -> None:
        name = self.attributes.get("dataset_name") or self.path.stem
        f.attrs["dataset_name"] = str(name)
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = b
        f.attrs["simulation_parameters"] = _str_array(["viscosity"])
        f.attrs["viscosity"] = self.viscosity
        for key, value in self.attributes.items():
            if key == "dataset_name":
                continue
            if key in _RESERVED:
                logger.warning(
                    "%s: attribute %r is part of the schema; the given value is ignored", self.path, key
                )
                continue
            stored = _attr_value(key, value)
            if stored is not None:
                f.attrs[key] = stored

        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _str_array(["x", "y"])
        time = dims.create_dataset("time", data=self.times.astype(np.float64))
        time.attrs["sample_varying"] = False
        time.attrs["time_varying"] = True
        for axis, n, length in (("x", nx, lx), ("y", ny, ly)):
            coord = dims.create_dataset(axis, data=np.arange(n, dtype=np.float64) * (length / n))
            coord.attrs["sample_varying"] = False
            coord.attrs["time_varying"] = False

        bcs = f.create_group("boundary_conditions")
        for axis, n in (("x", nx), ("y", ny)):
            bc = bcs.create_group(f"{axis}_periodic")
            bc.attrs["associated_dims"] = _str_array([axis])
            bc.attrs["associated_fields"] = _str_array([])
            bc.attrs["bc_type"] = "PERIODIC"
            bc.attrs["sample_varying"] = False
            bc.attrs["time_varying"] = False
            mask = np.zeros(n, dtype=bool)
            mask[[0, -1]] = True
            bc.create_dataset("mask", data=mask)

        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = _str_array(["viscosity"])
        nu = scalars.create_dataset("viscosity", data=np.float64(self.viscosity))
        nu.attrs["sample_varying"] = False
        nu.attrs["time_varying"] = False

        chunks = b > 0 and t > 0 and nx > 0 and ny > 0
        for group_name, field, trailing in (("t0_fields", "vorticity", ()), ("t1_fields", "velocity", (2,))):
            group = f.create_group(group_name)
            group.attrs["field_names"] = _str_array([field])
            ds = group.create_dataset(
                field,
                shape=(b, t, nx, ny, *trailing),
                dtype=np.float32,
                chunks=(1, t, nx, ny, *trailing) if chunks else None,
            )
            ds.attrs["dim_varying"] = np.array([True, True])
            ds.attrs["sample_varying"] = True
            ds.attrs["time_varying"] = True
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = _str_array([])

    def _write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        if self._file is None:
            raise DataFormatError(self.tmp_path, "writer is closed")
        stop = start + vorticity.shape[0]
        self._file["t0_fields/vorticity"][start:stop] = np.asarray(vorticity, dtype=np.float32)
        self._file["t1_fields/velocity"][start:stop] = np.asarray(velocity, dtype=np.float32)

    def _flush_and_close(self) -> None:
        handle, self._file = self._file, None
        close_hdf5(handle)
