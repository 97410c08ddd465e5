r"""Mesh-free two-level Chebyshev-Tucker approximation of multivariate functions: the format and its builders.

Implements the hybrid format of Benner, Khoromskij, Khoromskaia and Sun, "A mesh-free hybrid Chebyshev-Tucker
tensor format with applications to multi-particle modelling" (arXiv 2503.01696):

* **Level 1** (tensor-product Chebyshev interpolation, :mod:`sciml.solvers.chebyshev_basis`): on a box
  :math:`\prod_i [a_i, b_i]`,

  .. math:: f(x) \approx \sum_{i_1 \dots i_d} C_{i_1 \dots i_d}\, T_{i_1}(t_1) \cdots T_{i_d}(t_d),
            \qquad t_k = \frac{2 x_k - a_k - b_k}{b_k - a_k},

  with the coefficients from the values at the Chebyshev points of the second kind by a DCT-I per axis.
* **Level 2** (Tucker of the coefficient tensor, :mod:`sciml.solvers.tucker_hosvd`):
  :math:`C \approx G \times_1 V_1 \times_2 V_2 \times_3 V_3` (truncated HOSVD, optionally refined by HOOI /
  Tucker-ALS with ``tensorly.decomposition.tucker``), so that

  .. math:: f(x) \approx \sum_{a,b,c} g_{abc}\, \phi_a(x_1) \psi_b(x_2) \chi_c(x_3),
            \qquad \phi_a = \sum_i V_1[i, a]\, T_i .

  Ranks come from a tolerance (per mode the smallest rank whose discarded singular-value tail is at most
  :math:`\mathrm{tol}\, \|C\|_F / \sqrt{d}`); the HOSVD error is then at most :math:`\mathrm{tol}\,\|C\|_F`
  (reported as ``error_estimate``). With ``norm="l2"`` the truncation is done in the
  :math:`L^2(\text{box})` inner product instead of the coefficient (Chebyshev-weighted) one:
  :math:`C_w = C \times_k L_k^T` with :math:`L_k L_k^T = M_k`, :math:`(M_k)_{ij} = \int_{-1}^1 T_i T_j`, then
  :math:`V_k = L_k^{-T} W_k`; this is the norm that a Tucker decomposition of values on a uniform grid
  minimises.

Evaluating the Tucker factors on any tensor grid gives the algebraic Tucker tensor with factors
:math:`U_k = T(\text{grid}_k) V_k` (:meth:`ChebyshevTucker.on_grid`). Three builders: from a vectorised
function (:func:`chebyshev_tucker`), from a full tensor on a uniform grid (:func:`from_grid_tensor`, spline
interpolation to the Chebyshev points) and from a canonical (CP) tensor on the Chebyshev points
(:func:`from_cp`, the reduced HOSVD that never forms the full tensor); :func:`from_coefficients` runs Level 2
alone. The range-separated Newton kernel and multi-particle potentials are in
:mod:`sciml.solvers.newton_kernel`.

**Backends.** Every builder takes ``backend`` (``"numpy"`` or ``"pytorch"``; ``None`` picks ``"pytorch"``
when an input is a torch tensor), ``dtype`` (float64 by default, or float32) and ``device`` (torch only,
e.g. ``"cuda"``), see :mod:`sciml.solvers.tensor_backend`. The Level-2 algebra and the evaluation run
through TensorLy's backend system inside a scoped ``tl.backend_context``; the DCT-I is ``scipy.fft.dct`` on
numpy and an FFT of the even extension on torch, so that the whole build runs on the tensor's device. Results
(core, factors, evaluations, grid tensors) come back in the backend's array type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import scipy.interpolate
import tensorly as tl

from sciml.errors import ConfigError, SolverError
from sciml.solvers.chebyshev_basis import (
    DENSE_DCT_MAX,
    chebyshev_points,
    dct_coefficients,
    dct_matrix,
    derivative_coefficients,
    integral_weights,
    l2_transforms,
    vandermonde,
)
from sciml.solvers.tensor_backend import Backend, backend_of, dtype_name, is_torch, resolve_backend, to_numpy
from sciml.solvers.tensor_checks import check_box, check_degrees, check_finite, check_tol
from sciml.solvers.tucker_hosvd import hosvd, mode_svd, multi_mode_dot, resolve_ranks

__all__ = [
    "NORMS",
    "ChebyshevTucker",
    "GridTucker",
    "chebyshev_tucker",
    "from_coefficients",
    "from_cp",
    "from_grid_tensor",
]

NORMS = ("coefficients", "l2")


# ----------------------------------------------------------------------------------------------------------
# the format


@dataclass
class GridTucker:
    r"""Algebraic Tucker tensor :math:`A = G \times_1 U_1 \cdots \times_d U_d` on a tensor grid,
    :math:`U_k = T(\text{grid}_k) V_k` (paper, Sec. 3: two-level orthogonal Tucker tensor); arrays of the
    backend that built it."""

    core: Any
    factors: list[Any]

    def full(self) -> Any:
        """The full tensor (size ``prod(len(grid_k))``), in the backend's array type."""
        with backend_of(self.core).context():
            return multi_mode_dot(self.core, self.factors)

    def to_tensorly(self) -> Any:
        """The same tensor as a ``tensorly.tucker_tensor.TuckerTensor``."""
        from tensorly.tucker_tensor import TuckerTensor

        with backend_of(self.core).context():
            return TuckerTensor((self.core, list(self.factors)))

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid points per mode."""
        return tuple(int(u.shape[0]) for u in self.factors)


@dataclass
class ChebyshevTucker:
    r"""A function on a box in the two-level Chebyshev-Tucker format (arXiv 2503.01696):

    .. math:: f(x) \approx \sum_{a_1..a_d} G_{a_1..a_d} \prod_k \sum_{i} V_k[i, a_k] T_i(t_k(x_k)).

    Attributes: ``core`` :math:`G` (r_1 x ... x r_d), ``factors`` :math:`V_k` ((n_k + 1) x r_k, Chebyshev
    coefficients of the basis functions), both numpy arrays or torch tensors of one dtype/device; ``box``
    (numpy, d x 2), ``singular_values`` (numpy, per mode, of the unfoldings, for the decay plot),
    ``error_estimate`` (relative Frobenius error of the Tucker step in the chosen ``norm``: the discarded
    singular-value tail, or the exact HOOI error), ``norm`` ("coefficients" or "l2").
    """

    core: Any
    factors: list[Any]
    box: np.ndarray
    singular_values: list[np.ndarray] = field(default_factory=list)
    error_estimate: float = 0.0
    norm: str = "coefficients"

    # -- sizes and backend -----------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of dimensions d."""
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
        return int(
            math.prod(self.ranks) + sum((n + 1) * r for n, r in zip(self.degrees, self.ranks, strict=True))
        )

    @property
    def compression_ratio(self) -> float:
        """Size of the full coefficient tensor :math:`\\prod (n_k + 1)` over :attr:`storage`."""
        return float(np.prod([n + 1 for n in self.degrees])) / self.storage

    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"pytorch"``."""
        return self._be().name

    @property
    def dtype(self) -> Any:
        """The numpy or torch dtype of core and factors."""
        return self._be().dtype

    @property
    def device(self) -> Any:
        """The torch device (``None`` for numpy)."""
        return self._be().device

    def _be(self) -> Backend:
        return backend_of(self.core)

    def to(self, backend: str | None = None, dtype: Any = None, device: Any = None) -> ChebyshevTucker:
        """A copy with core and factors converted to another backend / dtype / device (default: keep)."""
        be = self._be()
        name = backend or be.name
        if device is None and name == be.name:
            device = be.device
        target = resolve_backend(name, dtype_name(dtype or be.dtype), device)
        return ChebyshevTucker(
            target.asarray(self.core),
            [target.asarray(f) for f in self.factors],
            self.box.copy(),
            self.singular_values,
            self.error_estimate,
            self.norm,
        )

    # -- evaluation ------------------------------------------------------------------------------------
    def _check_inside(self, x: Any, k: int) -> None:
        a, b = (float(v) for v in self.box[k])
        slack = 1e-12 * (b - a) + (1e-6 * (b - a) if str(self.dtype).endswith("float32") else 0.0)
        if not x.shape[0]:
            return
        lo, hi = (float(v.detach()) if is_torch(v) else float(v) for v in (x.min(), x.max()))
        if lo < a - slack or hi > b + slack:
            raise SolverError(
                f"coordinates along axis {k} must lie in the box [{a}, {b}], got range [{lo}, {hi}]"
            )

    def _basis(self, k: int, x: Any, be: Backend) -> Any:
        x = be.asarray(x).reshape(-1)
        check_finite(x, f"grid along axis {k}")
        self._check_inside(x, k)
        a, b = (float(v) for v in self.box[k])  # python floats keep float32 arrays float32
        return vandermonde((2.0 * x - (a + b)) / (b - a), self.degrees[k]) @ self.factors[k]

    def basis(self, k: int, x: Any) -> Any:
        r"""Values of the mode-``k`` Tucker basis functions at ``x``:
        :math:`U = T(t(x)) V_k` (len(x) x r_k)."""
        be = self._be()
        with be.context():
            return self._basis(k, x, be)

    def __call__(self, points: Any) -> Any:
        """Mesh-free evaluation at ``points`` of shape ``[M, d]`` (or ``[d]`` for a single point); returns
        an array (or 0-d value for one point) of the backend's type."""
        be = self._be()
        if tuple(np.shape(points))[-1:] != (self.ndim,) or len(np.shape(points)) not in (1, 2):
            raise SolverError(f"points must have shape [M, {self.ndim}], got {tuple(np.shape(points))}")
        with be.context():
            pts = be.asarray(points)
            single = pts.ndim == 1
            if single:
                pts = pts[None, :]
            check_finite(pts, "points")
            m = pts.shape[0]
            us = [self._basis(k, pts[:, k], be) for k in range(self.ndim)]
            # contract the core with the first factor, then fold in the others point by point
            acc = us[0] @ tl.reshape(self.core, (self.ranks[0], -1))  # M x (r_2 .. r_d)
            for k in range(1, self.ndim):
                acc = tl.einsum("mbr,mb->mr", tl.reshape(acc, (m, self.ranks[k], -1)), us[k])
            out = tl.reshape(acc, (m,))
        return out[0] if single else out

    def on_grid(self, *axes: Any) -> GridTucker:
        """Tucker tensor of the function on the tensor grid ``axes[0] x ... x axes[d-1]``
        (factors T(grid) V)."""
        if len(axes) != self.ndim:
            raise SolverError(f"on_grid needs {self.ndim} grid vectors, got {len(axes)}")
        be = self._be()
        with be.context():
            factors = [self._basis(k, ax, be) for k, ax in enumerate(axes)]
            return GridTucker(core=tl.copy(self.core), factors=factors)

    def coefficients(self) -> Any:
        """The (reconstructed) full Chebyshev coefficient tensor :math:`G \\times_k V_k`."""
        return GridTucker(self.core, self.factors).full()

    # -- calculus --------------------------------------------------------------------------------------
    def derivative(self, axis: int, order: int = 1) -> ChebyshevTucker:
        r""":math:`\partial^{order} f / \partial x_{axis}^{order}` in the same format: the Chebyshev
        derivative recurrence :math:`c'_{k-1} = c'_{k+1} + 2k c_k` (as a matrix) applied to the columns of
        :math:`V_{axis}` (ranks unchanged, degree lowered by ``order``, down to 0)."""
        if not isinstance(axis, (int, np.integer)) or not 0 <= axis < self.ndim:
            raise ConfigError(f"axis must be an integer in [0, {self.ndim}), got {axis!r}")
        if not isinstance(order, (int, np.integer)) or order < 0:
            raise ConfigError(f"derivative order must be an integer >= 0, got {order!r}")
        a, b = self.box[axis]
        be = self._be()
        v = self.factors[axis]
        with be.context():
            for _ in range(order):
                n = int(v.shape[0]) - 1
                dmat = derivative_coefficients(np.eye(n + 1), 2.0 / (b - a)) if n else np.zeros((1, 1))
                v = be.asarray(dmat) @ v
        factors = list(self.factors)
        factors[axis] = v
        return ChebyshevTucker(
            self.core, factors, self.box.copy(), self.singular_values, self.error_estimate, self.norm
        )

    def integral(self) -> float:
        r""":math:`\int_{box} f = G \times_k \big(\tfrac{b_k-a_k}{2} w^T V_k\big)`,
        :math:`w_i = \int_{-1}^1 T_i`."""
        be = self._be()
        with be.context():
            ws = []
            for k in range(self.ndim):
                a, b = self.box[k]
                w = be.asarray(0.5 * (b - a) * integral_weights(self.degrees[k]))
                ws.append(tl.reshape(w @ self.factors[k], (1, -1)))
            return float(tl.reshape(multi_mode_dot(self.core, ws), (1,))[0])


