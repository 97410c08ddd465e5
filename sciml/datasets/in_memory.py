"""A :class:`~sciml.datasets.base.TrajectoryDataset` over an array already in memory.

For tests and for users who hold their trajectories as a NumPy array or a torch tensor of shape
``[N, T, C, *grid]``. It behaves exactly like a file reader (same ``read`` contract, same checks), so
windows, normalization and xarray views work on it unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sciml.datasets.base import PairDataset, TrajectoryDataset
from sciml.datasets.metadata import DatasetMetadata
from sciml.errors import ConfigError

logger = logging.getLogger(__name__)

MEMORY_PATH = "<memory>"
MEMORY_FORMAT = "memory"


def default_spatial_dims(n_dims: int) -> tuple[str, ...]:
    """Names of ``n_dims`` spatial axes: ``x, y, z`` up to three axes, ``x0, x1, ...`` beyond."""
    if n_dims <= 3:
        return ("x", "y", "z")[:n_dims]
    return tuple(f"x{k}" for k in range(n_dims))


class ArrayTrajectoryDataset(TrajectoryDataset):
    """Trajectories held in memory as an array ``[N, T, C, *grid]``.

    Args:
        data: the trajectories, a NumPy array or a torch tensor of shape ``[N, T, C, *grid]`` with at least
            one spatial axis. Tensors are converted to NumPy (no copy for contiguous CPU tensors).
        metadata: the dataset's metadata. When ``None`` a default is built from the shape: path
            ``"<memory>"``, format ``"memory"``, fields ``c0, c1, ...``, spatial axes ``x, y, z``, and any
            of ``field_names``, ``spatial_dims``, ``times`` and further ``DatasetMetadata`` attributes
            given as keywords.
        field_names, spatial_dims, times: shortcuts for the default metadata (ignored names are an error
            when ``metadata`` is also given).
        **metadata_fields: further ``DatasetMetadata`` attributes for the default metadata
            (``coords``, ``periodic``, ``domain_lengths``, ``viscosity``, ``parameters``).

    Raises:
        ConfigError: the array has too few axes, or the metadata disagree with its shape.
    """

    def __init__(
        self,
        data: np.ndarray | torch.Tensor,
        metadata: DatasetMetadata | None = None,
        *,
        field_names: Sequence[str] | None = None,
        spatial_dims: Sequence[str] | None = None,
        times: Sequence[float] | np.ndarray | None = None,
        **metadata_fields: Any,
    ) -> None:
        array = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        if array.ndim < 4:
            raise ConfigError(
                f"ArrayTrajectoryDataset: data must have shape [N, T, C, *grid] with at least one spatial "
                f"axis (4+ dims); got shape {tuple(array.shape)}"
            )
        if metadata is None:
            metadata = self._default_metadata(array.shape, field_names, spatial_dims, times, metadata_fields)
        elif field_names is not None or spatial_dims is not None or times is not None or metadata_fields:
            raise ConfigError(
                "ArrayTrajectoryDataset: give either metadata or the metadata keywords "
                "(field_names, spatial_dims, times, ...), not both"
            )
        super().__init__(metadata.path)
        self._check_shape(array.shape, metadata)
        self.metadata = metadata
        self._data = array

    @staticmethod
    def _default_metadata(
        shape: tuple[int, ...],
        field_names: Sequence[str] | None,
        spatial_dims: Sequence[str] | None,
        times: Sequence[float] | np.ndarray | None,
        extra: dict[str, Any],
    ) -> DatasetMetadata:
        n, t, c, *grid = shape
        names = tuple(field_names) if field_names is not None else tuple(f"c{k}" for k in range(c))
        dims = tuple(spatial_dims) if spatial_dims is not None else default_spatial_dims(len(grid))
        time_values = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
        try:
            return DatasetMetadata(
                path=extra.pop("path", MEMORY_PATH),
                format=extra.pop("format", MEMORY_FORMAT),
                field_names=names,
                spatial_dims=dims,
                grid_shape=tuple(int(g) for g in grid),
                n_trajectories=int(n),
                n_times=int(t),
                times=time_values,
                **extra,
            )
        except TypeError as err:
            raise ConfigError(f"ArrayTrajectoryDataset: bad metadata keyword ({err})") from err

    @staticmethod
    def _check_shape(shape: tuple[int, ...], m: DatasetMetadata) -> None:
        expected = (m.n_trajectories, m.n_times, m.n_channels, *m.grid_shape)
        if tuple(shape) != expected:
            raise ConfigError(
                f"ArrayTrajectoryDataset: data shape {tuple(shape)} does not match the metadata "
                f"[n_trajectories, n_times, n_channels, *grid_shape] = {expected}"
            )
        if len(m.spatial_dims) != len(m.grid_shape):
            raise ConfigError(
                f"ArrayTrajectoryDataset: {len(m.spatial_dims)} spatial_dims {m.spatial_dims} for a "
                f"{len(m.grid_shape)}-D grid {m.grid_shape}"
            )
        if m.times is not None and len(m.times) != m.n_times:
            raise ConfigError(
                f"ArrayTrajectoryDataset: {len(m.times)} time stamps for {m.n_times} frames per trajectory"
            )

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype that ``read`` returns (float32 for integer/bool/half data)."""
        kind, size = self._data.dtype.kind, self._data.dtype.itemsize
        return self._data.dtype if kind == "f" and size >= 4 else np.dtype(np.float32)

    @property
    def array(self) -> np.ndarray:
        """The underlying array ``[N, T, C, *grid]`` (not a copy)."""
        return self._data

    def _read(self, index: int, times: slice) -> np.ndarray:
        # a copy, so that a caller changing the returned tensor in place cannot change the dataset
        return np.array(self._data[index, times], copy=True)


