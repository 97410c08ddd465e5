r"""Classical baselines on the GP solver's problems: finite differences and Chebyshev collocation.

Both take the same :class:`~sciml.solvers.gp_problem.PDEProblem` as :class:`~sciml.solvers.gp.GPSolver`: the
residual callable receives ``d["u"]``, ``d["xx"]``, ... computed with the method's own differentiation
matrices (a :class:`~sciml.solvers.gp_problem.GridDerivatives` on the method's nodes), so every comparison
runs on the same problem object.

* :func:`finite_difference_solve`: uniform grid with the end points, second-order central differences
  (first and second derivatives);
* :func:`chebyshev_solve`: Chebyshev-Gauss-Lobatto points per dimension, the spectral differentiation matrix
  (any order, as its powers); the result is evaluated anywhere by barycentric interpolation.

The PDE is collocated on the interior nodes with :math:`u = g` on the faces (a square system). Supported:
**linear PDEs with constant coefficients and no mixed derivatives** (Poisson, Helmholtz, advection-diffusion,
...): the residual must be :math:`\sum_k c_k \partial^{a_k} u - f(x)` with constant :math:`c_k` and
single-dimension derivatives, which is checked (coefficients from autograd through the residual, affinity on
a random field); anything else raises :class:`~sciml.errors.SolverError`. The interior operator is then the
Kronecker sum :math:`\sum_d M_d + c_0 I`, solved by fast diagonalisation
(:class:`~sciml.solvers.kronecker.KroneckerSumSolver`): :math:`O(N \sum_d N_d)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciml.errors import ConfigError, SciMLError, SolverError
from sciml.solvers.gp_problem import GridDerivatives, PDEProblem, evaluate_residual, parse_derivative
from sciml.solvers.kronecker import KroneckerSumSolver, mode_dot

__all__ = [
    "BaselineSolution",
    "chebyshev_nodes",
    "chebyshev_solve",
    "finite_difference_solve",
]


def chebyshev_nodes(n: int, lo: float, hi: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``n`` Chebyshev-Gauss-Lobatto points on ``[lo, hi]``, increasing."""
    t = torch.cos(math.pi * torch.arange(n, dtype=dtype) / (n - 1))
    return lo + (hi - lo) * (1.0 - t) / 2.0


def _chebyshev_derivative(nodes: Tensor) -> Tensor:
    """The first-derivative matrix on Chebyshev-Lobatto ``nodes`` (Trefethen's formula, row sums zero)."""
    n = nodes.numel()
    c = torch.ones(n, dtype=nodes.dtype)
    c[0] = c[-1] = 2.0
    c = c * (-1.0) ** torch.arange(n, dtype=nodes.dtype)
    diff = nodes[:, None] - nodes[None, :] + torch.eye(n, dtype=nodes.dtype)
    d = (c[:, None] / c[None, :]) / diff
    return d - torch.diag(d.sum(dim=1))


def _finite_difference_derivative(nodes: Tensor, order: int) -> Tensor:
    """Second-order central differences (one-sided second-order rows at the two ends)."""
    n, h = nodes.numel(), float(nodes[1] - nodes[0])
    mat = torch.zeros(n, n, dtype=nodes.dtype)
    i = torch.arange(1, n - 1)
    if order == 1:
        mat[i, i - 1], mat[i, i + 1] = -0.5 / h, 0.5 / h
        mat[0, :3] = torch.tensor([-1.5, 2.0, -0.5], dtype=nodes.dtype) / h
        mat[-1, -3:] = torch.tensor([0.5, -2.0, 1.5], dtype=nodes.dtype) / h
    else:
        mat[i, i - 1], mat[i, i], mat[i, i + 1] = 1.0 / h**2, -2.0 / h**2, 1.0 / h**2
        mat[0, :4] = torch.tensor([2.0, -5.0, 4.0, -1.0], dtype=nodes.dtype) / h**2
        mat[-1, -4:] = torch.tensor([-1.0, 4.0, -5.0, 2.0], dtype=nodes.dtype) / h**2
    return mat


