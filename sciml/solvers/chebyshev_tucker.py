r"""Mesh-free two-level Chebyshev-Tucker approximation of multivariate functions.

Implements the hybrid format of Benner, Khoromskij, Khoromskaia and Sun, "A mesh-free hybrid Chebyshev-Tucker
tensor format with applications to multi-particle modelling" (arXiv 2503.01696):

* **Level 1** (tensor-product Chebyshev interpolation). On a box :math:`\prod_i [a_i, b_i]` a function is
  sampled at the Chebyshev points of the second kind :math:`x_j = \cos(\pi j / n)`, :math:`j = 0..n`, mapped
  affinely to each side, and its interpolant is written as

  .. math:: f(x) \approx \sum_{i_1 \dots i_d} C_{i_1 \dots i_d}\, T_{i_1}(t_1) \cdots T_{i_d}(t_d),
            \qquad t_k = \frac{2 x_k - a_k - b_k}{b_k - a_k},

  with the coefficients computed per axis by a DCT-I: :math:`c = \mathrm{DCT\text{-}I}(v)/n`, then the first
  and the last coefficient halved.
* **Level 2** (Tucker of the coefficient tensor). :math:`C \approx G \times_1 V_1 \times_2 V_2 \times_3 V_3`
  (truncated HOSVD, optionally refined by HOOI / Tucker-ALS with ``tensorly.decomposition.tucker``), so that

  .. math:: f(x) \approx \sum_{a,b,c} g_{abc}\, \phi_a(x_1) \psi_b(x_2) \chi_c(x_3),
            \qquad \phi_a = \sum_i V_1[i, a]\, T_i .

  Ranks come from a tolerance with the rule of the authors' ``hosvd_s``: per mode the smallest :math:`r` with
  :math:`\sqrt{\sum_{j \ge r} \sigma_j^2} \le \mathrm{tol}\, \|C\|_F / \sqrt{d}`; the HOSVD error is then at
  most :math:`\mathrm{tol}\,\|C\|_F` (reported as ``error_estimate``). With ``norm="l2"`` the truncation is
  done in the :math:`L^2(\text{box})` inner product instead of the coefficient (Chebyshev-weighted) one:
  :math:`C_w = C \times_k L_k^T` with :math:`L_k L_k^T = M_k`, :math:`(M_k)_{ij} = \int_{-1}^1 T_i T_j`, then
  :math:`V_k = L_k^{-T} W_k`; this is the norm that a Tucker decomposition of values on a uniform grid
  minimises.

Evaluating the Tucker factors on any tensor grid gives the algebraic Tucker tensor with factors
:math:`U_k = T(\text{grid}_k) V_k` (:meth:`ChebyshevTucker.on_grid`). Three builders: from a vectorised
function (:func:`chebyshev_tucker`), from a full tensor on a uniform grid (:func:`from_grid_tensor`, spline
interpolation to the Chebyshev points) and from a canonical (CP) tensor on the Chebyshev points
(:func:`from_cp`, the reduced HOSVD that never forms the full tensor). The range-separated Newton kernel and
multi-particle potentials are in :mod:`sciml.solvers.newton_kernel`.

**Backends.** Every builder takes ``backend`` (``"numpy"`` or ``"pytorch"``; ``None`` picks ``"pytorch"``
when an input is a torch tensor), ``dtype`` (float64 by default, or float32) and ``device`` (torch only,
e.g. ``"cuda"``). The Level-2 algebra (SVDs, HOSVD, HOOI, mode products) and the evaluation run through
TensorLy's backend system inside a scoped ``tl.backend_context`` (never ``tl.set_backend``: the backend is
process-global and neuraloperator sets ``"pytorch"`` at import); the DCT-I is ``scipy.fft.dct`` on numpy and
an FFT of the even extension on torch, so that the whole build runs on the tensor's device. Results
(core, factors, evaluations, grid tensors) come back in the backend's array type.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from typing import Any

import numpy as np
import scipy.fft
import scipy.interpolate
import scipy.linalg
import tensorly as tl

from sciml.errors import ConfigError, SolverError

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "ChebyshevTucker",
    "GridTucker",
    "chebyshev_points",
    "chebyshev_tucker",
    "chebyshev_vandermonde",
    "coefficients_from_values",
    "from_coefficients",
    "from_cp",
    "from_grid_tensor",
    "l2_gram",
    "rank_from_singular_values",
]

BACKENDS = ("numpy", "pytorch")
NORMS = ("coefficients", "l2")


# ----------------------------------------------------------------------------------------------------------
# backends


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


@dataclass(frozen=True)
class _Backend:
    """Where the algebra runs: TensorLy backend name, dtype (numpy or torch) and torch device."""

    name: str
    dtype: Any
    device: Any = None

    @property
    def eps(self) -> float:
        single = str(self.dtype).endswith("float32")
        return float(np.finfo(np.float32 if single else np.float64).eps)

    def context(self):
        # scoped and thread-local: the process-wide backend (pytorch under neuraloperator) is left alone
        return tl.backend_context(self.name, local_threadsafe=True)

    def asarray(self, x: Any) -> Any:
        """``x`` (numpy, torch or array-like) as an array of this backend, dtype and device."""
        if self.name == "numpy":
            if _is_torch(x):
                x = x.detach().cpu().numpy()
            return np.asarray(x, dtype=self.dtype)
        import torch

        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)


def _to_numpy(x: Any) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _backend_of(x: Any) -> _Backend:
    if _is_torch(x):
        return _Backend("pytorch", x.dtype, x.device)
    return _Backend("numpy", np.asarray(x).dtype)


def _dtype_name(dtype: Any) -> str:
    """``"float64"`` or ``"float32"`` from a numpy/torch dtype or a string (``None``: float64)."""
    if dtype is None:
        return "float64"
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
    elif type(dtype).__module__.startswith("torch"):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = repr(dtype)
    if name not in ("float64", "float32"):
        raise ConfigError(f"dtype must be float64 or float32 (numpy, torch or string), got {dtype!r}")
    return name


def _resolve_backend(backend: str | None, dtype: Any, device: Any, *inputs: Any) -> _Backend:
    """Validated backend choice; ``backend=None`` means "pytorch" if an input is a torch tensor."""
    like = next((x for x in inputs if _is_torch(x)), None)
    if backend is None:
        backend = "numpy" if like is None else "pytorch"
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    name = _dtype_name(dtype)
    if backend == "numpy":
        if device is not None and str(device) != "cpu":
            raise ConfigError(f"the numpy backend runs on the CPU only, got device={device!r}")
        return _Backend("numpy", np.dtype(name))
    import torch

    if device is None:
        dev = like.device if like is not None else torch.device("cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"invalid torch device {device!r}") from exc
    return _Backend("pytorch", getattr(torch, name), dev)


# ----------------------------------------------------------------------------------------------------------
# validation helpers


def _check_tol(tol: float) -> float:
    if not (isinstance(tol, (int, float, np.floating)) and 0.0 < float(tol) < 1.0):
        raise ConfigError(f"tolerance must be a number in (0, 1), got {tol!r}")
    return float(tol)


def _check_box(box: Sequence[Sequence[float]] | np.ndarray, d: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(_to_numpy(box) if _is_torch(box) else box, dtype=np.float64)
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


def _check_level2_options(svd: str, norm: str, refine: bool, n_iter: int) -> None:
    if svd not in ("auto", "gram", "exact"):
        raise ConfigError(f"svd must be 'auto', 'gram' or 'exact', got {svd!r}")
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(refine, (bool, np.bool_)):
        raise ConfigError(f"refine must be True or False, got {refine!r}")
    if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or n_iter < 1:
        raise ConfigError(f"n_iter must be an integer >= 1 (HOOI sweeps), got {n_iter!r}")


def _check_finite(values: Any, what: str) -> None:
    if _is_torch(values):
        import torch

        if bool(torch.isfinite(values).all()):
            return
        values = _to_numpy(values)
    elif np.all(np.isfinite(values)):
        return
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


def _dct1(c: Any, axis: int) -> Any:
    r"""Unnormalised DCT-I along ``axis``: :math:`y_k = v_0 + (-1)^k v_n + 2\sum_{j=1}^{n-1} v_j
    \cos(\pi j k / n)`; on torch the real part of the FFT of the even extension
    :math:`(v_0, .., v_n, v_{n-1}, .., v_1)` (length :math:`2n`)."""
    if not _is_torch(c):
        return scipy.fft.dct(c, type=1, axis=axis)
    import torch

    n = c.shape[axis] - 1
    ext = torch.cat([c, torch.flip(torch.narrow(c, axis, 1, n - 1), dims=(axis,))], dim=axis)
    return torch.narrow(torch.fft.rfft(ext, dim=axis).real, axis, 0, n + 1)


def _coefficients(values: Any, axes: Sequence[int] | None, be: _Backend) -> Any:
    c = be.asarray(values)
    axes = tuple(range(c.ndim)) if axes is None else tuple(axes)
    for ax in axes:
        if c.shape[ax] < 2:
            raise SolverError(
                f"need at least 2 values along axis {ax} for Chebyshev coefficients, got {c.shape[ax]}"
            )
    if be.name == "numpy":
        c = scipy.fft.dctn(c, type=1, axes=axes)
    else:
        for ax in axes:
            c = _dct1(c, ax)
    for ax in axes:
        n = c.shape[ax] - 1
        edge = np.full(n + 1, 1.0 / n)
        edge[[0, n]] = 0.5 / n
        shape = [1] * c.ndim
        shape[ax] = n + 1
        c = c * be.asarray(edge.reshape(shape))
    return c


def coefficients_from_values(values: Any, axes: Sequence[int] | None = None) -> Any:
    r"""Chebyshev coefficients from values at the second-kind points along ``axes`` (default all) by DCT-I.

    For values :math:`v_j = p(\cos(\pi j/n))` of :math:`p = \sum_k c_k T_k`:
    :math:`c_k = \frac{1}{n}\mathrm{DCT\text{-}I}(v)_k` for :math:`0 < k < n` and half of it for
    :math:`k = 0, n` (chebfun's ``vals2coeffs``; paper, Sec. 2). Numpy input gives float64 numpy output; a
    floating torch tensor keeps its dtype and device (FFT of the even extension).
    """
    if _is_torch(values) and values.is_floating_point():
        be = _backend_of(values)
    else:
        be = _resolve_backend(None, None, None, values)
    return _coefficients(values, axes, be)


# up to this degree the builders apply the DCT-I as a dense matrix (one BLAS product per axis beats the FFT)
_DENSE_DCT_MAX = 128


@lru_cache(maxsize=16)
def _dct_matrix(n: int) -> np.ndarray:
    """(n+1) x (n+1) matrix of :func:`coefficients_from_values` along one axis: ``c = D @ v``."""
    return coefficients_from_values(np.eye(n + 1), axes=(0,))


def _mode_dot(x: Any, a: Any, mode: int) -> Any:
    r"""Mode product :math:`x \times_{mode} a` (``a``: new x old) without moving axes: the tensor is viewed as
    (before, n, after) and multiplied by ``a`` with one (batched) matmul; call inside the backend context."""
    shape = tuple(int(s) for s in x.shape)
    before, after = math.prod(shape[:mode]), math.prod(shape[mode + 1 :])
    if after == 1:
        out = tl.matmul(tl.reshape(x, (before, shape[mode])), tl.transpose(a))
    elif before == 1:
        out = tl.matmul(a, tl.reshape(x, (shape[mode], after)))
    else:
        out = tl.matmul(a, tl.reshape(x, (before, shape[mode], after)))
    return tl.reshape(out, (*shape[:mode], int(a.shape[0]), *shape[mode + 1 :]))


def _multi_mode_dot(x: Any, mats: Sequence[Any], transpose: bool = False) -> Any:
    """``x`` times ``mats[k]`` (or its transpose) along every mode k, the last mode first."""
    for mode in reversed(range(len(mats))):
        x = _mode_dot(x, tl.transpose(mats[mode]) if transpose else mats[mode], mode)
    return x


def _to_coefficients(values: Any, be: _Backend, norm: str) -> Any:
    r"""Chebyshev coefficients of a full value tensor, for ``norm="l2"`` already in L2-orthonormal coordinates
    :math:`C \times_k L_k^T`: per axis one matmul with :math:`D` (or :math:`L^T D`, which costs no more than
    the :math:`L^T` product alone) for small degrees or the L2 norm, the FFT-based DCT-I otherwise."""
    if norm != "l2" and max(values.shape) > _DENSE_DCT_MAX + 1:
        c = _coefficients(values, None, be)
        if norm == "l2":
            c = _multi_mode_dot(c, [be.asarray(_l2_transforms(int(s) - 1)[0]) for s in c.shape])
        return c
    mats = []
    for s in values.shape:
        dmat = _dct_matrix(int(s) - 1)
        mats.append(be.asarray(_l2_transforms(int(s) - 1)[0] @ dmat if norm == "l2" else dmat))
    return _multi_mode_dot(be.asarray(values), mats)


def chebyshev_vandermonde(t: np.ndarray, degree: int) -> np.ndarray:
    r"""Matrix :math:`[T_k(t_m)]_{m,k}` for :math:`k = 0..\text{degree}` by the three-term recurrence
    :math:`T_{k+1} = 2 t T_k - T_{k-1}`; ``t`` in the reference interval [-1, 1] (numpy or torch)."""
    if _is_torch(t):
        with _backend_of(t).context():
            return _vandermonde(t.reshape(-1), degree)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    with _backend_of(t).context():
        return _vandermonde(t, degree)


def _vandermonde(t: Any, degree: int) -> Any:
    """Backend-generic Chebyshev-Vandermonde matrix (call inside the backend's context)."""
    cols = [tl.ones(tl.shape(t), **tl.context(t)), t]
    for _ in range(2, degree + 1):
        cols.append(2.0 * t * cols[-1] - cols[-2])
    return tl.stack(cols[: degree + 1], axis=1)


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


def l2_gram(n: int) -> np.ndarray:
    r"""Gram matrix of :math:`T_0..T_n` in :math:`L^2(-1, 1)`:
    :math:`M_{ij} = \int_{-1}^1 T_i T_j = \tfrac12 (w_{i+j} + w_{|i-j|})`, :math:`w_k = \int_{-1}^1 T_k`
    (from :math:`T_i T_j = (T_{i+j} + T_{|i-j|})/2`)."""
    w = _integral_weights(2 * n)
    i = np.arange(n + 1)
    return 0.5 * (w[i[:, None] + i[None, :]] + w[np.abs(i[:, None] - i[None, :])])


@lru_cache(maxsize=16)
def _l2_transforms(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(L^T, L^{-T})`` with ``L L^T = l2_gram(n)``: coefficients -> L2-orthonormal coordinates and back."""
    lower = np.linalg.cholesky(l2_gram(n))
    return lower.T, scipy.linalg.solve_triangular(lower.T, np.eye(n + 1), lower=False)


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


def _resolve_ranks(ranks: int | Sequence[int] | None, d: int) -> tuple[int, ...] | None:
    if ranks is None:
        return None
    rs = (ranks,) * d if isinstance(ranks, (int, np.integer)) else tuple(ranks)
    if len(rs) != d or any((not isinstance(r, (int, np.integer))) or r < 1 for r in rs):
        raise ConfigError(f"ranks must be an int >= 1 or {d} such ints, got {ranks!r}")
    return tuple(int(r) for r in rs)


def _mode_svd(
    a: Any, tol: float, norm: float, d: int, rank: int | None, svd: str, eps: float
) -> tuple[Any, np.ndarray, int]:
    r"""Left singular vectors (backend), singular values (numpy) and chosen rank of an unfolding ``a``
    (m x M, m << M); call inside the backend's context.

    ``svd="gram"``: eigen-decomposition of :math:`a a^T` (m x m), much faster than the SVD of the wide
    unfolding; its eigenvalues carry an absolute error :math:`\sim \epsilon \sigma_1^2`, which adds at most
    that much (times a modest constant) to the squared projection error. ``"exact"``: backward-stable SVD,
    for a wide unfolding through the R factor of :math:`a^T = QR`: :math:`a = R^T Q^T` has the left singular
    vectors and singular values of the m x m matrix :math:`R^T` (Q is never formed). ``"auto"``: Gram when
    the squared truncation level (the discarded tail at a fixed rank, :math:`\mathrm{tol}^2\|C\|_F^2/d`
    otherwise) exceeds :math:`\epsilon \sigma_1^2`, the exact SVD otherwise (so the Gram route at most about
    doubles the squared truncation error; checked against the exact SVD in the tests).
    """
    if svd in ("gram", "auto") and a.shape[0] <= a.shape[1]:
        w, v = tl.eigh(tl.dot(a, tl.transpose(a)))
        lam = np.clip(_to_numpy(w).astype(np.float64)[::-1], 0.0, None)
        s, u = np.sqrt(lam), tl.flip(v, axis=1)
        r = rank_from_singular_values(s, tol, norm, d) if rank is None else min(rank, s.size)
        noise = eps * (lam[0] if lam.size else 0.0)
        level = float(np.sum(lam[r:])) if rank is not None else (tol * norm) ** 2 / d
        if svd == "gram" or lam[0] == 0 or level > noise:
            return u, s, r
    if a.shape[0] < a.shape[1]:  # wide: R factor of a^T = QR (no Q formed), then the SVD of the small R^T
        r_fac = tl.qr(tl.transpose(a), mode="r")
        a = r_fac[1] if isinstance(r_fac, tuple) else r_fac  # torch returns (Q, R), numpy R only
        a = tl.transpose(a)
    u, s, _ = tl.svd(a, full_matrices=False)
    s = _to_numpy(s).astype(np.float64)
    r = rank_from_singular_values(s, tol, norm, d) if rank is None else min(rank, s.size)
    return u, s, r


def _hosvd(
    c: Any,
    tol: float,
    ranks: tuple[int, ...] | None,
    svd: str,
    refine: bool,
    n_iter: int,
    be: _Backend,
) -> tuple[Any, list[Any], list[np.ndarray], float]:
    """Truncated HOSVD of ``c`` (optionally refined by ``n_iter`` HOOI sweeps of tensorly's ``tucker``);
    call inside the backend's context. Returns core, factors, singular values and the relative error
    (the HOSVD tail bound, or the exact error after refinement)."""
    d = c.ndim
    norm = float(tl.norm(c, 2))
    factors, sigmas, tails2 = [], [], 0.0
    for mode in range(d):
        u, s, r = _mode_svd(
            tl.unfold(c, mode), tol, norm, d, None if ranks is None else ranks[mode], svd, be.eps
        )
        factors.append(u[:, :r])
        sigmas.append(s)
        tails2 += float(np.sum(s[r:] ** 2))
    core = _multi_mode_dot(c, factors, transpose=True)
    if not refine or norm == 0:
        return core, factors, sigmas, (math.sqrt(tails2) / norm if norm > 0 else 0.0)
    from tensorly.decomposition import tucker

    # HOOI (Tucker-ALS) started from the truncated HOSVD; the small coefficient tensor keeps it cheap
    core, factors = tucker(
        c, rank=[f.shape[1] for f in factors], n_iter_max=n_iter, init=(core, list(factors)), tol=1e-12
    )
    err = float(tl.norm(c - _multi_mode_dot(core, factors), 2)) / norm
    return core, list(factors), sigmas, err


def _compress(
    c: Any,
    box: np.ndarray,
    tol: float,
    ranks: tuple[int, ...] | None,
    svd: str,
    refine: bool,
    n_iter: int,
    norm: str,
    be: _Backend,
    weighted: bool = False,
) -> ChebyshevTucker:
    """Level 2 on a backend coefficient tensor ``c`` (in the coefficient or the L2 inner product; ``weighted``
    says that ``c`` is already :math:`C \times_k L_k^T`)."""
    with be.context():
        if norm == "l2":
            transforms = [_l2_transforms(int(s) - 1) for s in c.shape]
            if not weighted:
                c = _multi_mode_dot(c, [be.asarray(lt) for lt, _ in transforms])
        core, factors, sigmas, err = _hosvd(c, tol, ranks, svd, refine, n_iter, be)
        if norm == "l2":
            factors = [be.asarray(inv) @ f for (_, inv), f in zip(transforms, factors, strict=True)]
    return ChebyshevTucker(core, list(factors), box, sigmas, err, norm)


# ----------------------------------------------------------------------------------------------------------
# result objects


@dataclass
class GridTucker:
    r"""Algebraic Tucker tensor :math:`A = G \times_1 U_1 \cdots \times_d U_d` on a tensor grid,
    :math:`U_k = T(\text{grid}_k) V_k` (paper, Sec. 3: two-level orthogonal Tucker tensor); arrays of the
    backend that built it."""

    core: Any
    factors: list[Any]

    def full(self) -> Any:
        """The full tensor (size ``prod(len(grid_k))``), in the backend's array type."""
        with _backend_of(self.core).context():
            return _multi_mode_dot(self.core, self.factors)

    def to_tensorly(self):
        """The same tensor as a ``tensorly.tucker_tensor.TuckerTensor``."""
        from tensorly.tucker_tensor import TuckerTensor

        with _backend_of(self.core).context():
            return TuckerTensor((self.core, list(self.factors)))

    @property
    def shape(self) -> tuple[int, ...]:
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
        return self._be().dtype

    @property
    def device(self) -> Any:
        """The torch device (``None`` for numpy)."""
        return self._be().device

    def _be(self) -> _Backend:
        return _backend_of(self.core)

    def to(self, backend: str | None = None, dtype: Any = None, device: Any = None) -> ChebyshevTucker:
        """A copy with core and factors converted to another backend / dtype / device (default: keep)."""
        be = self._be()
        name = backend or be.name
        if device is None and name == be.name:
            device = be.device
        target = _resolve_backend(name, _dtype_name(dtype or be.dtype), device)
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
        lo, hi = (float(v.detach()) if _is_torch(v) else float(v) for v in (x.min(), x.max()))
        if lo < a - slack or hi > b + slack:
            raise SolverError(
                f"coordinates along axis {k} must lie in the box [{a}, {b}], got range [{lo}, {hi}]"
            )

    def _basis(self, k: int, x: Any, be: _Backend) -> Any:
        x = be.asarray(x).reshape(-1)
        _check_finite(x, f"grid along axis {k}")
        self._check_inside(x, k)
        a, b = (float(v) for v in self.box[k])  # python floats keep float32 arrays float32
        return _vandermonde((2.0 * x - (a + b)) / (b - a), self.degrees[k]) @ self.factors[k]

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
            _check_finite(pts, "points")
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
                dmat = _derivative_coefficients(np.eye(n + 1), 2.0 / (b - a)) if n else np.zeros((1, 1))
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
                w = be.asarray(0.5 * (b - a) * _integral_weights(self.degrees[k]))
                ws.append(tl.reshape(w @ self.factors[k], (1, -1)))
            return float(tl.reshape(_multi_mode_dot(self.core, ws), (1,))[0])


# ----------------------------------------------------------------------------------------------------------
# builders


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
    the mode singular vectors are computed ("auto", "gram" or "exact", see :func:`_mode_svd`); with "auto"
    and a loose tolerance, ``singular_values`` below ~1e-7 relative are round-off level (use "exact" for decay
    plots). ``backend``/``dtype``/``device`` as in the module docstring.
    """
    _check_level2_options(svd, norm, refine, n_iter)
    be = _resolve_backend(backend, dtype, device, coefficients)
    c = be.asarray(coefficients)
    _check_finite(c, "Chebyshev coefficients")
    boxa = _check_box(box, c.ndim)
    tol = _check_tol(tol)
    if any(s < 2 for s in c.shape):
        raise ConfigError(f"coefficient tensor needs degree >= 1 per mode, got shape {tuple(c.shape)}")
    return _compress(c, boxa, tol, _resolve_ranks(ranks, c.ndim), svd, bool(refine), int(n_iter), norm, be)


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
    be = _resolve_backend(backend, dtype, device)
    boxa = _check_box(box)
    d = boxa.shape[0]
    degs = _check_degrees(degree, d)
    tol = _check_tol(tol)
    grids = []
    for k, (n, (a, b)) in enumerate(zip(degs, boxa, strict=True)):
        shape = [1] * d
        shape[k] = n + 1
        grids.append(be.asarray(chebyshev_points(n, a, b).reshape(shape)))
    with be.context():
        values = be.asarray(f(*grids)) + tl.zeros(tuple(n + 1 for n in degs), **tl.context(grids[0]))
    _check_finite(values, "function values at the Chebyshev points")
    with be.context():
        c = _to_coefficients(values, be, norm)
    return _compress(c, boxa, tol, _resolve_ranks(ranks, d), svd, bool(refine), int(n_iter), norm, be, True)


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
    be = _resolve_backend(backend, dtype, device, values)
    vals = np.asarray(_to_numpy(values), dtype=np.float64)
    _check_finite(vals, "grid tensor")
    boxa = _check_box(box, vals.ndim)
    if any(s < 2 for s in vals.shape):
        raise SolverError(f"grid tensor needs at least 2 points per axis, got shape {vals.shape}")
    degs = _check_degrees(tuple(s - 1 for s in vals.shape) if degree is None else degree, vals.ndim)
    if spline_order not in (1, 3, 5):
        raise ConfigError(f"spline_order must be 1, 3 or 5, got {spline_order!r}")
    tol = _check_tol(tol)
    for k, (n, (a, b)) in enumerate(zip(degs, boxa, strict=True)):
        x = np.linspace(a, b, vals.shape[k])
        p = min(spline_order, vals.shape[k] - 1)
        if p % 2 == 0:
            p -= 1
        spline = scipy.interpolate.make_interp_spline(x, vals, k=p, axis=k)
        vals = spline(np.clip(chebyshev_points(n, a, b), a, b))
    with be.context():
        c = _to_coefficients(vals, be, norm)
    return _compress(
        c, boxa, tol, _resolve_ranks(ranks, vals.ndim), svd, bool(refine), int(n_iter), norm, be, True
    )


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
    be = _resolve_backend(backend, dtype, device, *factors, weights)
    mats = [be.asarray(a) for a in factors]
    d = len(mats)
    boxa = _check_box(box, d)
    tol = _check_tol(tol)
    rank = int(mats[0].shape[1]) if mats[0].ndim == 2 else -1
    for k, a in enumerate(mats):
        if a.ndim != 2 or a.shape[1] != rank or a.shape[0] < 2:
            raise SolverError(
                f"CP factor {k} must have shape (n_{k} + 1 >= 2, R={rank}) (values at Chebyshev points), "
                f"got {tuple(a.shape)}"
            )
        _check_finite(a, f"CP factor {k}")
    w = be.asarray(np.ones(rank) if weights is None else weights).reshape(-1)
    if tuple(w.shape) != (rank,):
        raise SolverError(f"CP weights must have shape ({rank},), got {tuple(np.shape(weights))}")
    _check_finite(w, "CP weights")
    with be.context():
        coeffs = [_coefficients(a, (0,), be) for a in mats]
        if norm == "l2":
            transforms = [_l2_transforms(int(a.shape[0]) - 1) for a in mats]
            coeffs = [be.asarray(lt) @ b for (lt, _), b in zip(transforms, coeffs, strict=True)]
        norms = [tl.norm(b, 2, axis=0) for b in coeffs]
        scale = tl.abs(w * reduce(lambda x, y: x * y, norms)) ** (1.0 / d)
        vs, sigmas, tails2, total2 = [], [], 0.0, 0.0
        for b, nrm in zip(coeffs, norms, strict=True):
            balanced = b / (nrm + (nrm == 0)) * scale
            fro = float(tl.norm(balanced, 2))
            if fro > 0:
                u, s, r = _mode_svd(balanced, tol, fro, d, None, "auto", be.eps)
            else:  # an all-zero CP tensor: any rank-1 basis
                u, s, r = tl.eye(int(b.shape[0]), **tl.context(b)), np.zeros(1), 1
            vs.append(u[:, :r])
            sigmas.append(s)
            tails2 += float(np.sum(s[r:] ** 2))
            total2 += fro**2
        # project the CP tensor onto the bases: G = sum_r w_r (V1^T b1_r) o (V2^T b2_r) o ...
        proj = [tl.transpose(v) @ b for v, b in zip(vs, coeffs, strict=True)]  # r_k x R
        core = tl.zeros(tuple(int(v.shape[1]) for v in vs), **tl.context(coeffs[0]))
        for start in range(0, rank, 2048):  # chunks of CP terms bound the Khatri-Rao memory
            sl = slice(start, start + 2048)
            if d == 1:
                core = core + proj[0][:, sl] @ w[sl]
                continue
            kr = proj[d - 1][:, sl]
            for k in range(d - 2, 0, -1):  # Khatri-Rao product of modes 2..d: (r_2 .. r_d) x chunk
                kr = tl.reshape(proj[k][:, None, sl] * kr[None, :, :], (-1, int(kr.shape[1])))
            core = core + tl.reshape((proj[0][:, sl] * w[sl]) @ tl.transpose(kr), tuple(core.shape))
        est = math.sqrt(tails2 / total2) if total2 > 0 else 0.0
        if recompress and math.prod(core.shape) > 1 and min(core.shape) > 1:
            core, f2, _, err2 = _hosvd(core, tol, None, "auto", False, 1, be)
            vs = [v @ f for v, f in zip(vs, f2, strict=True)]
            est += err2
        if norm == "l2":
            vs = [be.asarray(inv) @ v for (_, inv), v in zip(transforms, vs, strict=True)]
    return ChebyshevTucker(core, vs, boxa, sigmas, est, norm)


_MOVED = ("newton_potential", "newton_sinc_quadrature", "GaussianSum", "long_range_cp")


def __getattr__(name: str) -> Any:
    """The Newton-kernel helpers moved to :mod:`sciml.solvers.newton_kernel`; still reachable from here."""
    if name in _MOVED:
        from sciml.solvers import newton_kernel

        return getattr(newton_kernel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