# ----------------------------------------------------------------------------------------------------------
# builders


def _check_level2_options(svd: str, norm: str, refine: bool, n_iter: int) -> None:
    """The Level-2 options of the builders: ``svd``, ``norm``, ``refine`` and ``n_iter``."""
    if svd not in ("auto", "gram", "exact"):
        raise ConfigError(f"svd must be 'auto', 'gram' or 'exact', got {svd!r}")
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(refine, (bool, np.bool_)):
        raise ConfigError(f"refine must be True or False, got {refine!r}")
    if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or n_iter < 1:
        raise ConfigError(f"n_iter must be an integer >= 1 (HOOI sweeps), got {n_iter!r}")


def _to_coefficients(values: Any, be: Backend, norm: str) -> Any:
    r"""Chebyshev coefficients of a full value tensor, for ``norm="l2"`` already in L2-orthonormal coordinates
    :math:`C \times_k L_k^T`: per axis one matmul with :math:`D` (or :math:`L^T D`, which costs no more than
    the :math:`L^T` product alone) for small degrees or the L2 norm, the FFT-based DCT-I otherwise (call
    inside the backend's context)."""
    if norm != "l2" and max(values.shape) > DENSE_DCT_MAX + 1:
        return dct_coefficients(values, None, be)
    mats = []
    for s in values.shape:
        dmat = dct_matrix(int(s) - 1)
        mats.append(be.asarray(l2_transforms(int(s) - 1)[0] @ dmat if norm == "l2" else dmat))
    return multi_mode_dot(be.asarray(values), mats)


