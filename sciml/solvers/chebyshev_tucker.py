r"""Mesh-free two-level Chebyshev-Tucker approximation of multivariate functions.

Implements the hybrid format of Khoromskij, Khoromskaia et al., "A mesh-free hybrid Chebyshev-Tucker tensor
format with applications to multi-particle modelling" (arXiv 2503.01696):

* **Level 1** (tensor-product Chebyshev interpolation). On a box :math:`\prod_i [a_i, b_i]` a function is
  sampled at the Chebyshev points of the second kind :math:`x_j = \cos(\pi j / n)`, :math:`j = 0..n`, mapped
  affinely to each side, and its interpolant is written as

  .. math:: f(x) \approx \sum_{i_1 \dots i_d} C_{i_1 \dots i_d}\, T_{i_1}(t_1) \cdots T_{i_d}(t_d),
            \qquad t_k = \frac{2 x_k - a_k - b_k}{b_k - a_k},

  with the coefficients computed per axis by a DCT-I: :math:`c = \mathrm{DCT\text{-}I}(v)/n`, then the first
  and the last coefficient halved.
* **Level 2** (Tucker of the coefficient tensor). :math:`C \approx G \times_1 V_1 \times_2 V_2 \times_3 V_3`
  (truncated HOSVD, optionally refined by HOOI / Tucker-ALS through ``tensorly``), so that

  .. math:: f(x) \approx \sum_{a,b,c} g_{abc}\, \phi_a(x_1) \psi_b(x_2) \chi_c(x_3),
            \qquad \phi_a = \sum_i V_1[i, a]\, T_i .

  Ranks come from a tolerance with the rule of the authors' ``hosvd_s``: per mode the smallest :math:`r` with
  :math:`\sqrt{\sum_{j \ge r} \sigma_j^2} \le \mathrm{tol}\, \|C\|_F / \sqrt{d}`; the HOSVD error is then at
  most :math:`\mathrm{tol}\,\|C\|_F` in the coefficients (reported as ``error_estimate``).

Evaluating the Tucker factors on any tensor grid gives the algebraic Tucker tensor with factors
:math:`U_k = T(\text{grid}_k) V_k` (:meth:`ChebyshevTucker.on_grid`). Three builders: from a vectorised
function (:func:`chebyshev_tucker`), from a full tensor on a uniform grid (:func:`from_grid_tensor`, spline
interpolation to the Chebyshev points) and from a canonical (CP) tensor on the Chebyshev points
(:func:`from_cp`, the reduced HOSVD that never forms the full tensor). :func:`newton_potential` builds the
long-range part of a multi-particle Coulomb potential
:math:`\sum_i q_i\, \mathrm{erf}(|x-x_i|/\delta)/|x-x_i|`
from its Gauss-Legendre CP representation.

Everything runs in float64 on numpy (tensorly's numpy backend for HOOI).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.interpolate

from sciml.errors import ConfigError, SolverError

logger = logging.getLogger(__name__)

__all__ = [
    "ChebyshevTucker",
    "GridTucker",
    "chebyshev_points",
    "chebyshev_tucker",
    "chebyshev_vandermonde",
    "coefficients_from_values",
    "from_coefficients",
    "from_cp",
    "from_grid_tensor",
    "long_range_kernel",
    "newton_potential",
    "rank_from_singular_values",
]


# ----------------------------------------------------------------------------------------------------------
# validation helpers


def _check_tol(tol: float) -> float:
    if not (isinstance(tol, (int, float, np.floating)) and 0.0 < float(tol) < 1.0):
        raise ConfigError(f"tolerance must be a number in (0, 1), got {tol!r}")
    return float(tol)


def _check_box(box: Sequence[Sequence[float]] | np.ndarray, d: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"box must be a sequence of (a, b) pairs, got {box!r}") from exc
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ConfigError(f"box must have shape (d, 2) of (a_i, b_i) pairs, got shape {arr.shape}")
    if d is not None and arr.shape[0] != d:
        raise ConfigError(f"box has {arr.shape[0]} sides but the data has dimension {d}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"box bounds must be finite, got {arr.tolist()}")
    width = arr[:, 1] - arr[:, 0]
    if np.any(width <= 0):
        bad = int(np.argmin(width))
        raise ConfigError(
            f"box side {bad} is [{arr[bad, 0]}, {arr[bad, 1]}] of width {width[bad]}; "
            "expected a < b (positive width)"
        )
    return arr


def _check_degrees(degree: int | Sequence[int], d: int) -> tuple[int, ...]:
    degs = (degree,) * d if isinstance(degree, (int, np.integer)) else tuple(degree)
    if len(degs) != d:
        raise ConfigError(f"degree must be an int or {d} ints (one per dimension), got {degree!r}")
    for k in degs:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"each Chebyshev degree must be an integer >= 1, got {degree!r}")
    return tuple(int(k) for k in degs)


def _check_finite(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        raise SolverError(
            f"{what} must be finite; found {values[tuple(bad)]} at index {tuple(int(i) for i in bad)} "
            f"({int(np.sum(~np.isfinite(values)))} non-finite entries)"
        )


# ----------------------------------------------------------------------------------------------------------
# level 1: Chebyshev interpolation


def chebyshev_points(n: int, a: float = -1.0, b: float = 1.0) -> np.ndarray:
    r"""The ``n + 1`` Chebyshev points of the second kind on ``[a, b]``:
    :math:`x_j = \frac{a+b}{2} + \frac{b-a}{2} \cos(\pi j / n)`, :math:`j = 0..n`
    (descending, from ``b`` to ``a``)."""
    if n < 1:
        raise ConfigError(f"Chebyshev degree must be >= 1, got {n}")
    t = np.cos(np.pi * np.arange(n + 1) / n)
    t[np.abs(t) < 1e-15] = 0.0
    return 0.5 * (a + b) + 0.5 * (b - a) * t


def coefficients_from_values(values: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
    r"""Chebyshev coefficients from values at the second-kind points along ``axes`` (default all) by DCT-I.

    For values :math:`v_j = p(\cos(\pi j/n))` of :math:`p = \sum_k c_k T_k`:
    :math:`c_k = \frac{1}{n}\mathrm{DCT\text{-}I}(v)_k` for :math:`0 < k < n` and half of it for
    :math:`k = 0, n` (chebfun's ``vals2coeffs``; paper, Sec. 2).
    """
    c = np.asarray(values, dtype=np.float64)
    for ax in range(c.ndim) if axes is None else axes:
        n = c.shape[ax] - 1
        if n < 1:
            raise SolverError(
                f"need at least 2 values along axis {ax} for Chebyshev coefficients, got {n + 1}"
            )
        c = scipy.fft.dct(c, type=1, axis=ax) / n
        edge = [slice(None)] * c.ndim
        edge[ax] = [0, n]
        c[tuple(edge)] *= 0.5
    return c


def chebyshev_vandermonde(t: np.ndarray, degree: int) -> np.ndarray:
    r"""Matrix :math:`[T_k(t_m)]_{m,k}` for :math:`k = 0..\text{degree}` by the three-term recurrence
    :math:`T_{k+1} = 2 t T_k - T_{k-1}`; ``t`` in the reference interval [-1, 1]."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    out = np.empty((t.size, degree + 1))
    out[:, 0] = 1.0
    if degree >= 1:
        out[:, 1] = t
    for k in range(2, degree + 1):
        out[:, k] = 2.0 * t * out[:, k - 1] - out[:, k - 2]
    return out


def _derivative_coefficients(c: np.ndarray, scale: float) -> np.ndarray:
    r"""Coefficients (rows) of :math:`d/dx` of a Chebyshev series on an interval with ``scale = 2/(b-a)``:
    :math:`c'_{k-1} = c'_{k+1} + 2 k c_k` for :math:`k = n..1`, then :math:`c'_0 \mathrel{/}= 2`."""
    n = c.shape[0] - 1
    if n == 0:
        return np.zeros_like(c)
    out = np.zeros((n + 2, *c.shape[1:]))
    for k in range(n, 0, -1):
        out[k - 1] = out[k + 1] + 2.0 * k * c[k]
    out[0] *= 0.5
    return out[:n] * scale


def _integral_weights(n: int) -> np.ndarray:
    r""":math:`\int_{-1}^1 T_k = 2/(1-k^2)` for even ``k``, 0 for odd (Clenshaw-Curtis weights in coefficient
    space)."""
    k = np.arange(n + 1)
    w = np.zeros(n + 1)
    even = k % 2 == 0
    w[even] = 2.0 / (1.0 - k[even] ** 2)
    return w


# ----------------------------------------------------------------------------------------------------------
# level 2: Tucker of the coefficient tensor


def rank_from_singular_values(sigma: np.ndarray, tol: float, norm: float, d: int) -> int:
    r"""Smallest rank :math:`r \ge 1` with
    :math:`\sqrt{\sum_{j \ge r} \sigma_j^2} \le \mathrm{tol}\,\|C\|_F/\sqrt{d}`
    (the authors' ``hosvd_s`` rule)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    tails = np.sqrt(np.cumsum((sigma**2)[::-1])[::-1])  # tails[r] = sqrt(sum_{j >= r} sigma_j^2)
    threshold = tol * norm / math.sqrt(d)
    ok = np.nonzero(np.append(tails, 0.0) <= threshold)[0]
    return max(1, int(ok[0]))


def _unfold(x: np.ndarray, mode: int) -> np.ndarray:
    return np.moveaxis(x, mode, 0).reshape(x.shape[mode], -1)


def _mode_product(x: np.ndarray, m: np.ndarray, mode: int) -> np.ndarray:
    """``x`` times matrix ``m`` (new_size x old_size) along ``mode``."""
    return np.moveaxis(np.tensordot(m, x, axes=(1, mode)), 0, mode)


def _resolve_ranks(ranks: int | Sequence[int] | None, d: int) -> tuple[int, ...] | None:
    if ranks is None:
        return None
    rs = (ranks,) * d if isinstance(ranks, (int, np.integer)) else tuple(ranks)
    if len(rs) != d or any((not isinstance(r, (int, np.integer))) or r < 1 for r in rs):
        raise ConfigError(f"ranks must be an int >= 1 or {d} such ints, got {ranks!r}")
    return tuple(int(r) for r in rs)


def _mode_svd(
    a: np.ndarray, tol: float, norm: float, d: int, rank: int | None, svd: str
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Left singular vectors, singular values and chosen rank of an unfolding ``a`` (m x M, m << M).

    ``svd="gram"``: eigen-decomposition of :math:`a a^T` (m x m), much faster than the SVD of the wide
    unfolding; its eigenvalues carry an absolute error :math:`\sim \epsilon \sigma_1^2`, which adds at most
    that much to the squared projection error. ``"exact"``: LAPACK SVD. ``"auto"``: Gram when the squared
    truncation level (the discarded tail at a fixed rank, :math:`\mathrm{tol}^2\|C\|_F^2/d` otherwise) exceeds
    :math:`10 \epsilon \sigma_1^2`, the exact SVD otherwise (checked against the exact SVD in the tests).
    """
    if svd in ("gram", "auto"):
        w, v = np.linalg.eigh(a @ a.T)
        lam = np.clip(w[::-1], 0.0, None)
        s, u = np.sqrt(lam), v[:, ::-1]
        r = rank_from_singular_values(s, tol, norm, d) if rank is None else min(rank, s.size)
        noise = 10.0 * np.finfo(np.float64).eps * (lam[0] if lam.size else 0.0)
        level = float(np.sum(lam[r:])) if rank is not None else (tol * norm) ** 2 / d
        safe = level > noise
        if svd == "gram" or lam[0] == 0 or safe:
            return u, s, r
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    r = rank_from_singular_values(s, tol, norm, d) if rank is None else min(rank, s.size)
    return u, s, r


def _hosvd(
    c: np.ndarray, tol: float, ranks: tuple[int, ...] | None, hooi_iters: int, svd: str = "auto"
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], float]:
    """Truncated HOSVD (optionally HOOI-refined) of ``c``.

    Returns core, factors, singular values and the relative error bound."""
    d = c.ndim
    norm = float(np.linalg.norm(c))
    factors, sigmas, tails2 = [], [], 0.0
    for mode in range(d):
        u, s, r = _mode_svd(_unfold(c, mode), tol, norm, d, None if ranks is None else ranks[mode], svd)
        factors.append(u[:, :r])
        sigmas.append(s)
        tails2 += float(np.sum(s[r:] ** 2))
    if hooi_iters > 0 and norm > 0:
        import tensorly as tl
        from tensorly.decomposition import tucker

        # a context, not set_backend: the backend is process-global and neuraloperator needs "pytorch"
        with tl.backend_context("numpy"):
            tt = tucker(c, rank=[f.shape[1] for f in factors], n_iter_max=hooi_iters, init="svd", tol=1e-12)
            core, factors = np.asarray(tt[0]), [np.asarray(f) for f in tt[1]]
            err = float(np.linalg.norm(c - tl.tucker_to_tensor((core, factors)))) / norm
        return core, factors, sigmas, err
    core = c
    for mode, f in enumerate(factors):
        core = _mode_product(core, f.T, mode)
    return core, factors, sigmas, (math.sqrt(tails2) / norm if norm > 0 else 0.0)


