r"""Kronecker-structured Gaussian-process PDE solver (GP-HM): the solver and its objective.

Implements Fang et al., "Solving High Frequency and Multi-Scale PDEs with Gaussian Processes" (ICLR 2024).
The solution values :math:`\mathcal U \in \mathbb R^{N_1 \times \dots \times N_D}` on a uniform tensor
grid :math:`X_1 \times \dots \times X_D` (end points included) get the GP prior
:math:`\mathrm{vec}(\mathcal U) \sim \mathcal N(0, K_1 \otimes \dots \otimes K_D)` with one 1-D kernel per
dimension (:mod:`sciml.solvers.gp_kernels`; the Student-t / Gaussian mixture spectra give the StM / GM
kernels), :math:`K_d = k_d(X_d, X_d) + \epsilon I` (jitter :math:`\epsilon`). The solution anywhere is the GP
conditional mean, and its derivatives are those of the conditional mean:

.. math:: u(x) = \mathcal A \times_1 k_1(x_1, X_1) \times_2 \dots \times_D k_D(x_D, X_D), \qquad
          \mathcal A = \mathcal U \times_1 K_1^{-1} \times_2 \dots \times_D K_D^{-1},

and on the grid :math:`\partial^a_{x_d} u = \mathcal U \times_d (K_d^{(a,0)} K_d^{-1})`, e.g.
:math:`U_{xx} = K_1^{(2,0)} K_1^{-1} U`.
With :math:`N = \prod_d N_d` grid points, :math:`N_b` of them on the faces of the box, and the PDE residual
:math:`R` at the :math:`N_c` collocation points (all grid points by default), the maximised objective is
(2-D form of the paper, generalised to D modes)

.. math:: \mathcal L = -\frac12 \sum_d \frac{N}{N_d}\log|K_d| - \frac12 \langle \mathcal U, \mathcal A\rangle
          + \lambda_b\Big[\frac{N_b}{2}\log\tau_1 - \frac{\tau_1}{2}\|u_b - g\|^2\Big]
          + \frac{N_c}{2}\log\tau_2 - \frac{\tau_2}{2}\|R\|^2 ,

over :math:`\mathcal U`, :math:`\log\tau_1, \log\tau_2` and the kernel parameters (``loss`` is
:math:`-\mathcal L`). No :math:`N \times N` matrix is ever formed (:mod:`sciml.solvers.kronecker`): time per
step is :math:`O(N \sum_d N_d + \sum_d N_d^3)`, memory :math:`O(N + \sum_d N_d^2)`.

Choices that keep the paper's objective but differ from its code (both switchable):

* ``u_on_grid="mean"`` (default): the ``u`` that enters the residual and the boundary term is the conditional
  mean at the grid, :math:`\mathcal U \times_d k_d(X_d, X_d) K_d^{-1}`, i.e. the function that is returned,
  like its derivatives; ``"values"`` uses :math:`\mathcal U` itself as the paper's code does (the two differ
  by :math:`\epsilon \mathcal A`, which limits the attainable accuracy with the jitter);
* ``parametrization="whitened"`` (default): the unknowns are :math:`\mathcal V` with
  :math:`\mathcal U = \mathcal V \times_1 L_1 \dots \times_D L_D`, so the prior term is
  :math:`\|\mathcal V\|^2` (a change of variables; the maximum of :math:`\mathcal L` is unchanged) and the
  derivative operators become :math:`K_d^{(a,0)} L_d^{-\top}`; ``"grid"`` optimises :math:`\mathcal U`
  directly as the paper does. Adam converges far faster on the whitened variables.

Where each piece lives: the problem and its grid in :mod:`sciml.solvers.gp_problem`, the prior's algebra
(Toeplitz kernel matrices, Cholesky factors, whitening, derivative operators) in
:mod:`sciml.solvers.gp_prior`, the optimisation loop of :meth:`GPSolver.fit` in :mod:`sciml.solvers.gp_fit`
and the returned function in :mod:`sciml.solvers.gp_solution`; this module holds the parameters and the
objective.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from sciml.errors import ConfigError
from sciml.solvers.gp_fit import FitOptions, fit_solver
from sciml.solvers.gp_kernels import StationaryKernel1D
from sciml.solvers.gp_prior import KroneckerPrior, build_kernels
from sciml.solvers.gp_problem import CollocationGrid, GridDerivatives, Operator, PDEProblem
from sciml.solvers.gp_solution import GPSolution

__all__ = ["GPSolver"]


def _check_positive(label: str, value: object) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{label} must be a finite number > 0, got {value!r}")


def _check_choice(label: str, value: object, choices: tuple[str, str]) -> None:
    if value not in choices:
        raise ConfigError(f"{label} must be {choices[0]!r} or {choices[1]!r}, got {value!r}")


class GPSolver(torch.nn.Module):
    r"""GP-HM solver: maximises the objective of the module docstring on a uniform tensor grid.

    Args:
        problem: the :class:`~sciml.solvers.gp_problem.PDEProblem`.
        grid_sizes: points per dimension (end points included), each ``>= 3``; an int is used for every dim.
        kernel: ``"stm"`` (Student-t mixture, default), ``"gm"`` (Gaussian mixture), ``"se"`` or ``"matern"``
            (single-scale baselines), or a list of :class:`StationaryKernel1D` (one per dimension).
        n_components: mixture size Q (paper: 30).
        freq_scale: mixture frequencies start at ``linspace(0, 1, Q) * freq_scale``; float or one per dim.
        lengthscale: initial lengthscale of ``"se"`` / ``"matern"`` (default
            ``max(1/(2 pi freq_scale), 2 h)`` with ``h`` the grid spacing).
        boundary_weight: :math:`\lambda_b` (paper: 200, 500 for advection).
        jitter: :math:`\epsilon` added to the diagonal of each :math:`K_d` (paper: 1e-6).
        residual_on_boundary: collocate the PDE on all grid points (default, :math:`N_c = N`) or only on the
            interior ones.
        parametrization: ``"whitened"`` (default) or ``"grid"`` (the paper's), see the module docstring.
        u_on_grid: ``"mean"`` (default) or ``"values"`` (the paper's code), see the module docstring.
        init: initial solution: ``"boundary"`` (default), the transfinite interpolation of the Dirichlet data
            (:meth:`CollocationGrid.boundary_lift`; without it the optimiser can take thousands of steps to
            find the smooth part of a multi-scale solution), or ``"zeros"``.
        dtype, device: float64 on CPU by default; ``device="cuda"`` works the same.
        seed: seeds the random field of the residual check.

    Attributes: ``grid`` (:class:`~sciml.solvers.gp_problem.CollocationGrid`), ``prior``
    (:class:`~sciml.solvers.gp_prior.KroneckerPrior`, holding the kernels), the parameters ``latent``,
    ``log_tau_b``, ``log_tau_r``, and the optimisation state ``iteration``, ``history``, ``best_loss``.
    """

    def __init__(
        self,
        problem: PDEProblem,
        grid_sizes: int | Sequence[int],
        kernel: str | Sequence[StationaryKernel1D] = "stm",
        n_components: int = 30,
        freq_scale: float | Sequence[float] = 1.0,
        lengthscale: float | Sequence[float] | None = None,
        boundary_weight: float = 200.0,
        jitter: float = 1e-6,
        residual_on_boundary: bool = True,
        parametrization: str = "whitened",
        u_on_grid: str = "mean",
        init: str = "boundary",
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(problem, PDEProblem):
            raise ConfigError(f"problem must be a PDEProblem, got {type(problem).__name__}")
        _check_positive("boundary_weight", boundary_weight)
        _check_positive("jitter", jitter)
        _check_choice("parametrization", parametrization, ("grid", "whitened"))
        _check_choice("u_on_grid", u_on_grid, ("mean", "values"))
        _check_choice("init", init, ("boundary", "zeros"))
        self.problem = problem
        self.grid = CollocationGrid(problem, grid_sizes, residual_on_boundary, dtype, device)
        self.boundary_weight = float(boundary_weight)
        self.kernel_name = kernel if isinstance(kernel, str) else "custom"
        kernels = build_kernels(kernel, self.grid.spacings, n_components, freq_scale, lengthscale)
        self.prior = KroneckerPrior(kernels, self.grid, jitter, parametrization, u_on_grid)
        # the grid values U ("grid") or the whitened V with U = V x_1 L_1 ... x_D L_D ("whitened")
        self.latent = torch.nn.Parameter(torch.zeros(self.grid.sizes, dtype=dtype, device=self.grid.device))
        self.log_tau_b = torch.nn.Parameter(torch.zeros((), dtype=dtype, device=self.grid.device))
        self.log_tau_r = torch.nn.Parameter(torch.zeros((), dtype=dtype, device=self.grid.device))
        self.history: list[dict[str, Any]] = []
        self.iteration = 0
        self.best_loss = math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.grid.check_residual(lambda: self.prior.derivative_operators(self.prior.cholesky()), seed)
        if init == "boundary":
            with torch.no_grad():
                self.latent.copy_(self.prior.latent_of(self.grid.boundary_lift(), self.prior.cholesky()))

    @property
    def u(self) -> Tensor:
        r"""The current grid values :math:`\mathcal U` (detached)."""
        with torch.no_grad():
            if not self.prior.whitened:
                return self.latent.detach().clone()
            return self.prior.grid_values(self.latent, self.prior.cholesky())

    # -- objective ------------------------------------------------------------------------------------

    def objective_terms(
        self, chols: Sequence[Tensor] | None = None, operator: Operator | None = None
    ) -> dict[str, Tensor]:
        """The terms of :math:`\\mathcal L` (differentiable): ``logdet``, ``quad``, ``boundary_sse``,
        ``residual_sse`` and the total ``objective``. ``chols`` / ``operator`` (precomputed Cholesky factors
        and derivative operators) are used when the kernel is frozen."""
        if chols is None:
            chols = self.prior.cholesky()
        if operator is None:
            operator = self.prior.derivative_operators(chols)
        logdet, quad = self.prior.log_prior_terms(self.latent, chols)
        derivs = GridDerivatives(self.latent, self.problem.names, operator)  # type: ignore[arg-type]
        res = self.problem.residual(derivs, self.grid.points)
        if not self.grid.residual_on_boundary:
            res = res[~self.grid.boundary_mask]
        r_sse = res.square().sum()
        b_sse = (derivs["u"][self.grid.boundary_mask] - self.grid.boundary_values).square().sum()
        tau_b, tau_r = torch.exp(self.log_tau_b), torch.exp(self.log_tau_r)
        objective = (
            -0.5 * logdet
            - 0.5 * quad
            + self.boundary_weight * (0.5 * self.grid.n_boundary * self.log_tau_b - 0.5 * tau_b * b_sse)
            + 0.5 * self.grid.n_collocation * self.log_tau_r
            - 0.5 * tau_r * r_sse
        )
        return {
            "objective": objective,
            "logdet": logdet,
            "quad": quad,
            "boundary_sse": b_sse,
            "residual_sse": r_sse,
        }

    def loss(self) -> Tensor:
        r"""The minimised loss :math:`-\mathcal L` (negative log joint of the paper)."""
        return -self.objective_terms()["objective"]

    def keep_if_best(self, loss: float) -> None:
        """Remember a copy of the parameters (``best_state``) if ``loss`` is the lowest seen so far
        (``best_loss``)."""
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_state = {k: v.detach().clone() for k, v in self.state_dict().items()}

    # -- solution -------------------------------------------------------------------------------------

    def solution(self) -> GPSolution:
        """The conditional-mean solution of the current parameters (detached copies of the kernels)."""
        names = self.problem.names
        with torch.no_grad():
            chols = self.prior.cholesky()
            u = self.prior.grid_values(self.latent, chols)
            alpha = self.prior.alpha(self.latent.detach(), u, chols)
            operator = self.prior.derivative_operators(chols)
            seen = GridDerivatives(self.latent.detach(), names, operator)["u"]  # type: ignore[arg-type]
        kernels = [copy.deepcopy(k).requires_grad_(False) for k in self.prior.kernels]
        info = {
            "kernel": self.kernel_name,
            "grid_sizes": self.grid.sizes,
            "iteration": self.iteration,
            "best_loss": self.best_loss,
            "tau_boundary": math.exp(self.log_tau_b.item()),
            "tau_residual": math.exp(self.log_tau_r.item()),
        }
        return GPSolution(self.grid.axes, kernels, alpha, seen, u, names, self.history, info)  # type: ignore[arg-type]

    # -- training -------------------------------------------------------------------------------------

    def fit(
        self,
        iterations: int = 1000,
        lr: float = 0.01,
        lbfgs_iterations: int = 0,
        lbfgs_round: int = 50,
        lbfgs_kernel: bool = False,
        lbfgs_history: int | None = None,
        max_tau: float = 1e12,
        log_every: int = 100,
        callback: Callable[[int, float, GPSolver], Any] | None = None,
        progress: bool = True,
        reference: Callable[[Tensor], Tensor] | None = None,
        test_sizes: int | Sequence[int] | None = None,
        keep: str = "best",
    ) -> GPSolution:
        r"""Maximise :math:`\mathcal L`; return the :class:`GPSolution` of the iterate with the lowest loss
        :math:`-\mathcal L` (``keep="best"``) or of the last one (``keep="last"``).

        Phase 1 (the paper's optimiser): ``iterations`` Adam steps at ``lr`` on all parameters (solution,
        :math:`\log\tau_{1,2}`, kernel parameters).
        Phase 2 (optional refinement, ``lbfgs_iterations > 0``): block-coordinate ascent on the same objective
        with the kernel frozen (``lbfgs_kernel=True``: kernel parameters included): L-BFGS iterations
        (strong-Wolfe line search, one memory of ``lbfgs_history`` pairs for the whole phase; default: as many
        as fit in ~300 MB, at most 200) on the solution with :math:`\tau` fixed,
        and every ``lbfgs_round`` iterations the closed-form update
        :math:`\tau_1 \leftarrow N_b/\|u_b - g\|^2`, :math:`\tau_2 \leftarrow N_c / \|R\|^2` (growth capped at
        x100 per round and at ``max_tau``; each
        step increases :math:`\mathcal L`). :math:`\tau` is kept out of the L-BFGS variables because
        :math:`\mathcal L` is unbounded along :math:`\tau_1 \to \infty` once the boundary values are fitted
        exactly; the cap ``max_tau`` keeps the problem from becoming too stiff for L-BFGS.

        ``callback(iteration, loss, solver)`` is called after each step (return ``True`` to stop).
        ``reference(points) -> values`` (the exact solution at ``(M, D)`` points) is for monitoring only: the
        relative L2 error on a ``test_sizes`` grid (default twice the collocation grid, at most 2000 points
        per dimension) is stored in ``history`` every ``log_every`` steps; it never selects an iterate.
        Calling ``fit`` again continues from the current state. The loop is in :mod:`sciml.solvers.gp_fit`.
        """
        options = FitOptions(
            iterations=iterations,
            lr=lr,
            lbfgs_iterations=lbfgs_iterations,
            lbfgs_round=lbfgs_round,
            lbfgs_kernel=lbfgs_kernel,
            lbfgs_history=lbfgs_history,
            max_tau=max_tau,
            log_every=log_every,
            callback=callback,
            progress=progress,
            reference=reference,
            test_sizes=test_sizes,
            keep=keep,
        )
        return fit_solver(self, options)
