r"""The Kronecker GP prior of the GP solver on a uniform tensor grid, and the algebra built on it.

The prior is :math:`\mathrm{vec}(\mathcal U) \sim \mathcal N(0, K_1 \otimes \dots \otimes K_D)` with
:math:`K_d = k_d(X_d, X_d) + \epsilon I` (one 1-D kernel per dimension, :mod:`sciml.solvers.gp_kernels`).
Because every kernel is stationary and the grid is uniform, each derivative block :math:`K_d^{(a,0)}` is a
Toeplitz matrix built from the kernel profile at the :math:`2N_d - 1` distinct lags.

The unknowns (the *latent* tensor) are either the grid values :math:`\mathcal U` (``parametrization="grid"``)
or the whitened :math:`\mathcal V` with :math:`\mathcal U = \mathcal V \times_1 L_1 \dots \times_D L_D`,
:math:`K_d = L_d L_d^\top` (``"whitened"``). On the grid, the derivatives of the conditional mean are
:math:`\partial^a_{x_d} u = \mathcal U \times_d (K_d^{(a,0)} K_d^{-1})`
(whitened: :math:`\mathcal V \times_d (K_d^{(a,0)} L_d^{-\top})`); for :math:`a = 0` the kernel without
jitter gives the conditional mean (``u_on_grid="mean"``), the identity / :math:`L_d` the latent values
themselves (``"values"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sciml.errors import ConfigError, SolverError
from sciml.solvers.gp_kernels import KERNELS, StationaryKernel1D, make_kernel
from sciml.solvers.gp_problem import CollocationGrid, Operator
from sciml.solvers.kronecker import kron_logdet, kron_solve, kron_whiten, mode_apply, mode_dot, solve_upper

__all__ = ["KroneckerPrior", "build_kernels"]


def _default_lengthscale(freq_scale: float, spacing: float) -> float:
    return max(1.0 / (2.0 * math.pi * freq_scale), 2.0 * spacing)


def _per_dimension(
    label: str, value: float | Sequence[float], dims: int, unit: str = ""
) -> tuple[float, ...]:
    """``value`` once per dimension, each a finite number > 0 (else one :class:`ConfigError`)."""
    try:
        values = (value,) * dims if isinstance(value, (int, float)) else tuple(value)
    except TypeError:
        raise ConfigError(f"{label} must be a number or {dims} numbers, got {value!r}") from None
    if len(values) != dims:
        raise ConfigError(f"{label} must be a number or {dims} numbers, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"{label} must be finite and > 0{unit}, got {value!r}")
    return values


def build_kernels(
    kernel: str | Sequence[StationaryKernel1D],
    spacings: Sequence[float],
    n_components: int = 30,
    freq_scale: float | Sequence[float] = 1.0,
    lengthscale: float | Sequence[float] | None = None,
) -> list[StationaryKernel1D]:
    """One 1-D kernel per dimension (``len(spacings)`` of them): ``kernel`` as given (a sequence of
    :class:`StationaryKernel1D`) or by name (:func:`~sciml.solvers.gp_kernels.make_kernel`); the default
    lengthscale of ``"se"`` / ``"matern"`` is ``max(1/(2 pi freq_scale), 2 h)``, ``h`` the grid spacing.
    ``freq_scale`` (cycles per unit length, finite and > 0) sets the mixture frequencies
    ``linspace(0, 1, Q) * freq_scale``."""
    dims = len(spacings)
    if not isinstance(kernel, str):
        kernels = list(kernel)
        if len(kernels) != dims or not all(isinstance(k, StationaryKernel1D) for k in kernels):
            raise ConfigError(f"kernel must be a name or {dims} StationaryKernel1D instances, got {kernel!r}")
        return kernels
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; expected one of {sorted(KERNELS)}")
    fs = _per_dimension("freq_scale", freq_scale, dims, " (cycles per unit length)")
    if lengthscale is None:
        ls = tuple(_default_lengthscale(f, h) for f, h in zip(fs, spacings, strict=True))
    else:
        ls = _per_dimension("lengthscale", lengthscale, dims)
    return [
        make_kernel(kernel, n_components=n_components, freq_scale=f, lengthscale=le, active_dims=mode)
        for mode, (f, le) in enumerate(zip(fs, ls, strict=True))
    ]


class KroneckerPrior(torch.nn.Module):
    r"""The prior :math:`\otimes_d K_d` on a :class:`~sciml.solvers.gp_problem.CollocationGrid`: its kernel
    matrices and Cholesky factors, the map from the latent tensor to the grid values, the log-determinant and
    quadratic form of the prior, and the derivative operators (see the module docstring).

    ``kernels``: one :class:`StationaryKernel1D` per dimension (the trainable kernel parameters);
    ``jitter``: :math:`\epsilon`; ``parametrization``: ``"whitened"`` or ``"grid"``; ``u_on_grid``:
    ``"mean"`` or ``"values"``.
    """

    def __init__(
        self,
        kernels: Sequence[StationaryKernel1D],
        grid: CollocationGrid,
        jitter: float,
        parametrization: str = "whitened",
        u_on_grid: str = "mean",
    ) -> None:
        super().__init__()
        self.kernels = torch.nn.ModuleList(kernels)
        self.kernels.to(dtype=grid.dtype, device=grid.device)
        self.sizes = grid.sizes
        self.jitter = float(jitter)
        self.whitened = parametrization == "whitened"
        self.mean_on_grid = u_on_grid == "mean"
        fkw = dict(dtype=grid.dtype, device=grid.device)
        self._offsets = [
            torch.arange(-(n - 1), n, **fkw) * h for n, h in zip(grid.sizes, grid.spacings, strict=True)
        ]
        self._toeplitz_index = [
            (torch.arange(n, device=grid.device)[:, None] - torch.arange(n, device=grid.device)[None, :])
            + (n - 1)
            for n in grid.sizes
        ]

    def matrix(self, mode: int, order: int) -> Tensor:
        """:math:`K_d^{(order,0)}` on the uniform grid from the profile at the :math:`2N_d - 1` lags."""
        prof = self.kernels[mode].profile(self._offsets[mode], order)
        return prof[self._toeplitz_index[mode]]

    def cholesky(self) -> list[Tensor]:
        r"""The Cholesky factors :math:`L_d` of :math:`K_d = k_d(X_d, X_d) + \epsilon I`."""
        chols = []
        for mode, n in enumerate(self.sizes):
            k = self.matrix(mode, 0)
            k = k + self.jitter * torch.eye(n, dtype=k.dtype, device=k.device)
            chol, info = torch.linalg.cholesky_ex(k)
            if int(info) != 0:
                raise SolverError(self._cholesky_failure(mode, n, int(info), k.dtype))
            chols.append(chol)
        return chols

    def _cholesky_failure(self, mode: int, n: int, column: int, dtype: torch.dtype) -> str:
        """The message of a failed Cholesky factorisation: the dtype first when it is not float64."""
        where = f"the kernel matrix of dimension {mode} ({n} x {n}, {dtype}) is not positive definite"
        if dtype != torch.float64:
            return (
                f"{where} (Cholesky failed at column {column}): {dtype} cannot resolve jitter "
                f"{self.jitter:g} relative to the kernel's scale; use dtype=torch.float64"
            )
        return f"{where} with jitter {self.jitter:g} (Cholesky failed at column {column}); increase jitter"

    def grid_values(self, latent: Tensor, chols: Sequence[Tensor]) -> Tensor:
        r"""The grid values :math:`\mathcal U` of a latent tensor (itself, or
        :math:`\mathcal V \times_d L_d`)."""
        if not self.whitened:
            return latent
        out = latent
        for mode, chol in enumerate(chols):
            out = mode_dot(out, chol, mode)
        return out

    def latent_of(self, values: Tensor, chols: Sequence[Tensor]) -> Tensor:
        r"""The latent tensor of grid values :math:`\mathcal U` (itself, or
        :math:`\mathcal U \times_d L_d^{-1}`)."""
        return kron_whiten(chols, values) if self.whitened else values

    def log_prior_terms(self, latent: Tensor, chols: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        r""":math:`\log|\otimes_d K_d|` and the quadratic form
        :math:`\mathrm{vec}(\mathcal U)^\top (\otimes_d K_d)^{-1} \mathrm{vec}(\mathcal U)` (whitened:
        :math:`\|\mathcal V\|^2`)."""
        logdet = kron_logdet(chols)
        quad = (latent if self.whitened else kron_whiten(chols, latent)).square().sum()
        return logdet, quad

    def alpha(self, latent: Tensor, values: Tensor, chols: Sequence[Tensor]) -> Tensor:
        r""":math:`\mathcal A = \mathcal U \times_d K_d^{-1}` (whitened:
        :math:`\mathcal V \times_d L_d^{-\top}`) from the latent tensor and its grid ``values``."""
        if not self.whitened:
            return kron_solve(chols, values)
        out = latent
        for mode, chol in enumerate(chols):
            out = mode_apply(out, mode, lambda t, c=chol: solve_upper(c.transpose(0, 1), t))
        return out

    def derivative_operators(self, chols: Sequence[Tensor]) -> Operator:
        """``operator(mode, a)``: the mode-``mode`` matrix mapping the latent tensor to the ``a``-th
        derivative on the grid (cached). Grid parametrization: :math:`K_d^{(a,0)} K_d^{-1}`; whitened:
        :math:`K_d^{(a,0)} L_d^{-\\top}`. For ``a = 0`` the kernel without jitter is used (conditional mean,
        ``u_on_grid="mean"``), or the identity / :math:`L_d` (``u_on_grid="values"``)."""
        cache: dict[tuple[int, int], Tensor | None] = {}

        def operator(mode: int, order: int) -> Tensor | None:
            key = (mode, order)
            if key not in cache:
                if order == 0 and not self.mean_on_grid:
                    cache[key] = chols[mode] if self.whitened else None
                else:
                    cache[key] = self._derivative_operator(chols[mode], mode, order)
            return cache[key]

        return operator

    def _derivative_operator(self, chol: Tensor, mode: int, order: int) -> Tensor:
        # K^(a,0)^T = (-1)^a K^(a,0) for a stationary kernel, hence
        # K^(a,0) L^-T = (-1)^a (L^-1 K^(a,0))^T and K^(a,0) K^-1 = (-1)^a (K^-1 K^(a,0))^T
        kd = self.matrix(mode, order)
        if self.whitened:
            sol = torch.linalg.solve_triangular(chol, kd, upper=False)
        else:
            sol = torch.cholesky_solve(kd, chol)
        sol = sol.transpose(0, 1)
        return -sol if order % 2 else sol
