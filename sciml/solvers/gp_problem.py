r"""The PDE problem of the GP solver and its collocation grid.

* :class:`PDEProblem`: a PDE :math:`\mathcal R[u](x) = 0` on a box with Dirichlet data :math:`u = g` on its
  faces, given by two callables;
* :class:`GridDerivatives`: what the residual callable receives: ``d["u"]``, ``d["xx"]``, ``d["xy"]``, ... on
  the grid, computed lazily from a latent tensor and one matrix per dimension and derivative order;
* :class:`CollocationGrid`: the uniform tensor grid of a problem (end points included), its boundary points
  and Dirichlet values, the transfinite interpolation of those values into the grid, and the check that the
  residual callable returns what the solver needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciml.errors import ConfigError, SciMLError, SolverError
from sciml.solvers.kronecker import mode_dot
from sciml.solvers.tensor_checks import check_box

__all__ = [
    "DEFAULT_NAMES",
    "CollocationGrid",
    "GridDerivatives",
    "PDEProblem",
    "evaluate_residual",
    "parse_derivative",
]

DEFAULT_NAMES = "xyz"

#: ``operator(mode, order)``: the matrix applied along ``mode`` for the ``order``-th derivative, or ``None``
#: for the identity
Operator = Callable[[int, int], Tensor | None]


def parse_derivative(key: str, names: str) -> tuple[int, ...]:
    """Derivative orders per dimension from a key: ``"u"`` -> zeros, ``"xx"`` -> (2, 0), ``"xy"`` -> (1, 1)
    (2-D, ``names="xy"``)."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"derivative key must be a non-empty string such as 'u' or 'xx', got {key!r}")
    orders = [0] * len(names)
    if key == "u":
        return tuple(orders)
    for ch in key:
        if ch not in names:
            raise ConfigError(
                f"derivative key {key!r}: {ch!r} is not a dimension name; expected 'u' or letters of "
                f"{names!r} (e.g. {names[0] * 2!r})"
            )
        orders[names.index(ch)] += 1
    if max(orders) > 4:
        raise ConfigError(f"derivative key {key!r}: at most 4 derivatives per dimension are supported")
    return tuple(orders)


def _checked_box(box: object) -> list[tuple[float, float]]:
    """``box`` as a list of finite ``(lo, hi)`` pairs with ``lo < hi`` (a single pair is a 1-D box)."""
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"box must be a sequence of (lo, hi) pairs, got {box!r}") from exc
    arr = check_box(arr[None] if arr.shape == (2,) else arr)
    return [(float(a), float(b)) for a, b in arr]


def _checked_names(names: str | None, dims: int) -> str:
    """One distinct letter other than ``u`` per dimension (default ``"x"``, ``"xy"``, ``"xyz"``)."""
    if names is None:
        if dims > len(DEFAULT_NAMES):
            raise ConfigError(f"a {dims}-D problem needs explicit names (one letter per dimension)")
        return DEFAULT_NAMES[:dims]
    if not isinstance(names, str) or len(names) != dims or len(set(names)) != dims or "u" in names:
        raise ConfigError(
            f"names must be {dims} distinct letters other than 'u' (one per dimension), got {names!r}"
        )
    return names


@dataclass
class PDEProblem:
    r"""A PDE :math:`\mathcal R[u](x) = 0` on a box with Dirichlet data :math:`u = g` on its faces.

    * ``box``: per dimension ``(lo, hi)``, finite with ``hi > lo``;
    * ``residual(d, x)``: the residual on the collocation grid; ``d[key]`` gives ``u`` (``d["u"]``) and its
      derivatives by dimension names (``d["x"]``, ``d["xx"]``, ``d["xy"]``, ``d["yy"]``, ...), each a tensor
      of the grid shape; ``x`` holds the coordinates, shape ``(*grid_shape, D)``. The source term is part of
      the residual, e.g. Poisson ``d["xx"] + d["yy"] - f(x)``. Must return a tensor of the grid shape;
    * ``boundary(x)``: Dirichlet values at the boundary points ``x`` of shape ``(N_b, D)``, returning
      ``(N_b,)``;
    * ``names``: one letter per dimension (default ``"x"``, ``"xy"``, ``"xyz"``).
    """

    box: Sequence[tuple[float, float]]
    residual: Callable[[GridDerivatives, Tensor], Tensor]
    boundary: Callable[[Tensor], Tensor]
    names: str | None = None
    name: str = "pde"

    def __post_init__(self) -> None:
        self.box = _checked_box(self.box)
        self.names = _checked_names(self.names, len(self.box))
        if not callable(self.residual) or not callable(self.boundary):
            raise ConfigError("residual and boundary must be callables")

    @property
    def dims(self) -> int:
        """Number of space dimensions D."""
        return len(self.box)


