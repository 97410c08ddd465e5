r"""The exact inner solve of the GP solver and the outer kernel loop (``GPSolver.fit(method="exact")``).

For a fixed kernel and fixed :math:`\tau`, maximising the objective of :mod:`sciml.solvers.gp` over the
whitened
solution :math:`\mathcal V` is the least-squares problem

.. math:: \min_{\mathcal V}\; F(\mathcal V) = \tfrac12\|\mathcal V\|^2
          + \tfrac{\lambda_b\tau_b}{2}\|B\mathcal V - g\|^2 + \tfrac{\tau_c}{2}\|R(\mathcal V)\|^2 ,

with :math:`B` the (linear) map to :math:`u` on the faces and :math:`R` the PDE residual on the collocation
points. It is solved by Gauss-Newton: at :math:`\mathcal V_0` the residual is linearised,
:math:`R(\mathcal V_0 + p) \approx r_0 + Jp`, and the step solves the normal equations

.. math:: (I + \tau_c J^\top J + \lambda_b\tau_b B^\top B)\, p
          = -(\mathcal V_0 + \tau_c J^\top r_0 + \lambda_b\tau_b B^\top b_0),

followed by a backtracking line search on :math:`F`. A residual that is affine in :math:`u` (a linear PDE) is
detected after the first step (the model predicted the new residual exactly) and then needs no further
linearisation: one solve per :math:`\tau`. The Jacobian comes from autograd through the user's residual
(:class:`Linearization`): the residual is evaluated once on leaf copies of the derivatives it reads; when it
acts pointwise (checked on a random direction) :math:`J` is a sum of coefficient fields times the derivative
operators, otherwise every product goes through autograd (double backward), so any residual works.

* **Small grids** (1-D, and up to ``DENSE_POINTS`` = 2500 points in any dimension): dense. The SVD of
  :math:`J` (once per linearisation) turns the solve for any :math:`\tau` into a
  diagonal solve plus a rank-:math:`N_b` (Woodbury) correction for the two boundary rows: exact, and cheap to
  repeat for the :math:`\tau` updates.
* **Larger grids in D >= 2**: conjugate gradients on the normal equations, applied with mode products only
  (never an
  :math:`N \times N` matrix), preconditioned by the exact inverse of the square collocation system of a
  constant-coefficient, separable approximation of :math:`J` (the mean coefficient of each pure derivative
  ``xx``, ``yy``, ``x``... and of ``u``; mixed derivatives are left out) on the grid values:
  the interior block is a Kronecker sum :math:`\sum_d I \otimes M_d \otimes I + c_0 I`, inverted by fast
  diagonalisation (eigen-decomposition of each :math:`M_d`), the boundary rows by elimination, and the
  whitening by triangular solves. With :math:`P = T^\top W^2 T` (:math:`W` the row weights) the preconditioned
  operator is :math:`I + (C^\top C)^{-1}`, :math:`C = WT`: a few iterations when the prior covers the
  frequencies the grid resolves; where the prior has (almost) no mass the PDE cannot see a mode, the prior
  term dominates and convergence slows. CG stops when the preconditioned residual norm has fallen by
  ``CG_TOL`` (1e-10), or after
  ``cg_iterations``; ``history`` records the iterations and the last relative residual norm.

Between solves the precisions take their closed-form values :math:`\tau_b = N_b / \|B\mathcal V - g\|^2`,
:math:`\tau_c = N_c / \|R\|^2` (capped at ``max_tau``), until :math:`\log\tau` changes by less than 1e-3.

**Kernel learning (outer loop).** With the solution at its optimum, ``kernel_steps`` Adam steps (learning rate
``kernel_lr``) change the kernel parameters with the grid values :math:`\mathcal U` held fixed (the gradient
at
the first step is that of the profiled objective), then the exact solve runs again. A round is kept only if it
raised the objective :math:`\mathcal L`; the loop stops at the first round that does not raise it by more than
``rtol`` times :math:`|\mathcal L|`, after ``kernel_rounds`` rounds, or when ``max_seconds`` have passed. On
the 1-D cases of ``solvers/gp_hm.py`` this raises :math:`\mathcal L` but barely moves the error: the
frequency initialisation (:mod:`sciml.solvers.gp_spectrum`) matters far more.

Why plain torch and not ``linear_operator`` / ``gpytorch`` here: the operators are mode products of small
dense
matrices and their transposes, the preconditioner needs per-dimension eigen-decompositions of non-symmetric
matrices and triangular whitening, and the log-determinant must not clamp eigenvalues (``linear_operator``'s
Kronecker ``logdet`` clamps at 1e-7); its CG (``linear_cg``) would only wrap the same closures. gpytorch is
used for the kernels' base class only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sciml.errors import SolverError
from sciml.solvers.gp_fit import COLLAPSE_FRACTION, FitOptions, monitor_axes, rel_l2_on_grid
from sciml.solvers.gp_problem import GridDerivatives, Operator, evaluate_residual, parse_derivative
from sciml.solvers.gp_solution import GPSolution
from sciml.solvers.kronecker import KroneckerSumSolver, kron_whiten, mode_dot

if TYPE_CHECKING:
    from sciml.solvers.gp import GPSolver

logger = logging.getLogger(__name__)

__all__ = ["ExactProblem", "Linearization", "fit_exact"]

ARMIJO = 1e-4
TAU_TOL = 1e-3
MAX_EXTRAPOLATION = 10.0
#: conjugate gradients stop when the preconditioned residual norm falls by this factor
CG_TOL = 1e-10
#: grids of at most this many points are solved densely (an SVD of the N x N Jacobian), in any dimension
DENSE_POINTS = 2500


def _extrapolate(logs: Sequence[float]) -> float:
    r"""Aitken extrapolation of the last three values of a fixed-point sequence (of :math:`\log\tau`): the
    limit of a linearly converging sequence; a sequence that does not slow down is carried ``10`` steps
    ahead. The closed-form update after the next solve corrects any overshoot."""
    x0, x1, x2 = logs[-3:]
    d1, d2 = x1 - x0, x2 - x1
    if d1 * d2 <= 0.0 or d2 == 0.0:
        return x2
    ahead = -d2 * d2 / (d2 - d1) if abs(d2) < 0.9 * abs(d1) else MAX_EXTRAPOLATION * d2
    return x2 + max(-MAX_EXTRAPOLATION * abs(d2), min(MAX_EXTRAPOLATION * abs(d2), ahead))


def _whitened_operator(solver: GPSolver, chols: Sequence[Tensor]) -> Operator:
    """The derivative operators acting on the whitened latent :math:`\\mathcal V` (for the grid
    parametrisation the grid operators times :math:`L_d`)."""
    operator = solver.prior.derivative_operators(chols)
    if solver.prior.whitened:
        return operator
    cache: dict[tuple[int, int], Tensor] = {}

    def whitened(mode: int, order: int) -> Tensor:
        if (mode, order) not in cache:
            op = operator(mode, order)
            cache[(mode, order)] = chols[mode] if op is None else op @ chols[mode]
        return cache[(mode, order)]

    return whitened


class ExactProblem:
    """The least-squares problem in the whitened latent for the solver's current kernel (see the module
    docstring): the derivative operators, the masks, the Dirichlet values and the objective :math:`F`."""

    def __init__(self, solver: GPSolver) -> None:
        self.solver = solver
        self.grid = solver.grid
        self.problem = solver.problem
        with torch.no_grad():
            self.chols = [c.detach() for c in solver.prior.cholesky()]
        self._operator = _whitened_operator(solver, self.chols)
        self._matrices: dict[tuple[int, int], Tensor | None] = {}
        mask = self.grid.boundary_mask
        self.boundary_mask = mask
        self.collocation_mask = torch.ones_like(mask) if self.grid.residual_on_boundary else ~mask
        self.boundary_weight = solver.boundary_weight

    def operator(self, mode: int, order: int) -> Tensor | None:
        """The whitened derivative operator (computed once, without autograd history)."""
        key = (mode, order)
        if key not in self._matrices:
            with torch.no_grad():
                op = self._operator(mode, order)
            self._matrices[key] = None if op is None else op.detach()
        return self._matrices[key]

    def derivatives(self, latent: Tensor) -> GridDerivatives:
        """The derivatives of ``latent`` on the grid."""
        return GridDerivatives(latent, self.problem.names, self.operator)  # type: ignore[arg-type]

    def residual(self, latent: Tensor) -> Tensor:
        """The PDE residual on the grid, zero off the collocation points."""
        res = evaluate_residual(self.problem, self.derivatives(latent), self.grid.points)
        return torch.where(self.collocation_mask, res, torch.zeros_like(res))

    def u(self, latent: Tensor) -> Tensor:
        """:math:`u` on the grid (linear in the latent)."""
        return self.derivatives(latent)["u"]

    def boundary(self, latent: Tensor) -> Tensor:
        """:math:`B\\mathcal V` on the grid: :math:`u` on the faces, zero inside."""
        u = self.u(latent)
        return torch.where(self.boundary_mask, u, torch.zeros_like(u))

    def boundary_transpose(self, values: Tensor) -> Tensor:
        """:math:`B^\\top` of a grid tensor (only its face entries count)."""
        out = torch.where(self.boundary_mask, values, torch.zeros_like(values))
        for mode in range(out.dim()):
            out = mode_dot(out, self.operator(mode, 0).transpose(0, 1), mode)  # type: ignore[union-attr]
        return out

    def misfit(self, latent: Tensor) -> Tensor:
        """:math:`B\\mathcal V - g` on the grid (zero inside)."""
        data = torch.zeros_like(latent)
        data[self.boundary_mask] = self.grid.boundary_values
        return self.boundary(latent) - data

    def value(self, latent: Tensor, tau_r: float, tau_b: float) -> float:
        """:math:`F(\\mathcal V)` (each term computed as a sum of squares, no cancellation)."""
        with torch.no_grad():
            res, mis = self.residual(latent), self.misfit(latent)
            return 0.5 * (
                float(latent.square().sum())
                + tau_r * float(res.square().sum())
                + self.boundary_weight * tau_b * float(mis.square().sum())
            )


class _Recorder(GridDerivatives):
    """The derivatives as leaf tensors (created on first access), so that autograd gives the residual's
    partial derivatives with respect to each of them."""

    def __init__(self, values: GridDerivatives) -> None:
        self._values = values
        self.names = values.names
        self.leaves: dict[tuple[int, ...], Tensor] = {}

    def __getitem__(self, key: str) -> Tensor:
        orders = parse_derivative(key, self.names)
        if orders not in self.leaves:
            self.leaves[orders] = self._values[key].detach().clone().requires_grad_(True)
        return self.leaves[orders]


class Linearization:
    """The residual linearised at ``latent``: ``r0`` (grid tensor, zero off the collocation points) and the
    products with :math:`J` and :math:`J^\\top` (grid tensors in and out).

    The residual is evaluated once, on leaf copies of the derivatives it reads. ``pointwise`` is true when
    :math:`J = \\sum_k \\mathrm{diag}(c_k)\\, \\mathcal D_k` with coefficient fields ``coefficients[k]``
    (checked against autograd on a random direction); otherwise products go through autograd.
    """

    def __init__(self, exact: ExactProblem, latent: Tensor, seed: int = 0) -> None:
        self.exact = exact
        with torch.no_grad():
            values = exact.derivatives(latent.detach())
        recorder = _Recorder(values)
        with torch.enable_grad():
            res = evaluate_residual(exact.problem, recorder, exact.grid.points)
            self._res = torch.where(exact.collocation_mask, res, torch.zeros_like(res))
        self.r0 = self._res.detach()
        self.origin = latent.detach().clone()
        self.keys = list(recorder.leaves)
        self._leaves = [recorder.leaves[k] for k in self.keys]
        self._dual: Tensor | None = None
        self._dual_grads: Sequence[Tensor | None] | None = None
        with torch.enable_grad():
            self.coefficients = self._coefficient_fields()
            self.pointwise, self.affine = self._check_structure(latent.detach(), seed)

    # -- fields and the pointwise check -----------------------------------------------------------------

    def _coefficient_fields(self) -> dict[tuple[int, ...], Tensor]:
        if not self._res.requires_grad or not self._leaves:
            raise SolverError(
                "problem.residual does not depend on u or its derivatives at the current iterate"
            )
        grads = torch.autograd.grad(
            self._res, self._leaves, torch.ones_like(self._res), retain_graph=True, allow_unused=True
        )
        return {
            key: torch.zeros_like(self.r0) if g is None else g.detach()
            for key, g in zip(self.keys, grads, strict=True)
        }

    def _apply(self, key: tuple[int, ...], tensor: Tensor, transpose: bool = False) -> Tensor:
        out = tensor
        for mode, order in enumerate(key):
            op = self.exact.operator(mode, order)
            if op is not None:
                out = mode_dot(out, op.transpose(0, 1) if transpose else op, mode)
        return out

    def _check_structure(self, latent: Tensor, seed: int) -> tuple[bool, bool]:
        r"""``(pointwise, affine)`` on a random direction ``s`` as large as the iterate: the coefficient
        fields give autograd's :math:`Js`, and :math:`R(\mathcal V + s) = r_0 + Js` (a nonlinear residual
        misses by :math:`O(|s|^2)`)."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        probe = torch.randn(self.r0.shape, generator=gen, dtype=self.r0.dtype).to(self.r0.device)
        probe = probe * (float(latent.square().mean().sqrt()) + 1.0)
        slow = self._jvp_autograd(probe)
        fast = self._jvp_pointwise(probe)
        scale = float(fast.abs().max() + slow.abs().max())
        pointwise = scale == 0.0 or float((fast - slow).abs().max()) <= 1e-9 * scale
        with torch.no_grad():
            moved = self.exact.residual(latent + probe) - self.r0
        scale = float(moved.abs().max() + slow.abs().max())
        affine = scale == 0.0 or float((moved - slow).abs().max()) <= 1e-7 * scale
        return pointwise, affine

    # -- products ---------------------------------------------------------------------------------------

    def _jvp_pointwise(self, p: Tensor) -> Tensor:
        out = torch.zeros_like(self.r0)
        for key in self.keys:
            out = out + self.coefficients[key] * self._apply(key, p)
        return out

    def _jvp_autograd(self, p: Tensor) -> Tensor:
        with torch.enable_grad():
            return self._jvp_autograd_enabled(p)

    def _jvp_autograd_enabled(self, p: Tensor) -> Tensor:
        if self._dual is None:  # J^T q as a (linear) function of q, differentiated again in q
            self._dual = torch.zeros_like(self.r0, requires_grad=True)
            self._dual_grads = torch.autograd.grad(
                self._res, self._leaves, self._dual, create_graph=True, retain_graph=True, allow_unused=True
            )
        total = sum(
            (g * self._apply(key, p)).sum()
            for key, g in zip(self.keys, self._dual_grads, strict=True)  # type: ignore[arg-type]
            if g is not None
        )
        if not isinstance(total, Tensor) or not total.requires_grad:
            return torch.zeros_like(self.r0)
        (out,) = torch.autograd.grad(total, self._dual, retain_graph=True, allow_unused=True)
        return torch.zeros_like(self.r0) if out is None else out.detach()

    def jvp(self, p: Tensor) -> Tensor:
        """:math:`J p` (grid tensor, zero off the collocation points)."""
        out = self._jvp_pointwise(p) if self.pointwise else self._jvp_autograd(p)
        return torch.where(self.exact.collocation_mask, out, torch.zeros_like(out))

    def vjp(self, q: Tensor) -> Tensor:
        """:math:`J^\\top q` for a grid tensor ``q``."""
        q = torch.where(self.exact.collocation_mask, q, torch.zeros_like(q))
        if self.pointwise:
            weighted = [(key, self.coefficients[key] * q) for key in self.keys]
        else:
            with torch.enable_grad():
                grads = torch.autograd.grad(self._res, self._leaves, q, retain_graph=True, allow_unused=True)
            weighted = [(key, g) for key, g in zip(self.keys, grads, strict=True) if g is not None]
        out = torch.zeros_like(q)
        for key, w in weighted:
            out = out + self._apply(key, w, transpose=True)
        return out

    def dense(self) -> Tensor:
        """:math:`J` as an ``(N, N)`` matrix (rows off the collocation points zero); for small problems."""
        n = self.r0.numel()
        eye = torch.eye(n, dtype=self.r0.dtype, device=self.r0.device)
        if self.pointwise and self.r0.dim() == 1:
            jac = torch.zeros(n, n, dtype=self.r0.dtype, device=self.r0.device)
            for key in self.keys:
                op = self.exact.operator(0, key[0])
                jac = jac + self.coefficients[key].reshape(-1, 1) * (eye if op is None else op)
        else:  # column by column (J^T e_i is row i)
            shape = self.r0.shape
            jac = torch.stack([self.vjp(row.reshape(shape)).reshape(-1) for row in eye], dim=0)
        return jac * self.exact.collocation_mask.reshape(-1, 1)

    def residual_at(self, latent: Tensor) -> Tensor:
        r"""The residual at ``latent``: :math:`r_0 + J(\mathcal V - \mathcal V_0)` (exact when affine, used
        away from the linearisation point only then)."""
        return self.r0 + self.jvp(latent - self.origin)

    def mean_coefficients(self) -> dict[tuple[int, ...], float]:
        """The mean of each coefficient field over the collocation points (for the preconditioner)."""
        mask = self.exact.collocation_mask
        return {key: float(c[mask].mean()) for key, c in self.coefficients.items()}


