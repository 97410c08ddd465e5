r"""The Newton kernel :math:`1/|x|` as a sum of Gaussians (sinc quadrature) and its range separation.

Following the range-separated (RS) tensor format of Benner, Khoromskaia and Khoromskij (SIAM J. Sci. Comput.
40, 2018) used in arXiv 2503.01696 (Sec. 5), the Laplace-Gauss transform

.. math:: \frac{1}{r} = \frac{2}{\sqrt\pi}\int_0^\infty e^{-r^2 t^2}\,dt
          = \frac{1}{\sqrt\pi}\int_{-\infty}^{\infty} \cosh u\; e^{-r^2 \sinh^2 u}\,du
          \qquad (t = \sinh u)

is discretised by the sinc (trapezoidal) rule with step :math:`h` on :math:`u_k = k h`, :math:`|k| \le M`;
the integrand is even and decays doubly exponentially, so

.. math:: \frac{1}{r} \approx \sum_{k=0}^{M} a_k\, e^{-p_k r^2}, \qquad p_k = \sinh^2(k h),\quad
          a_0 = \frac{h}{\sqrt\pi},\quad a_k = \frac{2 h \cosh(k h)}{\sqrt\pi},

uniformly in relative error on :math:`[r_{\min}, r_{\max}]` (:func:`newton_sinc_quadrature` picks
:math:`h` and :math:`M` for a tolerance). Each Gaussian is separable,
:math:`e^{-p|x|^2} = \prod_l e^{-p x_l^2}`, so the kernel is a canonical (CP) tensor of rank
:math:`R = M + 1`. Its terms are ordered by increasing exponent: the **long-range part** is the first
:math:`R_l` terms (the paper's default :math:`R_l = \lceil R/2 \rceil - 3`), smooth and of low Tucker rank;
the rest is the short-range part, negligible beyond a small radius. For charges :math:`q_i` at :math:`x_i`,

.. math:: P_{lr}(x) = \sum_{i=1}^{N} q_i \sum_{k < R_l} a_k \prod_{l=1}^{d} e^{-p_k (x_l - x_{i,l})^2}

is a CP tensor of rank :math:`N R_l`; :func:`newton_potential` samples its factors at the Chebyshev points
and compresses it with the RHOSVD (:func:`sciml.solvers.chebyshev_tucker.from_cp`) without forming the full
tensor; its Tucker ranks grow only logarithmically with :math:`N`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorly as tl
from scipy.optimize import minimize_scalar

from sciml.errors import ConfigError, SolverError
from sciml.solvers.chebyshev_basis import chebyshev_points
from sciml.solvers.chebyshev_tucker import ChebyshevTucker, from_cp
from sciml.solvers.tensor_backend import resolve_backend, to_numpy
from sciml.solvers.tensor_checks import check_box, check_degrees, check_finite, check_tol

logger = logging.getLogger(__name__)

__all__ = ["GaussianSum", "long_range_cp", "newton_potential", "newton_sinc_quadrature"]


@dataclass(frozen=True)
class GaussianSum:
    r"""A radial kernel as a sum of Gaussians :math:`K(r) = \sum_k a_k e^{-p_k r^2}`, exponents ascending.

    ``step`` (:math:`h`), ``r_min``, ``r_max`` and ``max_rel_error`` (of :math:`K` against :math:`1/r` on
    :math:`[r_{\min}, r_{\max}]`) describe the quadrature it came from (``max_rel_error`` is ``nan`` for a
    part of it).
    """

    exponents: np.ndarray
    weights: np.ndarray
    step: float = math.nan
    r_min: float = math.nan
    r_max: float = math.nan
    max_rel_error: float = math.nan

    @property
    def rank(self) -> int:
        """Number of terms :math:`R` (the CP rank of the kernel tensor)."""
        return int(self.exponents.size)

    def __call__(self, r: Any) -> np.ndarray:
        r""":math:`K(r)` for an array of radii (numpy, float64)."""
        r2 = np.asarray(to_numpy(r), dtype=np.float64) ** 2
        out = np.zeros_like(r2)
        for p, a in zip(self.exponents, self.weights, strict=True):
            out += a * np.exp(-p * r2)
        return out

    def default_long_rank(self) -> int:
        r"""The paper's number of long-range terms :math:`R_l = \lceil R/2 \rceil - 3` (at least 1)."""
        return max(1, math.ceil(self.rank / 2) - 3)

    def split(self, n_long: int | None = None) -> tuple[GaussianSum, GaussianSum]:
        r"""Range separation :math:`K = K_{lr} + K_{sr}`: the first ``n_long`` terms (smallest exponents,
        default :meth:`default_long_rank`) and the rest."""
        n_long = self.default_long_rank() if n_long is None else n_long
        if not isinstance(n_long, (int, np.integer)) or not 1 <= n_long <= self.rank:
            raise ConfigError(f"n_long must be an integer in [1, {self.rank}], got {n_long!r}")
        head = GaussianSum(self.exponents[:n_long], self.weights[:n_long], self.step, self.r_min, self.r_max)
        tail = GaussianSum(self.exponents[n_long:], self.weights[n_long:], self.step, self.r_min, self.r_max)
        return head, tail

    def support_radius(self, rel_tol: float = 1e-8, r_max: float | None = None) -> float:
        r"""Smallest :math:`r_c` with :math:`K(r) \le \mathrm{rel\_tol}/r` for all sampled
        :math:`r \in [r_c, r_{\max}]`: the effective support of a short-range part."""
        hi = self.r_max if r_max is None else r_max
        if not np.isfinite(hi):
            raise ConfigError("support_radius needs r_max (this sum has no quadrature range)")
        r = np.geomspace(1e-6 * hi, hi, 4000)
        above = np.nonzero(self(r) * r > rel_tol)[0]
        return 0.0 if above.size == 0 else float(r[min(above[-1] + 1, r.size - 1)])


