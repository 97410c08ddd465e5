"""AdaHessian and Sophia on the GP-HM objective (issue 19): error reached per second against the paper's Adam
(+ L-BFGS) protocol and against the exact solve.

The GP-HM solver (:class:`sciml.solvers.gp.GPSolver`, Fang et al., ICLR 2024) maximises a log joint
``L(eta, tau, kernel)`` over the whitened solution ``eta``, the two precisions ``tau`` and the kernel
parameters; the paper runs Adam on all of them (1e5 - 3e6 steps). Its objective is badly conditioned (the
whitened solution's curvature spans the prior's spectrum times ``tau``), exactly the case AdaHessian (Yao et
al., AAAI 2021) and Sophia (Liu et al., ICLR 2024) claim to help. On problems of ``solvers/gp_hm.py`` (the
same :class:`PDEProblem` objects, the paper's ``freq_scale``, GM kernel with 30 components, collocation on all
points) each arm gets the same wall-time budget on one thread:

* ``adam``: Adam on every parameter (the paper's phase 1), 3 learning rates around the paper's 0.01;
* ``adam+lbfgs``: the paper's protocol as ``solvers/gp_hm.py`` runs it (Adam at 0.01 for half the budget,
  then L-BFGS on the solution with the kernel frozen and closed-form tau updates);
* ``adahessian``, ``sophia`` (:mod:`sciml.training.second_order`, the papers' defaults otherwise): on every
  parameter, 3 learning rates each, the Hutchinson probes seeded (2 seeds);
* ``exact``: ``fit(method="exact")``, the new default (solution solved for exactly at the initial kernel),
  for reference.

The test error (relative L2 on a grid twice as fine, :func:`sciml.solvers.gp_fit.rel_l2_on_grid`) of the
current iterate is recorded every few steps, with the clock paused; after every step of the first three arms
``log tau`` is clamped at ``log 1e12`` (``GPSolver.fit``'s ``max_tau``): the objective is unbounded along
``tau_b`` once the boundary values are fitted, and a Newton-like step on that direction (curvature ~1e-17)
sends it to ``+inf`` in one step; a run that breaks the kernel (Cholesky
failure) or diverges is recorded as failed at that time. The arms run one after another, their order rotated
from seed to seed so that the machine's load falls on all alike.

Run ``OMP_NUM_THREADS=1 python solvers/bench_optimizers_gp.py`` (about 20 min); writes
``solvers/results/optimizers_gp.json`` and ``optimizers_gp.png``; ``--quick``: a 1-D problem on 40 points, one
learning rate per arm, 6 steps each (seconds; writes to solvers/results/quick/).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import para, provenance, sci, table
from sciml.errors import SolverError
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_fit import monitor_axes, rel_l2_on_grid
from sciml.training.second_order import AdaHessian, Sophia

logger = logging.getLogger("bench_optimizers_gp")
HERE = Path(__file__).resolve().parent


def _load_gp_hm() -> Any:
    """The problems of ``solvers/gp_hm.py`` (a script, loaded from its file)."""
    spec = importlib.util.spec_from_file_location("gp_hm_problems", HERE / "gp_hm.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


GP_HM = _load_gp_hm()
FULL = {
    "cases": {"poisson1d_sin100x": 400, "allen_cahn1d_sin6x_cos100x": 400, "poisson2d_sin6x_cos20x": 100},
    "budget": {1: 15.0, 2: 25.0},
    "seeds": [0, 1],
    "learning_rates": {
        "adam": [3e-3, 1e-2, 3e-2],
        "adahessian": [3e-2, 1e-1, 3e-1],
        "sophia": [3e-3, 1e-2, 3e-2],
    },
    "monitor_every": {1: 10, 2: 5},
}
QUICK = {
    "cases": {"poisson1d_sin100x": 40},
    "budget": {1: 60.0},
    "max_steps": 6,  # the quick runs stop on steps, not on the (loaded) clock
    "seeds": [0],
    "learning_rates": {"adam": [1e-2], "adahessian": [3e-2], "sophia": [3e-3]},
    "monitor_every": {1: 5},
}
PAPER_LR = 1e-2  # Adam's rate in the paper and in solvers/gp_hm.py
MAX_LOG_TAU = math.log(1e12)  # GPSolver.fit's default max_tau


def build_solver(case: Any, n: int) -> GPSolver:
    """The paper's GP-HM model of a case: GM kernel, 30 components, its ``freq_scale``, all points."""
    return GPSolver(
        GP_HM.make_problem(case),
        n,
        kernel="gm",
        n_components=30,
        freq_scale=case.freq_scale,
        boundary_weight=case.boundary_weight,
        residual_on_boundary=True,
    )