class ArrayPairDataset(PairDataset):
    """Input/output pairs held in memory as arrays ``x: [N, C_in, *grid]`` and ``y: [N, C_out, *grid_out]``.

    Args:
        x: the inputs (NumPy array or torch tensor).
        y: the outputs, with the same number of samples.
        metadata: metadata of the inputs; default built from the shape (fields ``x0, x1, ...``).
        output_metadata: metadata of the outputs; default built from the shape (fields ``y0, y1, ...``),
            sharing the spatial axis names of the inputs when the grids have as many axes.

    Raises:
        ConfigError: the arrays have too few axes, different numbers of samples, or disagree with the
            metadata.
    """

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        metadata: DatasetMetadata | None = None,
        output_metadata: DatasetMetadata | None = None,
    ) -> None:
        xs = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        ys = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        for name, a in (("x", xs), ("y", ys)):
            if a.ndim < 3:
                raise ConfigError(
                    f"ArrayPairDataset: {name} must have shape [N, C, *grid] with at least one spatial "
                    f"axis; got shape {tuple(a.shape)}"
                )
        if xs.shape[0] != ys.shape[0]:
            raise ConfigError(f"ArrayPairDataset: {xs.shape[0]} inputs but {ys.shape[0]} outputs")
        metadata = metadata or self._default(xs.shape, "x", None)
        output_metadata = output_metadata or self._default(ys.shape, "y", metadata.spatial_dims)
        super().__init__(metadata.path)
        for name, a, m in (("x", xs, metadata), ("y", ys, output_metadata)):
            expected = (m.n_trajectories, m.n_channels, *m.grid_shape)
            if tuple(a.shape) != expected:
                raise ConfigError(
                    f"ArrayPairDataset: {name} shape {tuple(a.shape)} does not match its metadata "
                    f"[n, n_channels, *grid_shape] = {expected}"
                )
        self.metadata = metadata
        self.output_metadata = output_metadata
        self._x, self._y = xs, ys

    @staticmethod
    def _default(shape: tuple[int, ...], prefix: str, dims: tuple[str, ...] | None) -> DatasetMetadata:
        n, c, *grid = shape
        if dims is None or len(dims) != len(grid):
            dims = default_spatial_dims(len(grid))
        return DatasetMetadata(
            path=MEMORY_PATH,
            format=MEMORY_FORMAT,
            field_names=tuple(f"{prefix}{k}" for k in range(c)),
            spatial_dims=dims,
            grid_shape=tuple(int(g) for g in grid),
            n_trajectories=int(n),
            n_times=1,
        )

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype of the samples (the wider of the inputs' and the outputs')."""
        kinds = [
            a.dtype if a.dtype.kind == "f" and a.dtype.itemsize >= 4 else np.dtype(np.float32)
            for a in (self._x, self._y)
        ]
        return np.result_type(*kinds)

    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self._x[index], copy=True), np.array(self._y[index], copy=True)