# ---------------------------------------------------------------------------------------------------------
# linear solves


class _DenseSolver:
    """1-D: :math:`J_c = U S Y^\\top` (SVD over the collocation rows) and the boundary rows :math:`B`; solves
    :math:`(I + \\tau_c J^\\top J + \\beta B^\\top B) p = \\mathrm{rhs}` for any :math:`\\tau_c, \\beta` in
    :math:`O(N^2)` (diagonal solve plus a Woodbury correction of rank :math:`N_b`)."""

    def __init__(self, exact: ExactProblem, lin: Linearization) -> None:
        jac = lin.dense()[exact.collocation_mask.reshape(-1)]
        _, sing, vh = torch.linalg.svd(jac, full_matrices=True)
        n = vh.shape[0]
        self.basis = vh.transpose(0, 1)
        self.sing2 = torch.zeros(n, dtype=jac.dtype, device=jac.device)
        self.sing2[: sing.numel()] = sing.square()
        u_map = None
        for mode in range(exact.grid.problem.dims):  # u = (L_1 x ... x L_D) V, row-major like reshape(-1)
            op = exact.operator(mode, 0)
            assert op is not None
            u_map = op if u_map is None else torch.kron(u_map, op)
        rows = u_map[exact.boundary_mask.reshape(-1)]  # type: ignore[index]
        self.boundary_rows = rows @ self.basis

    def solve(self, rhs: Tensor, tau_r: float, beta: float) -> Tensor:
        """The solution ``p`` (grid shape) of the normal equations."""
        y = self.basis.transpose(0, 1) @ rhs.reshape(-1)
        diag = 1.0 + tau_r * self.sing2
        m = self.boundary_rows
        m_scaled = m / diag
        cap = torch.eye(m.shape[0], dtype=m.dtype, device=m.device) / beta + m_scaled @ m.transpose(0, 1)
        z = y / diag
        z = z - m_scaled.transpose(0, 1) @ torch.linalg.solve(cap, m @ z)
        return (self.basis @ z).reshape(rhs.shape)


