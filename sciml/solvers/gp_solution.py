r"""The solution returned by the GP solver: the GP conditional mean and its derivatives, anywhere in the box.

With :math:`\mathcal A = \mathcal U \times_1 K_1^{-1} \dots \times_D K_D^{-1}` (the grid values solved against
the prior), the conditional mean is

.. math:: u(x) = \mathcal A \times_1 k_1(x_1, X_1) \times_2 \dots \times_D k_D(x_D, X_D)

(in 2-D: :math:`u(X^*) = K^*_1 K_1^{-1} U K_2^{-1} K_2^{*\top}`), and its derivatives replace
:math:`k_d(x_d, X_d)` by :math:`\partial^a_{x_d} k_d(x_d, X_d)`.

The solution is defined on the box of the collocation grid only: away from the grid the conditional mean
decays to the prior mean 0 within a few correlation lengths, which is no extrapolation of the PDE solution.
Points outside the box (beyond a rounding tolerance of 1e-9 of the side) raise :class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciml.errors import ConfigError
from sciml.solvers.gp_kernels import StationaryKernel1D
from sciml.solvers.gp_problem import parse_derivative
from sciml.solvers.kronecker import mode_dot

__all__ = ["GPSolution"]


class GPSolution:
    r"""The GP conditional mean and its derivatives, evaluable anywhere in the box:
    :math:`u(x) = \mathcal A \times_1 k_1(x_1, X_1) \dots \times_D k_D(x_D, X_D)`.

    ``solution(points, "xx")`` at scattered points ``(M, D)``; ``solution.on_grid(axes, "xx")`` on a tensor
    grid. ``grid_values``: :math:`u` on the collocation grid as the objective saw it (the conditional mean
    for ``u_on_grid="mean"``, equal to the evaluation at the grid points; :math:`\mathcal U` for
    ``"values"``); ``latent_values``: :math:`\mathcal U`; ``alpha``: :math:`\mathcal A`.
    """

    def __init__(
        self,
        grids: Sequence[Tensor],
        kernels: Sequence[StationaryKernel1D],
        alpha: Tensor,
        grid_values: Tensor,
        latent_values: Tensor,
        names: str,
        history: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.grids = [g.detach() for g in grids]
        self.kernels = list(kernels)
        self.alpha = alpha.detach()
        self.grid_values = grid_values.detach()
        self.latent_values = latent_values.detach()
        self.names = names
        self.history = history if history is not None else []
        self.info = info or {}

    @property
    def dims(self) -> int:
        """Number of space dimensions."""
        return len(self.grids)

    def _as_tensor(self, x: Tensor | np.ndarray | Sequence[float]) -> Tensor:
        ref = self.alpha
        return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)

    def _check_inside(self, mode: int, x: Tensor) -> None:
        """Raise :class:`ConfigError` if a coordinate of dimension ``mode`` lies outside the box."""
        grid = self.grids[mode]
        lo, hi = float(grid[0]), float(grid[-1])
        tol = 1e-9 * (hi - lo)
        bad = (x < lo - tol) | (x > hi + tol) | ~torch.isfinite(x)
        if bool(bad.any()):
            index = int(torch.nonzero(bad)[0])
            raise ConfigError(
                f"GPSolution: coordinate {index} of dimension {mode} is {float(x[index])!r}, outside the box "
                f"[{lo}, {hi}] ({int(bad.sum())} of {x.numel()} outside); the GP solution is defined on the "
                "box of its grid only (away from it the conditional mean decays to 0)"
            )

    def _cross(self, mode: int, x: Tensor, order: int, chunk_elems: int = 4_000_000) -> Tensor:
        kernel, grid = self.kernels[mode], self.grids[mode]
        n_comp = getattr(kernel, "n_components", 1)
        rows = max(1, chunk_elems // (grid.numel() * n_comp))
        with torch.no_grad():
            blocks = [
                kernel.derivative_matrix(x[i : i + rows], grid, order, 0) for i in range(0, len(x), rows)
            ]
        return torch.cat(blocks) if blocks else x.new_zeros(0, grid.numel())

    def on_grid(self, axes: Sequence[Tensor | np.ndarray], derivative: str = "u") -> Tensor:
        r"""Values of ``derivative`` (``"u"``, ``"x"``, ``"xx"``, ``"xy"``, ...) on the tensor grid
        ``axes[0] x ... x axes[D-1]``: :math:`\mathcal A \times_d K^{(a_d,0)}(\text{axes}_d, X_d)`."""
        if len(axes) != self.dims:
            raise ConfigError(f"on_grid needs {self.dims} axes (one per dimension), got {len(axes)}")
        orders = parse_derivative(derivative, self.names)
        out = self.alpha
        for mode, (axis, a) in enumerate(zip(axes, orders, strict=True)):
            coords = self._as_tensor(axis).reshape(-1)
            self._check_inside(mode, coords)
            out = mode_dot(out, self._cross(mode, coords, a), mode)
        return out

    def __call__(self, points: Tensor | np.ndarray, derivative: str = "u") -> Tensor:
        """Values of ``derivative`` at scattered ``points`` of shape ``(M, D)`` (or ``(M,)`` in 1-D)."""
        pts = self._as_tensor(points)
        if self.dims == 1 and pts.dim() == 1:
            pts = pts[:, None]
        if pts.dim() != 2 or pts.shape[1] != self.dims:
            raise ConfigError(f"points must have shape (M, {self.dims}), got {tuple(pts.shape)}")
        orders = parse_derivative(derivative, self.names)
        for mode in range(self.dims):
            self._check_inside(mode, pts[:, mode])
        sizes = [g.numel() for g in self.grids]
        rest = math.prod(sizes[1:])
        step = max(1, 4_000_000 // max(rest, 1))
        outs = []
        for i in range(0, pts.shape[0], step):
            p = pts[i : i + step]
            y = self._cross(0, p[:, 0], orders[0]) @ self.alpha.reshape(sizes[0], -1)
            for mode in range(1, self.dims):
                k = self._cross(mode, p[:, mode], orders[mode])
                y = (y.reshape(p.shape[0], sizes[mode], -1) * k[:, :, None]).sum(1)
            outs.append(y.reshape(-1))
        return torch.cat(outs) if outs else pts.new_zeros(0)
