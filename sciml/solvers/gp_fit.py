r"""The options of :meth:`sciml.solvers.gp.GPSolver.fit` and its ``method="adam"`` loop (the paper's
protocol).

``method="exact"`` (the default) is in :mod:`sciml.solvers.gp_exact`. ``method="adam"``:
Adam (lr 0.01, as in the paper) on all parameters, optionally followed by an L-BFGS refinement
(block-coordinate ascent on the same objective: L-BFGS on the solution with the kernel and :math:`\tau`
fixed, closed-form :math:`\tau` updates between rounds). Every evaluated point is a candidate iterate
(:meth:`~sciml.solvers.gp.GPSolver.keep_if_best`); the returned solution is the iterate with the best training
objective (``keep="best"``) or the last one. A reference solution, if given, is used for monitoring only.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sciml.errors import ConfigError, SolverError
from sciml.progress import progress_disable
from sciml.solvers.gp_problem import CollocationGrid, Operator
from sciml.solvers.gp_solution import GPSolution

if TYPE_CHECKING:
    from sciml.solvers.gp import GPSolver

logger = logging.getLogger(__name__)

__all__ = ["COLLAPSE_FRACTION", "FitOptions", "fit_solver", "monitor_axes", "rel_l2_on_grid"]

METHODS = ("exact", "adam")
#: a fit warns when the residual's RMS stays above this fraction of its RMS at u = 0 (PDE taken as noise)
COLLAPSE_FRACTION = 0.1


def _check_count(label: str, value: object) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{label} must be an integer >= 0, got {value!r}")


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class FitOptions:
    """The settings of one :meth:`~sciml.solvers.gp.GPSolver.fit` call (documented there), checked.

    ``iterations`` and ``lbfgs_iterations`` belong to ``method="adam"`` (defaults 1000 and 0 there); giving
    them with ``method="exact"`` is an error.
    """

    method: str = "exact"
    iterations: int | None = None
    lr: float = 0.01
    lbfgs_iterations: int | None = None
    lbfgs_round: int = 50
    lbfgs_kernel: bool = False
    lbfgs_history: int | None = None
    max_tau: float = 1e12
    log_every: int = 100
    callback: Callable[[int, float, GPSolver], Any] | None = None
    progress: bool = True
    reference: Callable[[Tensor], Tensor] | None = None
    test_sizes: int | Sequence[int] | None = None
    keep: str = "best"
    kernel_rounds: int = 0
    kernel_steps: int = 5
    kernel_lr: float = 0.01
    tau_rounds: int = 50
    gauss_newton: int = 20
    cg_iterations: int = 200
    rtol: float = 1e-10
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method == "exact":
            given = [k for k in ("iterations", "lbfgs_iterations") if getattr(self, k) is not None]
            if given:
                raise ConfigError(
                    f"{' and '.join(given)} are options of method='adam'; method='exact' solves for the "
                    "solution directly (see kernel_rounds, tau_rounds, max_seconds)"
                )
        else:
            object.__setattr__(self, "iterations", 1000 if self.iterations is None else self.iterations)
            object.__setattr__(
                self, "lbfgs_iterations", 0 if self.lbfgs_iterations is None else self.lbfgs_iterations
            )
        counts = ("lbfgs_round", "log_every", "kernel_rounds", "kernel_steps", "tau_rounds", "gauss_newton")
        for label in (*counts, "cg_iterations", "iterations", "lbfgs_iterations"):
            if getattr(self, label) is not None:
                _check_count(label, getattr(self, label))
        for label in ("lbfgs_round", "log_every", "tau_rounds", "gauss_newton", "cg_iterations"):
            if getattr(self, label) < 1:
                raise ConfigError(f"{label} must be >= 1, got {getattr(self, label)}")
        for label in ("lr", "kernel_lr"):
            value = getattr(self, label)
            if not (_is_finite_number(value) and value > 0):
                raise ConfigError(f"{label} must be a finite number > 0, got {value!r}")
        if not (_is_finite_number(self.rtol) and 0 < self.rtol < 1):
            raise ConfigError(f"rtol must be a number in (0, 1), got {self.rtol!r}")
        if self.max_seconds is not None and not (
            _is_finite_number(self.max_seconds) and self.max_seconds > 0
        ):
            raise ConfigError(f"max_seconds must be None or a finite number > 0, got {self.max_seconds!r}")
        if self.keep not in ("best", "last"):
            raise ConfigError(f"keep must be 'best' or 'last', got {self.keep!r}")
        if not (_is_finite_number(self.max_tau) and self.max_tau > 1):
            raise ConfigError(f"max_tau must be a finite number > 1, got {self.max_tau!r}")
        history = self.lbfgs_history
        if history is not None and (not isinstance(history, int) or history < 1):
            raise ConfigError(f"lbfgs_history must be an integer >= 1, got {history!r}")


def fit_solver(solver: GPSolver, options: FitOptions) -> GPSolution:
    """Run :meth:`~sciml.solvers.gp.GPSolver.fit` with checked ``options`` of ``method="adam"``: Adam, then
    the optional L-BFGS refinement, then the choice of the returned iterate; appends to ``solver.history``."""
    return _FitRun(solver, options).run()


def _default_lbfgs_history(n_unknowns: int) -> int:
    """As many L-BFGS curvature pairs as fit in ~300 MB, between 10 and 200."""
    return int(min(200, max(10, 3e8 // (16 * n_unknowns))))


def monitor_axes(grid: CollocationGrid, test_sizes: int | Sequence[int] | None) -> list[Tensor]:
    """The monitoring grid: ``test_sizes`` points per dimension (default twice the collocation grid, at most
    2000)."""
    sizes = test_sizes if test_sizes is not None else [min(2 * n, 2000) for n in grid.sizes]
    sizes = (sizes,) * grid.problem.dims if isinstance(sizes, int) else tuple(sizes)
    return [
        torch.linspace(lo, hi, n, dtype=grid.dtype, device=grid.device)
        for (lo, hi), n in zip(grid.problem.box, sizes, strict=True)
    ]


def rel_l2_on_grid(
    solution: GPSolution, reference: Callable[[Tensor], Tensor], axes: Sequence[Tensor]
) -> float:
    pred = solution.on_grid(axes)
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    exact = torch.as_tensor(reference(mesh.reshape(-1, len(axes))), dtype=pred.dtype, device=pred.device)
    exact = exact.reshape(pred.shape)
    return float(torch.linalg.vector_norm(pred - exact) / torch.linalg.vector_norm(exact))


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc="GP-HM", leave=False, disable=progress_disable())


class _FitRun:
    """One call of ``fit``: the two phases, the per-step bookkeeping and the final choice of iterate."""

    def __init__(self, solver: GPSolver, options: FitOptions) -> None:
        self.solver = solver
        self.options = options
        self.max_log_tau = math.log(options.max_tau)
        history = options.lbfgs_history
        self.lbfgs_history = _default_lbfgs_history(solver.latent.numel()) if history is None else history
        self.test_axes = None if options.reference is None else monitor_axes(solver.grid, options.test_sizes)
        self.bar: Any = None
        self.start = 0.0
        self.last_lbfgs_loss = math.inf

    def run(self) -> GPSolution:
        """Both phases (a :class:`SolverError` after a first iterate stops early), then the chosen iterate."""
        opts = self.options
        self.bar = _progress_bar(opts.iterations + opts.lbfgs_iterations, opts.progress)
        self.start = time.perf_counter()
        try:
            stop = self._adam() if opts.iterations else False
            if opts.lbfgs_iterations and not stop:
                self._refine()
        except SolverError as exc:
            if self.solver.best_state is None:
                raise
            logger.warning("stopping early: %s; keeping the best iterate so far", exc)
            self.solver.history.append(
                {"iteration": self.solver.iteration, "phase": "stopped", "reason": str(exc)}
            )
        finally:
            if self.bar is not None:
                self.bar.close()
        self._select_iterate()
        return self._final_solution()

    # -- bookkeeping ----------------------------------------------------------------------------------

    def _after_step(self, phase: str, loss: float) -> bool:
        """Count the step, log it every ``log_every`` steps; ``True`` if the callback asks to stop."""
        solver, callback = self.solver, self.options.callback
        solver.iteration += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4e}")
        if solver.iteration % self.options.log_every == 0:
            self._log(phase, loss)
        return bool(callback(solver.iteration, loss, solver)) if callback is not None else False

    def _log(self, phase: str, loss: float) -> None:
        solver = self.solver
        entry: dict[str, Any] = {
            "iteration": solver.iteration,
            "phase": phase,
            "loss": loss,
            "seconds": time.perf_counter() - self.start,
        }
        if self.options.reference is not None:
            entry["test_rel_l2"] = rel_l2_on_grid(solver.solution(), self.options.reference, self.test_axes)  # type: ignore[arg-type]
        solver.history.append(entry)
        logger.info(
            "%s iter %d loss %.6e%s",
            phase,
            solver.iteration,
            loss,
            f" test rel L2 {entry['test_rel_l2']:.3e}" if "test_rel_l2" in entry else "",
        )

    def _select_iterate(self) -> None:
        """Consider the state after the last step too, then load the best one (``keep="best"``)."""
        solver = self.solver
        if solver.best_state is None:
            return
        try:
            with torch.no_grad():
                solver.keep_if_best(float(solver.loss()))
        except SolverError:
            pass
        if self.options.keep == "best":
            solver.load_state_dict(solver.best_state)

    def _final_solution(self) -> GPSolution:
        solver, opts = self.solver, self.options
        solution = solver.solution()
        final: dict[str, Any] = {
            "iteration": solver.iteration,
            "phase": "final",
            "loss": solver.best_loss if opts.keep == "best" else float(solver.loss().detach()),
            "seconds": time.perf_counter() - self.start,
        }
        if opts.reference is not None:
            final["test_rel_l2"] = rel_l2_on_grid(solution, opts.reference, self.test_axes)  # type: ignore[arg-type]
        solver.history.append(final)
        return solution

    # -- phase 1: Adam --------------------------------------------------------------------------------

    def _adam(self) -> bool:
        """Adam on all parameters; ``True`` if the callback stopped it."""
        solver = self.solver
        optimizer = torch.optim.Adam(solver.parameters(), lr=self.options.lr)
        for _ in range(self.options.iterations):
            optimizer.zero_grad(set_to_none=True)
            loss = solver.loss()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise SolverError(f"the loss became non-finite ({value}) at iteration {solver.iteration}")
            solver.keep_if_best(value)  # the loss of the parameters before this step
            loss.backward()
            optimizer.step()
            if self._after_step("adam", value):
                return True
        return False

    # -- phase 2: L-BFGS refinement -------------------------------------------------------------------

    def _refine(self) -> None:
        """L-BFGS on the solution (and the kernel with ``lbfgs_kernel``), the rest frozen meanwhile."""
        solver, with_kernel = self.solver, self.options.lbfgs_kernel
        kernel_params = [p for p in solver.prior.kernels.parameters() if p.requires_grad]
        taus = [solver.log_tau_b, solver.log_tau_r]
        frozen = taus if with_kernel else [*kernel_params, *taus]
        variables = [solver.latent, *kernel_params] if with_kernel else [solver.latent]
        for p in frozen:
            p.requires_grad_(False)
        try:
            self._lbfgs_rounds(variables)
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _lbfgs_rounds(self, variables: list[Tensor]) -> None:
        opts = self.options
        fixed: tuple[Any, Any] = (None, None)
        if not opts.lbfgs_kernel:  # factors and derivative operators computed once
            with torch.no_grad():
                chols = self.solver.prior.cholesky()
            fixed = (chols, self.solver.prior.derivative_operators(chols))
        self.last_lbfgs_loss = math.inf
        # one L-BFGS memory for the whole phase: after a tau update the stored curvature pairs are
        # slightly stale but far better than none (resetting every round stalls on stiff problems)
        optimizer = self._lbfgs_optimizer(variables)
        closure = functools.partial(self._lbfgs_loss, optimizer, variables, *fixed)
        for done in range(opts.lbfgs_iterations):
            optimizer.step(closure)
            if self._after_step("lbfgs", self.last_lbfgs_loss):
                return
            if (done + 1) % opts.lbfgs_round == 0 or done + 1 == opts.lbfgs_iterations:
                self._update_tau(*fixed)

    def _lbfgs_optimizer(self, variables: list[Tensor]) -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            variables,
            lr=1.0,
            max_iter=1,
            max_eval=30,
            history_size=self.lbfgs_history,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )

    def _lbfgs_loss(
        self,
        optimizer: torch.optim.Optimizer,
        variables: list[Tensor],
        chols: Sequence[Tensor] | None,
        operator: Operator | None,
    ) -> Tensor:
        """The L-BFGS closure: the loss and its gradient at the current variables."""
        optimizer.zero_grad(set_to_none=True)
        try:
            loss = -self.solver.objective_terms(chols, operator)["objective"]
            value = float(loss.detach())
        except SolverError:  # kernel matrix not positive definite at a line-search trial point
            value = math.nan
        if not math.isfinite(value):
            return self._reject_trial_point(variables)
        self.solver.keep_if_best(value)  # every evaluated point is a candidate iterate
        self.last_lbfgs_loss = value
        loss.backward()
        return loss

    def _reject_trial_point(self, variables: list[Tensor]) -> Tensor:
        """A non-finite loss: fatal with the kernel frozen; with the kernel trained, a large finite loss with
        zero slope, so that the line search shrinks the step (an infinite value would turn its cubic
        interpolation into nan)."""
        if not self.options.lbfgs_kernel:
            raise SolverError(f"the loss became non-finite in L-BFGS at iteration {self.solver.iteration}")
        for p in variables:
            p.grad = torch.zeros_like(p)
        grid = self.solver.grid
        return torch.tensor(abs(self.last_lbfgs_loss) * 10.0 + 1e10, dtype=grid.dtype, device=grid.device)

    def _update_tau(self, chols: Sequence[Tensor] | None = None, operator: Operator | None = None) -> None:
        r"""Closed-form :math:`\tau` maximising :math:`\mathcal L` with the rest fixed (growth capped x100,
        at most ``max_tau``)."""
        solver = self.solver
        with torch.no_grad():
            terms = solver.objective_terms(chols, operator)
            cap = math.log(100.0)
            for param, n, sse in (
                (solver.log_tau_b, solver.grid.n_boundary, terms["boundary_sse"]),
                (solver.log_tau_r, solver.grid.n_collocation, terms["residual_sse"]),
            ):
                target = math.log(n) - math.log(max(float(sse), 1e-300))
                param.fill_(min(target, float(param) + cap, self.max_log_tau))
            solver.keep_if_best(float(-solver.objective_terms(chols, operator)["objective"]))