class _KroneckerPreconditioner:
    """:math:`P^{-1} = T^{-1} W^{-2} T^{-\\top}` with :math:`T` the square collocation system of the separable
    constant-coefficient approximation (module docstring): interior rows the Kronecker sum
    :math:`\\sum_d M_d + c_0`, face rows :math:`u = g`, on the grid values; :math:`T^{-1}` whitens them."""

    def __init__(self, exact: ExactProblem, coefficients: dict[tuple[int, ...], float]) -> None:
        self.exact = exact
        sizes = exact.grid.sizes
        self.chols = exact.chols
        self.interior = tuple(slice(1, -1) for _ in sizes)
        self.shift = sum(c for key, c in coefficients.items() if not any(key))
        self.full: list[Tensor] = []
        for mode, chol in enumerate(self.chols):
            mat = torch.zeros_like(chol)
            for key, c in coefficients.items():
                if key[mode] and sum(1 for a in key if a) == 1 and c != 0.0:
                    op = exact.operator(mode, key[mode])
                    assert op is not None
                    # the operator on the grid values: (whitened operator) L^-1
                    on_values = torch.linalg.solve_triangular(
                        chol.transpose(0, 1), op.transpose(0, 1), upper=True
                    )
                    mat = mat + c * on_values.transpose(0, 1)
            self.full.append(mat)
        self.interior_solver = KroneckerSumSolver([m[1:-1, 1:-1] for m in self.full], self.shift)

    def _separable(self, values: Tensor, transpose: bool = False) -> Tensor:
        out = self.shift * values
        for mode, mat in enumerate(self.full):
            out = out + mode_dot(values, mat.transpose(0, 1) if transpose else mat, mode)
        return out

    def _interior_inverse(self, z: Tensor, transpose: bool = False) -> Tensor:
        return self.interior_solver.solve(z, transpose)

    def _solve(self, rows: Tensor) -> Tensor:
        """:math:`T_U^{-1}`: grid values from the rows (interior: PDE rows, faces: boundary rows)."""
        mask = self.exact.boundary_mask
        faces = torch.where(mask, rows, torch.zeros_like(rows))
        coupled = rows - self._separable(faces)
        values = faces.clone()
        values[self.interior] = self._interior_inverse(coupled[self.interior])
        return values

    def _solve_transpose(self, values: Tensor) -> Tensor:
        """:math:`T_U^{-\\top}`."""
        mask = self.exact.boundary_mask
        inner = torch.zeros_like(values)
        inner[self.interior] = self._interior_inverse(values[self.interior], transpose=True)
        back = self._separable(inner, transpose=True)
        return torch.where(mask, values - back, inner)

    def _whiten(self, values: Tensor, transpose: bool = False) -> Tensor:
        out = values
        for mode, chol in enumerate(self.chols):
            factor = chol.transpose(0, 1) if transpose else chol
            moved = torch.movedim(out, mode, 0)
            solved = torch.linalg.solve_triangular(factor, moved.reshape(moved.shape[0], -1), upper=transpose)
            out = torch.movedim(solved.reshape(moved.shape), 0, mode)
        return out

    def __call__(self, gradient: Tensor, tau_r: float, beta: float) -> Tensor:
        """:math:`P^{-1}` applied to a grid tensor; the row weights :math:`W^2` are :math:`\\tau_c` inside and
        :math:`\\lambda_b\\tau_b` on the faces."""
        mask = self.exact.boundary_mask
        weights = torch.where(mask, torch.full_like(gradient, beta), torch.full_like(gradient, tau_r))
        rows = self._solve_transpose(self._whiten(gradient, transpose=True)) / weights
        return self._whiten(self._solve(rows))