def _barycentric_matrix(nodes: Tensor, targets: Tensor) -> Tensor:
    """Interpolation matrix from Chebyshev-Lobatto ``nodes`` to ``targets`` (barycentric formula)."""
    n = nodes.numel()
    w = (-1.0) ** torch.arange(n, dtype=nodes.dtype)
    w[0], w[-1] = 0.5 * w[0], 0.5 * w[-1]
    diff = targets[:, None] - nodes[None, :]
    hit = diff.abs() < 1e-14 * float(nodes[-1] - nodes[0])
    mat = w / torch.where(hit, torch.ones_like(diff), diff)
    mat = mat / mat.sum(dim=1, keepdim=True)
    rows = hit.any(dim=1)
    mat[rows] = hit[rows].to(nodes.dtype)
    return mat


def _linear_matrix(nodes: Tensor, targets: Tensor) -> Tensor:
    """Piecewise-linear interpolation matrix from uniform ``nodes`` to ``targets``."""
    n = nodes.numel()
    h = float(nodes[1] - nodes[0])
    pos = ((targets - nodes[0]) / h).clamp(0.0, n - 1.0)
    left = pos.floor().long().clamp(max=n - 2)
    frac = pos - left.to(pos.dtype)
    mat = torch.zeros(targets.numel(), n, dtype=nodes.dtype)
    rows = torch.arange(targets.numel())
    mat[rows, left] = 1.0 - frac
    mat[rows, left + 1] += frac
    return mat


@dataclass
class BaselineSolution:
    """A baseline's solution: ``values`` at the tensor grid of ``nodes`` (one 1-D tensor per dimension);
    :meth:`on_grid` interpolates (Chebyshev: barycentric, spectrally accurate; finite differences:
    piecewise linear) to another tensor grid inside the box."""

    method: str
    nodes: list[Tensor]
    values: Tensor

    def on_grid(self, axes: Sequence[Tensor | np.ndarray]) -> Tensor:
        """The solution on the tensor grid ``axes[0] x ... x axes[D-1]`` (inside the box)."""
        try:
            count = None if isinstance(axes, str) else len(axes)
        except TypeError:
            count = None
        if count != len(self.nodes):
            raise ConfigError(
                f"on_grid needs a sequence of {len(self.nodes)} axes (one per dimension), got {axes!r:.80}"
            )
        out = self.values
        for mode, (nodes, axis) in enumerate(zip(self.nodes, axes, strict=True)):
            try:
                target = torch.as_tensor(axis, dtype=nodes.dtype).reshape(-1)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"{self.method}: axis {mode} must be numbers, got {axis!r:.80}") from exc
            if not bool(torch.isfinite(target).all()):
                raise ConfigError(f"{self.method}: axis {mode} holds non-finite coordinates")
            lo, hi = float(nodes[0]), float(nodes[-1])
            tol = 1e-9 * (hi - lo)
            if bool(((target < lo - tol) | (target > hi + tol)).any()):
                raise ConfigError(f"{self.method}: axis {mode} leaves the box [{lo}, {hi}]")
            interp = _barycentric_matrix if self.method == "chebyshev" else _linear_matrix
            out = mode_dot(out, interp(nodes, target), mode)
        return out


def _check_sizes(problem: PDEProblem, sizes: int | Sequence[int]) -> tuple[int, ...]:
    try:
        out = (sizes,) * problem.dims if isinstance(sizes, (int, np.integer)) else tuple(sizes)
    except TypeError:  # neither an int nor an iterable (None, a float)
        out = ()
    if len(out) != problem.dims or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 3 for n in out
    ):
        raise ConfigError(f"sizes must be an int or {problem.dims} ints, each >= 3; got {sizes!r}")
    return tuple(int(n) for n in out)


class _Leaves(GridDerivatives):
    """Derivatives of the zero field as leaf tensors, to read the residual's coefficients by autograd."""

    def __init__(self, shape: tuple[int, ...], names: str, dtype: torch.dtype) -> None:
        self.names = names
        self.shape, self.dtype = shape, dtype
        self.leaves: dict[tuple[int, ...], Tensor] = {}

    def __getitem__(self, key: str) -> Tensor:
        orders = parse_derivative(key, self.names)
        if orders not in self.leaves:
            self.leaves[orders] = torch.zeros(self.shape, dtype=self.dtype, requires_grad=True)
        return self.leaves[orders]


def _call_residual(problem: PDEProblem, method: str, derivatives: GridDerivatives, points: Tensor) -> Tensor:
    """``problem.residual`` on the method's nodes; a failure of the callable becomes a SolverError."""
    try:
        return evaluate_residual(problem, derivatives, points)
    except SciMLError:
        raise
    except Exception as exc:
        raise SolverError(f"{method}: problem.residual failed on the grid: {exc}") from exc


