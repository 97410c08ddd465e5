"""Spectral-Refiner fine-tuning of a trained st_fno: test error and H^-1 residual before and after.

Trains the spatiotemporal FNO of ``configs/st_fno_ns.yaml`` with the shared Trainer (or loads a trained
run, ``--run-dir``), then fine-tunes its re-opened last spectral layer on each test window separately
(:func:`sciml.finetune.spectral_refiner.refine` with its defaults: Adam, weight and bias lr 1e-3 on a cosine
decay, 100 iterations, float32 here, minimizing the :math:`H^{-1}` one-step Navier-Stokes defect of the last
input frame and the predicted frames; no ground truth is used; ``--paper-baseline`` also runs the paper's
Adam settings, weight lr 1e-4, bias lr 0.2, 50 iterations, on the same windows) and measures, per window,
the relative L2 error against the ground truth over the predicted frames and the residual estimator, before
and after. The estimator of the ground truth itself is reported
too (its floor: the solver's own error at the data resolution). The solver is the data recipe's (viscosity,
forcing, stepper) at the stored resolution with ``--solver-dt``.

Run ``python solvers/bench_spectral_refiner.py`` (``--quick``: a small model trained one epoch on a quarter
of the trajectories, two windows, three iterations; checks the pipeline, compares nothing). Writes
``spectral_refiner.json`` (temp file + rename, with the machine, torch version and date) and
``spectral_refiner.png`` into ``--out`` (default ``solvers/results``; ``--quick``: ``solvers/results/quick``).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import num, para, provenance, sci, table
from sciml.datasets.generate import make_solver as recipe_solver
from sciml.datasets.recipes import Recipe
from sciml.finetune.spectral_refiner import ALPHA, refine, trajectory_residual
from sciml.solvers.navier_stokes import NavierStokes2D
from sciml.train import restore_run, run
from sciml.training.config import RunConfig, load_config
from sciml.training.data import DataBundle

logger = logging.getLogger("bench_spectral_refiner")
ROOT = Path(__file__).resolve().parents[1]
QUICK_MODEL = ["model.width=8", "model.n_layers=2", "model.modes=8", "model.modes_t=2", "data.train=0.25"]


def make_solver(config: RunConfig, data: DataBundle, dt: float) -> NavierStokes2D:
    """The data's Navier-Stokes problem at the stored resolution, stepped with ``dt``."""
    grid = int(data.metadata.grid_shape[0])
    if config.data.recipe is None:
        logger.warning("no recipe: assuming FNO forcing, no drag, heun-cn, viscosity from the file")
        return NavierStokes2D(grid, float(data.metadata.viscosity), forcing="fno", dt=dt, stepper="heun-cn")
    recipe_path = Path(config.data.recipe)
    recipe = Recipe.from_yaml(recipe_path if recipe_path.is_absolute() else ROOT / recipe_path)
    return recipe_solver(recipe, resolution=grid, dt=dt)


def test_windows(data: DataBundle, count: int | None) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``count`` test windows spread evenly over the test split (all when ``None``): x, y, their indices."""
    split = data.test if data.test is not None else data.valid
    n = len(split) if count is None else max(1, min(count, len(split)))
    indices = [i * len(split) // n for i in range(n)]
    items = [split[i] for i in indices]
    return torch.stack([it["x"] for it in items]), torch.stack([it["y"] for it in items]), indices


def relative_l2(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``||pred - truth|| / ||truth||`` over all predicted frames of each window."""
    dims = tuple(range(1, truth.ndim))
    return torch.linalg.vector_norm(pred - truth, dim=dims) / torch.linalg.vector_norm(truth, dim=dims)