class _SpectralPreconditioner:
    """:math:`P^{-1} = F\\,\\mathrm{diag}(h)^{-1} F^\\top` with :math:`F = \\otimes_d F_d`,
    :math:`F_d = L_d^{-1} E_d \\Omega_d^{1/2}` (orthogonal; :math:`K_d = E_d \\Omega_d E_d^\\top`) and
    :math:`h` the
    diagonal of the normal-equation matrix in that basis for the constant-coefficient approximation of
    :math:`J` (every derivative, mixed ones included; interior and face rows as masks). Symmetric positive
    definite by construction; exact when the derivative operators commute with the kernel matrices."""

    def __init__(self, exact: ExactProblem, coefficients: dict[tuple[int, ...], float]) -> None:
        dims = exact.grid.problem.dims
        self.bases = []
        for chol in exact.chols:
            omega, vectors = torch.linalg.eigh(chol @ chol.transpose(0, 1))
            scaled = vectors * omega.clamp_min(0.0).sqrt()
            self.bases.append(torch.linalg.solve_triangular(chol, scaled, upper=False))
        self.dims = dims
        keys = [k for k, c in coefficients.items() if c != 0.0]
        cache: dict[tuple[int, int, int, bool], Tensor] = {}

        def diag(mode: int, a: int, b: int, interior: bool) -> Tensor:
            key = (mode, a, b, interior)
            if key not in cache:
                basis = self.bases[mode]
                left = exact.operator(mode, a)
                right = exact.operator(mode, b)
                left = basis if left is None else left @ basis
                right = basis if right is None else right @ basis
                weight = torch.ones(basis.shape[0], dtype=basis.dtype, device=basis.device)
                if interior:
                    weight[0] = weight[-1] = 0.0
                cache[key] = (left * weight[:, None] * right).sum(0)
            return cache[key]

        def product(pairs: list[tuple[int, int]], interior: bool) -> Tensor:
            out = None
            for mode, (a, b) in enumerate(pairs):
                d = diag(mode, a, b, interior).reshape([-1 if i == mode else 1 for i in range(dims)])
                out = d if out is None else out * d
            return out  # type: ignore[return-value]

        rows_interior = not exact.grid.residual_on_boundary
        self.pde = torch.zeros(exact.grid.sizes, dtype=exact.grid.dtype, device=exact.grid.device)
        for k in keys:
            for m in keys:
                self.pde = self.pde + coefficients[k] * coefficients[m] * product(
                    list(zip(k, m, strict=True)), rows_interior
                )
        zeros = [(0, 0)] * dims
        self.faces = product(zeros, False) - product(zeros, True)
        self.weights: tuple[float, float] | None = None
        self.inverse = torch.ones_like(self.pde)

    def __call__(self, gradient: Tensor, tau_r: float, beta: float) -> Tensor:
        """:math:`P^{-1}` applied to a grid tensor at the weights :math:`\\tau_c`,
        :math:`\\lambda_b\\tau_b`."""
        if self.weights != (tau_r, beta):
            self.weights = (tau_r, beta)
            self.inverse = 1.0 / (1.0 + tau_r * self.pde + beta * self.faces).clamp_min(1.0)
        y = gradient
        for mode, basis in enumerate(self.bases):
            y = mode_dot(y, basis.transpose(0, 1), mode)
        y = y * self.inverse
        for mode, basis in enumerate(self.bases):
            y = mode_dot(y, basis, mode)
        return y