def _boundary_values(problem: PDEProblem, method: str, points: Tensor) -> Tensor:
    """``problem.boundary`` at the face nodes ``points``, checked: one finite value per point."""
    try:
        values = torch.as_tensor(problem.boundary(points), dtype=points.dtype)
    except SciMLError:
        raise
    except Exception as exc:
        raise SolverError(
            f"{method}: problem.boundary failed on the {len(points)} boundary points: {exc}"
        ) from exc
    if values.numel() != len(points):
        raise SolverError(
            f"{method}: problem.boundary returned shape {tuple(values.shape)}; expected ({len(points)},) "
            "(one value per boundary point)"
        )
    values = values.detach().reshape(-1)
    if not bool(torch.isfinite(values).all()):
        raise SolverError(f"{method}: problem.boundary returned non-finite values")
    return values


def _smallest_eigenvalue_ratio(mats: list[Tensor], shift: float) -> float:
    """``min |lambda| / max |lambda|`` over the eigenvalues of the Kronecker sum of ``mats`` plus ``shift``
    (the sums of one eigenvalue per matrix): near zero when the discretised operator is singular."""
    total = torch.tensor(shift, dtype=torch.complex128)
    for mat in mats:
        total = total[..., None] + torch.linalg.eigvals(mat).to(torch.complex128)
    magnitudes = total.abs()
    return float(magnitudes.min()) / max(float(magnitudes.max()), 1e-300)


def _solve(
    problem: PDEProblem, method: str, nodes: list[Tensor], derivative: dict[tuple[int, int], Tensor]
) -> BaselineSolution:
    names = problem.names
    assert names is not None
    sizes = tuple(n.numel() for n in nodes)
    points = torch.stack(torch.meshgrid(*nodes, indexing="ij"), dim=-1)
    interior = tuple(slice(1, -1) for _ in sizes)

    def operator(mode: int, order: int) -> Tensor | None:
        if order == 0:
            return None
        if (mode, order) not in derivative:
            raise SolverError(f"{method}: derivative order {order} is not supported")
        return derivative[(mode, order)]

    leaves = _Leaves(sizes, names, points.dtype)
    source = _call_residual(problem, method, leaves, points)  # residual at u = 0 (grad through the leaves)
    if not isinstance(source, Tensor) or tuple(source.shape) != sizes:
        found = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        raise SolverError(
            f"{method}: problem.residual must return a tensor of the grid shape {sizes}, got {found}"
        )
    keys = list(leaves.leaves)
    if not keys or not source.requires_grad:
        raise SolverError(
            f"{method}: problem.residual does not depend on u; expected one built from d['u'] and/or its "
            "derivatives"
        )
    if not bool(torch.isfinite(source[interior]).all()):
        raise SolverError(f"{method}: problem.residual is not finite at u = 0 on the interior nodes")
    grads = torch.autograd.grad(source[interior].sum(), [leaves.leaves[k] for k in keys], allow_unused=True)
    coefficients: dict[tuple[int, ...], float] = {}
    for key, grad in zip(keys, grads, strict=True):
        if grad is None:
            continue
        field = grad[interior]
        value = float(field.mean())
        if (
            float((field - value).abs().max()) > 1e-10 * max(abs(value), 1e-300)
            and float(field.abs().max()) > 0
        ):
            low, high = float(field.min()), float(field.max())
            raise SolverError(
                f"{method}: the coefficient of derivative {key} varies over the grid ({low:.4g} to "
                f"{high:.4g}); the baselines need constant coefficients"
            )
        if sum(1 for a in key if a) > 1 and value != 0.0:
            raise SolverError(
                f"{method}: mixed derivative {key} is not supported (no Kronecker-sum structure)"
            )
        coefficients[key] = value
    source = source.detach()
    mats = []
    for mode, n in enumerate(sizes):
        mat = torch.zeros(n, n, dtype=points.dtype)
        for key, c in coefficients.items():
            if key[mode] and c != 0.0:
                mat = mat + c * operator(mode, key[mode])  # type: ignore[operator]
        mats.append(mat)
    shift = sum(c for key, c in coefficients.items() if not any(key))

    def apply(values: Tensor) -> Tensor:
        out = shift * values
        for mode, mat in enumerate(mats):
            out = out + mode_dot(values, mat, mode)
        return out

    mask = torch.ones(sizes, dtype=torch.bool)
    mask[interior] = False
    values = torch.zeros(sizes, dtype=points.dtype)
    values[mask] = _boundary_values(problem, method, points[mask])
    rhs = -(source + apply(values))[interior]
    blocks = [m[1:-1, 1:-1] for m in mats]
    norm = sum(float(block.abs().sum(dim=1).max()) for block in blocks) + abs(shift)  # >= |interior operator|
    singular = (
        f"{method}: the discretised operator is singular to working precision (no derivative of u with a "
        "non-zero coefficient, or e.g. a Helmholtz k^2 at an eigenvalue of the grid's Laplacian)"
    )
    # three or more dimensions: the solver raises eigenvalue sums below 1e-12 of the largest to that floor,
    # i.e. it would return a bounded approximation instead of failing (the eigenvalues are cheap there)
    if norm == 0.0 or (len(blocks) >= 3 and _smallest_eigenvalue_ratio(blocks, shift) < 1e-12):
        raise SolverError(singular)
    try:
        values[interior] = KroneckerSumSolver(blocks, shift).solve(rhs)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        raise SolverError(singular) from exc
    # |A| |u| / |rhs| <= cond(A): a free lower bound on the condition number from the solve itself
    condition = norm * float(values[interior].abs().max()) / max(float(rhs.abs().max()), 1e-300)
    if not bool(torch.isfinite(values).all()) or condition > 1e14:
        raise SolverError(f"{singular}: condition number at least {condition:.2g}")
    with torch.no_grad():
        res = _call_residual(problem, method, GridDerivatives(values, names, operator), points)[interior]
    # the terms one by one (their sum cancels at the solution, to rounding when the source is zero), and the
    # rounding bound |operator| |u| for the terms that vanish themselves (e.g. u_xx of a linear u)
    size = float(source[interior].abs().max()) + abs(shift) * float(values[interior].abs().max())
    size += sum(float(mode_dot(values, mat, mode)[interior].abs().max()) for mode, mat in enumerate(mats))
    norm = sum(float(mat.abs().sum(dim=1).max()) for mat in mats) + abs(shift)  # with the boundary columns
    size += 1e-6 * norm * float(values.abs().max()) + 1e-300
    if not bool(torch.isfinite(res).all()) or float(res.abs().max()) > 1e-6 * size:
        raise SolverError(
            f"{method}: the residual does not vanish at the computed solution (max "
            f"{float(res.abs().max()):.3g} against terms of size {size:.3g}): the baselines solve linear "
            "PDEs with constant coefficients only"
        )
    return BaselineSolution(method, nodes, values)


