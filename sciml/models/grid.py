"""Coordinate channels of a grid: what a model that is told "where" a value lies is fed.

:func:`grid_coordinates` gives, for a grid of shape ``(n_1, ..., n_d)`` on the box
``[0, L_1) x ... x [0, L_d)``, one of three kinds of channels, stacked first: ``[channels, n_1, ..., n_d]``
(``meshgrid`` order "ij": channel ``a`` varies along axis ``a``).

* ``"periodic"``: ``x_i = L i / n`` for ``i = 0 .. n - 1``, ``d`` channels. The points of a periodic axis:
  the end point ``L`` is the first point again, so it is left out. Computed as ``i / n`` (one rounding),
  then times ``L`` when ``lengths`` are given.
* ``"vertex"``: ``x_i = L i / (n - 1)``, ``d`` channels: ``n`` points from ``0`` to ``L``, both ends
  included (``torch.linspace``).
* ``"fourier"``: ``sin(2 pi x_i / L)`` and ``cos(2 pi x_i / L)`` at the periodic points, ``2 d`` channels
  (sine then cosine, axis by axis): smooth and periodic, so a model fed them stays periodic. They do not
  depend on ``L``.

Which family feeds which: T1 the periodic points (rounded as the first ``n`` of the ``n + 1`` vertices of
``[0, 1]``), LSM the vertices of ``[0, 1]``, DeepONet's trunk the Fourier features on a periodic box and the
periodic points times ``L`` otherwise, MG-TFNO the Fourier features; each family's docstring says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sciml.errors import ConfigError

GRID_KINDS = ("periodic", "vertex", "fourier")


def grid_coordinates(
    grid_shape: Sequence[int],
    kind: str = "periodic",
    lengths: Sequence[float] | torch.Tensor | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Coordinate channels ``[channels, *grid_shape]`` of ``kind`` (see the module docstring).

    Args:
        grid_shape: points per axis, each at least 1 (at least 2 for ``"vertex"``).
        kind: ``"periodic"``, ``"vertex"`` or ``"fourier"``.
        lengths: the box length per axis; ``None`` for the unit box (fractions of the box). A tensor is
            cast to ``dtype`` entry by entry, so a float32 buffer gives the same numbers as before it was
            stored. Not accepted with ``"fourier"``, whose channels do not depend on the lengths.
        dtype: floating dtype of the result.
        device: device of the result.

    Raises:
        ConfigError: an unknown kind, an empty shape, an axis with too few points, or lengths that do not
            match the axes.
    """
    shape = tuple(int(n) for n in grid_shape)
    if kind not in GRID_KINDS:
        raise ConfigError(f"grid_coordinates: kind {kind!r} is not one of {', '.join(GRID_KINDS)}")
    least = 2 if kind == "vertex" else 1
    if not shape or any(n < least for n in shape):
        raise ConfigError(
            f"grid_coordinates: grid_shape {shape} needs at least {least} point(s) on each axis"
        )
    if lengths is not None:
        if kind == "fourier":
            raise ConfigError("grid_coordinates: the 'fourier' channels do not depend on the box lengths")
        if len(lengths) != len(shape):
            raise ConfigError(
                f"grid_coordinates: {len(lengths)} lengths for the {len(shape)} axes of {shape}"
            )
    if kind == "vertex":
        axes = [torch.linspace(0, 1, n, device=device, dtype=dtype) for n in shape]
    else:
        axes = [torch.arange(n, device=device, dtype=dtype) / n for n in shape]
    fractions = torch.meshgrid(*axes, indexing="ij")
    if kind == "fourier":
        angles = [2 * math.pi * f for f in fractions]
        return torch.stack([trig(a) for a in angles for trig in (torch.sin, torch.cos)])
    if lengths is None:
        return torch.stack(fractions)
    scales = (
        lengths
        if isinstance(lengths, torch.Tensor)
        else torch.tensor([float(v) for v in lengths], dtype=torch.float64)
    )
    return torch.stack([f * scales[a].to(dtype) for a, f in enumerate(fractions)])