def _conjugate_gradients(
    apply_h: Callable[[Tensor], Tensor],
    precondition: Callable[[Tensor], Tensor],
    rhs: Tensor,
    rtol: float,
    max_iterations: int,
    deadline: float | None = None,
) -> tuple[Tensor, int, float, bool]:
    r"""Preconditioned CG from zero; converged when the preconditioned residual norm
    :math:`\sqrt{r^\top P^{-1} r}` falls to ``rtol`` times its initial value; stops after ``max_iterations``
    or at ``deadline`` (a ``time.perf_counter()`` value) or at a breakdown (a non-positive curvature or
    preconditioned residual norm: the preconditioner lost definiteness in rounding). Returns the solution,
    the iterations, the last relative residual norm and whether it converged."""
    x = torch.zeros_like(rhs)
    res = rhs.clone()
    z = precondition(res)
    direction = z.clone()
    rz = float((res * z).sum())
    rz0 = rz
    relative = 1.0
    done = 0
    if rz == 0.0:
        return x, 0, 0.0, True
    for iterations in range(1, max_iterations + 1):
        if rz <= 0.0 or not math.isfinite(rz):
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
        hp = apply_h(direction)
        curvature = float((direction * hp).sum())
        if curvature <= 0.0 or not math.isfinite(curvature):
            break
        step = rz / curvature
        x = x + step * direction
        res = res - step * hp
        done = iterations
        z = precondition(res)
        rz_next = float((res * z).sum())
        relative = math.sqrt(max(rz_next, 0.0) / rz0)
        if relative <= rtol:
            return x, done, relative, True
        direction = z + (rz_next / rz) * direction
        rz = rz_next
    return x, done, relative, False