def _sinc_terms(m: int, h: float) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(m + 1)
    p = np.sinh(k * h) ** 2
    a = 2.0 * h * np.cosh(k * h) / math.sqrt(math.pi)
    a[0] *= 0.5
    return p, a


def _max_rel_error(p: np.ndarray, a: np.ndarray, r: np.ndarray) -> float:
    return float(np.abs(np.exp(-np.outer(r * r, p)) @ a * r - 1.0).max())


def newton_sinc_quadrature(
    r_min: float = 2.0 / 256,
    r_max: float = 2.0 * math.sqrt(3.0),
    tol: float = 1e-8,
    n_terms: int | None = None,
    step: float | None = None,
) -> GaussianSum:
    r"""Sinc-quadrature Gaussian sum for :math:`1/r` on :math:`[r_{\min}, r_{\max}]` (see the module
    docstring): :math:`\frac1r \approx \sum_{k=0}^{M} a_k e^{-\sinh^2(kh) r^2}`.

    Defaults: :math:`r_{\min} = 2/256` (one cell of the paper's :math:`256^3` grid on :math:`[-1,1]^3`),
    :math:`r_{\max} = 2\sqrt3` (the box diagonal). With ``step=None`` the step :math:`h` minimises the
    maximal relative error on 1000 log-spaced radii (it comes out near the classical
    :math:`h \approx C_0 \log M / M`, :math:`C_0 \approx 2`); with ``n_terms=None`` the smallest
    :math:`R = M + 1` reaching ``tol`` is used.
    """
    if not (np.isfinite(r_min) and np.isfinite(r_max) and 0 < r_min < r_max):
        raise ConfigError(f"need 0 < r_min < r_max (finite), got r_min={r_min!r}, r_max={r_max!r}")
    tol = check_tol(tol)
    if n_terms is not None and (not isinstance(n_terms, (int, np.integer)) or n_terms < 2):
        raise ConfigError(f"n_terms must be an integer >= 2, got {n_terms!r}")
    if step is not None and not (np.isfinite(step) and step > 0):
        raise ConfigError(f"step must be > 0, got {step!r}")
    radii = np.geomspace(r_min, r_max, 1000)

    def build(m: int) -> tuple[float, float]:
        return _step_and_error(m, radii, step)

    if n_terms is not None:
        m = int(n_terms) - 1
        h, err = build(m)
    else:
        m, h, err = _fewest_terms(build, tol, r_min, r_max)
    p, a = _sinc_terms(m, h)
    logger.debug("newton_sinc_quadrature: R=%d terms, h=%.4f, max rel error %.2e", m + 1, h, err)
    return GaussianSum(p, a, h, float(r_min), float(r_max), err)


