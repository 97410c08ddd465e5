r"""Level 2 of the Chebyshev-Tucker format: the truncated HOSVD of a (coefficient) tensor, in any backend.

:math:`C \approx G \times_1 V_1 \times_2 V_2 \dots \times_d V_d` with :math:`V_k` the leading left singular
vectors of the mode-:math:`k` unfolding (:func:`mode_svd`), optionally refined by HOOI / Tucker-ALS with
``tensorly.decomposition.tucker`` (:func:`hosvd`). Ranks come from a tolerance with the rule of the authors'
``hosvd_s`` (:func:`rank_from_singular_values`): per mode the smallest :math:`r` with
:math:`\sqrt{\sum_{j \ge r} \sigma_j^2} \le \mathrm{tol}\, \|C\|_F / \sqrt{d}`, so that the HOSVD error is at
most :math:`\mathrm{tol}\,\|C\|_F`. Everything but :func:`rank_from_singular_values` and
:func:`resolve_ranks` runs inside a backend context (:meth:`sciml.solvers.tensor_backend.Backend.context`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorly as tl

from sciml.errors import ConfigError
from sciml.solvers.tensor_backend import Backend, to_numpy

__all__ = ["hosvd", "mode_dot", "mode_svd", "multi_mode_dot", "rank_from_singular_values", "resolve_ranks"]


def mode_dot(x: Any, a: Any, mode: int) -> Any:
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


def multi_mode_dot(x: Any, mats: Sequence[Any], transpose: bool = False) -> Any:
    """``x`` times ``mats[k]`` (or its transpose) along every mode k, the last mode first."""
    for mode in reversed(range(len(mats))):
        x = mode_dot(x, tl.transpose(mats[mode]) if transpose else mats[mode], mode)
    return x


def rank_from_singular_values(sigma: np.ndarray, tol: float, norm: float, d: int) -> int:
    r"""Smallest rank :math:`r \ge 1` with
    :math:`\sqrt{\sum_{j \ge r} \sigma_j^2} \le \mathrm{tol}\,\|C\|_F/\sqrt{d}`
    (the authors' ``hosvd_s`` rule)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    tails = np.sqrt(np.cumsum((sigma**2)[::-1])[::-1])  # tails[r] = sqrt(sum_{j >= r} sigma_j^2)
    threshold = tol * norm / math.sqrt(d)
    ok = np.nonzero(np.append(tails, 0.0) <= threshold)[0]
    return max(1, int(ok[0]))


def resolve_ranks(ranks: int | Sequence[int] | None, d: int) -> tuple[int, ...] | None:
    """Fixed Tucker ranks: ``None`` (ranks from the tolerance), or an int ``>= 1`` / ``d`` such ints."""
    if ranks is None:
        return None
    rs = (ranks,) * d if isinstance(ranks, (int, np.integer)) else tuple(ranks)
    if len(rs) != d or any((not isinstance(r, (int, np.integer))) or r < 1 for r in rs):
        raise ConfigError(f"ranks must be an int >= 1 or {d} such ints, got {ranks!r}")
    return tuple(int(r) for r in rs)


def mode_svd(
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
        lam = np.clip(to_numpy(w).astype(np.float64)[::-1], 0.0, None)
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
    s = to_numpy(s).astype(np.float64)
    r = rank_from_singular_values(s, tol, norm, d) if rank is None else min(rank, s.size)
    return u, s, r


def hosvd(
    c: Any,
    tol: float,
    ranks: tuple[int, ...] | None,
    svd: str,
    refine: bool,
    n_iter: int,
    be: Backend,
) -> tuple[Any, list[Any], list[np.ndarray], float]:
    """Truncated HOSVD of ``c`` (optionally refined by ``n_iter`` HOOI sweeps of tensorly's ``tucker``);
    call inside the backend's context. Returns core, factors, singular values and the relative error
    (the HOSVD tail bound, or the exact error after refinement)."""
    d = c.ndim
    norm = float(tl.norm(c, 2))
    factors, sigmas, tails2 = [], [], 0.0
    for mode in range(d):
        u, s, r = mode_svd(
            tl.unfold(c, mode), tol, norm, d, None if ranks is None else ranks[mode], svd, be.eps
        )
        factors.append(u[:, :r])
        sigmas.append(s)
        tails2 += float(np.sum(s[r:] ** 2))
    core = multi_mode_dot(c, factors, transpose=True)
    if not refine or norm == 0:
        return core, factors, sigmas, (math.sqrt(tails2) / norm if norm > 0 else 0.0)
    from tensorly.decomposition import tucker

    # HOOI (Tucker-ALS) started from the truncated HOSVD; the small coefficient tensor keeps it cheap
    core, factors = tucker(
        c, rank=[f.shape[1] for f in factors], n_iter_max=n_iter, init=(core, list(factors)), tol=1e-12
    )
    err = float(tl.norm(c - multi_mode_dot(core, factors), 2)) / norm
    return core, list(factors), sigmas, err