# ---------------------------------------------------------------------------------------------------------
# Gauss-Newton for one kernel and tau


class _InnerSolver:
    """Minimises :math:`F` for the current kernel at given :math:`\\tau` (Gauss-Newton with line search);
    keeps the linearisation and its factorisation while the residual is affine."""

    def __init__(
        self, exact: ExactProblem, options: FitOptions, spectral: bool = False, deadline: float | None = None
    ) -> None:
        self.exact = exact
        self.deadline = deadline
        self.options = options
        self.spectral = spectral
        self.linearization: Linearization | None = None
        self.dense: _DenseSolver | None = None
        self.preconditioner: _KroneckerPreconditioner | _SpectralPreconditioner | None = None
        self.cg_iterations = 0
        self.cg_relative = 0.0
        self.cg_converged = True
        self.fallback = spectral
        self.gauss_newton_steps = 0

    def _prepare(self, latent: Tensor) -> Linearization:
        lin = self.linearization
        if lin is None or not lin.affine:
            lin = Linearization(self.exact, latent)
            self.linearization = lin
            self.dense = None
            self.preconditioner = None
        grid = self.exact.grid
        if grid.problem.dims == 1 or math.prod(grid.sizes) <= DENSE_POINTS:
            if self.dense is None:
                self.dense = _DenseSolver(self.exact, lin)
        elif self.preconditioner is None:
            kind = _SpectralPreconditioner if self.spectral else _KroneckerPreconditioner
            self.preconditioner = kind(self.exact, lin.mean_coefficients())
        return lin

    def _step(self, lin: Linearization, latent: Tensor, tau_r: float, beta: float, value: float) -> Tensor:
        """The Gauss-Newton step from ``latent`` (the minimiser of the quadratic model)."""
        exact = self.exact
        misfit = exact.misfit(latent)
        gradient = latent + tau_r * lin.vjp(lin.residual_at(latent)) + beta * exact.boundary_transpose(misfit)
        if self.dense is not None:
            return self.dense.solve(-gradient, tau_r, beta)

        def apply_h(p: Tensor) -> Tensor:
            return p + tau_r * lin.vjp(lin.jvp(p)) + beta * exact.boundary_transpose(exact.boundary(p))

        assert self.preconditioner is not None
        step, iterations, relative, converged = _conjugate_gradients(
            apply_h,
            lambda r: self.preconditioner(r, tau_r, beta),  # type: ignore[misc]
            -gradient,
            CG_TOL,
            self.options.cg_iterations,
            self.deadline,
        )
        in_time = self.deadline is None or time.perf_counter() <= self.deadline
        kronecker = isinstance(self.preconditioner, _KroneckerPreconditioner)
        if iterations <= 1 and not converged and kronecker and in_time:
            # the fast-diagonalisation preconditioner lost definiteness in rounding (near-singular
            # eigen-decompositions where the prior has no mass): fall back to the spectral one
            logger.info("CG broke down with the Kronecker preconditioner; using the spectral one")
            self.preconditioner = _SpectralPreconditioner(exact, lin.mean_coefficients())
            self.fallback = True
            return self._step(lin, latent, tau_r, beta, value)
        self.cg_iterations += iterations
        self.cg_relative = relative
        self.cg_converged = converged
        return step

    def minimise(self, latent: Tensor, tau_r: float, tau_b: float, steps: int) -> tuple[Tensor, bool]:
        """At most ``steps`` Gauss-Newton steps on :math:`F` from ``latent``; returns the new latent and
        whether it is the minimiser (the residual is affine, or the last step gained less than ``rtol``)."""
        exact = self.exact
        beta = exact.boundary_weight * tau_b
        converged = False
        with torch.no_grad():
            for _ in range(steps):
                lin = self._prepare(latent)
                value = exact.value(latent, tau_r, tau_b)
                step = self._step(lin, latent, tau_r, beta, value)
                slope = -2.0 * (value - self._model(lin, latent, step, tau_r, beta))
                new_latent, new_value = self._line_search(latent, step, value, slope, tau_r, tau_b)
                self.gauss_newton_steps += 1
                if new_latent is None and isinstance(self.preconditioner, _KroneckerPreconditioner):
                    new_latent, new_value = self._retry_spectral(lin, latent, tau_r, tau_b, value)
                if new_latent is None:
                    converged = True
                    break
                latent = new_latent
                converged = lin.affine or value - new_value <= self.options.rtol * max(value, 1e-300)
                if converged:
                    break
        return latent, converged

    def _retry_spectral(
        self, lin: Linearization, latent: Tensor, tau_r: float, tau_b: float, value: float
    ) -> tuple[Tensor | None, float]:
        """The step again with the spectral preconditioner (after no step length of the first one helped)."""
        logger.info("no decrease with the Kronecker preconditioner; using the spectral one")
        beta = self.exact.boundary_weight * tau_b
        self.preconditioner = _SpectralPreconditioner(self.exact, lin.mean_coefficients())
        self.fallback = True
        step = self._step(lin, latent, tau_r, beta, value)
        slope = -2.0 * (value - self._model(lin, latent, step, tau_r, beta))
        return self._line_search(latent, step, value, slope, tau_r, tau_b)

    def _model(self, lin: Linearization, latent: Tensor, step: Tensor, tau_r: float, beta: float) -> float:
        """The quadratic model of :math:`F` at ``latent + step``."""
        exact = self.exact
        res = lin.residual_at(latent + step)
        mis = exact.misfit(latent) + exact.boundary(step)
        return 0.5 * (
            float((latent + step).square().sum())
            + tau_r * float(res.square().sum())
            + beta * float(mis.square().sum())
        )

    def _line_search(
        self, latent: Tensor, step: Tensor, value: float, slope: float, tau_r: float, tau_b: float
    ) -> tuple[Tensor | None, float]:
        """Backtracking (Armijo) on :math:`F` along ``step``; ``(None, value)`` if ``step`` is not a descent
        direction or no step length decreases :math:`F`."""
        if not slope < 0.0:
            return None, value
        alpha = 1.0
        for _ in range(40):
            trial = latent + alpha * step
            trial_value = self.exact.value(trial, tau_r, tau_b)
            if math.isfinite(trial_value) and trial_value <= value + ARMIJO * alpha * min(slope, 0.0):
                return trial, trial_value
            alpha *= 0.5
        return None, value