def refine_windows(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    residual_truth: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    settings: dict,
    args: argparse.Namespace,
) -> dict:
    """Refine every window (each its own layer, ``args.batch`` at a time); print and return the table."""
    results = [
        refine(model, x[i : i + args.batch], solver, frame_dt, method=args.method, **settings)
        for i in range(0, x.shape[0], args.batch)
    ]
    before = torch.cat([r.outputs_before for r in results])
    after = torch.cat([r.outputs for r in results])
    history = torch.cat([r.history for r in results], dim=1).cpu()
    l2_before, l2_after = relative_l2(before, y).cpu(), relative_l2(after, y).cpu()
    res_before = torch.cat([r.residual_before for r in results]).cpu()
    res_after = torch.cat([r.residual_after for r in results]).cpu()
    best = torch.cat([r.best_iteration for r in results]).cpu()
    rows = [
        {
            "window": i,
            "rel_l2_before": float(l2_before[i]),
            "rel_l2_after": float(l2_after[i]),
            "residual_before": float(res_before[i]),
            "residual_after": float(res_after[i]),
            "residual_truth": float(residual_truth[i]),
            "best_iteration": int(best[i]),
        }
        for i in range(x.shape[0])
    ]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k not in ("window", "best_iteration")}
    seconds = sum(r.seconds for r in results)
    logger.info("settings: %s", settings)
    logger.info(
        "%6s %12s %12s %12s %12s %12s %5s", "window", "L2 before", "L2 after", "res before", "res after",
        "res truth", "best",
    )  # fmt: skip
    for r in [*rows, {"window": "mean", **mean, "best_iteration": ""}]:
        logger.info(
            "%6s %12.4e %12.4e %12.4e %12.4e %12.4e %5s", r["window"], r["rel_l2_before"], r["rel_l2_after"],
            r["residual_before"], r["residual_after"], r["residual_truth"], r["best_iteration"],
        )  # fmt: skip
    improved = sum(r["rel_l2_after"] < r["rel_l2_before"] for r in rows)
    ratios = {
        "rel_l2_after_over_before": mean["rel_l2_after"] / mean["rel_l2_before"],
        "residual_after_over_before": mean["residual_after"] / mean["residual_before"],
    }
    logger.info(
        "error lowered on %d/%d windows; mean rel L2 x%.3f, mean residual x%.3f; refine %.1f s",
        improved,
        len(rows),
        ratios["rel_l2_after_over_before"],
        ratios["residual_after_over_before"],
        seconds,
    )
    if not all(math.isfinite(v) for v in mean.values()):
        logger.warning("non-finite values in the result")
    return {
        "windows_improved": improved,
        "mean": mean,
        "ratios": ratios,
        "residual_history_mean": history.mean(dim=1).tolist(),
        "refine_seconds": seconds,
        "rows": rows,
    }


