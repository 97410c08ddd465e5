"""Benchmark of the Kronecker GP PDE solver GP-HM (Fang et al., ICLR 2024) on high-frequency PDEs.

Problems (the paper's; source terms and Dirichlet data derived from the exact solutions by autograd):

* 1-D Poisson ``u_xx = f``: sin(100x) on [0, 2pi] (N=400, freq_scale 20); sin(6x)cos(100x) (same);
  x sin(200x) on [0, 2pi] (N=900, fs 50); sin x + 0.1 sin 20x + 0.05 sin 100x on [0, 1] (N=900, fs 30);
  sin(500x) - 2(x-0.5)^2 on [0, 1] (N=400, fs 100);
* 1-D Allen-Cahn ``u_xx + u(u^2-1) = f``: sin(100x), sin(6x)cos(100x) on [0, 2pi] (N=400, fs 20);
* 2-D Poisson ``u_xx + u_yy = f``: sin(100x)sin(100y) on [0, 2pi]^2 (400^2, fs 20);
  sin6x cos20x + sin6y cos20y on [0, 2pi]^2 (200^2, fs 5: not in our notes, chosen to cover the top
  frequency 26/(2pi) = 4.1);
* 2-D Allen-Cahn ``u_xx + u_yy + u(u^2-1) = f``: (sin x + 0.1 sin 20x + cos 100x)(same in y) on [0, 1]^2
  (400^2, fs 30);
* advection ``u_y + 200 u_x = 0`` on [0, 1]^2, exact u = sin(x - 200y) (200^2, fs 40, lambda_b 500).

Methods, side by side on the same :class:`PDEProblem` objects:

* the new default, ``fit(method="exact")`` with ``freq_scale=None`` (frequencies from the spectrum of the
  source and boundary data) and the default collocation set (interior only for StM, all points for GM):
  ``exact-stm``, ``exact-gm``; budget ``--exact-seconds`` (10 s) per run, no kernel rounds (they raise the
  objective but not the accuracy: ``GPSolver.fit``);
* the paper's protocol (its ``freq_scale`` per problem, collocation on all points): Adam (lr 0.01) for at
  most ``--iterations`` steps or ``--adam-fraction`` (0.5) of ``--seconds`` (25 s), then the L-BFGS refinement
  (kernel frozen, closed-form tau updates) for at most ``--lbfgs`` steps or the remaining time: ``adam-stm``,
  ``adam-gm`` and a plain SE-kernel GP ``adam-se``. The paper runs 1e5 - 3e6 Adam steps; ours are 3 - 4
  orders of magnitude fewer;
* for Poisson, the classical solves of :mod:`sciml.solvers.pde_baselines` with the same number of points per
  dimension: second-order finite differences (``fd2``, error at the grid nodes) and Chebyshev collocation
  (evaluated on the test grid by barycentric interpolation).

One torch thread by default (``--threads``; 2 threads on a shared 2-core machine were several times slower).
The returned GP iterate is the one with the best training objective; the test error is only monitored.
Errors: relative L2 on a fine uniform test grid.

Also: (a) time of one Adam iteration (forward + backward + step) at 400 x 400 collocation points against the
authors' JAX reference (1.1 s/iter); (b) peak memory of building the solver and one iteration for n x n
grids up to 1000 x 1000, against sum_d N_d^2 and the N^2 of a dense covariance. Memory (also per problem) is
the peak resident-set increase of this process: the Linux high-water mark VmHWM is reset through
/proc/self/clear_refs before the block and compared with VmRSS (:class:`sciml.bench.memory.PeakMemory`;
ru_maxrss increase elsewhere). psutil is not installed and tracemalloc does not see torch's allocations.

Run ``python solvers/gp_hm.py`` (full, ~20 min on 2 cores) or ``--quick`` (coarse grids, tens of steps,
under a minute: a smoke test whose errors mean nothing). Writes ``gp_hm.json`` (``gp_hm_quick.json``) and
PNGs into ``--out`` (default solvers/results; with ``--quick`` solvers/results/quick).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from sciml.bench.memory import PeakMemory
from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import num, para, provenance, sci, table
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import PDEProblem
from sciml.solvers.gp_solution import GPSolution
from sciml.solvers.pde_baselines import chebyshev_solve, finite_difference_solve

logger = logging.getLogger("gp_hm")
JAX_SECONDS_PER_ITER = 1.1
TARGET = 1e-3
TWO_PI = 2.0 * math.pi


class Case:
    """One benchmark problem: exact solution ``exact(points (..., D)) -> (...)`` and the PDE kind
    (``poisson``, ``allen_cahn`` or ``advection``)."""

    def __init__(
        self,
        name: str,
        kind: str,
        box: list[tuple[float, float]],
        n: int,
        freq_scale: float,
        exact: Callable[[torch.Tensor], torch.Tensor],
        boundary_weight: float = 200.0,
    ) -> None:
        self.name, self.kind, self.box, self.n = name, kind, box, n
        self.freq_scale, self.exact, self.boundary_weight = freq_scale, exact, boundary_weight

    @property
    def dims(self) -> int:
        return len(self.box)


def _x(p: torch.Tensor) -> torch.Tensor:
    return p[..., 0]


def _y(p: torch.Tensor) -> torch.Tensor:
    return p[..., 1]


def _ms(t: torch.Tensor) -> torch.Tensor:
    return torch.sin(t) + 0.1 * torch.sin(20 * t) + torch.cos(100 * t)


CASES = [
    Case("poisson1d_sin100x", "poisson", [(0.0, TWO_PI)], 400, 20.0, lambda p: torch.sin(100 * _x(p))),
    Case(
        "poisson1d_sin6x_cos100x",
        "poisson",
        [(0.0, TWO_PI)],
        400,
        20.0,
        lambda p: torch.sin(6 * _x(p)) * torch.cos(100 * _x(p)),
    ),
    Case(
        "poisson1d_x_sin200x", "poisson", [(0.0, TWO_PI)], 900, 50.0, lambda p: _x(p) * torch.sin(200 * _x(p))
    ),
    Case(
        "poisson1d_multiscale",
        "poisson",
        [(0.0, 1.0)],
        900,
        30.0,
        lambda p: torch.sin(_x(p)) + 0.1 * torch.sin(20 * _x(p)) + 0.05 * torch.sin(100 * _x(p)),
    ),
    Case(
        "poisson1d_sin500x_quadratic",
        "poisson",
        [(0.0, 1.0)],
        400,
        100.0,
        lambda p: torch.sin(500 * _x(p)) - 2 * (_x(p) - 0.5) ** 2,
    ),
    Case("allen_cahn1d_sin100x", "allen_cahn", [(0.0, TWO_PI)], 400, 20.0, lambda p: torch.sin(100 * _x(p))),
    Case(
        "allen_cahn1d_sin6x_cos100x",
        "allen_cahn",
        [(0.0, TWO_PI)],
        400,
        20.0,
        lambda p: torch.sin(6 * _x(p)) * torch.cos(100 * _x(p)),
    ),
    Case(
        "poisson2d_sin100x_sin100y",
        "poisson",
        [(0.0, TWO_PI)] * 2,
        400,
        20.0,
        lambda p: torch.sin(100 * _x(p)) * torch.sin(100 * _y(p)),
    ),
    Case(
        "poisson2d_sin6x_cos20x",
        "poisson",
        [(0.0, TWO_PI)] * 2,
        200,
        5.0,  # not given in the reference notes: covers the highest frequency 26 / (2 pi) = 4.1
        lambda p: torch.sin(6 * _x(p)) * torch.cos(20 * _x(p)) + torch.sin(6 * _y(p)) * torch.cos(20 * _y(p)),
    ),
    Case(
        "allen_cahn2d_multiscale",
        "allen_cahn",
        [(0.0, 1.0)] * 2,
        400,
        30.0,
        lambda p: _ms(_x(p)) * _ms(_y(p)),
    ),
    Case(
        "advection2d_sin_x_minus_200y",
        "advection",
        [(0.0, 1.0)] * 2,
        200,
        40.0,
        lambda p: torch.sin(_x(p) - 200 * _y(p)),
        boundary_weight=500.0,
    ),
]
#: method name -> (kernel, fit protocol)
METHODS = {
    "exact-stm": ("stm", "exact"),
    "exact-gm": ("gm", "exact"),
    "adam-stm": ("stm", "adam"),
    "adam-gm": ("gm", "adam"),
    "adam-se": ("se", "adam"),
}
PAPER_ADAM_ITERATIONS = "1e5 - 3e6"
NAMES = "xy"


# ----------------------------------------------------------------------------------------------------------
# problems


def _derivatives(exact: Callable, points: torch.Tensor) -> dict[str, torch.Tensor]:
    """u, u_j and u_jj of the exact solution at ``points`` (..., D) by autograd (elementwise functions)."""
    x = points.detach().clone().requires_grad_(True)
    u = exact(x)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    out = {"u": u.detach()}
    for j in range(points.shape[-1]):
        (second,) = torch.autograd.grad(grad[..., j].sum(), x, retain_graph=True)
        out[NAMES[j]] = grad[..., j].detach()
        out[NAMES[j] * 2] = second[..., j].detach()
    return out


def make_problem(case: Case) -> PDEProblem:
    """The :class:`PDEProblem` of a case; the source is computed once per grid (cached)."""
    # keyed by the points' storage; the entry keeps the points alive, so that no later tensor can reuse the
    # address and be served another grid's source
    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def source(x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.data_ptr())
        if key not in cache:
            d = _derivatives(case.exact, x)
            lap = sum(d[n * 2] for n in NAMES[: case.dims])
            if case.kind == "poisson":
                value = lap
            elif case.kind == "allen_cahn":
                value = lap + d["u"] * (d["u"] ** 2 - 1.0)
            else:
                value = d["y"] + 200.0 * d["x"]
            cache[key] = (x, value)
        return cache[key][1]

    def residual(d, x: torch.Tensor) -> torch.Tensor:
        if case.kind == "advection":
            lhs = d["y"] + 200.0 * d["x"]
        else:
            lhs = sum(d[n * 2] for n in NAMES[: case.dims])
            if case.kind == "allen_cahn":
                lhs = lhs + d["u"] * (d["u"] ** 2 - 1.0)
        return lhs - source(x)

    return PDEProblem(
        box=case.box, residual=residual, boundary=case.exact, names=NAMES[: case.dims], name=case.name
    )


def _test_axes(case: Case, quick: bool) -> list[torch.Tensor]:
    # 2^k + 1 points: no alignment of the test points with the zeros of sin(100 x) on [0, 2 pi]
    m = (2049 if quick else 8193) if case.dims == 1 else (257 if quick else 1025)
    return [torch.linspace(lo, hi, m, dtype=torch.float64) for lo, hi in case.box]


def _exact_on(case: Case, axes: list[torch.Tensor]) -> torch.Tensor:
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return case.exact(mesh)


def _rel(pred: torch.Tensor, exact: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(pred - exact) / torch.linalg.vector_norm(exact))


# ----------------------------------------------------------------------------------------------------------
# GP runs


def run_gp(case: Case, method: str, n: int, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Fit one GP model under the method's budget; returns the row and the solution."""
    kernel, protocol = METHODS[method]
    problem = make_problem(case)
    axes = _test_axes(case, args.quick)
    exact = _exact_on(case, axes)
    with PeakMemory() as mem:
        start = time.perf_counter()
        if protocol == "exact":
            solver = GPSolver(
                problem, n, kernel=kernel, boundary_weight=case.boundary_weight, jitter=args.jitter
            )
            solution = solver.fit(max_seconds=args.exact_seconds, progress=False, **_monitor(case, n))
            steps: dict[str, Any] = _exact_steps(solver)
        else:
            solver = GPSolver(
                problem,
                n,
                kernel=kernel,
                n_components=30,
                freq_scale=case.freq_scale,
                boundary_weight=case.boundary_weight,
                jitter=args.jitter,
                residual_on_boundary=True,
            )
            solution, adam_steps = _fit_within_budget(solver, case, n, args, start)
            steps = {"adam_iterations": adam_steps, "lbfgs_iterations": solver.iteration - adam_steps}
        wall = time.perf_counter() - start
    err = _rel(solution.on_grid(axes), exact)
    row = {
        "problem": case.name,
        "method": method,
        "kernel": kernel,
        "protocol": protocol,
        "grid": [n] * case.dims,
        "rel_l2": err,
        **steps,
        "wall_s": wall,
        "peak_rss_increase_mb": mem.increase_mb,
        "reached_target": bool(err <= TARGET),
        "tau_residual": solution.info["tau_residual"],
        "history": [
            {k: h[k] for k in ("iteration", "phase", "loss", "test_rel_l2") if k in h} for h in solver.history
        ],
    }
    logger.info(f"{case.name:>30} {method:>10} {err:>10.2e} {_steps_text(row):>16} {wall:>7.1f}")
    return row, solution