# ---------------------------------------------------------------------------------------------------------
# tau rounds, kernel rounds, the fit


class _ExactRun:
    """One ``fit(method="exact")``: exact solves with closed-form tau between them, then kernel rounds."""

    def __init__(self, solver: GPSolver, options: FitOptions) -> None:
        self.solver = solver
        self.options = options
        self.test_axes = None if options.reference is None else monitor_axes(solver.grid, options.test_sizes)
        self.start = time.perf_counter()
        self.max_log_tau = math.log(options.max_tau)
        self.stopped = False

    def _out_of_time(self) -> bool:
        limit = self.options.max_seconds
        return limit is not None and time.perf_counter() - self.start > limit

    # -- one kernel ---------------------------------------------------------------------------------------

    def _whitened(self, chols: Sequence[Tensor]) -> Tensor:
        """The current solution as the whitened :math:`\\mathcal V` (the grid parametrisation holds
        :math:`\\mathcal U`)."""
        latent = self.solver.latent.detach()
        return latent.clone() if self.solver.prior.whitened else kron_whiten(chols, latent)

    def solve_current_kernel(self) -> dict[str, Any]:
        """The exact optimum in the solution and tau for the current kernel; returns what it took. In D >= 2
        a solve whose residual precision collapsed with the Kronecker preconditioner is redone with the
        spectral one."""
        exact = ExactProblem(self.solver)
        start = self._whitened(exact.chols)
        taus = (math.exp(self.solver.log_tau_r.item()), math.exp(self.solver.log_tau_b.item()))
        info = self._solve(exact, start, taus, spectral=False)
        if self.solver.problem.dims > 1 and not info["spectral_preconditioner"] and self._collapsed():
            logger.info("residual precision collapsed with the Kronecker preconditioner; solving again")
            seconds = info["seconds"]
            info = self._solve(exact, start, taus, spectral=True)
            info["seconds"] += seconds
        return info

    def _collapsed(self) -> bool:
        """Whether the residual RMS is still a large fraction of its value at u = 0 (as ``GPSolver``
        warns)."""
        solver = self.solver
        with torch.no_grad():
            r_sse = float(solver.objective_terms()["residual_sse"])
        return math.sqrt(r_sse / max(solver.grid.n_collocation, 1)) >= COLLAPSE_FRACTION * solver.source_rms

    def _solve(
        self, exact: ExactProblem, latent: Tensor, taus: tuple[float, float], spectral: bool
    ) -> dict[str, Any]:
        solver, opts = self.solver, self.options
        begin = time.perf_counter()
        limit = opts.max_seconds
        inner = _InnerSolver(exact, opts, spectral, None if limit is None else self.start + limit)
        tau_r, tau_b = taus
        # one Gauss-Newton step per tau update: the two converge together (an affine residual needs one)
        # (every third update is extrapolated: the fixed-point iteration of tau converges linearly)
        rounds = 0
        logs_r, logs_b = [math.log(tau_r)], [math.log(tau_b)]
        while True:
            rounds += 1
            before = latent
            latent, solved = inner.minimise(latent, tau_r, tau_b, 1)
            solved = solved and inner.cg_converged
            stuck = latent is before  # no step decreased F (e.g. CG broke down at once)
            with torch.no_grad():
                r_sse = float(exact.residual(latent).square().sum())
                b_sse = float(exact.misfit(latent).square().sum())
            log_r = min(math.log(solver.grid.n_collocation) - math.log(max(r_sse, 1e-300)), self.max_log_tau)
            log_b = min(math.log(solver.grid.n_boundary) - math.log(max(b_sse, 1e-300)), self.max_log_tau)
            moved = max(abs(log_r - logs_r[-1]), abs(log_b - logs_b[-1]))
            logs_r.append(log_r)
            logs_b.append(log_b)
            linear = inner.linearization is not None and inner.linearization.affine
            limit = opts.tau_rounds if linear else opts.tau_rounds + opts.gauss_newton
            if (solved and moved < TAU_TOL) or stuck or rounds >= limit or self._out_of_time():
                tau_r, tau_b = math.exp(log_r), math.exp(log_b)
                break
            if rounds % 3 == 0:
                log_r = min(_extrapolate(logs_r), self.max_log_tau)
                log_b = min(_extrapolate(logs_b), self.max_log_tau)
                logs_r.append(log_r)
                logs_b.append(log_b)
            tau_r, tau_b = math.exp(log_r), math.exp(log_b)
        with torch.no_grad():
            if not solver.prior.whitened:  # back to U = V x_1 L_1 ... x_D L_D
                for mode, chol in enumerate(exact.chols):
                    latent = mode_dot(latent, chol, mode)
            solver.latent.copy_(latent)
            solver.log_tau_r.fill_(math.log(tau_r))
            solver.log_tau_b.fill_(math.log(tau_b))
        return {
            "tau_rounds": rounds,
            "gauss_newton_steps": inner.gauss_newton_steps,
            "cg_iterations": inner.cg_iterations,
            "cg_last_relative_decrease": inner.cg_relative,
            "cg_converged": inner.cg_converged,
            "spectral_preconditioner": inner.fallback,
            "linear": bool(inner.linearization is not None and inner.linearization.affine),
            "pointwise_residual": bool(inner.linearization is not None and inner.linearization.pointwise),
            "seconds": time.perf_counter() - begin,
        }

    def _objective(self) -> float:
        with torch.no_grad():
            return float(self.solver.objective_terms()["objective"])

    def _record(self, phase: str, info: dict[str, Any]) -> bool:
        """History entry, log line and callback after a solve; ``True`` if the callback asks to stop."""
        solver, opts = self.solver, self.options
        loss = -self._objective()
        solver.keep_if_best(loss)
        solver.iteration += 1
        entry: dict[str, Any] = {
            "iteration": solver.iteration,
            "phase": phase,
            "loss": loss,
            "seconds": time.perf_counter() - self.start,
            "tau_residual": math.exp(solver.log_tau_r.item()),
            "tau_boundary": math.exp(solver.log_tau_b.item()),
            **info,
        }
        if opts.reference is not None:
            entry["test_rel_l2"] = rel_l2_on_grid(solver.solution(), opts.reference, self.test_axes)  # type: ignore[arg-type]
        solver.history.append(entry)
        logger.info("%s solve %d: loss %.6e, %s", phase, solver.iteration, loss, info)
        callback = opts.callback
        return bool(callback(solver.iteration, loss, solver)) if callback is not None else False

    # -- kernel rounds ------------------------------------------------------------------------------------

    def _kernel_steps(self, values: Tensor) -> None:
        """``kernel_steps`` Adam steps on the kernel parameters with the grid values held fixed."""
        solver, opts = self.solver, self.options
        params = [p for p in solver.prior.kernels.parameters() if p.requires_grad]
        if not params:
            return
        optimizer = torch.optim.Adam(params, lr=opts.kernel_lr)
        for _ in range(opts.kernel_steps):
            optimizer.zero_grad(set_to_none=True)
            chols = solver.prior.cholesky()
            latent = solver.prior.latent_of(values, chols)
            loss = -solver.objective_terms(chols, latent=latent)["objective"]
            if not bool(torch.isfinite(loss)):
                raise SolverError("the objective became non-finite during a kernel step")
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            solver.latent.copy_(solver.prior.latent_of(values, solver.prior.cholesky()))

    def _kernel_rounds(self) -> None:
        solver, opts = self.solver, self.options
        best = self._objective()
        for _ in range(opts.kernel_rounds):
            if self.stopped or self._out_of_time():
                return
            saved = {k: v.detach().clone() for k, v in solver.state_dict().items()}
            try:
                with torch.no_grad():
                    values = solver.prior.grid_values(solver.latent, solver.prior.cholesky()).detach()
                self._kernel_steps(values)
                info = self.solve_current_kernel()
            except SolverError as exc:  # e.g. a kernel matrix that lost positive definiteness
                logger.info("kernel round rejected: %s", exc)
                solver.load_state_dict(saved)
                return
            value = self._objective()
            if not value > best + opts.rtol * abs(best):
                solver.load_state_dict(saved)
                return
            best = value
            self.stopped = self._record("kernel", info)

    def run(self) -> GPSolution:
        """Exact solve, kernel rounds, then the final solution (the best iterate by the objective)."""
        info = self.solve_current_kernel()
        self.stopped = self._record("exact", info)
        self._kernel_rounds()
        if self.options.keep == "best" and self.solver.best_state is not None:
            self.solver.load_state_dict(self.solver.best_state)
        return self._final_solution()

    def _final_solution(self) -> GPSolution:
        solver, opts = self.solver, self.options
        solution = solver.solution()
        final: dict[str, Any] = {
            "iteration": solver.iteration,
            "phase": "final",
            "loss": -self._objective(),
            "seconds": time.perf_counter() - self.start,
        }
        if opts.reference is not None:
            final["test_rel_l2"] = rel_l2_on_grid(solution, opts.reference, self.test_axes)  # type: ignore[arg-type]
        solver.history.append(final)
        return solution


def fit_exact(solver: GPSolver, options: FitOptions) -> GPSolution:
    """``GPSolver.fit(method="exact")`` with checked ``options`` (see the module docstring)."""
    return _ExactRun(solver, options).run()
