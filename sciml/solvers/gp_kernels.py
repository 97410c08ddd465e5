r"""One-dimensional stationary kernels with analytic derivatives, for the Kronecker GP PDE solver (GP-HM).

Each kernel is a function of the lag :math:`d = x - x'` only, :math:`k(x, x') = \kappa(d)`, so every mixed
derivative follows from the derivatives of the profile :math:`\kappa`:

.. math:: \frac{\partial^{a+b} k}{\partial x^a\, \partial x'^b}(x, x') = (-1)^b\, \kappa^{(a+b)}(x - x').

:meth:`StationaryKernel1D.profile_derivatives` returns :math:`\kappa, \kappa', \dots, \kappa^{(n)}`
(``n <= 4``) written analytically (no autograd in ``x``), and :meth:`StationaryKernel1D.derivative_matrix`
the blocks :math:`K^{(a,b)}_{ij} = \partial^a_x \partial^b_{x'} k(x_i, x'_j)`, e.g. ``K^(2,0)`` for the
conditional mean of ``u_xx`` and ``K^(2,2)`` for the covariance of two second-derivative observations.

Kernels (Fang et al., "Solving High Frequency and Multi-Scale PDEs with Gaussian Processes", ICLR 2024):

* :class:`StudentTMixtureKernel` (StM, Matern-5/2 times cosine; the inverse Fourier transform of a Student-t
  mixture spectrum): :math:`\sum_q w_q (1 + \sqrt5 r_q |d| + \tfrac53 r_q^2 d^2) e^{-\sqrt5 r_q |d|}
  \cos(2\pi\mu_q d)`;
* :class:`GaussianMixtureKernel` (GM, the spectral mixture kernel):
  :math:`\sum_q w_q e^{-d^2 e^{\ell_q}} \cos(2\pi\mu_q d)` with :math:`\ell_q` = ``log_ls`` (as in the paper's
  code, :math:`e^{\ell_q}` multiplies :math:`d^2`: it is an inverse squared length);
* baselines :class:`SEKernel` (:math:`\sigma^2 e^{-d^2 / (2\ell^2)}`) and :class:`Matern52Kernel`
  (:math:`\sigma^2 (1 + \sqrt5 |d|/\ell + \tfrac53 d^2/\ell^2) e^{-\sqrt5 |d|/\ell}`).

All parameters are stored in the log domain (``log_weight``: estimating :math:`\log w_q` without a penalty is
equivalent to a Jeffreys prior on :math:`w_q`, which prunes superfluous frequencies); the frequencies
``mu`` are free and initialised as ``linspace(0, 1, Q) * freq_scale``. Each kernel acts on ONE input
dimension (``active_dims``); a d-dimensional covariance is the product of d independent kernels, unlike
gpytorch's ``SpectralMixtureKernel`` which shares the mixture weights across dimensions.

The Matern-type derivatives are written in terms of :math:`d` and :math:`|d|` so that their values at
:math:`d = 0` are the correct limits (autograd through ``abs`` would give a wrong zero slope there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import gpytorch
import torch
from torch import Tensor

from sciml.errors import ConfigError

__all__ = [
    "KERNELS",
    "GaussianMixtureKernel",
    "Matern52Kernel",
    "SEKernel",
    "StationaryKernel1D",
    "StudentTMixtureKernel",
    "make_kernel",
]

MAX_ORDER = 4
_BINOM = [[math.comb(n, j) for j in range(n + 1)] for n in range(MAX_ORDER + 1)]
SQRT5 = math.sqrt(5.0)


def _check_order(order: int) -> int:
    if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order <= MAX_ORDER:
        raise ConfigError(f"derivative order must be an integer in [0, {MAX_ORDER}], got {order!r}")
    return order


def gaussian_envelope_derivatives(d: Tensor, s: Tensor, order: int) -> list[Tensor]:
    r"""Derivatives of :math:`g(d) = e^{-s d^2}` in ``d`` up to ``order`` (broadcast of ``d`` and ``s``)."""
    g = torch.exp(-s * d * d)
    out = [g]
    if order >= 1:
        out.append(-2.0 * s * d * g)
    if order >= 2:
        out.append((4.0 * s * s * d * d - 2.0 * s) * g)
    if order >= 3:
        out.append((12.0 * s * s * d - 8.0 * s**3 * d**3) * g)
    if order >= 4:
        d2 = d * d
        out.append((16.0 * s**4 * d2 * d2 - 48.0 * s**3 * d2 + 12.0 * s * s) * g)
    return out


def matern52_envelope_derivatives(d: Tensor, a: Tensor, order: int) -> list[Tensor]:
    r"""Derivatives of :math:`m(d) = (1 + a|d| + a^2 d^2/3) e^{-a|d|}` in ``d`` up to ``order``.

    With :math:`t = |d|`: :math:`m' = -\tfrac{a^2}{3} d (1 + a t) e^{-at}`,
    :math:`m'' = -\tfrac{a^2}{3}(1 + a t - a^2 t^2) e^{-at}`,
    :math:`m''' = \tfrac{a^4}{3} d (3 - a t) e^{-at}`,
    :math:`m'''' = \tfrac{a^4}{3}(3 - 5 a t + a^2 t^2) e^{-at}`; all are exact at :math:`d = 0`
    (:math:`m''(0) = -a^2/3`, :math:`m''''(0) = a^4`).
    """
    t = torch.abs(d)
    at = a * t
    e = torch.exp(-at)
    out = [(1.0 + at + at * at / 3.0) * e]
    a2 = a * a / 3.0
    if order >= 1:
        out.append(-a2 * d * (1.0 + at) * e)
    if order >= 2:
        out.append(-a2 * (1.0 + at - at * at) * e)
    a4 = a**4 / 3.0
    if order >= 3:
        out.append(a4 * d * (3.0 - at) * e)
    if order >= 4:
        out.append(a4 * (3.0 - 5.0 * at + at * at) * e)
    return out


def cosine_derivatives(d: Tensor, omega: Tensor, order: int) -> list[Tensor]:
    r""":math:`\frac{d^k}{dd^k}\cos(\omega d) = \omega^k \cos(\omega d + k\pi/2)` for ``k = 0..order``."""
    c = torch.cos(omega * d)
    out = [c]
    if order >= 1:
        s = torch.sin(omega * d)
        signs = ((-1.0, s), (-1.0, c), (1.0, s), (1.0, c))  # k = 1, 2, 3, 4, then again (period 4)
        for k in range(1, order + 1):
            sign, base = signs[(k - 1) % 4]
            out.append(sign * omega**k * base)
    return out


def _leibniz(env: list[Tensor], trig: list[Tensor], order: int) -> list[Tensor]:
    """Derivatives of a product from the derivatives of its two factors (general Leibniz rule)."""
    return [
        sum(_BINOM[n][j] * env[j] * trig[n - j] for j in range(n + 1))  # type: ignore[misc]
        for n in range(order + 1)
    ]


class StationaryKernel1D(gpytorch.kernels.Kernel):
    r"""Base class: a stationary kernel :math:`k(x, x') = \kappa(x - x')` on one input dimension.

    Subclasses implement :meth:`profile_derivatives`. ``forward`` (hence ``kernel(x1, x2)``) returns the
    kernel matrix; :meth:`derivative_matrix` the derivative blocks :math:`K^{(a,b)}`.
    """

    is_stationary = True
    max_order = MAX_ORDER

    def __init__(self, active_dims: int | Sequence[int] | None = None) -> None:
        if isinstance(active_dims, int):
            active_dims = (active_dims,)
        super().__init__(active_dims=None if active_dims is None else tuple(active_dims))

    def profile_derivatives(self, d: Tensor, order: int = 0) -> list[Tensor]:
        r"""``[kappa(d), kappa'(d), ..., kappa^(order)(d)]``, elementwise in ``d`` (any shape)."""
        raise NotImplementedError

    def profile(self, d: Tensor, order: int = 0) -> Tensor:
        r""":math:`\kappa^{(order)}(d)` elementwise."""
        return self.profile_derivatives(d, _check_order(order))[order]

    def derivative_matrix(self, x1: Tensor, x2: Tensor, a: int = 0, b: int = 0) -> Tensor:
        r"""Block :math:`K^{(a,b)}_{ij} = \partial^a_{x}\partial^b_{x'} k(x1_i, x2_j)
        = (-1)^b \kappa^{(a+b)}(x1_i - x2_j)`.

        ``x1`` and ``x2`` are 1-D tensors of points (or ``(n, 1)`` columns).
        """
        _check_order(a + b)
        d = x1.reshape(-1, 1) - x2.reshape(1, -1)
        k = self.profile(d, a + b)
        return -k if b % 2 else k

    def forward(
        self, x1: Tensor, x2: Tensor, diag: bool = False, last_dim_is_batch: bool = False, **params
    ) -> Tensor:
        """Kernel matrix (gpytorch convention: ``x1`` is ``(..., n, 1)``, ``x2`` is ``(..., m, 1)``)."""
        if x1.shape[-1] != 1 or x2.shape[-1] != 1:
            raise ConfigError(
                f"{type(self).__name__} is one-dimensional: inputs must have last dimension 1 (use "
                f"active_dims to pick a column), got {tuple(x1.shape)} and {tuple(x2.shape)}"
            )
        if diag:
            return self.profile(x1[..., 0] - x2[..., 0], 0)
        return self.profile(x1 - x2.transpose(-1, -2), 0)


class _MixtureKernel(StationaryKernel1D):
    """Shared parameters of the two spectral mixtures: ``log_weight`` (Q,), ``mu`` (Q,)."""

    def __init__(
        self,
        n_components: int = 30,
        freq_scale: float = 1.0,
        active_dims: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(active_dims)
        if not isinstance(n_components, int) or isinstance(n_components, bool) or n_components < 1:
            raise ConfigError(f"n_components must be an integer >= 1, got {n_components!r}")
        if not (isinstance(freq_scale, (int, float)) and math.isfinite(freq_scale) and freq_scale > 0):
            raise ConfigError(f"freq_scale must be a finite number > 0, got {freq_scale!r}")
        q = n_components
        self.n_components = q
        self.freq_scale = float(freq_scale)
        self.register_parameter(
            "log_weight", torch.nn.Parameter(torch.full((q,), -math.log(q), dtype=torch.float64))
        )
        self.register_parameter(
            "mu", torch.nn.Parameter(torch.linspace(0.0, 1.0, q, dtype=torch.float64) * freq_scale)
        )

    @property
    def spacing(self) -> float:
        """Initial spacing of the frequency grid, ``freq_scale / (Q - 1)`` (``freq_scale`` when Q = 1)."""
        return self.freq_scale / max(self.n_components - 1, 1)

    def _flat(self, d: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        return d.reshape(1, -1), tuple(d.shape)

    def _combine(self, env: list[Tensor], d: Tensor, shape: tuple[int, ...], order: int) -> list[Tensor]:
        omega = (2.0 * math.pi * self.mu).unsqueeze(-1)
        trig = cosine_derivatives(d, omega, order)
        w = torch.exp(self.log_weight).unsqueeze(-1)
        return [(w * t).sum(0).reshape(shape) for t in _leibniz(env, trig, order)]


class GaussianMixtureKernel(_MixtureKernel):
    r"""GM / spectral mixture kernel :math:`\sum_q w_q e^{-d^2 e^{\ell_q}} \cos(2\pi\mu_q d)` (one dim).

    Parameters ``log_weight`` (init :math:`\log(1/Q)`), ``mu`` (init ``linspace(0, 1, Q) * freq_scale``) and
    ``log_ls`` = :math:`\ell_q` (init such that each Gaussian bump of the spectrum has standard deviation
    equal to the initial frequency spacing ``freq_scale/(Q-1)``,
    :math:`e^{\ell} = 2\pi^2\,\mathrm{spacing}^2`,
    unless ``init_log_ls`` is given).
    """

    def __init__(
        self,
        n_components: int = 30,
        freq_scale: float = 1.0,
        init_log_ls: float | None = None,
        active_dims: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(n_components, freq_scale, active_dims)
        if init_log_ls is None:
            init_log_ls = math.log(2.0 * math.pi**2 * self.spacing**2)
        self.register_parameter(
            "log_ls", torch.nn.Parameter(torch.full((n_components,), float(init_log_ls), dtype=torch.float64))
        )

    def profile_derivatives(self, d: Tensor, order: int = 0) -> list[Tensor]:
        """Kernel profile and its derivatives in the lag ``d`` up to ``order`` (analytic)."""
        order = _check_order(order)
        flat, shape = self._flat(d)
        s = torch.exp(self.log_ls).unsqueeze(-1)
        env = gaussian_envelope_derivatives(flat, s, order)
        return self._combine(env, flat, shape, order)


class StudentTMixtureKernel(_MixtureKernel):
    r"""StM (Student-t mixture) kernel on one dimension,
    :math:`\sum_q w_q (1 + \sqrt5 r_q|d| + \tfrac53 r_q^2 d^2) e^{-\sqrt5 r_q |d|}\cos(2\pi\mu_q d)`.

    Parameters ``log_weight``, ``mu`` as for :class:`GaussianMixtureKernel` and ``log_rate`` =
    :math:`\log r_q` (init: spectral half-width :math:`\sqrt5 r/(2\pi)` equal to the initial frequency
    spacing, unless ``init_log_rate`` is given).
    """

    def __init__(
        self,
        n_components: int = 30,
        freq_scale: float = 1.0,
        init_log_rate: float | None = None,
        active_dims: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(n_components, freq_scale, active_dims)
        if init_log_rate is None:
            init_log_rate = math.log(2.0 * math.pi * self.spacing / SQRT5)
        self.register_parameter(
            "log_rate",
            torch.nn.Parameter(torch.full((n_components,), float(init_log_rate), dtype=torch.float64)),
        )

    def profile_derivatives(self, d: Tensor, order: int = 0) -> list[Tensor]:
        """Kernel profile and its derivatives in the lag ``d`` up to ``order`` (analytic, exact at 0)."""
        order = _check_order(order)
        flat, shape = self._flat(d)
        a = SQRT5 * torch.exp(self.log_rate).unsqueeze(-1)
        env = matern52_envelope_derivatives(flat, a, order)
        return self._combine(env, flat, shape, order)


class _SingleScaleKernel(StationaryKernel1D):
    def __init__(
        self,
        lengthscale: float = 1.0,
        outputscale: float = 1.0,
        active_dims: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(active_dims)
        for name, value in (("lengthscale", lengthscale), ("outputscale", outputscale)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        self.register_parameter(
            "log_lengthscale", torch.nn.Parameter(torch.tensor(math.log(lengthscale), dtype=torch.float64))
        )
        self.register_parameter(
            "log_outputscale", torch.nn.Parameter(torch.tensor(math.log(outputscale), dtype=torch.float64))
        )


class SEKernel(_SingleScaleKernel):
    r"""Squared exponential :math:`\sigma^2 e^{-d^2/(2\ell^2)}` (``log_outputscale``, ``log_lengthscale``)."""

    def profile_derivatives(self, d: Tensor, order: int = 0) -> list[Tensor]:
        """Kernel profile and its derivatives in the lag ``d`` up to ``order`` (analytic)."""
        order = _check_order(order)
        s = 0.5 * torch.exp(-2.0 * self.log_lengthscale)
        scale = torch.exp(self.log_outputscale)
        return [scale * g for g in gaussian_envelope_derivatives(d, s, order)]


class Matern52Kernel(_SingleScaleKernel):
    r"""Matern-5/2 :math:`\sigma^2(1 + \sqrt5|d|/\ell + \tfrac53 d^2/\ell^2)e^{-\sqrt5|d|/\ell}`."""

    def profile_derivatives(self, d: Tensor, order: int = 0) -> list[Tensor]:
        """Kernel profile and its derivatives in the lag ``d`` up to ``order`` (analytic, exact at 0)."""
        order = _check_order(order)
        a = SQRT5 * torch.exp(-self.log_lengthscale)
        scale = torch.exp(self.log_outputscale)
        return [scale * m for m in matern52_envelope_derivatives(d, a, order)]


KERNELS: dict[str, Callable[..., StationaryKernel1D]] = {
    "stm": StudentTMixtureKernel,
    "gm": GaussianMixtureKernel,
    "se": SEKernel,
    "matern": Matern52Kernel,
}


def make_kernel(
    name: str,
    *,
    n_components: int = 30,
    freq_scale: float = 1.0,
    lengthscale: float = 1.0,
    active_dims: int | Sequence[int] | None = None,
) -> StationaryKernel1D:
    """Build a kernel by name: ``"stm"``, ``"gm"`` (mixtures, ``n_components``, ``freq_scale``), ``"se"`` or
    ``"matern"`` (``lengthscale``)."""
    if name not in KERNELS:
        raise ConfigError(f"unknown kernel {name!r}; expected one of {sorted(KERNELS)}")
    if name in ("stm", "gm"):
        return KERNELS[name](n_components=n_components, freq_scale=freq_scale, active_dims=active_dims)
    return KERNELS[name](lengthscale=lengthscale, active_dims=active_dims)