class Clock:
    """Seconds of work, with the monitoring left out (``pause`` around it)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._since = time.perf_counter()

    def pause(self) -> None:
        self.spent += time.perf_counter() - self._since

    def resume(self) -> None:
        self._since = time.perf_counter()

    def now(self) -> float:
        return self.spent + time.perf_counter() - self._since


def first_order_arm(
    case: Any, n: int, arm: str, lr: float, seed: int, budget: float, every: int, max_steps: int = 10**9
) -> dict:
    """Adam, AdaHessian or Sophia on every parameter of the GP-HM objective for ``budget`` seconds (or
    ``max_steps``)."""
    torch.manual_seed(seed)
    solver = build_solver(case, n)
    params = [p for p in solver.parameters() if p.requires_grad]
    if arm == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr)
    elif arm == "adahessian":
        optimizer = AdaHessian(params, lr=lr, seed=seed)
    else:
        optimizer = Sophia(params, lr=lr, seed=seed)
    axes = monitor_axes(solver.grid, [min(2 * n + 1, 2001)] * case.dims)
    curve: list[list[float]] = []
    failure = None
    steps = 0
    clock = Clock()
    while clock.now() < budget and steps < max_steps:
        try:
            optimizer.zero_grad(set_to_none=True)
            loss = solver.loss()
            if not math.isfinite(float(loss.detach())):
                raise SolverError(f"the loss became non-finite at step {steps}")
            if isinstance(optimizer, AdaHessian | Sophia) and optimizer.hessian_due():
                optimizer.backward_with_hessian(loss)
            else:
                loss.backward()
            optimizer.step()
            with torch.no_grad():  # the fit's cap on the precisions (GPSolver.fit's max_tau)
                for log_tau in (solver.log_tau_b, solver.log_tau_r):
                    log_tau.clamp_(max=MAX_LOG_TAU)
        except SolverError as exc:  # e.g. a kernel step that breaks the Cholesky factorization
            failure = {"step": steps, "seconds": clock.now(), "reason": str(exc)[:200]}
            break
        steps += 1
        if steps % every == 0:
            clock.pause()
            curve.append(
                [clock.spent, rel_l2_on_grid(solver.solution(), case.exact, axes), float(loss.detach())]
            )
            clock.resume()
    clock.pause()
    if failure is None:
        curve.append([clock.spent, rel_l2_on_grid(solver.solution(), case.exact, axes), float(loss.detach())])
    return _arm_record(arm, lr, seed, steps, curve, failure)


def paper_protocol_arm(
    case: Any, n: int, seed: int, budget: float, every: int, max_steps: int = 10**9
) -> dict:
    """Adam (lr 0.01) for half the budget, then the L-BFGS refinement (``GPSolver.fit``, as gp_hm.py);
    each phase at most ``max_steps // 2`` steps."""
    torch.manual_seed(seed)
    solver = build_solver(case, n)
    start = time.perf_counter()
    monitor = {"reference": case.exact, "test_sizes": [min(2 * n + 1, 2001)] * case.dims, "log_every": every}

    seconds_at: dict[int, float] = {}  # iteration -> seconds since the start (the fits' monitoring included)

    def until(deadline: float) -> Any:
        def callback(iteration: int, loss: float, s: Any) -> bool:
            now = time.perf_counter()
            seconds_at[iteration] = now - start
            return now > deadline

        return callback

    failure = None
    phase = min(max_steps // 2, 10**7)
    adam_steps = 0
    try:
        solver.fit(
            phase, lr=PAPER_LR, callback=until(start + budget / 2), progress=False, method="adam", **monitor
        )
        adam_steps = solver.iteration
        solver.fit(
            0,
            lbfgs_iterations=phase,
            callback=until(start + budget),
            progress=False,
            method="adam",
            **monitor,
        )
    except SolverError as exc:
        failure = {"step": solver.iteration, "seconds": time.perf_counter() - start, "reason": str(exc)[:200]}
    logged = [h for h in solver.history if "test_rel_l2" in h and h["iteration"] in seconds_at]
    curve = [[seconds_at[h["iteration"]], h["test_rel_l2"], h["loss"]] for h in logged]
    record = _arm_record("adam+lbfgs", PAPER_LR, seed, solver.iteration, curve, failure)
    record["adam_steps"] = adam_steps
    return record


def exact_arm(case: Any, n: int, budget: float) -> dict:
    """``fit(method="exact")`` at the initial kernel (the default path), for reference."""
    solver = build_solver(case, n)
    axes = monitor_axes(solver.grid, [min(2 * n + 1, 2001)] * case.dims)
    start = time.perf_counter()
    solution = solver.fit(max_seconds=budget, progress=False)
    wall = time.perf_counter() - start
    error = rel_l2_on_grid(solution, case.exact, axes)
    return _arm_record("exact", 0.0, 0, solver.iteration, [[wall, error, math.nan]], None)


def _arm_record(arm: str, lr: float, seed: int, steps: int, curve: list, failure: dict | None) -> dict:
    final = curve[-1][1] if curve else math.nan
    logger.info(
        "  %-11s lr %-7g seed %d: %5d steps, rel L2 %.3e%s",
        arm,
        lr,
        seed,
        steps,
        final,
        f" (failed: {failure['reason'][:80]})" if failure else "",
    )
    return {"arm": arm, "lr": lr, "seed": seed, "steps": steps, "curve": curve, "failure": failure}


def bench_case(name: str, n: int, settings: dict) -> dict:
    """Every arm on one problem; the arms' order rotates from seed to seed."""
    case = next(c for c in GP_HM.CASES if c.name == name)
    budget, every = settings["budget"][case.dims], settings["monitor_every"][case.dims]
    max_steps = settings.get("max_steps", 10**9)
    logger.info("%s on %s points per dimension, %.0f s per arm", name, n, budget)
    runs: list[dict] = [exact_arm(case, n, budget)]
    for index, seed in enumerate(settings["seeds"]):
        arms: list[tuple[str, float]] = [("adam+lbfgs", PAPER_LR)]
        for arm, rates in settings["learning_rates"].items():
            arms.extend((arm, lr) for lr in rates)
        shift = index * len(arms) // max(len(settings["seeds"]), 1)
        for arm, lr in arms[shift:] + arms[:shift]:
            if arm == "adam+lbfgs":
                runs.append(paper_protocol_arm(case, n, seed, budget, every, max_steps))
            else:
                runs.append(first_order_arm(case, n, arm, lr, seed, budget, every, max_steps))
    return {"problem": name, "grid": [n] * case.dims, "budget_seconds": budget, "runs": runs}


def _final(run: dict) -> float:
    """The run's last recorded error; a failed run counts as its last error before failing, or inf."""
    return run["curve"][-1][1] if run["curve"] else math.inf


def summarize(case: dict) -> dict[str, dict]:
    """Per arm: the best learning rate (lowest mean final error over seeds), its errors and steps."""
    by_arm: dict[str, dict[float, list[dict]]] = {}
    for run in case["runs"]:
        by_arm.setdefault(run["arm"], {}).setdefault(run["lr"], []).append(run)
    summary = {}
    for arm, rates in by_arm.items():
        means = {lr: statistics.fmean(_final(r) for r in runs) for lr, runs in rates.items()}
        best = min(means, key=lambda lr: means[lr])
        runs = rates[best]
        summary[arm] = {
            "lr": best,
            "rel_l2": means[best],
            "rel_l2_range": [min(_final(r) for r in runs), max(_final(r) for r in runs)],
            "steps": statistics.fmean(r["steps"] for r in runs),
            "failed_rates": sorted(lr for lr, rs in rates.items() if any(r["failure"] for r in rs)),
            "every_rate": {str(lr): m for lr, m in means.items()},
        }
    return summary


ARM_ORDER = ("exact", "adam+lbfgs", "adam", "adahessian", "sophia")


def markdown(record: dict) -> str:
    """The tables of BENCHMARKS.md's block."""
    lines = [provenance(record, "optimizers_gp.json"), ""]
    lines.append(
        para(
            "GP-HM objective (GM kernel, 30 components, the paper's freq_scale, collocation on all points), "
            "each arm the same wall-time budget on one thread; test rel L2 of the current iterate at the "
            f"end of the budget, mean over seeds {record['seeds']} (min-max) at the best learning rate of "
            "each arm; "
            "`exact` is the default path (one exact solve at the initial kernel), for reference."
        )
    )
    for case in record["cases"]:
        summary = summarize(case)
        lines += [
            "",
            f"**{case['problem']}**, grid {'x'.join(map(str, case['grid']))}, "
            f"{case['budget_seconds']:g} s per arm",
            "",
        ]
        rows = []
        for arm in ARM_ORDER:
            if arm not in summary:
                continue
            s = summary[arm]
            low, high = s["rel_l2_range"]
            spread = "" if low == high else f" ({sci(low, 2)}-{sci(high, 2)})"
            rates = (
                ", ".join(f"{lr}: {sci(v, 2)}" for lr, v in s["every_rate"].items())
                if arm
                not in (
                    "exact",
                    "adam+lbfgs",
                )
                else "-"
            )
            failed = ", ".join(map(str, s["failed_rates"])) or "-"
            lr = "-" if arm == "exact" else f"{s['lr']:g}"
            rows.append([arm, lr, f"**{sci(s['rel_l2'], 2)}**{spread}", f"{s['steps']:.0f}", rates, failed])
        lines.append(
            table(
                ["arm", "best lr", "test rel L2 at the budget", "steps", "every lr (mean)", "failed at lr"],
                rows,
            )
        )
    return "\n".join(lines)


def plot(record: dict, path: str | Path) -> Path:
    """Test rel L2 against seconds, each arm at its best rate, every seed."""
    from matplotlib.figure import Figure

    cases = record["cases"]
    fig = Figure(figsize=(5 * len(cases), 4), layout="constrained")
    colors = {
        "exact": "k",
        "adam+lbfgs": "tab:blue",
        "adam": "tab:cyan",
        "adahessian": "tab:red",
        "sophia": "tab:green",
    }
    for ax, case in zip(fig.subplots(1, len(cases), squeeze=False)[0], cases, strict=True):
        summary = summarize(case)
        for run in case["runs"]:
            if run["arm"] not in summary or run["lr"] != summary[run["arm"]]["lr"] or not run["curve"]:
                continue
            t, e = zip(*[(c[0], c[1]) for c in run["curve"]], strict=True)
            style = "o" if run["arm"] == "exact" else "-"
            label = run["arm"] if run["seed"] == record["seeds"][0] else None
            ax.semilogy(t, e, style, color=colors[run["arm"]], label=label, alpha=0.8)
        ax.set_title(f"{case['problem']} ({'x'.join(map(str, case['grid']))})", fontsize=9)
        ax.set_xlabel("seconds (one thread)")
        ax.set_ylabel("test rel L2")
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    """Run every arm on every problem, write the JSON and the PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 1-D problem on 40 points, 6 steps per arm")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/optimizers_gp.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "optimizers_gp.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    record = {
        "benchmark": "second_order_optimizers_gp_hm",
        "seeds": settings["seeds"],
        "learning_rates": settings["learning_rates"],
        "cases": [bench_case(name, n, settings) for name, n in settings["cases"].items()],
        **environment("cpu"),
        "command": "OMP_NUM_THREADS=1 python solvers/bench_optimizers_gp.py"
        + (" --quick" if args.quick else ""),
    }
    record["wall_seconds"] = time.perf_counter() - started
    plot(record, out_path.with_suffix(".png"))
    write_record(out_path, record)
    logger.info("wrote %s in %.0f s", out_path, record["wall_seconds"])
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