def _monitor(case: Case, n: int, log_every: int = 100) -> dict[str, Any]:
    """The monitoring options of a fit (test error on a grid twice as fine, never used for selection)."""
    return {"reference": case.exact, "test_sizes": [min(2 * n + 1, 2001)] * case.dims, "log_every": log_every}


def _exact_steps(solver: GPSolver) -> dict[str, Any]:
    """What the exact fit took: solves, tau rounds, Gauss-Newton steps, CG iterations."""
    solves = [h for h in solver.history if h.get("phase") in ("exact", "kernel")]
    return {
        "solves": len(solves),
        "tau_rounds": sum(h["tau_rounds"] for h in solves),
        "gauss_newton_steps": sum(h["gauss_newton_steps"] for h in solves),
        "cg_iterations": sum(h["cg_iterations"] for h in solves),
        "cg_converged": all(h["cg_converged"] for h in solves),
        "linear": all(h["linear"] for h in solves),
    }


def _steps_text(row: dict[str, Any]) -> str:
    """The optimiser's work in a row: Adam+L-BFGS steps, or tau rounds / Gauss-Newton steps / CG
    iterations."""
    if "adam_iterations" in row:
        return f"{row['adam_iterations']}+{row['lbfgs_iterations']}"
    if "tau_rounds" not in row:
        return "-"
    text = f"{row['tau_rounds']} tau / {row['gauss_newton_steps']} GN"
    if row.get("cg_iterations"):
        text += f" / {row['cg_iterations']} CG" + ("" if row.get("cg_converged") else " (cap)")
    return text


