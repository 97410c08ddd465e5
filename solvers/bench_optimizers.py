"""AdamW vs AdaHessian vs Sophia (issue 19) in the shared Trainer: FNO, T1 and LSM on the quickstart data.

For each family (the configs the family benchmarks use: ``configs/quickstart.yaml``, ``configs/t1_ns.yaml``,
``configs/lsm_ns.yaml``), each of 3 learning rates per optimizer and each seed, the three optimizers train
from the same initial weights in lockstep: one epoch of each in turn (the order rotates every epoch), so the
machine's load falls on all three alike. After every epoch the test relative L2 error (one step, at the
training resolution) is recorded with the step count and the cumulative training seconds. The learning rate
is constant (no schedule), so a run cut at any epoch is a finished constant-rate run of that length:

* **equal steps**: the test error after the last epoch (every optimizer took the same steps);
* **equal wall time**: the error of each optimizer at the last epoch its cumulative training time stays
  within AdamW's total (the second-order runs are slower, so they are compared after fewer steps).

The best learning rate of each optimizer is picked per family and per comparison (mean over seeds). The
per-step cost is timed apart, interleaved (AdamW, AdaHessian, Sophia refreshing its estimate, Sophia not)
on one batch through the Trainer; Sophia's amortized step is ``(refresh + (k - 1) plain) / k``. Every cost
is a ratio to AdamW's step in the same run. ``--quick``: a few steps of a tiny FNO (seconds).

Run ``OMP_NUM_THREADS=1 python solvers/bench_optimizers.py``; writes ``solvers/results/optimizers.json`` and
the learning curves ``optimizers.png`` next to it; ``markdown(record)`` renders it for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from torch.utils.data import Subset

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import interleaved_times
from sciml.train import build_operator
from sciml.training.config import RunConfig, load_config
from sciml.training.data import build_data
from sciml.training.trainer import Trainer, TrainingDivergedError

logger = logging.getLogger("bench_optimizers")
ROOT = Path(__file__).resolve().parents[1]

OPTIMIZERS = ("adamw", "adahessian", "sophia")
FAMILIES = {"fno": "configs/quickstart.yaml", "t1": "configs/t1_ns.yaml", "lsm": "configs/lsm_ns.yaml"}
LEARNING_RATES = {
    "adamw": [1e-3, 3e-3, 1e-2],
    "adahessian": [0.1, 0.3, 0.6],
    "sophia": [3e-3, 1e-2, 3e-2],
}
FULL = {"epochs": {"fno": 20, "t1": 25, "lsm": 4}, "seeds": [0, 1], "timing_rounds": 7}
QUICK = {"epochs": {"fno": 1}, "seeds": [0], "timing_rounds": 2}
QUICK_MODEL = ["model.modes=4", "model.width=8", "model.n_layers=2"]
SOPHIA_K = 10  # the paper's k, the default of optim.sophia.update_period


def family_config(family: str, optimizer: str, lr: float, seed: int, extra: list[str]) -> RunConfig:
    """The family's benchmark config with this optimizer, constant learning rate ``lr`` and seed."""
    overrides = [
        f"optim.name={optimizer}",
        f"optim.lr={lr}",
        "optim.scheduler.name=none",
        "optim.scheduler.interval=epoch",
        f"train.seed={seed}",
        "train.device=cpu",
        "train.amp=none",
        "train.progress=false",
        *extra,
    ]
    return load_config(ROOT / FAMILIES[family], overrides)


def build_trainer(config: RunConfig, data: Any, train_set: Any = None) -> Trainer:
    """A Trainer without run directory whose validation set is the test split (``validate`` = test error)."""
    model = build_operator(config, data)  # seeded by train.seed: the same initial weights for every optimizer
    return Trainer(model, config, train_set or data.train, data.test, run_dir=None, metadata=data.metadata)


def lockstep(family: str, index: int, seed: int, epochs: int, extra: list[str]) -> dict[str, dict]:
    """The three optimizers (learning rate number ``index`` each) trained epoch by epoch in turn."""
    configs = {o: family_config(family, o, LEARNING_RATES[o][index], seed, extra) for o in OPTIMIZERS}
    data = build_data(configs["adamw"].data, base_dir=ROOT)
    trainers = {o: build_trainer(c, data) for o, c in configs.items()}
    curves: dict[str, dict] = {
        o: {
            "lr": LEARNING_RATES[o][index],
            "step": [0],
            "seconds": [0.0],
            "test_l2": [t.validate()["valid_l2"]],
        }
        for o, t in trainers.items()
    }
    diverged: set[str] = set()
    for epoch in range(epochs):
        order = OPTIMIZERS[epoch % 3 :] + OPTIMIZERS[: epoch % 3]
        for name in order:
            trainer, curve = trainers[name], curves[name]
            started = time.perf_counter()
            if name not in diverged:
                try:
                    trainer.train_epoch()
                except TrainingDivergedError:
                    diverged.add(name)
            seconds = time.perf_counter() - started
            trainer.epoch += 1
            error = math.inf if name in diverged else trainer.validate()["valid_l2"]
            curve["step"].append(trainer.step)
            curve["seconds"].append(curve["seconds"][-1] + seconds)
            curve["test_l2"].append(error if math.isfinite(error) else math.inf)  # inf: diverged
    logger.info(
        "%s lr#%d seed %d: %s",
        family,
        index,
        seed,
        "  ".join(f"{o} {c['test_l2'][-1]:.4f} ({c['seconds'][-1]:.1f} s)" for o, c in curves.items()),
    )
    return curves