class GridDerivatives:
    """Lazy access to ``u`` and its derivatives on the collocation grid: ``d["u"]``, ``d["xx"]``, ``d["xy"]``.

    ``d[key]`` is the latent tensor multiplied along every mode by ``operator(mode, order)``, the operator of
    that mode's derivative order (see :meth:`sciml.solvers.gp_prior.KroneckerPrior.derivative_operators`);
    results and shared partial products are cached.
    """

    def __init__(self, latent: Tensor, names: str, operator: Operator) -> None:
        self._latent = latent
        self.names = names
        self._operator = operator
        self._cache: dict[tuple[int, ...], Tensor] = {(): latent}

    def __getitem__(self, key: str) -> Tensor:
        orders = parse_derivative(key, self.names)
        # modes are applied last to first; the partial product after the modes j..D-1 is keyed by their
        # orders, so that e.g. "u" and "xx" share the product along y
        for start in range(len(orders) - 1, -1, -1):
            suffix = orders[start:]
            if suffix not in self._cache:
                op = self._operator(start, orders[start])
                prev = self._cache[orders[start + 1 :]]
                self._cache[suffix] = prev if op is None else mode_dot(prev, op, start)
        return self._cache[orders]

    def __contains__(self, key: object) -> bool:
        try:
            parse_derivative(key, self.names)  # type: ignore[arg-type]
        except ConfigError:
            return False
        return True


def evaluate_residual(problem: PDEProblem, derivatives: GridDerivatives, points: Tensor) -> Tensor:
    """``problem.residual(derivatives, points)`` with autograd enabled, so that a residual which itself uses
    ``torch.autograd`` (e.g. a source term computed by differentiating an exact solution) also works when
    the caller runs under ``torch.no_grad()``; the result is then detached."""
    caller_grad = torch.is_grad_enabled()
    with torch.enable_grad():
        res = problem.residual(derivatives, points)
    return res if caller_grad or not isinstance(res, Tensor) else res.detach()


def _checked_sizes(grid_sizes: int | Sequence[int], dims: int) -> tuple[int, ...]:
    sizes = (grid_sizes,) * dims if isinstance(grid_sizes, (int, np.integer)) else tuple(grid_sizes)
    if len(sizes) != dims or any(
        not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 3 for n in sizes
    ):
        raise ConfigError(f"grid_sizes must be an int or {dims} ints, each >= 3; got {grid_sizes!r}")
    return tuple(int(n) for n in sizes)


