"""Generated periodic Navier-Stokes trajectories (2D or 3D) written in The Well's HDF5 schema.

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
        vorticity (B, T, X, Y) float32, chunks (1, 1, X, Y): one frame per chunk
    t1_fields/             attrs field_names=["velocity"]
        velocity (B, T, X, Y, 2) float32, chunks (1, 1, X, Y, 2)
    t2_fields/             attrs field_names=[]

Each field carries ``dim_varying=[True, True]``, ``sample_varying=True``, ``time_varying=True``.

3D (an ``X x Y x Z`` grid): ``n_spatial_dims=3``, ``spatial_dims=["x", "y", "z"]``, a ``z`` coordinate and
``z_periodic``, and the vorticity is a vector: ``t0_fields`` is empty and ``t1_fields`` holds
``velocity (B, T, X, Y, Z, 3)`` and ``vorticity (B, T, X, Y, Z, 3)`` (``dim_varying=[True, True, True]``).
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
        try:
            f = h5py.File(self.tmp_path, "x")
        except OSError as err:
            raise DataFormatError(self.tmp_path, f"cannot create the file ({err})") from err
        self._file = f
        try:
            self._write_layout(f, b, t)
        except Exception:
            self._flush_and_close()
            self.tmp_path.unlink(missing_ok=True)
            raise

    def _write_layout(self, f: h5py.File, b: int, t: int) -> None:
        axes = ("x", "y", "z")[: len(self.grid_shape)]
        name = self.attributes.get("dataset_name") or self.path.stem
        f.attrs["dataset_name"] = str(name)
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = len(axes)
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
        dims.attrs["spatial_dims"] = _str_array(list(axes))
        time = dims.create_dataset("time", data=self.times.astype(np.float64))
        time.attrs["sample_varying"] = False
        time.attrs["time_varying"] = True
        for axis, n, length in zip(axes, self.grid_shape, self.domain_lengths, strict=True):
            coord = dims.create_dataset(axis, data=np.arange(n, dtype=np.float64) * (length / n))
            coord.attrs["sample_varying"] = False
            coord.attrs["time_varying"] = False

        bcs = f.create_group("boundary_conditions")
        for axis, n in zip(axes, self.grid_shape, strict=True):
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

        chunks = b > 0 and t > 0 and all(n > 0 for n in self.grid_shape)
        # 2D: the scalar vorticity is a t0 field; 3D: vorticity and velocity are both t1 (vector) fields
        vorticity_group = "t0_fields" if not self.vorticity_components else "t1_fields"
        fields: dict[str, list[tuple[str, tuple[int, ...]]]] = {
            "t0_fields": [],
            "t1_fields": [],
            "t2_fields": [],
        }
        fields["t1_fields"].append(("velocity", (len(axes),)))
        fields[vorticity_group].append(("vorticity", self.vorticity_components))
        for group_name, group_fields in fields.items():
            group = f.create_group(group_name)
            group.attrs["field_names"] = _str_array([field for field, _ in group_fields])
            for field, trailing in group_fields:
                ds = group.create_dataset(
                    field,
                    shape=(b, t, *self.grid_shape, *trailing),
                    dtype=np.float32,
                    # one frame per chunk: a time window read (from a URL too) moves only its frames
                    chunks=(1, 1, *self.grid_shape, *trailing) if chunks else None,
                )
                ds.attrs["dim_varying"] = np.array([True] * len(axes))
                ds.attrs["sample_varying"] = True
                ds.attrs["time_varying"] = True

    def _write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        if self._file is None:
            raise DataFormatError(self.tmp_path, "writer is closed")
        stop = start + vorticity.shape[0]
        group = "t0_fields" if not self.vorticity_components else "t1_fields"
        self._file[f"{group}/vorticity"][start:stop] = np.asarray(vorticity, dtype=np.float32)
        self._file["t1_fields/velocity"][start:stop] = np.asarray(velocity, dtype=np.float32)

    def _flush_and_close(self) -> None:
        handle, self._file = self._file, None
        close_hdf5(handle)