def _fit_within_budget(
    solver: GPSolver, case: Case, n: int, args: argparse.Namespace, start: float
) -> tuple[GPSolution, int]:
    """Adam for at most ``args.iterations`` steps or ``args.adam_fraction`` of ``args.seconds`` (counted from
    ``start``), then L-BFGS for the rest; returns the solution and the number of Adam steps."""

    def until(deadline: float):
        return lambda it, loss, s: time.perf_counter() > deadline

    log_every = args.log_every or (10 if args.quick else (100 if case.dims == 1 else 20))
    monitor = _monitor(case, n, log_every)
    adam_deadline = start + args.adam_fraction * args.seconds
    solver.fit(
        args.iterations, lr=0.01, callback=until(adam_deadline), progress=False, method="adam", **monitor
    )
    adam_steps = solver.iteration
    solution = solver.fit(
        0,
        lbfgs_iterations=args.lbfgs,
        callback=until(start + args.seconds),
        progress=False,
        method="adam",
        **monitor,
    )
    return solution, adam_steps


# ----------------------------------------------------------------------------------------------------------
# classical solves (sciml.solvers.pde_baselines, on the same PDEProblem)


def run_classical(case: Case, n: int, quick: bool) -> list[dict[str, Any]]:
    """Second-order FD and Chebyshev collocation with n points per dimension (linear problems)."""
    rows = []
    problem = make_problem(case)
    axes = _test_axes(case, quick)
    exact_test = _exact_on(case, axes)
    for solve in (finite_difference_solve, chebyshev_solve):
        start = time.perf_counter()
        solution = solve(problem, n)
        wall = time.perf_counter() - start
        if solution.method == "fd2":  # second order: measured at its nodes (no interpolation error added)
            exact_nodes = _exact_on(case, solution.nodes)
            err, where = _rel(solution.values, exact_nodes), "grid nodes"
        else:
            err, where = _rel(solution.on_grid(axes), exact_test), "test grid"
        rows.append(
            {
                "problem": case.name,
                "method": solution.method,
                "grid": [n] * case.dims,
                "rel_l2": err,
                "error_on": where,
                "wall_s": wall,
                "reached_target": bool(err <= TARGET),
            }
        )
        logger.info(f"{case.name:>30} {solution.method:>10} {err:>10.2e} {'-':>16} {wall:>7.1f}")
    return rows