def step_costs(family: str, rounds: int, extra: list[str]) -> dict[str, float]:
    """Median per-round ratios of one Trainer step to AdamW's, interleaved on one batch."""
    base = family_config(family, "adamw", 1e-3, 0, extra)
    data = build_data(base.data, base_dir=ROOT)
    one_batch = Subset(data.train, range(base.data.batch_size))
    variants = {
        "adamw": [],
        "adahessian": [],
        "sophia_refresh": ["optim.sophia.update_period=1"],
        "sophia_plain": [f"optim.sophia.update_period={10**9}"],  # its first step (the warm-up) refreshes
    }
    trainers = {}
    for name, options in variants.items():
        optimizer = name.split("_")[0]
        config = family_config(family, optimizer, LEARNING_RATES[optimizer][0], 0, [*extra, *options])
        trainers[name] = build_trainer(config, data, one_batch)
    times = interleaved_times({n: t.train_epoch for n, t in trainers.items()}, rounds, warmup=1)
    ratio = {
        n: statistics.median(a / b for a, b in zip(times[n], times["adamw"], strict=True)) for n in times
    }
    return {
        "adamw_step_ms": 1e3 * statistics.median(times["adamw"]),
        "adahessian": ratio["adahessian"],
        "sophia_refresh": ratio["sophia_refresh"],
        "sophia_plain": ratio["sophia_plain"],
        "sophia_amortized": (ratio["sophia_refresh"] + (SOPHIA_K - 1) * ratio["sophia_plain"]) / SOPHIA_K,
    }


def at_time(curve: dict, budget: float) -> tuple[float, int]:
    """The test error and step count of the last epoch whose cumulative training time is within ``budget``."""
    last = max(i for i, s in enumerate(curve["seconds"]) if s <= budget * (1 + 1e-9))
    return curve["test_l2"][last], curve["step"][last]


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Per optimizer: every learning rate's mean test error at equal steps and at equal time, and the best."""
    out: dict[str, dict] = {}
    for name in OPTIMIZERS:
        per_lr = []
        for index, lr in enumerate(LEARNING_RATES[name]):
            group = [r for r in runs if r["lr_index"] == index]
            final = [r["curves"][name]["test_l2"][-1] for r in group]
            timed = [at_time(r["curves"][name], r["curves"]["adamw"]["seconds"][-1]) for r in group]
            per_lr.append(
                {
                    "lr": lr,
                    "equal_steps": final,
                    "equal_time": [e for e, _ in timed],
                    "steps_at_equal_time": [s for _, s in timed],
                }
            )
        out[name] = {
            "per_lr": per_lr,
            "best_equal_steps": min(per_lr, key=lambda r: statistics.mean(r["equal_steps"])),
            "best_equal_time": min(per_lr, key=lambda r: statistics.mean(r["equal_time"])),
        }
    return out


def bench_family(family: str, settings: dict, extra: list[str]) -> dict:
    """Every learning rate and seed of one family, the summary and the per-step costs."""
    runs = [
        {"lr_index": i, "seed": seed, "curves": lockstep(family, i, seed, settings["epochs"][family], extra)}
        for i in range(3)
        for seed in settings["seeds"]
    ]
    costs = step_costs(family, settings["timing_rounds"], extra)
    wall = {
        o: statistics.median(
            r["curves"][o]["seconds"][-1] / r["curves"]["adamw"]["seconds"][-1] for r in runs
        )
        for o in OPTIMIZERS
    }
    logger.info("%s step cost / AdamW: %s; run time / AdamW: %s", family, costs, wall)
    return {
        "family": family,
        "config": FAMILIES[family],
        "epochs": settings["epochs"][family],
        "steps": runs[0]["curves"]["adamw"]["step"][-1],
        "runs": runs,
        "summary": summarize(runs),
        "step_cost": costs,
        "run_time_ratio": wall,
    }


