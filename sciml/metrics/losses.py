"""Training losses built on the Sobolev norms of :mod:`sciml.metrics.sobolev`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.metrics._common import grid_kinds, sobolev_order
from sciml.metrics._fourier import check_options
from sciml.metrics.sobolev import sobolev_error

REDUCTIONS = ("mean", "sum", "none")


class SobolevLoss(nn.Module):
    """Relative or absolute H^s loss: L2 (``s=0``), H1 (``s=1``), H^-1 (``s=-1``), any real ``s``.

    Per sample and channel ``e = ||pred - target||_{H^s} / (||target||_{H^s} + eps)`` (or the absolute
    ``||pred - target||_{H^s}``; with ``squared`` the squared norms), the norm being
    ``||u||^2_{H^s} = |Omega| sum_k (alpha + |2 pi k / L|^2)^s |c_k|^2`` on periodic grids (see
    :func:`sciml.metrics.sobolev_norm`), then reduced over batch and channels by ``reduction``
    (``"mean"``, ``"sum"`` or ``"none"``).

    ``SobolevLoss(0, reduction="mean")`` equals neuraloperator's ``LpLoss(d=2, p=2, reduction="mean")``
    on the same eps (both reduce over batch and channels together); ``LpLoss``'s default ``"sum"``
    is ``B * C`` times that mean. Spectral-Refiner's fine-tuning loss is
    ``SobolevLoss(-1, relative=False, alpha=10**-1.5, cutoff=...)``.

    Args:
        s: Sobolev index.
        relative: divide by the target's norm.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"`` over the per-(sample, channel) errors.
        lengths: box lengths (default 1.0 per spatial axis).
        cutoff: keep only modes with ``|k| <= cutoff``.
        dims: spatial axes (default the last two).
        seminorm: homogeneous norm ``|kappa|^(2s)`` without the mean mode.
        alpha: the shift in ``(alpha + |kappa|^2)^s``.
        eps: added to the target's norm (relative only; neuraloperator's default 1e-8).
        squared: compare squared norms.
        periodic, grid, taper: geometry of walled data (see :func:`sciml.metrics.sobolev_norm`).
    """

    def __init__(
        self,
        s: float = 0.0,
        relative: bool = True,
        reduction: str = "mean",
        lengths: float | Sequence[float] | None = None,
        cutoff: float | None = None,
        *,
        dims: int | Sequence[int] | None = None,
        seminorm: bool = False,
        alpha: float = 1.0,
        eps: float = 1e-8,
        squared: bool = False,
        periodic: bool | Sequence[bool] = True,
        grid: str | Sequence[str] = "vertex",
        taper: float = 0.25,
    ) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        eps = float(eps)
        if not (math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"eps must be non-negative, got {eps}")
        if lengths is not None:
            values = [lengths] if isinstance(lengths, int | float) else list(lengths)
            if not all(math.isfinite(float(v)) and float(v) > 0 for v in values):
                raise ConfigError(f"box lengths must be positive and finite, got {lengths!r}")
            lengths = float(lengths) if isinstance(lengths, int | float) else tuple(float(v) for v in values)
        grid_kinds(grid, 1 if isinstance(grid, str) else len(grid))
        self.s = sobolev_order(s)
        self.relative = bool(relative)
        self.reduction = reduction
        self.lengths = lengths
        self.cutoff, self.alpha = check_options(cutoff, alpha)
        self.dims = dims
        self.seminorm = bool(seminorm)
        self.eps = eps
        self.squared = bool(squared)
        self.periodic = periodic
        self.grid = grid
        self.taper = float(taper)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The reduced loss (a scalar), or ``[B, C]`` errors with ``reduction="none"``."""
        err = sobolev_error(
            pred,
            target,
            self.s,
            relative=self.relative,
            lengths=self.lengths,
            dims=self.dims,
            seminorm=self.seminorm,
            cutoff=self.cutoff,
            squared=self.squared,
            eps=self.eps if self.relative else 0.0,
            periodic=self.periodic,
            alpha=self.alpha,
            grid=self.grid,
            taper=self.taper,
        )
        if self.reduction == "mean":
            return err.mean()
        if self.reduction == "sum":
            return err.sum()
        return err

    def extra_repr(self) -> str:
        kind = "relative" if self.relative else "absolute"
        out = f"s={self.s:g}, {kind}, reduction={self.reduction!r}"
        if self.lengths is not None:
            out += f", lengths={self.lengths}"
        if self.cutoff is not None:
            out += f", cutoff={self.cutoff:g}"
        if self.alpha != 1.0:
            out += f", alpha={self.alpha:g}"
        if self.seminorm:
            out += ", seminorm"
        return out