def _step_and_error(m: int, radii: np.ndarray, step: float | None) -> tuple[float, float]:
    """The step :math:`h` for :math:`M = m` (``step``, or the one minimising the maximal relative error on
    ``radii``) and that error."""
    if step is not None:
        return float(step), _max_rel_error(*_sinc_terms(m, step), radii)
    res = minimize_scalar(
        lambda lh: math.log(_max_rel_error(*_sinc_terms(m, math.exp(lh)), radii) + 1e-300),
        bounds=(math.log(0.01), math.log(3.0)),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return math.exp(res.x), math.exp(res.fun)


def _fewest_terms(
    build: Callable[[int], tuple[float, float]], tol: float, r_min: float, r_max: float
) -> tuple[int, float, float]:
    """The smallest :math:`M` (at most 400) whose quadrature ``build(M) -> (h, error)`` reaches ``tol``: grow
    :math:`M` geometrically, then bisect back; returns :math:`M`, :math:`h` and the error."""
    lo, m = 3, 4  # lo: largest M known to fail
    while True:
        h, err = build(m)
        if err <= tol:
            break
        if m >= 400:
            raise SolverError(
                f"sinc quadrature of 1/r did not reach tol={tol:g} on [{r_min:g}, {r_max:g}] with "
                f"401 terms (error {err:.2e})"
            )
        lo, m = m, min(400, m + max(1, m // 5))
    while m - lo > 1:
        mid = (lo + m) // 2
        h_mid, err_mid = build(mid)
        if err_mid <= tol:
            m, h, err = mid, h_mid, err_mid
        else:
            lo = mid
    return m, h, err


def long_range_cp(
    charges: Any,
    positions: Any,
    kernel: GaussianSum,
    box: Any = ((-1.0, 1.0),) * 3,
    degree: int | tuple[int, ...] = 64,
    *,
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[list[Any], Any]:
    r"""CP factors (values at the Chebyshev points of ``box``) and weights of
    :math:`\sum_i q_i K(|x - x_i|)` for a Gaussian sum :math:`K`:
    :math:`A_l[j, (i, k)] = e^{-p_k (x_{l,j} - x_{i,l})^2}`, :math:`w_{(i,k)} = q_i a_k` (rank :math:`N R`),
    built in the chosen backend."""
    be = resolve_backend(backend, dtype, device, charges, positions)
    boxa = check_box(box)
    d = boxa.shape[0]
    degs = check_degrees(degree, d)
    q = be.asarray(charges).reshape(-1)
    pos = be.asarray(positions)
    if pos.ndim != 2 or tuple(pos.shape) != (q.shape[0], d):
        raise SolverError(f"positions must have shape (N={q.shape[0]}, {d}), got {tuple(pos.shape)}")
    check_finite(q, "charges")
    check_finite(pos, "positions")
    p = be.asarray(kernel.exponents)
    with be.context():
        mats = []
        for k in range(d):
            x = be.asarray(chebyshev_points(degs[k], *boxa[k]))
            diff2 = (x[:, None] - pos[None, :, k]) ** 2  # (n+1) x N
            mats.append(tl.reshape(tl.exp(-diff2[:, :, None] * p[None, None, :]), (x.shape[0], -1)))
        weights = tl.reshape(q[:, None] * be.asarray(kernel.weights)[None, :], (-1,))
    return mats, weights


def newton_potential(
    charges: Any,
    positions: Any,
    box: Any = ((-1.0, 1.0),) * 3,
    degree: int | tuple[int, ...] = 64,
    tol: float = 1e-7,
    kernel: GaussianSum | None = None,
    n_long: int | None = None,
    *,
    norm: str = "coefficients",
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ChebyshevTucker:
    r"""Long-range part :math:`P_{lr}(x) = \sum_i q_i K_{lr}(|x - x_i|)` of the multi-particle Newton
    potential :math:`\sum_i q_i/|x - x_i|` in the Chebyshev-Tucker format (arXiv 2503.01696, Sec. 5).

    ``kernel`` is the Gaussian sum of :math:`1/r` (default :func:`newton_sinc_quadrature` with
    :math:`r_{\max}` the box diagonal and :math:`r_{\min}` = smallest side / 256, one cell of a
    :math:`256^3` grid; the same as its defaults on :math:`[-1,1]^3`); :math:`K_{lr}` is its first ``n_long``
    terms (default :math:`\lceil R/2 \rceil - 3`). The CP tensor of rank :math:`N R_l`
    (:func:`long_range_cp`) is compressed by the RHOSVD of :func:`~sciml.solvers.chebyshev_tucker.from_cp`;
    the full tensor is never formed.
    Evaluate the exact reference with ``kernel.split(n_long)[0]`` (a :class:`GaussianSum`).
    """
    boxa = check_box(box)
    if kernel is None:
        width = boxa[:, 1] - boxa[:, 0]
        kernel = newton_sinc_quadrature(float(width.min()) / 256, float(np.linalg.norm(width)))
    if not isinstance(kernel, GaussianSum):
        raise ConfigError(f"kernel must be a GaussianSum, got {type(kernel).__name__}")
    long_part, _ = kernel.split(n_long)
    mats, weights = long_range_cp(
        charges, positions, long_part, boxa, degree, backend=backend, dtype=dtype, device=device
    )
    logger.debug(
        "newton_potential: N=%d particles, %d of %d Gaussian terms, CP rank %d",
        int(weights.shape[0]) // long_part.rank,
        long_part.rank,
        kernel.rank,
        int(weights.shape[0]),
    )
    return from_cp(
        mats, boxa, weights=weights, tol=tol, norm=norm, backend=backend, dtype=dtype, device=device
    )
