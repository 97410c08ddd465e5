"""The Well's HDF5 schema, read lazily with h5py (the ``the_well`` package is never imported).

Layout read (one file holds ``B`` trajectories of ``T`` frames on an ``X x Y [x Z]`` grid):

* root attributes ``dataset_name``, ``grid_type``, ``n_spatial_dims``, ``n_trajectories``,
  ``simulation_parameters`` (a list of names) and one attribute per parameter;
* ``dimensions/`` with attribute ``spatial_dims`` (e.g. ``["x", "y"]``), datasets ``time`` ``(T,)`` or
  ``(B, T)`` and one coordinate dataset per spatial dimension, each with ``sample_varying``/``time_varying``;
* ``boundary_conditions/<name>/`` with attributes ``associated_dims``, ``associated_fields``, ``bc_type``
  (``PERIODIC``, ``WALL``, ``OPEN``) and a ``mask`` dataset;
* ``scalars/`` (attribute ``field_names``), one dataset per scalar;
* ``t0_fields/`` ``(B, T, X, Y)``, ``t1_fields/`` ``(B, T, X, Y, D)``, ``t2_fields/`` ``(B, T, X, Y, D, D)``,
  each group with attribute ``field_names`` and each field with ``sample_varying``, ``time_varying`` and
  ``dim_varying``: the ``B`` axis is absent when ``sample_varying`` is false, the ``T`` axis when
  ``time_varying`` is false, and a spatial axis when its ``dim_varying`` entry is false.

A dataset folder holds ``data/{train,valid,test}/*.hdf5`` and ``stats.yaml``; :func:`open_the_well_split`
opens one split as a single lazy dataset.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml
from torch.utils.data import ConcatDataset

from sciml.datasets.base import (
    TimeIndex,
    TrajectoryDataset,
    check_finite,
    check_read_size,
    data_format_errors,
    describe_error,
)
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers._layout import attribute_key, box_length, parse_flag
from sciml.datasets.readers.hdf5_common import (
    FrameBytes,
    as_str,
    as_str_list,
    frame_count,
    key_of,
    open_hdf5,
    peek_hdf5,
    plain_scalar,
    read_array,
)
from sciml.datasets.registry import register_reader
from sciml.datasets.remote import is_url, url_name
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
VISCOSITY_NAMES = ("viscosity", "nu")
_DEFAULT_DIM_NAMES = ("x", "y", "z")
#: ``sample_varying``/``time_varying`` of a field (``t{0,1,2}_fields``) without the attribute. The Well's
#: files always write both; a field is taken to vary by sample and time (its usual storage, ``(B, T, ...)``),
#: and the shape check refuses a field stored otherwise.
FIELD_VARYING_DEFAULT = True
#: The same for a dataset of ``scalars/``: taken as a constant (a simulation parameter), so it is reported
#: in ``metadata.parameters``.
SCALAR_VARYING_DEFAULT = False


# ----------------------------------------------------------------------------------------------------------
# Small HDF5 helpers
# ----------------------------------------------------------------------------------------------------------


def _get(group: h5py.Group, key: str, path: str, kind: type, what: str) -> Any:
    """``group[key]`` checked to be a ``kind`` (h5py.Group or h5py.Dataset), else DataFormatError."""
    full = f"{key_of(group)}/{key}".lstrip("/")
    try:
        obj = group.get(key)
    except (OSError, KeyError, RuntimeError) as err:
        raise DataFormatError(path, f"cannot read ({describe_error(err)})", key=full) from err
    if not isinstance(obj, kind):
        found = "nothing" if obj is None else type(obj).__name__
        raise DataFormatError(path, "missing or of the wrong kind", key=full, expected=what, found=found)
    return obj


# ----------------------------------------------------------------------------------------------------------
# The reader
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WellField:
    """One field of a Well file and how it is stored."""

    key: str
    name: str
    order: int
    sample_varying: bool
    time_varying: bool
    dim_varying: tuple[bool, ...]
    components: tuple[str, ...]


@register_reader
class TheWellReader(TrajectoryDataset):
    """One HDF5 file in The Well's schema (see the module docstring), read lazily.

    Channels are every field's components, in the order ``t0_fields``, ``t1_fields``, ``t2_fields`` and
    each group's ``field_names``: a scalar field keeps its name, a vector field ``velocity`` gives
    ``velocity_x, velocity_y``, a tensor field ``stress`` gives ``stress_xx, stress_xy, stress_yx, stress_yy``
    (components named after ``dimensions.spatial_dims``). Fields that do not vary over time (or samples, or
    a spatial axis) are broadcast to every frame (sample, grid point). The ``sample_varying``,
    ``time_varying`` and ``dim_varying`` attributes are read by
    :func:`~sciml.datasets.readers._layout.parse_flag` (an unrecognized value is a
    :class:`DataFormatError`); when absent, see :data:`FIELD_VARYING_DEFAULT` and
    :data:`SCALAR_VARYING_DEFAULT`.

    Metadata: grid and coordinates from ``dimensions/`` (sample 0's when they vary by sample); times from
    ``dimensions/time`` (sample 0's for a ``(B, T)`` time grid; a warning is logged when samples differ);
    an axis is periodic when a ``boundary_conditions`` group of ``bc_type`` PERIODIC names it in
    ``associated_dims``; ``domain_lengths`` is ``n * dx`` on periodic axes and the span of the coordinates
    otherwise. ``parameters`` holds the root attributes listed in ``simulation_parameters`` and the scalars
    that vary neither by sample nor by time; ``viscosity`` is the scalar (else parameter) named
    ``viscosity`` or ``nu``; no viscosity is derived from other numbers (e.g. a Reynolds number).

    Args:
        path: the file.
        fields: channels to read, in the order given: a field name selects all its components, a component
            name (``"velocity_x"``) just that one.
    """

    format_name = "the_well"
    suffixes = (".hdf5", ".h5")
    reads_urls = True
    checks_finite = True  # _read checks the frames it returns, naming the field's key

    @classmethod
    def sniff(cls, path: Path | str, header: bytes) -> bool:
        """An HDF5 file with a ``dimensions`` group and at least one ``t{0,1,2}_fields`` group."""
        return peek_hdf5(
            path,
            header,
            lambda f: (
                isinstance(f.get("dimensions"), h5py.Group)
                and any(isinstance(f.get(g), h5py.Group) for g in FIELD_GROUPS)
            ),
        )

    def __init__(self, path: str | os.PathLike[str], *, fields: Sequence[str] | str | None = None) -> None:
        super().__init__(path)
        with self.closed_on_error():
            self._constants: dict[str, np.ndarray] = {}
            f = self._file()
            p = self.path
            dims = _get(f, "dimensions", p, h5py.Group, "a group")
            spatial_dims = self._spatial_dims(f, dims)
            self.dataset_name = as_str(f.attrs.get("dataset_name", Path(url_name(p)).stem))
            grid_type = as_str(f.attrs.get("grid_type", "cartesian"))
            if grid_type != "cartesian":
                logger.warning("%s: grid_type %r; coordinates are used as given", p, grid_type)
            coords = {d: self._coordinate(dims, d) for d in spatial_dims}
            grid_shape = tuple(len(coords[d]) for d in spatial_dims)
            self._times_all = time = self._frame_times(dims)
            n_t = int(time.shape[-1])
            n_attr = plain_scalar(f.attrs.get("n_trajectories"))
            n_declared = n_attr if isinstance(n_attr, int) else None
            self._fields = self._scan_fields(f, spatial_dims, grid_shape, n_t, n_declared)
            n_traj = self._n_trajectories(f, n_declared, time)
            all_channels = [(i, c) for i, fld in enumerate(self._fields) for c in range(len(fld.components))]
            self._channels = self._select(all_channels, fields)
            periodic = self._periodicity(f, spatial_dims)
            parameters, viscosity = self._parameters(f)
            self.metadata = DatasetMetadata(
                path=p,
                format=self.format_name,
                field_names=tuple(self._fields[i].components[c] for i, c in self._channels),
                spatial_dims=tuple(spatial_dims),
                grid_shape=grid_shape,
                n_trajectories=int(n_traj),
                n_times=n_t,
                coords=coords,
                times=time if time.ndim == 1 else time[0],
                periodic=periodic,
                domain_lengths=tuple(
                    box_length(coords[d], periodic=q) for d, q in zip(spatial_dims, periodic, strict=True)
                ),
                viscosity=viscosity,
                parameters=parameters,
            )
            logger.debug("opened %s as %s", p, self)

    # -- opening -------------------------------------------------------------------------------------------
    def _open_handle(self) -> h5py.File:
        return open_hdf5(self.path, self.remote_options)

    def _file(self) -> h5py.File:
        return self.handle()

    def _flag(self, obj: h5py.HLObject, name: str, default: bool) -> bool:
        """The true/false attribute ``name`` of ``obj`` (``default`` when absent), read by ``parse_flag``."""
        return parse_flag(
            obj.attrs.get(name), path=self.path, key=attribute_key(key_of(obj), name), default=default
        )

    def _spatial_dims(self, f: h5py.File, dims: h5py.Group) -> list[str]:
        """``dimensions.spatial_dims``, else ``x, y[, z]`` for ``n_spatial_dims``; the two must agree."""
        p = self.path
        spatial_dims = as_str_list(dims.attrs.get("spatial_dims"))
        n_dims_attr = plain_scalar(f.attrs.get("n_spatial_dims"))
        if not spatial_dims:
            if not isinstance(n_dims_attr, int) or not 1 <= n_dims_attr <= 3:
                raise DataFormatError(
                    p,
                    "no spatial dimensions",
                    key="dimensions",
                    expected="attribute spatial_dims",
                    found=None,
                )
            spatial_dims = list(_DEFAULT_DIM_NAMES[:n_dims_attr])
        if isinstance(n_dims_attr, int) and n_dims_attr != len(spatial_dims):
            raise DataFormatError(
                p,
                "n_spatial_dims does not match dimensions.spatial_dims",
                key="n_spatial_dims",
                expected=len(spatial_dims),
                found=n_dims_attr,
            )
        return spatial_dims

    def _coordinate(self, dims: h5py.Group, name: str) -> np.ndarray:
        """The coordinates ``dimensions/<name>`` as ``(n,)`` (sample 0's / frame 0's when they vary)."""
        ds = _get(dims, name, self.path, h5py.Dataset, "a coordinate dataset")
        values = read_array(ds, self.path).astype(np.float64)
        if values.ndim == 0:
            raise DataFormatError(
                self.path, "coordinate is a scalar", key=key_of(ds), expected="(n,)", found=values.shape
            )
        if values.ndim > 1:
            logger.warning("%s: coordinates %r vary by sample or time; using the first", self.path, name)
            values = values.reshape(-1, values.shape[-1])[0]
        return values

    def _frame_times(self, dims: h5py.Group) -> np.ndarray:
        """``dimensions/time`` as ``(T,)`` or ``(B, T)`` (a warning when the samples' times differ)."""
        time_ds = _get(dims, "time", self.path, h5py.Dataset, "(T,) or (B, T)")
        time = read_array(time_ds, self.path).astype(np.float64)
        if time.ndim not in (1, 2):
            raise DataFormatError(
                self.path,
                "wrong number of dimensions",
                key="dimensions/time",
                expected="(T,) or (B, T)",
                found=time.shape,
            )
        if time.ndim == 2 and time.shape[0] > 1 and not np.allclose(time, time[0], rtol=1e-6, atol=1e-12):
            logger.warning(
                "%s: frame times differ between samples; metadata.times holds sample 0's", self.path
            )
        return time

    def _n_trajectories(self, f: h5py.File, declared: int | None, time: np.ndarray) -> int:
        """``n_trajectories`` as declared, else the sample axis of a field or of a ``(B, T)`` time grid."""
        n_traj = declared
        if n_traj is None:
            sample_varying = [fld for fld in self._fields if fld.sample_varying]
            if sample_varying:
                n_traj = int(f[sample_varying[0].key].shape[0])
            else:
                n_traj = int(time.shape[0]) if time.ndim == 2 else 1
        if time.ndim == 2 and time.shape[0] != n_traj:
            raise DataFormatError(
                self.path,
                "wrong shape",
                key="dimensions/time",
                expected=(n_traj, time.shape[1]),
                found=time.shape,
            )
        return n_traj

    def _scan_fields(
        self, f: h5py.File, spatial_dims: list[str], grid_shape: tuple[int, ...], n_t: int, n_traj: int | None
    ) -> list[WellField]:
        """Every field of the t0/t1/t2 groups, with its storage shape checked."""
        p = self.path
        found: list[WellField] = []
        groups_present = 0
        for order, group_name in enumerate(FIELD_GROUPS):
            if group_name not in f:
                continue
            group = _get(f, group_name, p, h5py.Group, "a group")
            groups_present += 1
            names = (
                as_str_list(group.attrs.get("field_names")) if "field_names" in group.attrs else sorted(group)
            )
            for name in names:
                ds = _get(group, name, p, h5py.Dataset, f"a field listed in {group_name}.field_names")
                fld = self._field(ds, name, order, spatial_dims)
                self._check_field_shape(ds, fld, grid_shape, n_t, n_traj)
                found.append(fld)
        if groups_present == 0:
            raise DataFormatError(
                p, "no field groups", key="t0_fields", expected="t0_fields, t1_fields or t2_fields"
            )
        if not found:
            raise DataFormatError(
                p, "the field groups list no field", key="t0_fields", expected="at least one field"
            )
        return found

    def _field(self, ds: h5py.Dataset, name: str, order: int, spatial_dims: list[str]) -> WellField:
        """How field ``name`` (tensor order ``order``) is stored: its ``*_varying`` flags and components."""
        n_dims = len(spatial_dims)
        if ds.dtype.kind not in "fiub":
            raise DataFormatError(
                self.path,
                "not a real numeric field",
                key=key_of(ds),
                expected="float/int/bool",
                found=f"dtype {ds.dtype}",
            )
        sample_varying = self._flag(ds, "sample_varying", FIELD_VARYING_DEFAULT)
        time_varying = self._flag(ds, "time_varying", FIELD_VARYING_DEFAULT)
        dim_attr = ds.attrs.get("dim_varying")
        if dim_attr is None:
            dim_varying = (FIELD_VARYING_DEFAULT,) * n_dims
        else:
            key = attribute_key(key_of(ds), "dim_varying")
            dim_varying = tuple(
                parse_flag(v, path=self.path, key=key) for v in np.asarray(dim_attr).reshape(-1)
            )
        if len(dim_varying) != n_dims:
            raise DataFormatError(
                self.path,
                "dim_varying has the wrong length",
                key=key_of(ds),
                expected=n_dims,
                found=len(dim_varying),
            )
        if order == 0:
            components: tuple[str, ...] = (name,)
        else:
            components = tuple(f"{name}_{''.join(c)}" for c in itertools.product(spatial_dims, repeat=order))
        return WellField(
            key_of(ds),
            name,
            order,
            sample_varying,
            time_varying,
            dim_varying,
            components,
        )

    def _check_field_shape(
        self, ds: h5py.Dataset, fld: WellField, grid_shape: tuple[int, ...], n_t: int, n_traj: int | None
    ) -> None:
        """Check ``ds`` is stored as ``[B][T] *grid (D)^order``, the axes its flags leave out omitted."""
        n_dims = len(grid_shape)
        expected: list[int | str] = ["B"] if fld.sample_varying else []
        expected += ["T"] if fld.time_varying else []
        expected += [n for n, v in zip(grid_shape, fld.dim_varying, strict=True) if v]
        expected += [n_dims] * fld.order
        shape = tuple(int(n) for n in ds.shape)
        if len(shape) != len(expected):
            raise DataFormatError(
                self.path,
                "wrong number of dimensions",
                key=key_of(ds),
                expected=f"{len(expected)} axes {tuple(expected)}",
                found=f"shape {shape}",
            )
        sizes = {"B": n_traj if n_traj is not None else shape[0] if fld.sample_varying else None, "T": n_t}
        want = tuple(sizes[e] if isinstance(e, str) else e for e in expected)
        if any(w is not None and w != s for w, s in zip(want, shape, strict=True)):
            raise DataFormatError(self.path, "wrong shape", key=key_of(ds), expected=want, found=shape)

    def _select(
        self, all_channels: list[tuple[int, int]], fields: Sequence[str] | str | None
    ) -> list[tuple[int, int]]:
        if fields is None:
            return all_channels
        if isinstance(fields, str):
            fields = [fields]
        chosen: list[tuple[int, int]] = []
        names = [self._fields[i].components[c] for i, c in all_channels]
        for name in fields:
            matches = [ch for ch in all_channels if self._fields[ch[0]].name == name]
            if not matches:
                matches = [ch for ch, component in zip(all_channels, names, strict=True) if component == name]
            if not matches:
                raise DataFormatError(
                    self.path,
                    "unknown field in option fields=",
                    expected=f"one of {sorted({fl.name for fl in self._fields} | set(names))}",
                    found=name,
                )
            chosen.extend(matches)
        if len(set(chosen)) != len(chosen):
            raise DataFormatError(self.path, "option fields= names a channel twice", found=list(fields))
        return chosen

    def _periodicity(self, f: h5py.File, spatial_dims: list[str]) -> tuple[bool, ...]:
        periodic = [False] * len(spatial_dims)
        bcs = f.get("boundary_conditions")
        if not isinstance(bcs, h5py.Group):
            logger.warning("%s: no boundary_conditions group; every axis taken as non-periodic", self.path)
            return tuple(periodic)
        for name in bcs:
            bc = bcs[name]
            if as_str(bc.attrs.get("bc_type", "")).strip().upper() != "PERIODIC":
                continue
            for d in as_str_list(bc.attrs.get("associated_dims")):
                if d in spatial_dims:
                    periodic[spatial_dims.index(d)] = True
                else:
                    logger.warning("%s: boundary condition %r names unknown dimension %r", self.path, name, d)
        return tuple(periodic)

    def _parameters(self, f: h5py.File) -> tuple[dict[str, Any], float | None]:
        parameters: dict[str, Any] = {}
        for name in as_str_list(f.attrs.get("simulation_parameters")):
            if name in f.attrs:
                value = plain_scalar(f.attrs[name])
                if value is not None:
                    parameters[name] = value
            else:
                logger.warning("%s: simulation parameter %r has no root attribute", self.path, name)
        viscosity = _find_viscosity(parameters)
        scalars = f.get("scalars")
        if isinstance(scalars, h5py.Group):
            names = (
                as_str_list(scalars.attrs.get("field_names"))
                if "field_names" in scalars.attrs
                else list(scalars)
            )
            constant: dict[str, Any] = {}
            for name in names:
                ds = scalars.get(name)
                if not isinstance(ds, h5py.Dataset):
                    logger.warning("%s: scalar %r listed but missing", self.path, name)
                    continue
                if (
                    self._flag(ds, "sample_varying", SCALAR_VARYING_DEFAULT)
                    or self._flag(ds, "time_varying", SCALAR_VARYING_DEFAULT)
                    or ds.size != 1
                ):
                    continue
                value = plain_scalar(read_array(ds, self.path, numeric=False))
                if isinstance(value, int | float) and not isinstance(value, bool):
                    constant[name] = value
            parameters.update(constant)
            scalar_viscosity = _find_viscosity(constant)
            if scalar_viscosity is not None:
                viscosity = scalar_viscosity
        return parameters, viscosity

    # -- reading -------------------------------------------------------------------------------------------
    def _field_block(self, fld: WellField, index: int, sel: slice, n_sel: int) -> np.ndarray:
        """Field ``fld`` of trajectory ``index`` at frames ``sel`` as ``[T_sel, n_components, *grid]``."""
        constant = not fld.sample_varying and not fld.time_varying
        if constant and fld.key in self._constants:
            array = self._constants[fld.key]
        else:
            selection: tuple[Any, ...] = ()
            if fld.sample_varying:
                selection += (index,)
            if fld.time_varying:
                selection += (sel,)
            array = read_array(self._file()[fld.key], self.path, selection)
            where = f"trajectory {index}" if fld.sample_varying else "every trajectory"
            check_finite(array, self.path, fld.key, where)
            if constant:
                self._constants[fld.key] = array
        if not fld.time_varying:
            array = array[np.newaxis]
        for axis, varying in enumerate(fld.dim_varying):
            if not varying:
                array = np.expand_dims(array, 1 + axis)
        n_grid = len(fld.dim_varying)
        array = array.reshape((*array.shape[: 1 + n_grid], len(fld.components)))
        array = np.moveaxis(array, -1, 1)
        return np.broadcast_to(array, (n_sel, len(fld.components), *self.metadata.grid_shape))

    def _dataset(self, key: str) -> h5py.Dataset:
        """The h5py dataset ``key`` of this process's handle (looked up once per handle: a lookup costs
        about as much as reading a small frame)."""
        f = self._file()
        if getattr(self, "_datasets_of", None) is not f:
            self._datasets: dict[str, h5py.Dataset] = {}
            self._datasets_of = f
        if key not in self._datasets:
            self._datasets[key] = f[key]
        return self._datasets[key]

    def _runs(self) -> list[tuple[int, int, int, int]]:
        """The selected channels as runs ``(first channel, field, first component, count)`` of one field's
        consecutive components (velocity's ``u, v`` are one run of 2): each run is filled by one copy."""
        runs: list[tuple[int, int, int, int]] = []
        for channel, (i, c) in enumerate(self._channels):
            if runs and runs[-1][1] == i and runs[-1][2] + runs[-1][3] == c:
                first, _, c0, count = runs[-1]
                runs[-1] = (first, i, c0, count + 1)
            else:
                runs.append((channel, i, c, 1))
        return runs

    def _read(self, index: int, times: slice) -> np.ndarray:
        sel, n_sel = times, frame_count(times)
        grid = self.metadata.grid_shape
        if n_sel == 0:
            return np.empty((0, len(self._channels), *grid), dtype=np.float32)
        if getattr(self, "_layout_of", None) is not self._file():  # per handle: dtypes, runs
            self._shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            for i, _ in self._channels:
                ds = self._dataset(self._fields[i].key)
                self._shapes[self._fields[i].key] = (tuple(ds.shape), ds.dtype)
            dtypes = [self._shapes[self._fields[i].key][1] for i, _ in self._channels]
            self._out_dtype, self._run_list = _output_dtype(dtypes), self._runs()
            self._layout_of = self._file()
        out = np.empty((n_sel, len(self._channels), *grid), dtype=self._out_dtype)
        for first, i, c0, count in self._run_list:
            fld = self._fields[i]
            target = out[:, first : first + count]
            if fld.sample_varying and fld.time_varying and all(fld.dim_varying):
                # [T_sel, *grid, (D,)*order] as stored, components last: one copy moves the run's
                # components to channels (the layout change a model needs; nothing else is copied)
                ds = self._dataset(fld.key)
                shape, dtype = self._shapes[fld.key]  # h5py's shape and dtype properties are slow
                check_read_size(self.path, (n_sel, *shape[2:]), dtype.itemsize, key=fld.key)
                if self._read_frames(fld.key, ds, index, sel, target, c0):
                    continue
                with data_format_errors(self.path, f"read {fld.key}"):
                    block = ds[index, sel].reshape(n_sel, *grid, len(fld.components))
                target[...] = np.moveaxis(block[..., c0 : c0 + count], -1, 1)
            else:
                target[...] = self._field_block(fld, index, sel, n_sel)[:, c0 : c0 + count]
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            bad = next(k for k in range(out.shape[1]) if not np.isfinite(out[:, k]).all())
            key = self._fields[self._channels[bad][0]].key
            check_finite(out[:, bad], self.path, key, f"trajectory {index}")
        return out

    def times_of(self, index: int) -> np.ndarray:
        """Frame times of trajectory ``index`` (differ from ``metadata.times`` only for a ``(B, T)`` grid)."""
        if self._times_all.ndim == 1:
            return self._times_all.copy()
        return self._times_all[index].copy()

    def _read_frames(
        self, key: str, ds: h5py.Dataset, index: int, sel: slice, target: np.ndarray, c0: int
    ) -> bool:
        """Fill ``target`` (``[T_sel, count, *grid]``: components ``c0...`` of field ``key``) by reading the
        frames' bytes directly (:class:`~sciml.datasets.readers.hdf5_common.FrameBytes`); ``False`` when
        the file is remote or the field is not stored plainly (then h5py reads it)."""
        if is_url(self.path):
            return False
        if getattr(self, "_frame_bytes_of", None) is not self._file():  # per handle
            self._frame_bytes: dict[str, FrameBytes | None] = {}
            self._frame_bytes_of = self._file()
        if key not in self._frame_bytes:
            self._frame_bytes[key] = FrameBytes.of(ds)
        located = self._frame_bytes[key]
        if located is None:
            return False
        frames = range(sel.start, sel.stop, sel.step)
        shape, dtype = self._shapes[key]
        n_components = int(np.prod(shape[2 + len(self.metadata.grid_shape) :], dtype=np.int64))
        with data_format_errors(self.path, f"read {key}"):
            if n_components == 1 and target.shape[1] == 1 and target.dtype == dtype:
                return located.read_into(self._raw_file(), self.path, index, frames, target[:, 0])
            stored = np.empty((len(frames), *shape[2:]), dtype=dtype)
            if not located.read_into(self._raw_file(), self.path, index, frames, stored):
                return False
        stored = stored.reshape(len(frames), *self.metadata.grid_shape, n_components)
        target[...] = np.moveaxis(stored[..., c0 : c0 + target.shape[1]], -1, 1)
        return True

    _raw: Any = None  # this process's raw file object (direct frame reads), opened on first use
    _raw_pid: int | None = None

    def _raw_file(self) -> Any:
        """This process's unbuffered binary file object of the (local) file, for :meth:`_read_frames`."""
        if self._raw is None or self._raw_pid != os.getpid():
            with data_format_errors(self.path, "open the file"):
                self._raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            self._raw_pid = os.getpid()
        return self._raw

    def close(self) -> None:
        """Close the file (the h5py handle and the raw file object of direct frame reads)."""
        raw, self._raw = self._raw, None
        if raw is not None and self._raw_pid == os.getpid():
            raw.close()
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # h5py objects and the raw file of this process's handle
        for name in (
            "_datasets",
            "_datasets_of",
            "_layout_of",
            "_frame_bytes",
            "_frame_bytes_of",
            "_raw",
            "_shapes",
        ):
            state.pop(name, None)
        return state

    @property
    def fields(self) -> tuple[WellField, ...]:
        """Every field of the file (selected or not), in file order."""
        return tuple(self._fields)


def _output_dtype(dtypes: list[np.dtype]) -> np.dtype:
    """float64 when any field is float64 (or wider), else float32 (also for integer and boolean fields)."""
    wide = [d for d in dtypes if d.kind == "f" and d.itemsize >= 8]
    return np.dtype(np.float64) if wide else np.dtype(np.float32)


def _find_viscosity(values: dict[str, Any]) -> float | None:
    for name in VISCOSITY_NAMES:
        for key, value in values.items():
            if key.lower() == name and isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


# ----------------------------------------------------------------------------------------------------------
# A split folder
# ----------------------------------------------------------------------------------------------------------
class TheWellSplit(ConcatDataset):
    """The files of one split of a Well dataset as one lazy trajectory dataset.

    Items are those of :class:`TheWellReader` (``{"fields": [T, C, *grid]}``), trajectories numbered across
    the files in sorted file-name order. ``metadata`` is the first file's with ``n_trajectories`` summed
    and ``path`` the split folder; every file must have the same channels, grid and number of frames.
    ``stats`` holds the parsed ``stats.yaml`` of the dataset (``None`` when absent).
    """

    def __init__(
        self, files: Sequence[Path], folder: Path, stats: dict[str, Any] | None, **options: Any
    ) -> None:
        readers = []
        for path in files:
            with data_format_errors(path, "open as the_well"):
                readers.append(TheWellReader(path, **options))
        super().__init__(readers)
        self.readers: list[TheWellReader] = readers
        self.stats = stats
        first = readers[0].metadata
        for reader in readers[1:]:
            m = reader.metadata
            for attr in ("field_names", "grid_shape", "n_times", "spatial_dims", "periodic"):
                if getattr(m, attr) != getattr(first, attr):
                    raise DataFormatError(
                        m.path,
                        f"{attr} differs from the split's first file {Path(first.path).name}",
                        expected=getattr(first, attr),
                        found=getattr(m, attr),
                    )
        self.metadata = first.replace(path=str(folder), n_trajectories=sum(len(r) for r in readers))

    def _locate(self, index: int) -> tuple[TheWellReader, int]:
        n = len(self)
        if not isinstance(index, int | np.integer):
            raise TypeError(f"{self.metadata.path}: trajectory index must be an integer")
        i = int(index) + (n if index < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"{self.metadata.path}: trajectory index {index} out of range for {n}")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        return self.readers[k], i - (self.cumulative_sizes[k - 1] if k > 0 else 0)

    def read(self, index: int, times: TimeIndex = slice(None)) -> torch.Tensor:
        """Frames ``times`` of trajectory ``index`` (numbered across files) as ``[T_sel, C, *grid]``."""
        reader, local = self._locate(index)
        return reader.read(local, times)

    def close(self) -> None:
        """Close every file."""
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> TheWellSplit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"TheWellSplit({m.path!r}, files={len(self.readers)}, n={m.n_trajectories}, times={m.n_times}, "
            f"fields={list(m.field_names)}, grid={list(m.grid_shape)})"
        )


def open_the_well_split(root: str | os.PathLike[str], split: str, **options: Any) -> TheWellSplit:
    """Open ``root/data/<split>/*.hdf5`` (The Well's dataset folder layout) as one lazy dataset.

    Args:
        root: the dataset folder (holding ``data/`` and ``stats.yaml``); the ``data`` folder itself is
            accepted too.
        split: ``"train"``, ``"valid"`` or ``"test"`` (any sub-folder name works).
        **options: passed to every :class:`TheWellReader` (e.g. ``fields=``).

    Raises:
        DataFormatError: the split folder is missing or holds no HDF5 file, or its files disagree.
    """
    root = Path(root)
    folder = root / "data" / split
    if not folder.is_dir() and (root / split).is_dir():
        folder = root / split
    if not folder.is_dir():
        raise DataFormatError(
            root, "no split folder", key=split, expected=f"{root / 'data' / split}/", found="nothing"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".hdf5", ".h5") and p.is_file())
    if not files:
        raise DataFormatError(folder, "no HDF5 files in the split folder", expected="*.hdf5 or *.h5")
    stats = None
    for candidate in (folder.parent.parent / "stats.yaml", folder.parent / "stats.yaml"):
        if candidate.is_file():
            try:
                loaded = yaml.safe_load(candidate.read_text())
            except (OSError, yaml.YAMLError) as err:
                logger.warning("%s: cannot read stats (%s); ignored", candidate, err)
                break
            stats = loaded if isinstance(loaded, dict) else None
            break
    logger.debug("opening %d files of split %r in %s", len(files), split, folder)
    return TheWellSplit(files, folder, stats, **options)