def _compress(
    c: Any,
    box: np.ndarray,
    tol: float,
    ranks: tuple[int, ...] | None,
    svd: str,
    refine: bool,
    n_iter: int,
    norm: str,
    be: Backend,
    weighted: bool = False,
) -> ChebyshevTucker:
    """Level 2 on a backend coefficient tensor ``c`` (in the coefficient or the L2 inner product; ``weighted``
    says that ``c`` is already :math:`C \times_k L_k^T`)."""
    with be.context():
        if norm == "l2":
            transforms = [l2_transforms(int(s) - 1) for s in c.shape]
            if not weighted:
                c = multi_mode_dot(c, [be.asarray(lt) for lt, _ in transforms])
        core, factors, sigmas, err = hosvd(c, tol, ranks, svd, refine, n_iter, be)
        if norm == "l2":
            factors = [be.asarray(inv) @ f for (_, inv), f in zip(transforms, factors, strict=True)]
    return ChebyshevTucker(core, list(factors), box, sigmas, err, norm)


def from_coefficients(
    coefficients: Any,
    box: Sequence[Sequence[float]] | np.ndarray,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    *,
    refine: bool = False,
    n_iter: int = 10,
    svd: str = "auto",
    norm: str = "coefficients",
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ChebyshevTucker:
    r"""Level 2 only: Tucker decomposition :math:`C \approx G \times_k V_k` of a Chebyshev coefficient tensor.

    Ranks from ``tol`` by :func:`rank_from_singular_values` unless ``ranks`` is given. ``refine=True`` runs
    ``n_iter`` HOOI (Tucker-ALS) sweeps of ``tensorly.decomposition.tucker`` started from the truncated HOSVD
    (the paper's Tucker-ALS; cheap, the tensor is only :math:`\prod (n_k+1)`). ``norm="l2"`` truncates in
    :math:`L^2(\text{box})` instead of the coefficient norm (see the module docstring). ``svd`` selects how
    the mode singular vectors are computed ("auto", "gram" or "exact", see :func:`mode_svd`); with "auto"
    and a loose tolerance, ``singular_values`` below ~1e-7 relative are round-off level (use "exact" for decay
    plots). ``backend``/``dtype``/``device`` as in the module docstring.
    """
    _check_level2_options(svd, norm, refine, n_iter)
    be = resolve_backend(backend, dtype, device, coefficients)
    c = be.asarray(coefficients)
    check_finite(c, "Chebyshev coefficients")
    boxa = check_box(box, c.ndim)
    tol = check_tol(tol)
    if any(s < 2 for s in c.shape):
        raise ConfigError(f"coefficient tensor needs degree >= 1 per mode, got shape {tuple(c.shape)}")
    return _compress(c, boxa, tol, resolve_ranks(ranks, c.ndim), svd, bool(refine), int(n_iter), norm, be)


def chebyshev_tucker(
    f: Callable[..., Any],
    box: Sequence[Sequence[float]] | np.ndarray = ((-1.0, 1.0),) * 3,
    degree: int | Sequence[int] = 32,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    *,
    refine: bool = False,
    n_iter: int = 10,
    svd: str = "auto",
    norm: str = "coefficients",
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation of a vectorised function ``f(x1, .., xd)`` (arXiv 2503.01696, Alg. 1).

    ``f`` is called once on the broadcastable Chebyshev grid (``x_k`` of shape ``(1, .., n_k + 1, .., 1)``,
    arrays of the backend: numpy arrays, or torch tensors on ``device``), the coefficients :math:`C` follow
    by DCT-I per axis and :math:`C` is Tucker-compressed with ranks chosen from ``tol`` (or fixed ``ranks``);
    options as in :func:`from_coefficients`. Cost: :math:`\prod (n_k+1)` evaluations plus
    :math:`O(n^{d+1})`.
    """
    _check_level2_options(svd, norm, refine, n_iter)
    be = resolve_backend(backend, dtype, device)
    boxa = check_box(box)
    d = boxa.shape[0]
    degs = check_degrees(degree, d)
    tol = check_tol(tol)
    grids = []
    for k, (n, (a, b)) in enumerate(zip(degs, boxa, strict=True)):
        shape = [1] * d
        shape[k] = n + 1
        grids.append(be.asarray(chebyshev_points(n, a, b).reshape(shape)))
    with be.context():
        values = be.asarray(f(*grids)) + tl.zeros(tuple(n + 1 for n in degs), **tl.context(grids[0]))
    check_finite(values, "function values at the Chebyshev points")
    with be.context():
        c = _to_coefficients(values, be, norm)
    return _compress(c, boxa, tol, resolve_ranks(ranks, d), svd, bool(refine), int(n_iter), norm, be, True)


def from_grid_tensor(
    values: Any,
    box: Sequence[Sequence[float]] | np.ndarray,
    degree: int | Sequence[int] | None = None,
    tol: float = 1e-7,
    ranks: int | Sequence[int] | None = None,
    spline_order: int = 3,
    *,
    refine: bool = False,
    n_iter: int = 10,
    svd: str = "auto",
    norm: str = "coefficients",
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation from a full tensor on the uniform grid ``linspace(a_k, b_k, N_k)``.

    The tensor is interpolated to the Chebyshev points one axis at a time with an interpolating B-spline of
    order ``spline_order`` (1, 3 or 5; not-a-knot ends, so the error is :math:`O(h^{p+1})` of the uniform grid
    spacing; this step runs in scipy on the CPU), then handled as in :func:`chebyshev_tucker` in the chosen
    backend. ``degree`` defaults to ``N_k - 1``.
    """
    _check_level2_options(svd, norm, refine, n_iter)
    be = resolve_backend(backend, dtype, device, values)
    vals = np.asarray(to_numpy(values), dtype=np.float64)
    check_finite(vals, "grid tensor")
    boxa = check_box(box, vals.ndim)
    if any(s < 2 for s in vals.shape):
        raise SolverError(f"grid tensor needs at least 2 points per axis, got shape {vals.shape}")
    degs = check_degrees(tuple(s - 1 for s in vals.shape) if degree is None else degree, vals.ndim)
    if spline_order not in (1, 3, 5):
        raise ConfigError(f"spline_order must be 1, 3 or 5, got {spline_order!r}")
    tol = check_tol(tol)
    vals = _spline_to_chebyshev_points(vals, boxa, degs, spline_order)
    with be.context():
        c = _to_coefficients(vals, be, norm)
    return _compress(
        c, boxa, tol, resolve_ranks(ranks, vals.ndim), svd, bool(refine), int(n_iter), norm, be, True
    )


def _spline_to_chebyshev_points(
    vals: np.ndarray, box: np.ndarray, degrees: tuple[int, ...], spline_order: int
) -> np.ndarray:
    """Values on the uniform grid of ``box`` interpolated to the Chebyshev points of ``degrees``, one axis
    at a time (interpolating B-spline of order ``spline_order``, lowered to an odd order that fits)."""
    for k, (n, (a, b)) in enumerate(zip(degrees, box, strict=True)):
        x = np.linspace(a, b, vals.shape[k])
        p = min(spline_order, vals.shape[k] - 1)
        if p % 2 == 0:
            p -= 1
        spline = scipy.interpolate.make_interp_spline(x, vals, k=p, axis=k)
        vals = spline(np.clip(chebyshev_points(n, a, b), a, b))
    return vals


def from_cp(
    factors: Sequence[Any],
    box: Sequence[Sequence[float]] | np.ndarray,
    weights: Any = None,
    tol: float = 1e-7,
    recompress: bool = True,
    *,
    norm: str = "coefficients",
    backend: str | None = None,
    dtype: Any = None,
    device: Any = None,
) -> ChebyshevTucker:
    r"""Chebyshev-Tucker approximation of a canonical tensor
    :math:`\sum_r w_r\, a^{(1)}_r \otimes \cdots \otimes a^{(d)}_r` given by factor matrices :math:`A_k`
    ((n_k + 1) x R) of values at the Chebyshev points (RHOSVD, arXiv 2503.01696 Sec. 4; never forms the full
    tensor).

    1. Coefficients of each factor column: :math:`B_k = \mathrm{DCT\text{-}I}(A_k)` (times :math:`L_k^T` for
       ``norm="l2"``).
    2. Columns are balanced (unit norm times :math:`|\lambda_r|^{1/d}`,
       :math:`\lambda_r = w_r\prod_k\|b^{(k)}_r\|`)
       and each :math:`B_k = V_k S_k W_k^T` is truncated by the rank rule at ``tol``.
    3. Core :math:`G = \sum_r w_r\, (V_1^T b^{(1)}_r) \otimes \cdots \otimes (V_d^T b^{(d)}_r)`; with
       ``recompress`` the small core is HOSVD-truncated again at ``tol`` (optimal ranks).
    """
    if len(factors) < 1:
        raise SolverError("from_cp needs at least one factor matrix")
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")
    be = resolve_backend(backend, dtype, device, *factors, weights)
    mats = [be.asarray(a) for a in factors]
    boxa = check_box(box, len(mats))
    tol = check_tol(tol)
    w = _checked_cp(mats, weights, be)
    with be.context():
        coeffs = [dct_coefficients(a, (0,), be) for a in mats]
        if norm == "l2":
            transforms = [l2_transforms(int(a.shape[0]) - 1) for a in mats]
            coeffs = [be.asarray(lt) @ b for (lt, _), b in zip(transforms, coeffs, strict=True)]
        vs, sigmas, est = _cp_bases(coeffs, w, tol, be)
        # project the CP tensor onto the bases: G = sum_r w_r (V1^T b1_r) o (V2^T b2_r) o ...
        core = _projected_cp_core([tl.transpose(v) @ b for v, b in zip(vs, coeffs, strict=True)], w)
        if recompress and math.prod(core.shape) > 1 and min(core.shape) > 1:
            core, f2, _, err2 = hosvd(core, tol, None, "auto", False, 1, be)
            vs = [v @ f for v, f in zip(vs, f2, strict=True)]
            est += err2
        if norm == "l2":
            vs = [be.asarray(inv) @ v for (_, inv), v in zip(transforms, vs, strict=True)]
    return ChebyshevTucker(core, vs, boxa, sigmas, est, norm)


def _checked_cp(mats: list[Any], weights: Any, be: Backend) -> Any:
    """Check the CP factor matrices (``(n_k + 1 >= 2, R)``, finite); return the weights (``(R,)``, finite,
    default ones) as an array of ``be``."""
    rank = int(mats[0].shape[1]) if mats[0].ndim == 2 else -1
    for k, a in enumerate(mats):
        if a.ndim != 2 or a.shape[1] != rank or a.shape[0] < 2:
            raise SolverError(
                f"CP factor {k} must have shape (n_{k} + 1 >= 2, R={rank}) (values at Chebyshev points), "
                f"got {tuple(a.shape)}"
            )
        check_finite(a, f"CP factor {k}")
    w = be.asarray(np.ones(rank) if weights is None else weights).reshape(-1)
    if tuple(w.shape) != (rank,):
        raise SolverError(f"CP weights must have shape ({rank},), got {tuple(np.shape(weights))}")
    check_finite(w, "CP weights")
    return w


def _cp_bases(
    coeffs: list[Any], w: Any, tol: float, be: Backend
) -> tuple[list[Any], list[np.ndarray], float]:
    """Step 2 of :func:`from_cp`: per mode the truncated left singular vectors of the balanced coefficient
    matrix, its singular values, and the relative error estimate of the truncation (inside the backend
    context)."""
    d = len(coeffs)
    norms = [tl.norm(b, 2, axis=0) for b in coeffs]
    scale = tl.abs(w * reduce(lambda x, y: x * y, norms)) ** (1.0 / d)
    vs, sigmas, tails2, total2 = [], [], 0.0, 0.0
    for b, nrm in zip(coeffs, norms, strict=True):
        balanced = b / (nrm + (nrm == 0)) * scale
        fro = float(tl.norm(balanced, 2))
        if fro > 0:
            u, s, r = mode_svd(balanced, tol, fro, d, None, "auto", be.eps)
        else:  # an all-zero CP tensor: any rank-1 basis
            u, s, r = tl.eye(int(b.shape[0]), **tl.context(b)), np.zeros(1), 1
        vs.append(u[:, :r])
        sigmas.append(s)
        tails2 += float(np.sum(s[r:] ** 2))
        total2 += fro**2
    return vs, sigmas, math.sqrt(tails2 / total2) if total2 > 0 else 0.0


def _projected_cp_core(proj: list[Any], w: Any, chunk: int = 2048) -> Any:
    r"""The core :math:`G = \sum_r w_r\, p^{(1)}_r \otimes \cdots \otimes p^{(d)}_r` from the projected
    factors ``proj[k]`` (:math:`r_k \times R`), ``chunk`` CP terms at a time (bounds the memory)."""
    d, rank = len(proj), int(proj[0].shape[1])
    core = tl.zeros(tuple(int(p.shape[0]) for p in proj), **tl.context(proj[0]))
    for start in range(0, rank, chunk):
        sl = slice(start, start + chunk)
        if d == 1:
            core = core + proj[0][:, sl] @ w[sl]
            continue
        kr = proj[d - 1][:, sl]
        for k in range(d - 2, 0, -1):  # Khatri-Rao product of modes 2..d: (r_2 .. r_d) x chunk
            kr = tl.reshape(proj[k][:, None, sl] * kr[None, :, :], (-1, int(kr.shape[1])))
        core = core + tl.reshape((proj[0][:, sl] * w[sl]) @ tl.transpose(kr), tuple(core.shape))
    return core