# ----------------------------------------------------------------------------------------------------------
# timing and memory


def _timing_problem(n: int) -> GPSolver:
    case = next(c for c in CASES if c.name == "poisson2d_sin100x_sin100y")  # the paper's 400 x 400 case
    return GPSolver(make_problem(case), n, kernel="stm", n_components=30, freq_scale=case.freq_scale)


def time_iteration(n: int, repeats: int, threads: list[int]) -> list[dict[str, Any]]:
    """Median seconds of one Adam iteration (loss, backward, step) at n x n points, per thread count."""
    rows = []
    before = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            solver = _timing_problem(n)
            optimizer = torch.optim.Adam(solver.parameters(), lr=0.01)

            def step(solver: GPSolver = solver, optimizer: torch.optim.Optimizer = optimizer) -> None:
                optimizer.zero_grad(set_to_none=True)
                solver.loss().backward()
                optimizer.step()

            step()  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            sec = statistics.median(times)
            rows.append(
                {
                    "grid": [n, n],
                    "threads": t,
                    "seconds_per_iteration": sec,
                    "all_seconds": times,
                    "ratio_to_jax_reference": sec / JAX_SECONDS_PER_ITER,
                }
            )
            logger.info(
                f"one Adam iteration at {n}x{n}, {t} thread(s): {sec:.3f} s "
                f"({sec / JAX_SECONDS_PER_ITER:.2f} x the JAX reference 1.1 s)"
            )
    finally:
        torch.set_num_threads(before)
    return rows


