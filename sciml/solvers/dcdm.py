"""The deep conjugate direction method (DCDM) and its classical baselines on SPD systems ``A x = b``.

DCDM (Kaneda, Akar, Chen, Teran and Zhu, "A Deep Conjugate Direction Method for Iteratively Solving Linear
Systems", ICML 2023) is a conjugate direction method whose search directions come from a network ``f`` that
approximates ``A^-1`` up to a constant. Iteration ``k`` (:func:`dcdm`), from the residual ``r_k = b - A x_k``:

1. ``q = f(r_k / ||r_k||)`` (the network sees unit-scale residuals; directions are scale-free);
2. ``p_k = q - (q.A p_{k-1}) / (p_{k-1}.A p_{k-1}) p_{k-1} - (q.A p_{k-2}) / (p_{k-2}.A p_{k-2}) p_{k-2}``
   (A-orthogonal to the two previous directions);
3. exact line search along ``p_k``: ``x_{k+1} = x_k + (p_k.r_k) / (p_k.A p_k) p_k``,
   ``r_{k+1} = r_k - (p_k.r_k) / (p_k.A p_k) A p_k``.

With ``f = A^-1`` the first step is exact. With a fixed linear SPD ``f = M`` the directions are those of
preconditioned CG (``M r_k`` is already A-orthogonal to all but the last direction), so the iteration ends in
at most ``n`` steps in exact arithmetic; ``f = identity`` is plain CG.

**Degenerate directions.** A network direction is *degenerate* when, after the orthogonalization, it holds
a non-finite value, has ``p.A p <= 0``, or is nearly orthogonal to the residual:
``|p.r| <= degeneracy_tol * ||p|| ||r||`` (the exact line search along it would then gain almost nothing).
The iteration then takes the CG direction instead (``q = r_k``, orthogonalized the same way) and counts the
fallback in :attr:`SolveResult.fallbacks`.

The baselines (:func:`conjugate_gradient` with no preconditioner, with :func:`incomplete_cholesky` or with an
AMG V-cycle, and :func:`amg_solve`, stationary AMG V-cycles; AMG from ``pyamg``) share the stopping rule
(relative residual ``||b - A x_k|| / ||b|| <= tol``) and return the same :class:`SolveResult`, residual
history included. :func:`solve` runs any of them by name.

The training data of DCDM's network (:func:`lanczos_ritz_vectors`, :func:`ritz_right_hand_sides`) are
right-hand sides built from Ritz vectors of ``A``, weighted toward the low end of the spectrum.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from sciml.errors import ConfigError, SolverError

logger = logging.getLogger(__name__)

Direction = Callable[[np.ndarray], np.ndarray]
"""A map from a (unit-norm) residual to a search direction, e.g. a trained network on the fluid cells."""

BASELINES = ("cg", "ic-pcg", "amg", "amg-pcg")
"""The classical solvers :func:`solve` runs by name."""


@dataclass
class SolveResult:
    """The outcome of an iterative solve.

    ``residuals[k]`` is the relative residual ``||b - A x_k|| / ||b||`` after ``k`` iterations
    (``residuals[0]`` that of the initial guess). ``setup_seconds`` is the preconditioner's construction
    (IC factorization, AMG hierarchy), ``solve_seconds`` the iteration. ``directions`` holds the search
    directions when asked for (:func:`dcdm` ``keep_directions``).
    """

    x: np.ndarray
    iterations: int
    residuals: list[float]
    converged: bool
    solve_seconds: float
    setup_seconds: float = 0.0
    fallbacks: int = 0
    directions: list[np.ndarray] = field(default_factory=list)


def _check_system(A: Any, b: np.ndarray, tol: float, max_iterations: int) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    if b.ndim != 1 or A.shape != (b.size, b.size):
        raise ConfigError(
            f"solve: A of shape {A.shape} does not fit b of shape {b.shape} (expected n x n, n)"
        )
    if not 0 < tol < 1:
        raise ConfigError(f"solve: tol must be in (0, 1), got {tol!r}")
    if max_iterations < 1:
        raise ConfigError(f"solve: max_iterations must be >= 1, got {max_iterations!r}")
    if not np.all(np.isfinite(b)):
        raise ConfigError("solve: b holds NaN or inf")
    return b


def dcdm(
    A: Any,
    b: np.ndarray,
    direction: Direction,
    tol: float = 1e-6,
    max_iterations: int = 1000,
    x0: np.ndarray | None = None,
    degeneracy_tol: float = 1e-8,
    keep_directions: bool = False,
    n_previous: int = 2,
) -> SolveResult:
    """Solve the SPD system ``A x = b`` by DCDM with search directions from ``direction`` (see the module
    docstring for the iteration and for when a direction is degenerate and replaced by CG's).

    Args:
        A: the SPD matrix (anything with ``A @ v`` and ``shape``, e.g. a ``scipy.sparse`` matrix).
        b: the right-hand side.
        direction: ``r -> q``, called with unit-norm residuals (a network approximating ``A^-1`` up to a
            constant).
        tol: stop when ``||b - A x|| / ||b|| <= tol``.
        max_iterations: the iteration cap (not converged when reached).
        x0: the initial guess (default zero).
        degeneracy_tol: a direction with ``|p.r| <= degeneracy_tol ||p|| ||r||`` is degenerate.
        keep_directions: keep every search direction ``p_k`` in the result (for tests).
        n_previous: how many previous directions each new one is A-orthogonalized against (2 in the paper;
            more keeps conjugacy longer when the network is inexact, at one dot product and axpy each).
    """
    b = _check_system(A, b, tol, max_iterations)
    if n_previous < 1:
        raise ConfigError(f"dcdm: n_previous must be >= 1, got {n_previous!r}")
    started = time.perf_counter()
    x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - A @ x
    norm_b = float(np.linalg.norm(b)) or 1.0
    residuals = [float(np.linalg.norm(r)) / norm_b]
    previous: list[tuple[np.ndarray, np.ndarray, float]] = []  # (p, A p, p.A p) of the last directions
    kept: list[np.ndarray] = []
    fallbacks = 0
    iterations = 0
    while residuals[-1] > tol and iterations < max_iterations:
        norm_r = float(np.linalg.norm(r))
        p, Ap, pAp = _conjugate(A, np.asarray(direction(r / norm_r), dtype=np.float64).reshape(-1), previous)
        if _degenerate(p, pAp, r, norm_r, degeneracy_tol):
            fallbacks += 1
            logger.debug("dcdm: degenerate network direction at iteration %d; CG direction taken", iterations)
            p, Ap, pAp = _conjugate(A, r / norm_r, previous)
            if _degenerate(p, pAp, r, norm_r, 0.0):
                raise SolverError(
                    f"dcdm: no descent direction at iteration {iterations} (p.A p = {pAp:.3g}): is A SPD?"
                )
        step = float(p @ r) / pAp
        x += step * p
        r -= step * Ap
        previous = [*previous, (p, Ap, pAp)][-n_previous:]
        if keep_directions:
            kept.append(p)
        iterations += 1
        residuals.append(float(np.linalg.norm(r)) / norm_b)
    return SolveResult(
        x=x,
        iterations=iterations,
        residuals=residuals,
        converged=residuals[-1] <= tol,
        solve_seconds=time.perf_counter() - started,
        fallbacks=fallbacks,
        directions=kept,
    )


def _conjugate(
    A: Any, q: np.ndarray, previous: list[tuple[np.ndarray, np.ndarray, float]]
) -> tuple[np.ndarray, np.ndarray, float]:
    """``q`` A-orthogonalized against the previous directions, with ``A p`` and ``p.A p``."""
    p = q.copy()
    for p_old, Ap_old, pAp_old in previous:
        p -= (float(q @ Ap_old) / pAp_old) * p_old
    Ap = A @ p
    return p, Ap, float(p @ Ap)


def _degenerate(p: np.ndarray, pAp: float, r: np.ndarray, norm_r: float, degeneracy_tol: float) -> bool:
    """Non-finite, not A-positive, or (nearly) orthogonal to the residual (see the module docstring)."""
    if not (np.isfinite(pAp) and np.all(np.isfinite(p))) or pAp <= 0.0:
        return True
    return abs(float(p @ r)) <= degeneracy_tol * float(np.linalg.norm(p)) * norm_r


def conjugate_gradient(
    A: Any,
    b: np.ndarray,
    tol: float = 1e-6,
    max_iterations: int = 10000,
    preconditioner: Callable[[np.ndarray], np.ndarray] | None = None,
    x0: np.ndarray | None = None,
) -> SolveResult:
    """(Preconditioned) conjugate gradients with the relative-residual stopping rule of :func:`dcdm`.

    ``preconditioner`` applies ``M^-1`` (SPD) to a residual; ``None`` is plain CG.
    """
    b = _check_system(A, b, tol, max_iterations)
    started = time.perf_counter()
    x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - A @ x
    norm_b = float(np.linalg.norm(b)) or 1.0
    residuals = [float(np.linalg.norm(r)) / norm_b]
    z = preconditioner(r) if preconditioner is not None else r
    p = z.copy()
    rz = float(r @ z)
    iterations = 0
    while residuals[-1] > tol and iterations < max_iterations:
        Ap = A @ p
        pAp = float(p @ Ap)
        if not pAp > 0:
            raise SolverError(f"conjugate_gradient: p.A p = {pAp:.3g} at iteration {iterations}: is A SPD?")
        step = rz / pAp
        x += step * p
        r -= step * Ap
        iterations += 1
        residuals.append(float(np.linalg.norm(r)) / norm_b)
        z = preconditioner(r) if preconditioner is not None else r
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return SolveResult(x, iterations, residuals, residuals[-1] <= tol, time.perf_counter() - started)


def incomplete_cholesky(A: sp.spmatrix) -> Callable[[np.ndarray], np.ndarray]:
    """The zero fill-in incomplete Cholesky preconditioner IC(0) of ``A``: ``r -> M^-1 r`` with
    ``M = (D + E) D^-1 (D + E)^T``, ``E`` the strict lower triangle of ``A`` and ``D`` the diagonal of
    pivots ``d_i = a_ii - sum_{j < i, a_ij != 0} a_ij^2 / d_j``.

    This is IC(0) exactly when no two lower neighbours of a row are neighbours of each other (the matrix
    graph has no triangles), as for the 5- and 7-point Laplacians of :mod:`sciml.operators.poisson`: IC(0)'s
    off-diagonal updates then all fall outside the pattern, only the pivots change. The two triangular
    factors are solved by SuperLU in their natural order (no pivoting, no fill).
    """
    A = sp.csr_matrix(A, dtype=np.float64)
    lower = sp.tril(A, k=-1, format="csr")
    diagonal = A.diagonal()
    pivots = np.empty_like(diagonal)
    indptr, indices, data = lower.indptr, lower.indices, lower.data
    for i in range(A.shape[0]):
        cols = indices[indptr[i] : indptr[i + 1]]
        vals = data[indptr[i] : indptr[i + 1]]
        pivots[i] = diagonal[i] - float(np.sum(vals * vals / pivots[cols])) if cols.size else diagonal[i]
        if not pivots[i] > 0:
            raise SolverError(f"incomplete_cholesky: pivot {i} is {pivots[i]:.3g} <= 0: A is not SPD enough")
    factor = (lower + sp.diags(pivots)).tocsc()  # D + E
    options = {"permc_spec": "NATURAL", "diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}}
    solve_lower = spla.splu(factor, **options).solve
    solve_upper = spla.splu(factor.T.tocsc(), **options).solve

    def apply(r: np.ndarray) -> np.ndarray:
        return solve_upper(pivots * solve_lower(r))

    return apply


def amg_hierarchy(A: sp.spmatrix) -> Any:
    """pyamg's smoothed-aggregation hierarchy of the SPD matrix ``A`` (its defaults, V-cycles)."""
    import pyamg

    return pyamg.smoothed_aggregation_solver(sp.csr_matrix(A, dtype=np.float64))


def amg_solve(
    A: Any, b: np.ndarray, hierarchy: Any, tol: float = 1e-6, max_iterations: int = 1000
) -> SolveResult:
    """Stationary AMG: ``x_{k+1} = x_k + V(b - A x_k)``, one V-cycle ``V`` of ``hierarchy`` per iteration."""
    b = _check_system(A, b, tol, max_iterations)
    started = time.perf_counter()
    cycle = hierarchy.aspreconditioner(cycle="V")
    x = np.zeros_like(b)
    r = b.copy()
    norm_b = float(np.linalg.norm(b)) or 1.0
    residuals = [float(np.linalg.norm(r)) / norm_b]
    iterations = 0
    while residuals[-1] > tol and iterations < max_iterations:
        x += cycle @ r
        r = b - A @ x
        iterations += 1
        residuals.append(float(np.linalg.norm(r)) / norm_b)
    return SolveResult(x, iterations, residuals, residuals[-1] <= tol, time.perf_counter() - started)


def solve(
    name: str, A: sp.spmatrix, b: np.ndarray, tol: float = 1e-6, max_iterations: int = 10000
) -> SolveResult:
    """Run baseline ``name`` (:data:`BASELINES`: ``cg``, ``ic-pcg``, ``amg``, ``amg-pcg``) on ``A x = b``;
    ``setup_seconds`` holds the preconditioner's construction."""
    if name not in BASELINES:
        raise ConfigError(f"solver {name!r} is not one of {list(BASELINES)}")
    started = time.perf_counter()
    if name == "cg":
        return conjugate_gradient(A, b, tol, max_iterations)
    if name == "ic-pcg":
        apply = incomplete_cholesky(A)
        setup = time.perf_counter() - started
        result = conjugate_gradient(A, b, tol, max_iterations, preconditioner=apply)
    else:
        hierarchy = amg_hierarchy(A)
        setup = time.perf_counter() - started
        if name == "amg":
            result = amg_solve(A, b, hierarchy, tol, max_iterations)
        else:
            cycle = hierarchy.aspreconditioner(cycle="V")
            result = conjugate_gradient(A, b, tol, max_iterations, preconditioner=lambda r: cycle @ r)
    result.setup_seconds = setup
    return result


# ---------------------------------------------------------------------------------------- training data
def lanczos_ritz_vectors(
    A: Any, n_vectors: int, seed: int = 0, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n_vectors`` Ritz pairs of the symmetric ``A`` from as many Lanczos steps (full reorthogonalization).

    The Lanczos basis ``W`` (``n_vectors x n``, orthonormal rows) starts from ``start`` (default ``A g`` with
    ``g`` standard normal from ``seed``, as the DCDM authors do), ``T = W A W^T`` is tridiagonal, and its
    eigenpairs ``T = Q diag(theta) Q^T`` give the Ritz values ``theta`` (ascending) and vectors ``Q^T W``
    (rows). A breakdown (an invariant subspace found early) ends the basis there.
    """
    n = A.shape[0]
    if not 1 <= n_vectors <= n:
        raise ConfigError(f"lanczos_ritz_vectors: n_vectors must be in 1 .. {n}, got {n_vectors}")
    rng = np.random.default_rng(seed)
    w = np.asarray(A @ rng.standard_normal(n) if start is None else start, dtype=np.float64)
    basis = np.zeros((n_vectors, n))
    alpha, beta = np.zeros(n_vectors), np.zeros(n_vectors)
    basis[0] = w / np.linalg.norm(w)
    m = n_vectors
    for k in range(n_vectors):
        v = A @ basis[k]
        alpha[k] = basis[k] @ v
        if k + 1 == n_vectors:
            break
        v -= basis[: k + 1].T @ (basis[: k + 1] @ v)  # full reorthogonalization, twice is enough
        v -= basis[: k + 1].T @ (basis[: k + 1] @ v)
        beta[k] = np.linalg.norm(v)
        if beta[k] <= 1e-10 * abs(alpha[k]):
            m = k + 1
            logger.info("lanczos: invariant subspace after %d steps", m)
            break
        basis[k + 1] = v / beta[k]
    T = np.diag(alpha[:m]) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
    values, vectors = np.linalg.eigh(T)
    return values, vectors.T @ basis[:m]


def ritz_right_hand_sides(
    ritz_values: np.ndarray,
    ritz_vectors: np.ndarray,
    n_samples: int,
    seed: int = 0,
    theta: int = 0,
    low_weight: float = 9.0,
) -> np.ndarray:
    """Right-hand sides ``b = sum_i c_i q_i`` from Ritz vectors ``q_i`` (rows, ascending Ritz values), as the
    DCDM paper makes its training data: ``c_i ~ N(0, 1)``, times ``low_weight`` for the lowest
    ``m / 2 + theta`` of the ``m`` vectors (the smooth modes CG converges on slowest). Ritz vectors of
    (near-)zero Ritz value (``< 1e-8``) are left out. Each ``b`` is scaled to unit RMS (``||b|| = sqrt(n)``),
    so its entries have the same size on every grid. Returns ``n_samples x n``."""
    keep = ritz_values >= 1e-8
    vectors = ritz_vectors[keep]
    m = vectors.shape[0]
    if m == 0:
        raise ConfigError("ritz_right_hand_sides: no Ritz vector with a nonzero Ritz value")
    rng = np.random.default_rng(seed)
    coefficients = rng.standard_normal((n_samples, m))
    cut = min(m, m // 2 + theta)
    coefficients[:, :cut] *= low_weight
    rhs = coefficients @ vectors
    rhs *= np.sqrt(rhs.shape[1]) / np.linalg.norm(rhs, axis=1, keepdims=True)
    return rhs