def finite_difference_solve(problem: PDEProblem, sizes: int | Sequence[int]) -> BaselineSolution:
    """Second-order finite differences on the uniform grid of ``sizes`` points per dimension (end points
    included), Dirichlet data on the faces (see the module docstring for the supported PDEs)."""
    if not isinstance(problem, PDEProblem):
        raise ConfigError(f"problem must be a PDEProblem, got {type(problem).__name__}")
    sizes = _check_sizes(problem, sizes)
    nodes = [
        torch.linspace(lo, hi, n, dtype=torch.float64) for (lo, hi), n in zip(problem.box, sizes, strict=True)
    ]
    derivative = {
        (mode, order): _finite_difference_derivative(x, order)
        for mode, x in enumerate(nodes)
        for order in (1, 2)
    }
    return _solve(problem, "fd2", nodes, derivative)


def chebyshev_solve(problem: PDEProblem, sizes: int | Sequence[int]) -> BaselineSolution:
    """Chebyshev collocation with ``sizes`` Chebyshev-Lobatto points per dimension, Dirichlet data on the
    faces (see the module docstring for the supported PDEs); derivatives up to order 4."""
    if not isinstance(problem, PDEProblem):
        raise ConfigError(f"problem must be a PDEProblem, got {type(problem).__name__}")
    sizes = _check_sizes(problem, sizes)
    nodes = [chebyshev_nodes(n, lo, hi) for (lo, hi), n in zip(problem.box, sizes, strict=True)]
    derivative = {}
    for mode, x in enumerate(nodes):
        first = _chebyshev_derivative(x)
        power = first
        for order in range(1, 5):
            derivative[(mode, order)] = power
            power = power @ first
    return _solve(problem, "chebyshev", nodes, derivative)