def memory_scaling(sizes: list[int]) -> list[dict[str, Any]]:
    """Peak memory of building the solver and one Adam iteration on n x n grids (one thread)."""
    rows = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n in sizes:
            with PeakMemory() as mem:
                solver = _timing_problem(n)
                optimizer = torch.optim.Adam(solver.parameters(), lr=0.01)
                optimizer.zero_grad()
                solver.loss().backward()
                optimizer.step()
                del solver, optimizer
            total = n * n
            rows.append(
                {
                    "grid": [n, n],
                    "N": total,
                    "peak_rss_increase_mb": mem.increase_mb,
                    "measured_with": mem.method,
                    "sum_Nd_squared": 2 * n * n,
                    "float64_mb_of_sum_Nd_squared": 2 * n * n * 8 / 2**20,
                    "dense_NxN_covariance_gb": total * total * 8 / 2**30,
                }
            )
            logger.info(
                f"memory {n}x{n}: peak RSS increase {mem.increase_mb:.0f} MiB; "
                f"a dense N x N covariance would need {rows[-1]['dense_NxN_covariance_gb']:.3g} GiB"
            )
    finally:
        torch.set_num_threads(before)
    return rows


# ----------------------------------------------------------------------------------------------------------
# plots


def _plot(out_dir: Path, suffix: str, rows: list[dict], solutions: dict, quick: bool) -> list[str]:
    """The convergence and the solution figures (PNG); returns their paths."""
    convergence = _plot_convergence(out_dir / f"gp_hm{suffix}_convergence.png", rows)
    solution = _plot_solutions(out_dir / f"gp_hm{suffix}_solution.png", solutions, quick)
    return [str(convergence), str(solution)]