def mean_spread(values: list[float]) -> str:
    """``mean (min-max)`` of a few seeds' errors."""
    if not all(math.isfinite(v) for v in values):
        return "diverged"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md tables: costs per step, best test errors at equal steps and equal time."""
    cost_rows, result_rows, sweep_rows = [], [], []
    for fam in record["families"]:
        c, w = fam["step_cost"], fam["run_time_ratio"]
        cost_rows.append(
            [
                fam["family"],
                f"{c['adamw_step_ms']:.0f}",
                num(c["adahessian"]),
                num(c["sophia_refresh"]),
                num(c["sophia_plain"]),
                num(c["sophia_amortized"]),
                f"{num(w['adahessian'])} / {num(w['sophia'])}",
            ]
        )
        for name in OPTIMIZERS:
            s = fam["summary"][name]
            steps, timed = s["best_equal_steps"], s["best_equal_time"]
            result_rows.append(
                [
                    fam["family"],
                    name,
                    f"{steps['lr']:g}",
                    mean_spread(steps["equal_steps"]),
                    f"{timed['lr']:g}",
                    mean_spread(timed["equal_time"]),
                    f"{statistics.mean(timed['steps_at_equal_time']):.0f} / {fam['steps']}",
                ]
            )
            sweep_rows.append(
                [fam["family"], name]
                + [f"{statistics.mean(r['equal_steps']):.4f}" for r in s["per_lr"]]
                + [", ".join(f"{r['lr']:g}" for r in s["per_lr"])]
            )
    seeds = len(record["seeds"])
    text = (
        f"Each family's benchmark config on its data, constant learning rate, {seeds} seed(s), 3 learning "
        "rates per optimizer, the three optimizers in lockstep (one epoch each in turn); test relative L2 "
        "error (one step, training resolution), mean over seeds (min-max) at the best learning rate of each "
        "column. Equal wall time: each optimizer at the last epoch within AdamW's total training time. "
        "AdaHessian and Sophia with the papers' defaults (AdaHessian: betas 0.9, 0.999, Hessian power 1, eps "
        "1e-4, spatial averaging, Rademacher probes, estimate every step; Sophia: betas 0.96, 0.99, gamma "
        f"0.01, eps 1e-12, Gaussian probes, estimate every k = {SOPHIA_K} steps)."
    )
    cost_text = (
        "Cost of one Trainer step (forward, loss, backward, update; one batch) as a ratio to AdamW's step, "
        f"median of {record['timing_rounds']} interleaved rounds; Sophia amortized = (refresh + "
        f"{SOPHIA_K - 1} plain) / {SOPHIA_K}. Last column: whole lockstep runs' training time over AdamW's "
        "(median over runs)."
    )
    return "\n".join(
        [
            provenance(record, "optimizers.json"),
            "",
            para(text),
            "",
            table(
                [
                    "family",
                    "optimizer",
                    "best lr (steps)",
                    "test rel L2, equal steps",
                    "best lr (time)",
                    "test rel L2, equal wall time",
                    "steps at equal time / all",
                ],
                result_rows,
            ),
            "",
            para(cost_text),
            "",
            table(
                [
                    "family",
                    "AdamW step ms",
                    "AdaHessian / AdamW",
                    "Sophia refresh / AdamW",
                    "Sophia plain / AdamW",
                    "Sophia amortized / AdamW",
                    "run time AdaHessian / Sophia vs AdamW",
                ],
                cost_rows,
            ),
            "",
            para("Every learning rate (mean test rel L2 over seeds at equal steps):"),
            "",
            table(["family", "optimizer", "lr 1", "lr 2", "lr 3", "learning rates"], sweep_rows),
        ]
    )


def plot(record: dict, path: str | Path) -> Path:
    """Learning curves (test rel L2 against steps and against seconds) at each optimizer's best rate."""
    from matplotlib.figure import Figure

    families = record["families"]
    fig = Figure(figsize=(9, 3.0 * len(families)))
    axes = fig.subplots(len(families), 2, squeeze=False)
    colors = {"adamw": "tab:blue", "adahessian": "tab:red", "sophia": "tab:green"}
    for row, fam in zip(axes, families, strict=True):
        for name in OPTIMIZERS:
            best = fam["summary"][name]["best_equal_steps"]["lr"]
            for run in fam["runs"]:
                curve = run["curves"][name]
                if curve["lr"] != best:
                    continue
                label = f"{name} lr {best:g}" if run["seed"] == record["seeds"][0] else None
                row[0].plot(curve["step"], curve["test_l2"], color=colors[name], label=label, lw=1)
                row[1].plot(curve["seconds"], curve["test_l2"], color=colors[name], lw=1)
        row[0].set(title=f"{fam['family']}: equal steps", xlabel="optimizer steps", ylabel="test rel L2")
        row[1].set(title=f"{fam['family']}: wall time", xlabel="training seconds (1 thread)")
        for ax in row:
            ax.set_yscale("log")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, write the JSON and the PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of a tiny FNO (seconds)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of fno,t1,lsm")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/optimizers.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "optimizers.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = QUICK if args.quick else FULL
    families = ["fno"] if args.quick else [f.strip() for f in args.families.split(",") if f.strip()]
    extra = QUICK_MODEL if args.quick else []
    started = time.perf_counter()
    record = {
        "benchmark": "second_order_optimizers",
        "seeds": settings["seeds"],
        "timing_rounds": settings["timing_rounds"],
        "learning_rates": LEARNING_RATES,
        "families": [bench_family(f, settings, extra) for f in families],
        **environment("cpu"),
        "command": "OMP_NUM_THREADS=1 python solvers/bench_optimizers.py"
        + (" --quick" if args.quick else ""),
    }
    record["wall_seconds"] = time.perf_counter() - started
    plot(record, out_path.with_suffix(".png"))
    write_record(out_path, record)
    logger.info("wrote %s in %.0f s", out_path, record["wall_seconds"])
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
