"""The one metadata record that travels with a dataset, handed to models and metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DatasetMetadata:
    """What a reader could learn about a dataset from its file.

    Attributes:
        path: the file (or folder) the data come from.
        format: the reader's format name (e.g. ``"fno_mat"``, ``"the_well"``).
        field_names: one name per channel, in channel order (vector fields are split into components,
            e.g. ``("velocity_x", "velocity_y")``).
        spatial_dims: names of the spatial axes, in array order (e.g. ``("x", "y")``).
        grid_shape: number of points along each spatial axis.
        n_trajectories: number of independent samples (trajectories) in the file.
        n_times: number of time frames per trajectory (1 for static input/output pairs).
        coords: coordinate values along each spatial axis (``{name: 1D array}``); may be empty.
        times: time stamps of the frames, shape ``(n_times,)``, or ``None`` when unknown.
        periodic: whether each spatial axis is periodic.
        domain_lengths: physical length of the box along each axis (the period for periodic axes).
        viscosity: kinematic viscosity when the data record it.
        parameters: further scalar simulation parameters found in the file.
    """

    path: str
    format: str
    field_names: tuple[str, ...]
    spatial_dims: tuple[str, ...]
    grid_shape: tuple[int, ...]
    n_trajectories: int
    n_times: int
    coords: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)
    times: np.ndarray | None = field(default=None, compare=False)
    periodic: tuple[bool, ...] = ()
    domain_lengths: tuple[float, ...] = ()
    viscosity: float | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        """Number of channels (components of all fields) per frame."""
        return len(self.field_names)

    @property
    def dt(self) -> float | None:
        """Time step between frames when they are uniformly spaced, else ``None``."""
        if self.times is None or len(self.times) < 2:
            return None
        steps = np.diff(np.asarray(self.times, dtype=np.float64))
        if np.allclose(steps, steps[0], rtol=1e-6, atol=0.0):
            return float(steps[0])
        return None

    def replace(self, **changes: Any) -> DatasetMetadata:
        """A copy with the given attributes changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view (arrays become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, Mapping):
                value = {
                    k: (v.tolist() if isinstance(v, np.ndarray) else _plain(v)) for k, v in value.items()
                }
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python scalars so that JSON can hold them."""
    if isinstance(value, np.generic):
        return value.item()
    return value