def _plot_convergence(path: Path, rows: list[dict]) -> Path:
    """Monitored test error against iteration, one panel per problem, one curve per GP method."""
    gp_rows = [r for r in rows if r["method"] in METHODS]
    problems = list(dict.fromkeys(r["problem"] for r in gp_rows))
    cols = 4
    n_rows = math.ceil(len(problems) / cols)
    fig = Figure(figsize=(16, 3.2 * n_rows))
    axes = np.ravel(fig.subplots(n_rows, cols))
    for ax, name in zip(axes, problems, strict=False):
        for r in gp_rows:
            if r["problem"] != name:
                continue
            hist = [h for h in r["history"] if "test_rel_l2" in h]
            ax.semilogy(
                [h["iteration"] for h in hist],
                [h["test_rel_l2"] for h in hist],
                ".-",
                ms=3,
                label=r["method"],
            )
        ax.axhline(TARGET, color="gray", lw=0.6, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration (Adam, then L-BFGS; exact: solves)", fontsize=8)
    for ax in axes[len(problems) :]:
        ax.axis("off")
    axes[0].set_ylabel("test rel. L2 (monitoring only)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _plot_solutions(path: Path, solutions: dict, quick: bool) -> Path:
    """Solution and error of one 1-D and one 2-D problem (GM kernel, exact solve: the defaults)."""
    fig = Figure(figsize=(15, 4))
    axes = fig.subplots(1, 3)
    case1 = next(c for c in CASES if c.name == "poisson1d_sin6x_cos100x")
    sol1 = solutions.get((case1.name, "exact-gm"))
    if sol1 is not None:
        x = torch.linspace(*case1.box[0], 4001, dtype=torch.float64)
        pred, ex = sol1.on_grid([x]), case1.exact(x[:, None])
        axes[0].plot(x, ex, "k-", lw=0.6, label="exact")
        axes[0].plot(x, pred, "r--", lw=0.6, label="GP-HM (GM, exact)")
        axes[0].set_xlim(0, 1.0)
        axes[0].set_title(f"{case1.name} (zoom on [0, 1])")
        axes[0].legend(fontsize=8)
        axes[1].semilogy(x, (pred - ex).abs() + 1e-16, lw=0.5)
        axes[1].set_title("pointwise |error|")
    case2 = next(c for c in CASES if c.name == "poisson2d_sin6x_cos20x")
    sol2 = solutions.get((case2.name, "exact-gm"))
    if sol2 is not None:
        ax2 = [torch.linspace(lo, hi, 201, dtype=torch.float64) for lo, hi in case2.box]
        err = (sol2.on_grid(ax2) - _exact_on(case2, ax2)).abs()
        im = axes[2].imshow(
            err.T.numpy(), origin="lower", extent=[*case2.box[0], *case2.box[1]], cmap="magma"
        )
        fig.colorbar(im, ax=axes[2])
        axes[2].set_title(f"{case2.name}: |error| (GM, exact)")
    fig.suptitle("GP-HM solutions" + (" (quick mode: coarse grids, few steps)" if quick else ""))
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, write JSON + PNGs; returns the result dict."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, cases, methods = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("sciml.solvers.gp_fit").setLevel(logging.WARNING)
    rows, solutions = run_problems(cases, methods, args)
    quick = args.quick
    timing = time_iteration(400, 2 if quick else 5, [1] if quick else sorted({1, torch.get_num_threads()}))
    memory = memory_scaling(_memory_sizes(args))
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if quick else ""
    plots = _plot(out_dir, suffix, rows, solutions, quick)
    result = _record(argv, args, cases, rows, timing, memory, plots)
    path = write_record(out_dir / f"gp_hm{suffix}.json", result)
    reached = [(r["problem"], r["method"]) for r in result["reached_target"]]
    logger.info(f"reached rel L2 <= {TARGET:g}: {reached if reached else 'none'}")
    logger.info(f"wrote {path} and {', '.join(plots)}")
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="coarse grids and a few steps (< 1 min)")
    parser.add_argument("--out", help="output directory (default solvers/results[/quick])")
    parser.add_argument("--iterations", type=int, default=None, help="max Adam steps per run (default 3000)")
    parser.add_argument(
        "--lbfgs", type=int, default=None, help="max L-BFGS steps per run (default 20000: time-bound)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="wall-clock budget per GP run (default 25)"
    )
    parser.add_argument("--adam-fraction", type=float, default=0.5, help="share of --seconds for Adam")
    parser.add_argument(
        "--exact-seconds", type=float, default=None, help="budget per exact run (default 10; quick 5)"
    )
    parser.add_argument("--jitter", type=float, default=1e-6)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for the GP runs (default 1: shared CPUs)"
    )
    parser.add_argument("--log-every", type=int, default=None)
    parser.add_argument("--problems", default=None, help="comma-separated subset of problem names")
    parser.add_argument("--methods", default=",".join(METHODS), help="subset of " + ",".join(METHODS))
    parser.add_argument("--memory-sizes", default=None, help="n for the n x n memory probes")
    return parser


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[Case], list[str]]:
    """The options (budgets defaulted by ``--quick``), the selected cases and methods."""
    parser = _parser()
    args = parser.parse_args(argv)
    quick = args.quick
    args.out = output_path(args.out, "", quick)
    if args.iterations is None:
        args.iterations = 20 if quick else 3000
    if args.lbfgs is None:
        args.lbfgs = 10 if quick else 20000
    if args.seconds is None:
        args.seconds = 5.0 if quick else 25.0
    if args.exact_seconds is None:
        args.exact_seconds = 5.0 if quick else 10.0
    if args.threads is None:
        args.threads = 1
    cases = CASES
    if args.problems:
        wanted = args.problems.split(",")
        unknown = set(wanted) - {c.name for c in CASES}
        if unknown:
            parser.error(f"unknown problems {sorted(unknown)}; choose from {[c.name for c in CASES]}")
        cases = [c for c in CASES if c.name in wanted]
    methods = [m for m in args.methods.split(",") if m]
    if set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(set(methods) - set(METHODS))}; choose from {list(METHODS)}")
    return args, cases, methods


