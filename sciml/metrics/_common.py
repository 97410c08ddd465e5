"""Argument checking shared by the metric modules (spatial dims, box lengths, periodicity flags)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sciml.errors import ConfigError

#: How the points of a non-periodic axis sit in the box ``[0, L]``.
#: ``"vertex"``: ``x_i = i L / (n - 1)`` (both walls are grid points; trapezoid rule);
#: ``"cell"``: ``x_i = (i + 1/2) L / n`` (cell centres, as in finite-volume output; midpoint rule).
GRIDS = ("vertex", "cell")


def spatial_dims(ndim: int, dims: int | Sequence[int] | None, default: int = 2) -> tuple[int, ...]:
    """Normalize ``dims`` to sorted, distinct, non-negative axis indices of a tensor with ``ndim`` axes.

    ``None`` means the last ``default`` axes.
    """
    if dims is None:
        if ndim < default:
            raise ConfigError(f"a field with {ndim} dims has no {default} trailing spatial dims")
        return tuple(range(ndim - default, ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = []
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise ConfigError(f"dims must be integers, got {dims!r}")
        if not -ndim <= d < ndim:
            raise ConfigError(f"dim {d} is out of range for a tensor with {ndim} dims")
        out.append(d % ndim)
    if not out:
        raise ConfigError("dims must name at least one spatial axis")
    if len(set(out)) != len(out):
        raise ConfigError(f"dims repeat an axis: {tuple(dims)!r}")
    return tuple(sorted(out))


def box_lengths(lengths: float | Sequence[float] | None, n: int) -> tuple[float, ...]:
    """Broadcast ``lengths`` (``None``: 1.0; one number; or one per axis) to ``n`` positive floats."""
    if lengths is None:
        return (1.0,) * n
    if isinstance(lengths, int | float):
        values: tuple[float, ...] = (float(lengths),) * n
    else:
        values = tuple(float(v) for v in lengths)
    if len(values) != n:
        raise ConfigError(f"lengths has {len(values)} entries for {n} spatial dims: {tuple(values)}")
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"box lengths must be positive and finite, got {values}")
    return values


def periodic_flags(periodic: bool | Sequence[bool], n: int) -> tuple[bool, ...]:
    """Broadcast ``periodic`` (one bool, or one per spatial axis) to ``n`` bools."""
    if isinstance(periodic, bool):
        return (periodic,) * n
    values = tuple(bool(p) for p in periodic)
    if len(values) != n:
        raise ConfigError(f"periodic has {len(values)} entries for {n} spatial dims")
    return values


def grid_kinds(grid: str | Sequence[str], n: int) -> tuple[str, ...]:
    """Broadcast ``grid`` (``"vertex"`` or ``"cell"``, or one per axis) to ``n`` names."""
    values = (grid,) * n if isinstance(grid, str) else tuple(grid)
    if len(values) != n:
        raise ConfigError(f"grid has {len(values)} entries for {n} spatial dims")
    for g in values:
        if g not in GRIDS:
            raise ConfigError(f"grid must be one of {GRIDS}, got {g!r}")
    return values


def sobolev_order(s: float) -> float:
    """Check that the Sobolev index is a finite real number."""
    try:
        value = float(s)
    except (TypeError, ValueError):
        raise ConfigError(f"the Sobolev index s must be a real number, got {s!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"the Sobolev index s must be finite, got {s!r}")
    return value


def real_field(u: torch.Tensor, name: str = "u") -> torch.Tensor:
    """A real floating tensor: float32/float64 pass through, half precisions and integers become float32."""
    if not isinstance(u, torch.Tensor):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(u).__name__}")
    if u.is_complex():
        raise ConfigError(f"{name} must be real; complex fields are not supported")
    if u.dtype in (torch.float32, torch.float64):
        return u
    return u.to(torch.float32)


def common_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that prediction and target have the same shape and bring them to one real dtype."""
    pred = real_field(pred, "pred")
    target = real_field(target, "target")
    if pred.shape != target.shape:
        raise ConfigError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dtype != target.dtype:
        dtype = torch.promote_types(pred.dtype, target.dtype)
        pred, target = pred.to(dtype), target.to(dtype)
    return pred, target


def to_trailing(u: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """A view of ``u`` with the axes ``dims`` moved to the end (in order); the others keep their order."""
    m = len(dims)
    if dims == tuple(range(u.ndim - m, u.ndim)):
        return u
    return torch.movedim(u, dims, tuple(range(u.ndim - m, u.ndim)))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` whose gradient at ``x = 0`` is 0 instead of NaN (pred == target).

    NaN stays NaN (a diverged prediction must never score a zero error).
    """
    zero = x == 0
    root = torch.sqrt(torch.where(zero, torch.ones_like(x), x))
    return torch.where(zero, torch.zeros_like(x), root)