# ----------------------------------------------------------------------------------------------------------
# result objects


@dataclass
class GridTucker:
    r"""Algebraic Tucker tensor :math:`A = G \times_1 U_1 \cdots \times_d U_d` on a tensor grid,
    :math:`U_k = T(\text{grid}_k) V_k` (paper, Sec. 3: two-level orthogonal Tucker tensor)."""

    core: np.ndarray
    factors: list[np.ndarray]

    def full(self) -> np.ndarray:
        """The full tensor (size ``prod(len(grid_k))``)."""
        out = self.core
        for mode, u in enumerate(self.factors):
            out = _mode_product(out, u, mode)
        return out

    def to_tensorly(self):
        """The same tensor as a ``tensorly.tucker_tensor.TuckerTensor``."""
        from tensorly.tucker_tensor import TuckerTensor

        return TuckerTensor((self.core, list(self.factors)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(u.shape[0] for u in self.factors)


@dataclass
class ChebyshevTucker:
    r"""A function on a box in the two-level Chebyshev-Tucker format (arXiv 2503.01696):

    .. math:: f(x) \approx \sum_{a_1..a_d} G_{a_1..a_d} \prod_k \sum_{i} V_k[i, a_k] T_i(t_k(x_k)).

    Attributes: ``core`` :math:`G` (r_1 x ... x r_d), ``factors`` :math:`V_k` ((n_k + 1) x r_k, Chebyshev
    coefficients of the basis functions), ``box`` (d x 2), ``singular_values`` (per mode, of the coefficient
    tensor's unfoldings, for the decay plot), ``error_estimate`` (relative Frobenius error of the Tucker step
    in the coefficients: the discarded singular-value tail, or the exact HOOI error).
    """

    core: np.ndarray
    factors: list[np.ndarray]
    box: np.ndarray
    singular_values: list[np.ndarray] = field(default_factory=list)
    error_estimate: float = 0.0

    # -- sizes -----------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.factors)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Tucker ranks :math:`(r_1, .., r_d)`."""
        return tuple(int(f.shape[1]) for f in self.factors)

    @property
    def degrees(self) -> tuple[int, ...]:
        """Chebyshev degrees :math:`(n_1, .., n_d)`."""
        return tuple(int(f.shape[0]) - 1 for f in self.factors)

    @property
    def storage(self) -> int:
        """Number of floats stored: :math:`\\prod r_k + \\sum (n_k + 1) r_k`."""
        return int(self.core.size + sum(f.size for f in self.factors))

    @property
    def compression_ratio(self) -> float:
        """Size of the full coefficient tensor :math:`\\prod (n_k + 1)` over :attr:`storage`."""
        return float(np.prod([f.shape[0] for f in self.factors])) / self.storage

    # -- evaluation ------------------------------------------------------------------------------------
    def _reference(self, x: np.ndarray, k: int) -> np.ndarray:
        a, b = self.box[k]
        return (2.0 * x - a - b) / (b - a)

    def _check_inside(self, x: np.ndarray, k: int) -> None:
        a, b = self.box[k]
        slack = 1e-12 * (b - a)
        if x.size and (x.min() < a - slack or x.max() > b + slack):
            raise SolverError(
                f"coordinates along axis {k} must lie in the box [{a}, {b}], got range [{x.min()}, {x.max()}]"
            )

    def basis(self, k: int, x: np.ndarray) -> np.ndarray:
        r"""Values of the mode-``k`` Tucker basis functions at ``x``:
        :math:`U = T(t(x)) V_k` (len(x) x r_k)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        _check_finite(x, f"grid along axis {k}")
        self._check_inside(x, k)
        return chebyshev_vandermonde(self._reference(x, k), self.degrees[k]) @ self.factors[k]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Mesh-free evaluation at ``points`` of shape ``[M, d]`` (or ``[d]`` for a single point)."""
        pts = np.asarray(points, dtype=np.float64)
        single = pts.ndim == 1
        if single:
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] != self.ndim:
            raise SolverError(f"points must have shape [M, {self.ndim}], got {tuple(np.shape(points))}")
        _check_finite(pts, "points")
        m = pts.shape[0]
        us = [self.basis(k, pts[:, k]) for k in range(self.ndim)]
        # contract the core with the first factor, then fold in the others point by point
        acc = us[0] @ self.core.reshape(self.ranks[0], -1)  # M x (r_2 .. r_d)
        for k in range(1, self.ndim):
            acc = acc.reshape(m, self.ranks[k], -1)
            acc = np.einsum("mbr,mb->mr", acc, us[k])
        out = acc.reshape(m)
        return out[0] if single else out

    def on_grid(self, *axes: np.ndarray) -> GridTucker:
        """Tucker tensor of the function on the tensor grid ``axes[0] x ... x axes[d-1]``
        (factors T(grid) V)."""
        if len(axes) != self.ndim:
            raise SolverError(f"on_grid needs {self.ndim} grid vectors, got {len(axes)}")
        return GridTucker(core=self.core.copy(), factors=[self.basis(k, ax) for k, ax in enumerate(axes)])

    def coefficients(self) -> np.ndarray:
        """The (reconstructed) full Chebyshev coefficient tensor :math:`G \\times_k V_k`."""
        return GridTucker(self.core, self.factors).full()

    # -- calculus --------------------------------------------------------------------------------------
    def derivative(self, axis: int, order: int = 1) -> ChebyshevTucker:
        r""":math:`\partial^{order} f / \partial x_{axis}^{order}` in the same
        format: the Chebyshev derivative recurrence applied to the columns of :math:`V_{axis}`
        (ranks unchanged, degree lowered by ``order``)."""
        if not isinstance(axis, (int, np.integer)) or not 0 <= axis < self.ndim:
            raise ConfigError(f"axis must be an integer in [0, {self.ndim}), got {axis!r}")
        if not isinstance(order, (int, np.integer)) or order < 0:
            raise ConfigError(f"derivative order must be an integer >= 0, got {order!r}")
        a, b = self.box[axis]
        v = self.factors[axis]
        for _ in range(order):
            v = _derivative_coefficients(v, 2.0 / (b - a))
            if v.shape[0] == 0:
                v = np.zeros((1, v.shape[1]))
        factors = list(self.factors)
        factors[axis] = v
        return ChebyshevTucker(
            self.core.copy(), factors, self.box.copy(), self.singular_values, self.error_estimate
        )

    def integral(self) -> float:
        r""":math:`\int_{box} f = G \times_k \big(\tfrac{b_k-a_k}{2} w^T V_k\big)`,
        :math:`w_i = \int_{-1}^1 T_i`."""
        out = self.core
        for k in range(self.ndim):
            a, b = self.box[k]
            w = 0.5 * (b - a) * (_integral_weights(self.degrees[k]) @ self.factors[k])
            out = np.tensordot(w, out, axes=(0, 0))
        return float(out)


# ----------------------------------------------------------------------------------------------------------
# builders


def from_coefficients(
    coefficients: np.ndarray,
    box: Sequence[Sequence[float]] | np.ndarray,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    hooi_iters: int = 0,
    svd: str = "auto",
) -> ChebyshevTucker:
    r"""Level 2 only: Tucker decomposition of a given Chebyshev coefficient tensor :math:`C`.

    Ranks from ``tol`` by :func:`rank_from_singular_values` unless ``ranks`` is given; ``hooi_iters > 0``
    refines the truncated HOSVD by that many HOOI (Tucker-ALS) sweeps of ``tensorly.decomposition.tucker``.
    ``svd`` selects how the mode singular vectors are computed ("auto", "gram" or "exact", see
    :func:`_mode_svd`); with "auto" and a loose tolerance, ``singular_values`` below ~1e-7 relative are
    round-off level (use "exact" for decay plots).
    """
    if svd not in ("auto", "gram", "exact"):
        raise ConfigError(f"svd must be 'auto', 'gram' or 'exact', got {svd!r}")
    c = np.asarray(coefficients, dtype=np.float64)
    _check_finite(c, "Chebyshev coefficients")
    boxa = _check_box(box, c.ndim)
    tol = _check_tol(tol)
    if any(s < 2 for s in c.shape):
        raise ConfigError(f"coefficient tensor needs degree >= 1 per mode, got shape {c.shape}")
    if not isinstance(hooi_iters, (int, np.integer)) or hooi_iters < 0:
        raise ConfigError(f"hooi_iters must be an integer >= 0, got {hooi_iters!r}")
    core, factors, sigmas, err = _hosvd(c, tol, _resolve_ranks(ranks, c.ndim), int(hooi_iters), svd)
    return ChebyshevTucker(core, factors, boxa, sigmas, err)


def chebyshev_tucker(
    f: Callable[..., np.ndarray],
    box: Sequence[Sequence[float]] | np.ndarray = ((-1.0, 1.0),) * 3,
    degree: int | Sequence[int] = 32,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    hooi_iters: int = 0,
    svd: str = "auto",
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation of a vectorised function ``f(x1, .., xd)`` (arXiv 2503.01696, Alg. 1).

    ``f`` is called once on the broadcastable Chebyshev grid (``x_k`` of shape ``(1, .., n_k + 1, .., 1)``),
    the coefficients :math:`C` follow by DCT-I per axis and :math:`C` is Tucker-compressed with ranks chosen
    from ``tol`` (or fixed ``ranks``). Cost: :math:`\prod (n_k+1)` evaluations plus :math:`O(n^{d+1})`.
    """
    boxa = _check_box(box)
    d = boxa.shape[0]
    degs = _check_degrees(degree, d)
    tol = _check_tol(tol)
    grids = []
    for k, (n, (a, b)) in enumerate(zip(degs, boxa, strict=False)):
        shape = [1] * d
        shape[k] = n + 1
        grids.append(chebyshev_points(n, a, b).reshape(shape))
    values = np.broadcast_to(np.asarray(f(*grids), dtype=np.float64), tuple(n + 1 for n in degs))
    _check_finite(values, "function values at the Chebyshev points")
    return from_coefficients(coefficients_from_values(values), boxa, tol, ranks, hooi_iters, svd)


def from_grid_tensor(
    values: np.ndarray,
    box: Sequence[Sequence[float]] | np.ndarray,
    degree: int | Sequence[int] | None = None,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    spline_order: int = 3,
    hooi_iters: int = 0,
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation from a full tensor on the uniform grid ``linspace(a_k, b_k, N_k)``.

    The tensor is interpolated to the Chebyshev points one axis at a time with an interpolating B-spline of
    order ``spline_order`` (1, 3 or 5; not-a-knot ends, so the error is :math:`O(h^{p+1})` of the uniform grid
    spacing), then handled as in :func:`chebyshev_tucker`. ``degree`` defaults to ``N_k - 1``.
    """
    vals = np.asarray(values, dtype=np.float64)
    _check_finite(vals, "grid tensor")
    boxa = _check_box(box, vals.ndim)
    if any(s < 2 for s in vals.shape):
        raise SolverError(f"grid tensor needs at least 2 points per axis, got shape {vals.shape}")
    degs = _check_degrees(tuple(s - 1 for s in vals.shape) if degree is None else degree, vals.ndim)
    if spline_order not in (1, 3, 5):
        raise ConfigError(f"spline_order must be 1, 3 or 5, got {spline_order!r}")
    for k, (n, (a, b)) in enumerate(zip(degs, boxa, strict=False)):
        x = np.linspace(a, b, vals.shape[k])
        p = min(spline_order, vals.shape[k] - 1)
        if p % 2 == 0:
            p -= 1
        spline = scipy.interpolate.make_interp_spline(x, vals, k=p, axis=k)
        vals = spline(np.clip(chebyshev_points(n, a, b), a, b))
    return from_coefficients(coefficients_from_values(vals), boxa, tol, ranks, hooi_iters)


def from_cp(
    factors: Sequence[np.ndarray],
    box: Sequence[Sequence[float]] | np.ndarray,
    weights: np.ndarray | None = None,
    tol: float = 1e-7,
    recompress: bool = True,
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation of a canonical tensor
    :math:`\sum_r w_r\, a^{(1)}_r \otimes \cdots \otimes
    a^{(d)}_r` given by factor matrices :math:`A_k` ((n_k + 1) x R) of values at the Chebyshev points (RHOSVD,
    arXiv 2503.01696 Sec. 4; never forms the full tensor).

    1. Coefficients of each factor column: :math:`B_k = \mathrm{DCT\text{-}I}(A_k)`.
    2. Columns are balanced (unit norm times :math:`|\lambda_r|^{1/d}`,
       :math:`\lambda_r = w_r\prod_k\|b^{(k)}_r\|`)
       and each :math:`B_k = V_k S_k W_k^T` is truncated by the rank rule at ``tol``.
    3. Core :math:`G = \sum_r w_r\, (V_1^T b^{(1)}_r) \otimes \cdots \otimes (V_d^T b^{(d)}_r)`; with
       ``recompress`` the small core is HOSVD-truncated again at ``tol`` (optimal ranks).
    """
    if len(factors) < 1:
        raise SolverError("from_cp needs at least one factor matrix")
    mats = [np.asarray(a, dtype=np.float64) for a in factors]
    d = len(mats)
    boxa = _check_box(box, d)
    tol = _check_tol(tol)
    rank = mats[0].shape[1] if mats[0].ndim == 2 else -1
    for k, a in enumerate(mats):
        if a.ndim != 2 or a.shape[1] != rank or a.shape[0] < 2:
            raise SolverError(
                f"CP factor {k} must have shape (n_{k} + 1 >= 2, R={rank}) (values at Chebyshev points), "
                f"got {a.shape}"
            )
        _check_finite(a, f"CP factor {k}")
    w = np.ones(rank) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (rank,):
        raise SolverError(f"CP weights must have shape ({rank},), got {np.shape(weights)}")
    _check_finite(w, "CP weights")
    coeffs = [coefficients_from_values(a, axes=(0,)) for a in mats]
    norms = [np.linalg.norm(b, axis=0) for b in coeffs]
    lam = w * np.prod(norms, axis=0)
    scale = np.abs(lam) ** (1.0 / d)
    balanced = [b / np.where(nrm > 0, nrm, 1.0) * scale for b, nrm in zip(coeffs, norms, strict=False)]
    vs, sigmas, tails2, total2 = [], [], 0.0, 0.0
    for b in balanced:
        u, s, _ = np.linalg.svd(b, full_matrices=False)
        fro = float(np.linalg.norm(s))
        r = rank_from_singular_values(s, tol, fro, d) if fro > 0 else 1
        vs.append(u[:, :r])
        sigmas.append(s)
        tails2 += float(np.sum(s[r:] ** 2))
        total2 += fro**2
    # project the CP tensor onto the bases: G = sum_r w_r (V1^T b1_r) o (V2^T b2_r) o ...
    proj = [v.T @ b for v, b in zip(vs, coeffs, strict=False)]  # r_k x R
    core = np.zeros(tuple(v.shape[1] for v in vs))
    for start in range(0, rank, 2048):  # chunks of CP terms bound the Khatri-Rao memory
        sl = slice(start, start + 2048)
        kr = proj[d - 1][:, sl]
        for k in range(d - 2, 0, -1):  # Khatri-Rao product of modes 2..d: (r_2 .. r_d) x chunk
            kr = (proj[k][:, None, sl] * kr[None, :, :]).reshape(-1, kr.shape[1])
        if d == 1:
            core += proj[0][:, sl] @ w[sl]
        else:
            core += ((proj[0][:, sl] * w[sl]) @ kr.T).reshape(core.shape)
    est = math.sqrt(tails2 / total2) if total2 > 0 else 0.0
    result = ChebyshevTucker(core, vs, boxa, sigmas, est)
    if recompress and core.size > 1 and min(core.shape) > 1:
        c2, f2, _, err2 = _hosvd(core, tol, None, 0)
        result = ChebyshevTucker(c2, [v @ f for v, f in zip(vs, f2, strict=False)], boxa, sigmas, est + err2)
    return result


def _long_range_quadrature(delta: float, n_terms: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes/weights with :math:`\mathrm{erf}(r/\delta)/r = \frac{2}{\sqrt\pi}\int_0^{1/\delta} e^{-r^2t^2}dt
    \approx \sum_k \omega_k e^{-t_k^2 r^2}` (Gauss-Legendre on [0, 1/delta])."""
    s, ws = np.polynomial.legendre.leggauss(n_terms)
    t = 0.5 * (s + 1.0) / delta
    return t, ws * (0.5 / delta) * 2.0 / math.sqrt(math.pi)


def newton_potential(
    charges: np.ndarray,
    positions: np.ndarray,
    box: Sequence[Sequence[float]] | np.ndarray = ((-1.0, 1.0),) * 3,
    delta: float = 0.2,
    degree: int | Sequence[int] = 48,
    tol: float = 1e-7,
    n_quadrature: int | None = None,
) -> ChebyshevTucker:
    r"""Long-range part of the multi-particle Newton potential in the Chebyshev-Tucker format.

    Range separation (arXiv 2503.01696, Sec. 5): :math:`\frac{1}{r} = \frac{\mathrm{erfc}(r/\delta)}{r} +
    \frac{\mathrm{erf}(r/\delta)}{r}`; the second (long-range, analytic) part of
    :math:`P(x) = \sum_i q_i / |x - x_i|` is

    .. math:: P_{lr}(x) = \sum_i q_i \frac{\mathrm{erf}(|x-x_i|/\delta)}{|x-x_i|}
              \approx \sum_i \sum_k q_i \omega_k \prod_{l=1}^{d} e^{-t_k^2 (x_l - x_{i,l})^2},

    a CP tensor of rank :math:`N K` (Gauss-Legendre quadrature of
    :math:`\frac{2}{\sqrt\pi}\int_0^{1/\delta} e^{-r^2 t^2} dt`, the long-range terms of the paper's sinc
    quadrature), sampled on the Chebyshev points and compressed by :func:`from_cp` (RHOSVD): the full tensor
    is never formed and the Tucker ranks grow slowly with the number of particles N.
    """
    q = np.asarray(charges, dtype=np.float64).reshape(-1)
    pos = np.asarray(positions, dtype=np.float64)
    boxa = _check_box(box)
    d = boxa.shape[0]
    if pos.ndim != 2 or pos.shape != (q.size, d):
        raise SolverError(f"positions must have shape (N={q.size}, {d}), got {pos.shape}")
    _check_finite(q, "charges")
    _check_finite(pos, "positions")
    if not (np.isfinite(delta) and delta > 0):
        raise ConfigError(f"range-separation parameter delta must be > 0, got {delta!r}")
    degs = _check_degrees(degree, d)
    if n_quadrature is None:
        # Gaussian widths down to delta / (box diameter): enough nodes to resolve them (checked in tests)
        diam = float(np.linalg.norm(boxa[:, 1] - boxa[:, 0]))
        n_quadrature = int(np.clip(np.ceil(1.2 * diam / delta + 20), 24, 400))
    t, om = _long_range_quadrature(delta, int(n_quadrature))
    mats = []
    for k in range(d):
        x = chebyshev_points(degs[k], *boxa[k])
        diff2 = (x[:, None] - pos[None, :, k]) ** 2  # (n+1) x N
        mats.append(np.exp(-diff2[:, :, None] * (t**2)[None, None, :]).reshape(x.size, -1))
    weights = (q[:, None] * om[None, :]).reshape(-1)
    logger.debug(
        "newton_potential: N=%d particles, %d quadrature terms, CP rank %d", q.size, t.size, weights.size
    )
    return from_cp(mats, boxa, weights=weights, tol=tol)


def long_range_kernel(r: np.ndarray, delta: float) -> np.ndarray:
    r""":math:`\mathrm{erf}(r/\delta)/r` with its limit :math:`2/(\delta\sqrt\pi)` at ``r = 0``."""
    from scipy.special import erf

    r = np.asarray(r, dtype=np.float64)
    safe = np.where(r > 0, r, 1.0)
    return np.where(r > 1e-8 * delta, erf(safe / delta) / safe, 2.0 / (delta * math.sqrt(math.pi)))