def run_problems(
    cases: list[Case], methods: list[str], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Any]]:
    """Every GP method on every case (and the classical solves of the Poisson cases) with ``args.threads``
    torch threads; returns the rows and the GP solutions by (case, method)."""
    logger.info(f"{'problem':>30} {'method':>10} {'rel L2':>10} {'steps':>16} {'wall s':>7}")
    rows: list[dict[str, Any]] = []
    solutions: dict[tuple[str, str], Any] = {}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        for case in cases:
            n = (64 if case.dims == 1 else 24) if args.quick else case.n
            for method in methods:
                row, sol = run_gp(case, method, n, args)
                rows.append(row)
                solutions[(case.name, method)] = sol
            if case.kind == "poisson":
                rows.extend(run_classical(case, n, args.quick))
    finally:
        torch.set_num_threads(threads_before)
    return rows, solutions


def _memory_sizes(args: argparse.Namespace) -> list[int]:
    if args.memory_sizes:
        return [int(s) for s in args.memory_sizes.split(",")]
    return [100, 200] if args.quick else [250, 500, 1000]


def _record(
    argv: list[str],
    args: argparse.Namespace,
    cases: list[Case],
    rows: list[dict[str, Any]],
    timing: list[dict[str, Any]],
    memory: list[dict[str, Any]],
    plots: list[str],
) -> dict[str, Any]:
    """The JSON record of a run."""
    reached = sorted({(r["problem"], r["method"]) for r in rows if r["reached_target"]})
    return {
        "benchmark": "gp_hm_kronecker_gp_pde_solver",
        "paper": "Fang et al., Solving High Frequency and Multi-Scale PDEs with Gaussian Processes "
        "(ICLR 2024)",
        "command": " ".join(["python solvers/gp_hm.py", *argv]),
        **environment(),
        "cpu_count": os.cpu_count(),
        "settings": {
            "exact_seconds_per_run": args.exact_seconds,
            "paper_adam_iterations": PAPER_ADAM_ITERATIONS,
            "adam_iterations_max": args.iterations,
            "adam_lr": 0.01,
            "lbfgs_iterations_max": args.lbfgs,
            "seconds_per_run": args.seconds,
            "adam_fraction_of_seconds": args.adam_fraction,
            "threads": args.threads,
            "jitter": args.jitter,
            "n_components": 30,
            "selection": "best training objective (test error monitored only)",
            "memory_measure": "peak resident memory increase: VmHWM (reset via /proc/self/clear_refs) - "
            "VmRSS before, in this process; ru_maxrss increase where /proc is unavailable",
        },
        "target_rel_l2": TARGET,
        "problems": [c.name for c in cases],
        "rows": rows,
        "reached_target": [{"problem": p, "method": m} for p, m in reached],
        "timing_400x400": timing,
        "memory_scaling": memory,
        "plots": plots,
    }


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md tables: error, time and memory per problem and method; 400^2 timing."""
    rows = [
        [
            r["problem"],
            r["method"],
            "x".join(str(g) for g in r["grid"]),
            sci(r["rel_l2"]) + (" ✓" if r["reached_target"] else ""),
            _steps_text(r),
            num(r["wall_s"], 1),
            num(r.get("peak_rss_increase_mb"), 0),
        ]
        for r in record["rows"]
    ]
    header = ["problem", "method", "grid", "rel L2", "steps", "wall s", "peak RSS +MB"]
    timing = [
        [
            "x".join(map(str, t["grid"])),
            str(t["threads"]),
            num(t["seconds_per_iteration"], 3),
            num(t["ratio_to_jax_reference"]),
        ]
        for t in record["timing_400x400"]
    ]
    memory = [
        [
            "x".join(map(str, m["grid"])),
            num(m["peak_rss_increase_mb"], 0),
            num(m.get("dense_NxN_covariance_gb"), 1),
        ]
        for m in record["memory_scaling"]
    ]
    return "\n".join(
        [
            provenance(record),
            "",
            para(_budget_text(record)),
            "",
            table(header, rows),
            "",
            "One Adam iteration at 400x400 points (the paper's JAX reference: 1.1 s):",
            "",
            table(["grid", "threads", "s / iteration", "/ JAX reference"], timing),
            "",
            f"Memory ({memory_method(record)}):",
            "",
            table(["grid", "peak RSS +MB", "a dense N x N covariance would need GB"], memory),
        ]
    )


def _budget_text(record: dict) -> str:
    """The run's budget and which problems reached the target, in one sentence."""
    reached = ", ".join(f"{r['problem']} ({r['method']})" for r in record["reached_target"]) or "none"
    s = record["settings"]
    exact = s.get("exact_seconds_per_run")
    head = (
        f"exact-*: the new default fit(method='exact'), frequencies from the data spectrum, at most "
        f"{exact:g} s per run (steps: tau rounds / Gauss-Newton steps / CG iterations, '(cap)' when CG hit "
        "its limit). "
        if exact is not None
        else ""
    )
    paper = s.get("paper_adam_iterations", "1e5 - 3e6")
    return (
        f"{head}adam-*: the paper's protocol with its freq_scale, {s['seconds_per_run']:g} s per run (Adam "
        f"up to {s['adam_iterations_max']} steps, then L-BFGS up to {s['lbfgs_iterations_max']}; the paper "
        f"ran {paper} Adam steps). {s['threads']} thread(s). Target rel L2 <= {record['target_rel_l2']:g} "
        "(✓); reached by: "
        f"{reached}."
    )


def memory_method(record: dict) -> str:
    """How the record's memory figures were measured."""
    return (
        record["memory_scaling"][0].get("measured_with", "peak RSS increase")
        if record["memory_scaling"]
        else "-"
    )


if __name__ == "__main__":
    sys.exit(run_script(main))