def plot(path: Path, rows: list[dict], history: list[float]) -> None:
    """Per-window errors and residuals before/after, and the mean residual per iteration."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4))
    axes = fig.subplots(1, 3)
    index = torch.arange(len(rows)).numpy()
    for ax, key, title in (
        (axes[0], "rel_l2", "relative L2 test error"),
        (axes[1], "residual", "H^-1 residual (no ground truth)"),
    ):
        ax.bar(index - 0.2, [r[f"{key}_before"] for r in rows], 0.4, label="trained")
        ax.bar(index + 0.2, [r[f"{key}_after"] for r in rows], 0.4, label="refined")
        ax.set_yscale("log")
        ax.set_xlabel("test window")
        ax.set_title(title)
        ax.legend()
    axes[1].plot(index, [r["residual_truth"] for r in rows], "k_", markersize=12, label="ground truth")
    axes[1].legend(loc="lower left", bbox_to_anchor=(0.0, 0.15))
    axes[2].semilogy(history)
    axes[2].set_xlabel("Adam iteration")
    axes[2].set_title("mean H^-1 residual of the iterates")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    """Train (or load) an st_fno, refine every test window, print the table, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, 1 epoch on 1/4 of the data, 2 windows, 3 iterations"
    )
    parser.add_argument("--out", help="folder of the JSON and PNG (default solvers/results[/quick])")
    parser.add_argument("--run-dir", help="a trained st_fno run directory (default: train one here)")
    parser.add_argument("--config", default="configs/st_fno_ns.yaml")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    parser.add_argument("--samples", type=int, help="test windows to refine (default: all)")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--lr-weight", type=float, default=1e-3)
    parser.add_argument("--lr-bias", type=float, default=1e-3)
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    parser.add_argument(
        "--paper-baseline",
        action="store_true",
        help="also refine with the paper's Adam settings (weight lr 1e-4, bias lr 0.2, 50 iterations)",
    )
    parser.add_argument("--solver-dt", type=float, default=0.05)
    parser.add_argument("--method", default="flow", choices=["flow", "central"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=8, help="windows refined at once (each its own layer)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    out = output_path(args.out, "", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.quick:
        args.samples = args.samples or 2
        args.iterations = 3
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run_dir:
            run_dir, trained_here = Path(args.run_dir), False
        else:
            overrides = ["train.progress=false", "eval.plots=false", f"train.device={device.type}"]
            if args.epochs is not None or args.quick:
                overrides.append(f"train.epochs={1 if args.quick else args.epochs}")
            if args.quick:
                overrides += QUICK_MODEL
            config = load_config(ROOT / args.config, overrides)
            run_dir, trained_here = Path(tmp) / config.name, True
            run(config, run_dir=run_dir, base_dir=ROOT)
        train_seconds = time.perf_counter() - start
        restored = restore_run(run_dir, "best", base_dir=ROOT)
        model, config, data = restored.model, restored.config, restored.data
    frame_dt = data.metadata.dt
    solver = make_solver(config, data, args.solver_dt)
    x, y, indices = test_windows(data, args.samples)
    x, y = x.to(device, dtype), y.to(device, dtype)
    truth_frames = torch.cat([x[:, -1:], y], dim=1)
    residual_truth = trajectory_residual(truth_frames, solver, frame_dt, args.method).cpu()
    settings = {
        "iterations": args.iterations,
        "lr_weight": args.lr_weight,
        "lr_bias": args.lr_bias,
        "schedule": args.schedule,
    }
    main_block = refine_windows(model, x, y, residual_truth, solver, frame_dt, settings, args)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--out" in given:  # where the record goes does not change what it measures
        del given[given.index("--out") : given.index("--out") + 2]
    command = " ".join(["python solvers/bench_spectral_refiner.py", *given])
    result = {
        "benchmark": "spectral_refiner",
        "command": command,
        **environment(device),
        "run_dir": None if trained_here else str(run_dir),
        "config": args.config if trained_here else str(run_dir / "config.yaml"),
        "model": config.model,
        "train_epochs": config.train.epochs,
        "train_seconds": train_seconds if trained_here else None,
        "settings": {
            **settings,
            "method": args.method,
            "alpha": ALPHA,
            "dtype": args.dtype,
            "frame_dt": frame_dt,
            "solver": {"dt": solver.dt, "stepper": solver.stepper, "resolution": solver.resolution},
            "modes": "full grid",
            "per_sample": True,
        },
        "n_windows": x.shape[0],
        "test_window_indices": indices,
        **main_block,
    }
    if args.paper_baseline:
        paper = {"iterations": 50, "lr_weight": 1e-4, "lr_bias": 0.2, "schedule": "constant"}
        result["paper_settings"] = {
            "settings": paper,
            **refine_windows(model, x, y, residual_truth, solver, frame_dt, paper, args),
        }
    write_record(out / "spectral_refiner.json", result)
    plot(out / "spectral_refiner.png", result["rows"], result["residual_history_mean"])
    logger.info("wrote %s and %s", out / "spectral_refiner.json", out / "spectral_refiner.png")
    return result


def markdown(record: dict) -> str:
    """The record as a BENCHMARKS.md table: test error and NS residual before/after refinement."""

    def line(label: str, part: dict) -> list[str]:
        m, s = part["mean"], part["settings"]
        return [
            label,
            f"{s['iterations']}, lr {s['lr_weight']:g}/{s['lr_bias']:g}, {s['schedule']}",
            f"{sci(m['rel_l2_before'], 2)} -> {sci(m['rel_l2_after'], 2)}",
            num(part["ratios"]["rel_l2_after_over_before"]),
            f"{sci(m['residual_before'], 2)} -> {sci(m['residual_after'], 2)}",
            num(part["ratios"]["residual_after_over_before"], 3),
            f"{part['windows_improved']}/{record['n_windows']}",
            num(part.get("refine_seconds"), 0),
        ]

    rows = [line("ours", record)]
    if record.get("paper_settings"):
        rows.append(line("paper settings", record["paper_settings"]))
    model, sv = record["model"], record["settings"]["solver"]
    text = (
        f"{record['n_windows']} test windows of a {record['train_epochs']}-epoch `{model['name']}` run "
        f"(modes {model['modes']}, width {model['width']}); residual: H^-1 norm of the Navier-Stokes defect "
        f"(solver {sv['resolution']}², dt {sv['dt']:g}, {sv['stepper']}); the true frames' residual is "
        f"{sci(record['mean']['residual_truth'], 1)}."
    )
    header = [
        "settings",
        "iterations, lr w/b, schedule",
        "rel L2 before -> after",
        "after/before",
        "residual before -> after",
        "after/before",
        "windows improved",
        "seconds",
    ]
    parts = [provenance(record), "", para(text), "", table(header, rows)]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(run_script(main))