def _faces_mask(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    """Boolean tensor of the grid shape, ``True`` on the faces of the box."""
    mask = torch.zeros(sizes, dtype=torch.bool, device=device)
    for mode, n in enumerate(sizes):
        index: list[slice | int] = [slice(None)] * len(sizes)
        for i in (0, n - 1):
            index[mode] = i
            mask[tuple(index)] = True
    return mask


class CollocationGrid:
    """The uniform tensor grid of a :class:`PDEProblem` (end points included) with its Dirichlet data.

    Attributes: ``sizes`` (points per dimension, each ``>= 3``; an int is used for every dimension),
    ``axes`` (the 1-D grids), ``spacings``, ``points`` (shape ``(*sizes, D)``), ``boundary_mask`` (``True`` on
    the faces), ``boundary_points`` ``(N_b, D)``, ``boundary_values`` ``(N_b,)`` (``problem.boundary``
    there, checked), ``n_total`` (N), ``n_boundary`` (:math:`N_b`) and ``n_collocation`` (:math:`N_c`: N, or
    the :math:`N - N_b` interior points when ``residual_on_boundary`` is false).
    """

    def __init__(
        self,
        problem: PDEProblem,
        sizes: int | Sequence[int],
        residual_on_boundary: bool = True,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.problem = problem
        self.sizes = _checked_sizes(sizes, problem.dims)
        self.dtype = dtype
        self.device = torch.device(device)
        pairs = list(zip(problem.box, self.sizes, strict=True))
        self.axes = [torch.linspace(lo, hi, n, dtype=dtype, device=self.device) for (lo, hi), n in pairs]
        self.spacings = [(hi - lo) / (n - 1) for (lo, hi), n in pairs]
        self.points = torch.stack(torch.meshgrid(*self.axes, indexing="ij"), dim=-1)  # (*sizes, D)
        self.boundary_mask = _faces_mask(self.sizes, self.device)
        self.boundary_points = self.points[self.boundary_mask]
        self.n_total = math.prod(self.sizes)
        self.n_boundary = int(self.boundary_mask.sum())
        self.residual_on_boundary = bool(residual_on_boundary)
        self.n_collocation = self.n_total if self.residual_on_boundary else self.n_total - self.n_boundary
        self.boundary_values = self._dirichlet_values()

    def _dirichlet_values(self) -> Tensor:
        """``problem.boundary`` at the boundary points, checked: one finite value per point."""
        n_b = self.n_boundary
        try:
            values = self.problem.boundary(self.boundary_points)
        except Exception as exc:
            raise SolverError(f"problem.boundary failed on the {n_b} boundary points: {exc}") from exc
        values = torch.as_tensor(values, dtype=self.dtype, device=self.device)
        if values.numel() != n_b:
            raise SolverError(
                f"problem.boundary returned shape {tuple(values.shape)}; expected ({n_b},) "
                "(one value per boundary point)"
            )
        values = values.reshape(-1).detach()
        bad = ~torch.isfinite(values)
        if bad.any():
            i = int(torch.nonzero(bad)[0])
            raise SolverError(
                f"problem.boundary must return finite values; got {values[i].item()} at point "
                f"{self.boundary_points[i].tolist()} ({int(bad.sum())} non-finite of {n_b})"
            )
        return values

    def boundary_lift(self) -> Tensor:
        r"""Transfinite (Coons) interpolation of the Dirichlet data into the grid,
        :math:`(I - \prod_d (I - P_d))\, G`, with :math:`P_d` the linear interpolation along dimension
        :math:`d` between the two faces and :math:`G` any grid tensor holding the data on the faces (the
        result depends only on those values and matches them there)."""
        data = torch.zeros(self.sizes, dtype=self.dtype, device=self.device)
        data[self.boundary_mask] = self.boundary_values
        rest = data
        for mode, grid in enumerate(self.axes):
            frac = ((grid - grid[0]) / (grid[-1] - grid[0])).reshape(
                [-1 if i == mode else 1 for i in range(data.dim())]
            )
            lo, hi = rest.narrow(mode, 0, 1), rest.narrow(mode, rest.shape[mode] - 1, 1)
            rest = rest - ((1.0 - frac) * lo + frac * hi)
        return data - rest

    def check_residual(self, make_operator: Callable[[], Operator], seed: int) -> None:
        """Evaluate ``problem.residual`` at a random ``u`` (seeded) with the derivative operators
        ``make_operator()``; raise :class:`SolverError` unless it returns a finite tensor of the grid shape
        that depends on ``u``."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        u = torch.randn(self.sizes, generator=gen, dtype=self.dtype).to(self.device).requires_grad_(True)
        try:
            with torch.enable_grad():
                derivs = GridDerivatives(u, self.problem.names, make_operator())  # type: ignore[arg-type]
                res = self.problem.residual(derivs, self.points)
        except SciMLError:
            raise
        except Exception as exc:
            raise SolverError(f"problem.residual failed on the collocation grid: {exc}") from exc
        self._check_residual_values(res)
        self._check_depends_on_u(res, u, gen)

    def _check_residual_values(self, res: object) -> None:
        if not isinstance(res, Tensor):
            raise SolverError(f"problem.residual must return a torch.Tensor, got {type(res).__name__}")
        if tuple(res.shape) != self.sizes:
            raise SolverError(
                f"problem.residual returned shape {tuple(res.shape)}; expected the grid shape {self.sizes}"
            )
        bad = ~torch.isfinite(res)
        if bad.any():
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise SolverError(
                f"problem.residual returned non-finite values ({int(bad.sum())} entries, first at grid index "
                f"{idx}, x = {self.points[idx].tolist()}) for a random u"
            )

    def _check_depends_on_u(self, res: Tensor, u: Tensor, gen: torch.Generator) -> None:
        grad = None
        if res.requires_grad:
            probe = torch.randn(res.shape, generator=gen, dtype=self.dtype).to(self.device)
            (grad,) = torch.autograd.grad((res * probe).sum(), u, allow_unused=True)
        if grad is None or not bool((grad != 0).any()):
            raise SolverError(
                "problem.residual does not depend on u: its gradient with respect to the grid values is "
                "identically zero at a random u; expected a residual built from d['u'] and/or its derivatives"
            )
