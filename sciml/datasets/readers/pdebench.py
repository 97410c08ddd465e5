"""PDEBench HDF5 files, read lazily with h5py.

Three layouts of PDEBench's 2D fluid data, one reader class each (registered separately):

* :class:`PDEBenchCFDReader` (``"pdebench_cfd"``): 2D compressible Navier-Stokes, ``2D_CFD_*.hdf5``.
  Root datasets ``density``, ``pressure``, ``Vx``, ``Vy`` of shape ``(N, T, X, Y)``; ``t-coordinate``
  ``(T+1,)``, ``x-coordinate`` ``(X,)``, ``y-coordinate`` ``(Y,)`` (cell centres); root attributes such as
  ``eta``, ``zeta``, ``M``.
* :class:`PDEBenchIncompressibleReader` (``"pdebench_incompressible"``): 2D incompressible inhomogeneous
  Navier-Stokes, ``ns_incom_inhom_2d_512-*.h5``. ``velocity (B, T, X, Y, 2)``, ``particles (B, T, X, Y, 1)``,
  ``force (B, X, Y, 2)``, ``t (B, T)``; the generator's configuration as YAML text in the root attribute
  ``config``.
* :class:`PDEBenchSeedsReader` (``"pdebench_seeds"``): the per-seed layout of the other 2D sets
  (diffusion-reaction, shallow water): groups ``"0000"``, ``"0001"``, ... each holding ``data (T, X, Y, C)``
  and ``grid/x``, ``grid/y``, ``grid/t``.

Every reader keeps one h5py file handle per process (:meth:`handle`) and reads only the frames asked for.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import yaml

from sciml.config import yaml_problem
from sciml.datasets.base import TrajectoryDataset, check_finite
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers._layout import box_length, per_axis_flags
from sciml.datasets.readers.hdf5_common import (
    HDF5_SUFFIXES,
    as_str,
    frame_count,
    key_of,
    open_hdf5,
    peek_hdf5,
    plain_scalar,
    read_array,
    require_dataset,
    require_group,
)
from sciml.datasets.registry import register_reader
from sciml.datasets.remote import url_name
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)


def _select_channels(
    available: Sequence[str],
    requested: Iterable[str] | str | None,
    aliases: dict[str, Sequence[str]],
    path: str,
) -> list[int]:
    """Indices into ``available`` for the requested channel names (``aliases`` maps a name to several)."""
    if requested is None:
        return list(range(len(available)))
    if isinstance(requested, str):
        requested = [requested]
    indices: list[int] = []
    for name in requested:
        targets = aliases.get(name, [name])
        for target in targets:
            if target not in available:
                raise DataFormatError(
                    path, "unknown field in option fields=", expected=f"one of {list(available)}", found=name
                )
            indices.append(available.index(target))
    if not indices:
        raise DataFormatError(path, "option fields= selects no channel", expected="at least one field name")
    if len(set(indices)) != len(indices):
        raise DataFormatError(path, "option fields= names a channel twice", found=list(requested))
    return indices


class _HDF5Trajectories(TrajectoryDataset):
    """A trajectory file read through one h5py handle per process."""

    format_name = ""
    suffixes: tuple[str, ...] = HDF5_SUFFIXES
    reads_urls = True

    def _open_handle(self) -> h5py.File:
        return open_hdf5(self.path, self.remote_options)

    def _file(self) -> h5py.File:
        return self.handle()

    def _checked(self, array: np.ndarray, key: str, index: int, times: slice) -> np.ndarray:
        check_finite(
            array, self.path, key, f"trajectory {index}, frames {times.start}:{times.stop}:{times.step}"
        )
        return array


# ----------------------------------------------------------------------------------------------------------
# 2D compressible CFD
# ----------------------------------------------------------------------------------------------------------
_CFD_FIELDS = ("density", "pressure", "Vx", "Vy")
_CFD_CHANNELS = {"density": "density", "pressure": "pressure", "Vx": "velocity_x", "Vy": "velocity_y"}
_CFD_NAME_PARAMS = re.compile(r"(?:^|_)(M|Eta|Zeta)([0-9.]+(?:[eE][-+]?[0-9]+)?)(?=_|$)")


@register_reader
class PDEBenchCFDReader(_HDF5Trajectories):
    """PDEBench 2D compressible Navier-Stokes (``2D_CFD_*.hdf5``), read lazily.

    Layout read: root datasets ``density``, ``pressure``, ``Vx``, ``Vy`` each ``(N, T, X, Y)``;
    ``t-coordinate (T+1,)``, ``x-coordinate (X,)``, ``y-coordinate (Y,)`` (cell centres); root attributes
    (e.g. ``eta``, ``zeta``, ``M``) become ``metadata.parameters``.

    Channels are ``density, pressure, velocity_x, velocity_y`` (from ``density, pressure, Vx, Vy``).

    Time stamps: PDEBench's generator (``CFD_multi_Hydra.py``) stores ``it_tot`` frames at ``i * dt_save``
    but saves ``t-coordinate = arange(it_tot + 1) * dt_save``, one entry more than there are frames; its own
    training loader ignores ``t-coordinate``. ``metadata.times`` is therefore ``t-coordinate[:T]``.

    Boundaries: the released 2D CFD sets (``Rand``, ``Turb``) were generated with ``bc: periodic``, so both
    axes are periodic by default; pass ``periodic=False`` (or one flag per axis) for other runs. When the
    option is left out and the file name carries the token ``trans`` (PDEBench's outgoing boundaries), the
    axes are taken as non-periodic.

    Viscosity: the generator applies ``eta`` as a kinematic shear viscosity (``dv/dt = eta Lap v``), so
    ``metadata.viscosity = eta`` when present. ``eta``, ``zeta`` and ``M`` missing from the root attributes
    are read from the file name (``..._M0.1_Eta0.01_Zeta0.01_...``) as a fallback.

    Args:
        path: the file.
        fields: channels to read, by name (``"density"``, ``"pressure"``, ``"Vx"``/``"velocity_x"``,
            ``"Vy"``/``"velocity_y"``, or ``"velocity"`` for both components), in the order given.
        periodic: periodicity of ``(x, y)``; one bool or one per axis.
    """

    format_name = "pdebench_cfd"

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """An HDF5 file with root datasets ``density``, ``pressure`` and ``Vx``."""
        return peek_hdf5(path, header, lambda f: all(k in f for k in ("density", "pressure", "Vx")))

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fields: Sequence[str] | str | None = None,
        periodic: bool | Sequence[bool] | None = None,
    ) -> None:
        super().__init__(path)
        with self.closed_on_error():
            f = self._file()
            p = self.path
            first = require_dataset(f, "density", p, what="(N, T, X, Y)")
            if first.ndim != 4:
                raise DataFormatError(
                    p,
                    "only the 2D compressible CFD layout is supported (1D and 3D PDEBench CFD files are not)",
                    key="density",
                    expected="4 axes (N, T, X, Y)",
                    found=f"shape {first.shape}",
                )
            shape = tuple(int(n) for n in first.shape)
            for name in _CFD_FIELDS:
                ds = require_dataset(f, name, p, ndim=4, what="(N, T, X, Y)")
                if tuple(ds.shape) != shape:
                    raise DataFormatError(
                        p, "shape differs from density's", key=name, expected=shape, found=tuple(ds.shape)
                    )
            n, n_t, nx, ny = shape
            all_channels = [_CFD_CHANNELS[name] for name in _CFD_FIELDS]
            aliases = {"Vx": ["velocity_x"], "Vy": ["velocity_y"], "velocity": ["velocity_x", "velocity_y"]}
            self._channels = _select_channels(all_channels, fields, aliases, p)
            self._keys = [_CFD_FIELDS[c] for c in self._channels]

            x = read_array(require_dataset(f, "x-coordinate", p, ndim=1, what="(X,)"), p).astype(np.float64)
            y = read_array(require_dataset(f, "y-coordinate", p, ndim=1, what="(Y,)"), p).astype(np.float64)
            for key, coord, size in (("x-coordinate", x, nx), ("y-coordinate", y, ny)):
                if coord.shape != (size,):
                    raise DataFormatError(p, "wrong length", key=key, expected=(size,), found=coord.shape)
            times = None
            if "t-coordinate" in f:
                t = read_array(require_dataset(f, "t-coordinate", p, ndim=1, what="(T+1,)"), p).astype(
                    np.float64
                )
                if t.shape[0] < n_t:
                    raise DataFormatError(
                        p,
                        "fewer time stamps than frames",
                        key="t-coordinate",
                        expected=f">= {n_t}",
                        found=t.shape,
                    )
                times = t[:n_t]
            else:
                logger.warning("%s: no 't-coordinate'; frame times unknown", p)

            parameters = _root_parameters(f)
            for name, value in _cfd_parameters_from_name(url_name(p)).items():
                parameters.setdefault(name, value)
            if periodic is None:
                periodic = "trans" not in re.split(r"[_.\-]", Path(url_name(p)).stem)
            per = per_axis_flags(periodic, 2, option="periodic", path=p)
            eta = parameters.get("eta")
            self.metadata = DatasetMetadata(
                path=p,
                format=self.format_name,
                field_names=tuple(all_channels[c] for c in self._channels),
                spatial_dims=("x", "y"),
                grid_shape=(nx, ny),
                n_trajectories=n,
                n_times=n_t,
                coords={"x": x, "y": y},
                times=times,
                periodic=per,
                domain_lengths=(
                    box_length(x, cell_centred=True, periodic=per[0]),
                    box_length(y, cell_centred=True, periodic=per[1]),
                ),
                viscosity=float(eta) if isinstance(eta, int | float) else None,
                parameters=parameters,
            )
            logger.debug("opened %s as %s", p, self)

    def _read(self, index: int, times: slice) -> np.ndarray:
        sel, n_sel = times, frame_count(times)
        nx, ny = self.metadata.grid_shape
        if n_sel == 0:
            return np.empty((0, len(self._keys), nx, ny), dtype=np.float32)
        f = self._file()
        blocks = []
        for key in self._keys:
            block = read_array(f[key], self.path, (index, sel))  # (T_sel, X, Y)
            blocks.append(self._checked(block, key, index, times))
        out = np.stack(blocks, axis=1)
        return out


def _root_parameters(f: h5py.File) -> dict[str, Any]:
    """Scalar numeric root attributes of a file, as Python scalars."""
    out: dict[str, Any] = {}
    for name, value in f.attrs.items():
        scalar = plain_scalar(value)
        if isinstance(scalar, bool | int | float):
            out[name] = scalar
    return out


def _cfd_parameters_from_name(name: str) -> dict[str, float]:
    """``M``, ``eta``, ``zeta`` from a PDEBench CFD file name (``2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_...``)."""
    out: dict[str, float] = {}
    for key, value in _CFD_NAME_PARAMS.findall(Path(name).stem):
        try:
            out[key if key == "M" else key.lower()] = float(value)
        except ValueError:
            continue
    return out


# ----------------------------------------------------------------------------------------------------------
# 2D incompressible NS
# ----------------------------------------------------------------------------------------------------------
_INCOMP_CHANNELS = ("velocity_x", "velocity_y", "particles")


@register_reader
class PDEBenchIncompressibleReader(_HDF5Trajectories):
    """PDEBench 2D incompressible inhomogeneous Navier-Stokes (``ns_incom_inhom_2d_512-*.h5``), read lazily.

    Layout read: ``velocity (B, T, X, Y, 2)``, ``particles (B, T, X, Y, 1)`` (a passive tracer density),
    ``force (B, X, Y, 2)`` (a constant body force per sample, see :meth:`forcing`), ``t (B, T)``; optional
    root attributes ``config`` (the generator's YAML configuration) and ``latestIndex``.

    Channels: ``velocity_x, velocity_y, particles`` (option ``fields=``; ``"velocity"`` selects both
    components). Boundaries are not periodic (PDEBench uses zero-velocity walls).

    Times are stored per sample; ``metadata.times`` holds sample 0's, and opening the file checks that all
    samples share them (a warning is logged otherwise; :meth:`times_of` gives each sample's).

    The file holds no spatial coordinates: the grid is taken as cell centres ``(i + 1/2) L / X`` on a box of
    ``domain_lengths`` (default: ``domain_size`` from the embedded configuration, else ``(1, 1)``). Note that
    PDEBench's generator builds its phiflow grids with bounds ``[0, X] x [0, Y]`` while the configuration
    lists ``domain_size: [1, 1]``; pass ``domain_lengths=`` when the physical box matters.
    The configuration's ``NU`` becomes ``metadata.viscosity``; its other scalars go to ``parameters``.

    A file whose ``latestIndex`` attribute shows an unfinished run holds zeros after that frame;
    only frames ``0..latestIndex`` are exposed (with a warning).

    Args:
        path: the file.
        fields: channels to read, by name, in the order given.
        domain_lengths: physical box ``(Lx, Ly)``.
    """

    format_name = "pdebench_incompressible"

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """An HDF5 file with a root dataset ``velocity`` beside ``particles`` or ``force``."""
        return peek_hdf5(
            path,
            header,
            lambda f: isinstance(f.get("velocity"), h5py.Dataset) and ("particles" in f or "force" in f),
        )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fields: Sequence[str] | str | None = None,
        domain_lengths: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(path)
        with self.closed_on_error():
            f = self._file()
            p = self.path
            velocity = require_dataset(f, "velocity", p, ndim=5, what="(B, T, X, Y, 2)")
            b, n_t, nx, ny, d = (int(n) for n in velocity.shape)
            if d != 2:
                raise DataFormatError(
                    p,
                    "velocity must have 2 components",
                    key="velocity",
                    expected=(b, n_t, nx, ny, 2),
                    found=velocity.shape,
                )
            aliases = {"velocity": ["velocity_x", "velocity_y"]}
            self._channels = _select_channels(_INCOMP_CHANNELS, fields, aliases, p)
            if 2 in self._channels:
                particles = require_dataset(f, "particles", p, ndim=5, what="(B, T, X, Y, 1)")
                if tuple(particles.shape) != (b, n_t, nx, ny, 1):
                    raise DataFormatError(
                        p, "wrong shape", key="particles", expected=(b, n_t, nx, ny, 1), found=particles.shape
                    )

            config = _yaml_attr(f, "config", p)
            t_ds = require_dataset(f, "t", p, what="(B, T)")
            t_all = read_array(t_ds, p).astype(np.float64)
            if t_all.ndim == 1:
                t_all = np.broadcast_to(t_all, (b, t_all.shape[0]))
            if t_all.shape != (b, n_t):
                raise DataFormatError(p, "wrong shape", key="t", expected=(b, n_t), found=t_ds.shape)
            latest = plain_scalar(f.attrs.get("latestIndex"))
            if isinstance(latest, int | float) and 0 <= int(latest) < n_t - 1:
                logger.warning(
                    "%s: latestIndex=%d, the run stopped early; exposing frames 0..%d of %d",
                    p,
                    int(latest),
                    int(latest),
                    n_t,
                )
                n_t = int(latest) + 1
                t_all = t_all[:, :n_t]
            self._times_all = t_all
            if b > 1 and not np.allclose(t_all, t_all[0], rtol=1e-6, atol=1e-12):
                logger.warning("%s: frame times differ between samples; metadata.times holds sample 0's", p)

            parameters: dict[str, Any] = {
                k: v for k, v in config.items() if isinstance(v, int | float) and not isinstance(v, bool)
            }
            if domain_lengths is None:
                size = config.get("domain_size")
                if isinstance(size, list | tuple) and len(size) == 2:
                    domain_lengths = (float(size[0]), float(size[1]))
                else:
                    domain_lengths = (1.0, 1.0)
            lx, ly = (float(v) for v in domain_lengths)
            nu = config.get("NU")
            self.metadata = DatasetMetadata(
                path=p,
                format=self.format_name,
                field_names=tuple(_INCOMP_CHANNELS[c] for c in self._channels),
                spatial_dims=("x", "y"),
                grid_shape=(nx, ny),
                n_trajectories=b,
                n_times=n_t,
                coords={"x": (np.arange(nx) + 0.5) * lx / nx, "y": (np.arange(ny) + 0.5) * ly / ny},
                times=t_all[0].copy() if b > 0 else None,
                periodic=(False, False),
                domain_lengths=(lx, ly),
                viscosity=float(nu) if isinstance(nu, int | float) and not isinstance(nu, bool) else None,
                parameters=parameters,
            )
            logger.debug("opened %s as %s", p, self)

    def times_of(self, index: int) -> np.ndarray:
        """Frame times of sample ``index`` (from the ``t`` dataset)."""
        return self._times_all[index].copy()

    def forcing(self, index: int) -> torch.Tensor:
        """The body force of sample ``index`` as a tensor ``[2, X, Y]`` (``force_x``, ``force_y``)."""
        m = self.metadata
        i = int(index) + (m.n_trajectories if index < 0 else 0)
        if not 0 <= i < m.n_trajectories:
            raise IndexError(f"{self.path}: sample index {index} out of range for {m.n_trajectories} samples")
        force = require_dataset(self._file(), "force", self.path, ndim=4, what="(B, X, Y, 2)")
        expected = (m.n_trajectories, *m.grid_shape, 2)
        if tuple(force.shape) != expected:
            raise DataFormatError(self.path, "wrong shape", key="force", expected=expected, found=force.shape)
        array = np.moveaxis(read_array(force, self.path, i), -1, 0)
        check_finite(array, self.path, "force", f"sample {i}")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _read(self, index: int, times: slice) -> np.ndarray:
        sel, n_sel = times, frame_count(times)
        nx, ny = self.metadata.grid_shape
        if n_sel == 0:
            return np.empty((0, len(self._channels), nx, ny), dtype=np.float32)
        f = self._file()
        parts: dict[int, np.ndarray] = {}
        if 0 in self._channels or 1 in self._channels:
            velocity = read_array(f["velocity"], self.path, (index, sel))
            self._checked(velocity, "velocity", index, times)
            parts[0], parts[1] = velocity[..., 0], velocity[..., 1]
        if 2 in self._channels:
            particles = read_array(f["particles"], self.path, (index, sel))
            self._checked(particles, "particles", index, times)
            parts[2] = particles[..., 0]
        out = np.stack([parts[channel] for channel in self._channels], axis=1)
        return out


def _yaml_attr(f: h5py.File, name: str, path: str) -> dict[str, Any]:
    """A root attribute holding YAML text, parsed to a dict (empty when absent or unparsable)."""
    if name not in f.attrs:
        return {}
    try:
        parsed = yaml.safe_load(as_str(f.attrs[name]))
    except yaml.YAMLError as err:
        logger.warning("%s: attribute %r is not valid YAML (%s); ignored", path, name, yaml_problem(err))
        return {}
    return parsed if isinstance(parsed, dict) else {}


# ----------------------------------------------------------------------------------------------------------
# Per-seed layout
# ----------------------------------------------------------------------------------------------------------
def _seed_groups(f: h5py.File) -> list[str]:
    """Names of the per-seed groups (all-digit names), in numeric order."""
    return sorted((k for k in f if k.isdigit() and isinstance(f.get(k), h5py.Group)), key=int)


@register_reader
class PDEBenchSeedsReader(_HDF5Trajectories):
    """PDEBench's per-seed layout for 2D sets (e.g. ``2D_diff-react_NA_NA.h5``, ``2D_rdb_NA_NA.h5``).

    Layout read: groups ``"0000"``, ``"0001"``, ... (one per trajectory, numeric order), each with
    ``data (T, X, Y, C)``, ``grid/x (X,)``, ``grid/y (Y,)``, ``grid/t (T,)``. Grid and times come from the
    first group; every group's ``data`` must have the same shape. Only 2D data are supported (``data``
    with 4 axes); other ranks raise :class:`DataFormatError`.

    Channel names default to ``u`` (one channel), ``u, v`` (two, as in diffusion-reaction) or
    ``c0, c1, ...``; pass ``field_names=`` to name them. Boundaries are not periodic by default (PDEBench's
    2D diffusion-reaction uses no-flux, shallow-water outflow boundaries); option ``periodic=``.
    Domain lengths are ``n * dx`` (PDEBench stores cell centres).

    Args:
        path: the file.
        field_names: one name per channel ``C``.
        fields: channels to read, by name, in the order given.
        periodic: periodicity of ``(x, y)``; one bool or one per axis.
    """

    format_name = "pdebench_seeds"

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """An HDF5 file whose first all-digit group holds a dataset ``data``."""

        def test(f: h5py.File) -> bool:
            groups = _seed_groups(f)
            return bool(groups) and isinstance(f[groups[0]].get("data"), h5py.Dataset)

        return peek_hdf5(path, header, test)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        field_names: Sequence[str] | None = None,
        fields: Sequence[str] | str | None = None,
        periodic: bool | Sequence[bool] = False,
    ) -> None:
        super().__init__(path)
        with self.closed_on_error():
            f = self._file()
            p = self.path
            self._groups = _seed_groups(f)
            data = self._first_data(f)
            n_t, nx, ny, n_c = (int(n) for n in data.shape)
            names = self._channel_names(field_names, n_c, key_of(data))
            self._channels = _select_channels(names, fields, {}, p)
            grid = require_group(f[self._groups[0]], "grid", p)
            coords = {"x": self._grid_axis(grid, "x", nx), "y": self._grid_axis(grid, "y", ny)}
            times = self._grid_times(grid, n_t)
            per = per_axis_flags(periodic, 2, option="periodic", path=p)
            self.metadata = DatasetMetadata(
                path=p,
                format=self.format_name,
                field_names=tuple(names[c] for c in self._channels),
                spatial_dims=("x", "y"),
                grid_shape=(nx, ny),
                n_trajectories=len(self._groups),
                n_times=n_t,
                coords=coords,
                times=times,
                periodic=per,
                domain_lengths=tuple(
                    box_length(coords[a], cell_centred=True, periodic=q)
                    for a, q in zip("xy", per, strict=True)
                ),
                viscosity=None,
                parameters=_root_parameters(f),
            )
            logger.debug("opened %s as %s", p, self)

    def _first_data(self, f: h5py.File) -> h5py.Dataset:
        """The first group's ``data (T, X, Y, C)``, after checking every group's ``data`` has its shape."""
        p = self.path
        if not self._groups:
            raise DataFormatError(
                p, "no per-seed groups", expected='groups "0000", "0001", ...', found=list(f)
            )
        data = require_dataset(f[self._groups[0]], "data", p, what="(T, X, Y, C)")
        if data.ndim != 4:
            raise DataFormatError(
                p,
                "only 2D per-seed data are supported",
                key=key_of(data),
                expected="4 axes (T, X, Y, C)",
                found=f"shape {data.shape}",
            )
        shape = tuple(int(n) for n in data.shape)
        for name in self._groups[1:]:
            ds = require_dataset(f[name], "data", p, what="(T, X, Y, C)")
            if tuple(ds.shape) != shape:
                raise DataFormatError(
                    p, "shape differs from the first group's", key=key_of(ds), expected=shape, found=ds.shape
                )
        return data

    def _channel_names(self, field_names: Sequence[str] | None, n_c: int, key: str) -> list[str]:
        """``field_names`` checked against the ``n_c`` channels, else ``u``, ``u, v`` or ``c0, c1, ...``."""
        if field_names is None:
            return ["u"] if n_c == 1 else ["u", "v"] if n_c == 2 else [f"c{c}" for c in range(n_c)]
        names = [str(name) for name in field_names]
        if len(names) != n_c:
            raise DataFormatError(
                self.path,
                "option field_names= does not match the channels",
                key=key,
                expected=n_c,
                found=len(names),
            )
        return names

    def _grid_axis(self, grid: h5py.Group, axis: str, size: int) -> np.ndarray:
        """The coordinates ``grid/<axis>``, checked to hold ``size`` points."""
        ds = require_dataset(grid, axis, self.path, what=f"({size},)")
        coord = read_array(ds, self.path).astype(np.float64).reshape(-1)
        if coord.shape != (size,):
            raise DataFormatError(
                self.path, "wrong length", key=key_of(ds), expected=(size,), found=coord.shape
            )
        return coord

    def _grid_times(self, grid: h5py.Group, n_t: int) -> np.ndarray | None:
        """The first ``n_t`` entries of ``grid/t``, or ``None`` when the file has no ``grid/t``."""
        if "t" not in grid:
            return None
        ds = require_dataset(grid, "t", self.path, what=f"({n_t},)")
        t = read_array(ds, self.path).astype(np.float64).reshape(-1)
        if t.shape[0] < n_t:
            raise DataFormatError(
                self.path, "fewer time stamps than frames", key=key_of(ds), expected=n_t, found=t.shape
            )
        return t[:n_t]

    def _read(self, index: int, times: slice) -> np.ndarray:
        sel, n_sel = times, frame_count(times)
        nx, ny = self.metadata.grid_shape
        if n_sel == 0:
            return np.empty((0, len(self._channels), nx, ny), dtype=np.float32)
        ds = require_dataset(self._file()[self._groups[index]], "data", self.path, ndim=4)
        block = read_array(ds, self.path, sel)  # (T_sel, X, Y, C)
        block = np.moveaxis(block, -1, 1)[:, self._channels]
        self._checked(block, key_of(ds), index, times)
        return block
