"""Every neural family on the 64^2 FNO-setting data, from the shipped zoo: the families table of issue 4.

Each zoo entry (``models/``, built by ``python -m sciml.zoo build configs/zoo/<name>.yaml``) was trained by
the shared Trainer on ``datasets/ns_fno_v1e-3_64.yaml`` (nu = 1e-3, 64^2, one frame per time unit). For
every entry the script reports what its card records (parameters, epochs, training time and throughput,
test errors on 20 fresh trajectories, the run's own test split at 64^2 and zero-shot at 128^2, the rollout
error of windowed models) and measures the inference time per sample here (a batch of 8 test inputs, all
models timed round-robin in the same rounds, median). It then checks the issue's targets:

- TFNO: at least 10x fewer parameters than the dense FNO at no more than 1.05x its rel L2;
- MG-TFNO: an input domain per patch at least 4x smaller than the field, at no more than 1.1x TFNO's error;
- T1: rel L2 no worse than the FNO's (its train-step speed is ``solvers/bench_t1.py``'s);
- LSM: rel L2 at or below the FNO's on the autoregressive task (10 frames in, the next one out, rolled out
  10 steps; the verdict uses the rollout error averaged over the 10 predicted frames, the papers' measure).

``python solvers/bench_zoo_families.py`` writes ``solvers/results/zoo_families.json`` and a PNG;
``--quick`` uses 1 test trajectory, batches of 2 and 2 timing rounds (a smoke test: compares nothing new)
and writes into ``solvers/results/quick/``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

import sciml.datasets as sd
import sciml.zoo
from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.timing import interleaved_times
from sciml.datasets.generate import default_output_path, generate
from sciml.zoo.evaluation import evaluate_pretrained, test_recipe, test_samples

logger = logging.getLogger("bench_zoo_families")
ROOT = Path(__file__).resolve().parents[1]


def _inputs(model: Any, n_trajectories: int, batch: int) -> torch.Tensor:
    """A batch of test inputs of the model's task from its fresh test trajectories."""
    recipe = test_recipe(model.config, n_trajectories)
    path = default_output_path(recipe)
    if not path.exists():
        generate(recipe, path, progress=False)
    samples = test_samples(model.config, sd.open(path))
    return torch.stack([samples[i % len(samples)]["x"] for i in range(batch)])


@torch.no_grad()
def inference_ms(models: dict[str, Any], inputs: dict[str, torch.Tensor], rounds: int) -> dict[str, float]:
    """Median forward time per sample of each model, all timed round-robin in the same rounds."""
    calls = {name: functools.partial(model, inputs[name]) for name, model in models.items()}
    device = next(iter(inputs.values())).device
    times = interleaved_times(calls, rounds, device, warmup=1)  # one forward per timing, after a warm-up
    return {name: 1e3 * statistics.median(t) / inputs[name].shape[0] for name, t in times.items()}


def patch_domain_ratio(model: Any) -> float | None:
    """Field cells / inner-model cells per patch of an MG-TFNO (``None`` for other families)."""
    inner = model.operator.model
    if not hasattr(inner, "geometry"):
        return None
    size = int(model.config["context"]["grid_shape"][-1])
    _, side, pad = inner.geometry(size)
    return (size / (side + 2 * pad)) ** 2


def row_of(name: str, model: Any, infer_ms: float) -> dict[str, Any]:
    """One table row from a zoo model's config and the measured inference time."""
    c = model.config
    training, metrics = c["training"], c["metrics"]
    run_test = training.get("run_test", {})
    sps = training.get("train_samples_per_second")
    row = {
        "name": name,
        "family": c["model"]["name"],
        "task": c["task"]["mode"],
        "params": c["weights"]["params"],
        "mib": c["weights"]["bytes"] / 2**20,
        "epochs": training["epochs"],
        "training": training_summary(training),
        "train_seconds": training["train_seconds"],
        "train_ms_per_sample": 1e3 / sps if sps else None,
        "inference_ms_per_sample": infer_ms,
        "test": {k: metrics[k]["mean"] for k in ("l2", "h1", "h-1")},
        "run_test": {res: m["l2"]["mean"] for res, m in run_test.items()},
        "patch_domain_ratio": patch_domain_ratio(model),
    }
    if "rollout_l2" in metrics:
        row["rollout_final_l2"] = metrics["rollout_l2"][-1]
        row["rollout_mean_l2"] = statistics.fmean(metrics["rollout_l2"])
    return row


def training_summary(training: dict[str, Any]) -> str:
    """Epochs, and the loss and unrolling where they are not the default (``40 ep, unroll 10``)."""
    train = training.get("config", {}).get("train", {})
    parts = [f"{training['epochs']} ep"]
    if train.get("unroll", 1) > 1:
        pushforward = train.get("unroll_gradient", "all") == "last"
        parts.append(f"pushforward 1..{train['unroll']}" if pushforward else f"unroll {train['unroll']}")
    if train.get("loss", "l2") != "l2":
        parts.append(f"{train['loss']} loss")
    return ", ".join(parts)


def batch_statistics_rollout(model: Any, n_trajectories: int) -> dict[str, Any]:
    """Errors of a model whose BatchNorm layers use each batch's statistics instead of the running ones.

    A check of one suspect for LSM's rollout drift: running statistics that fit the training inputs but not
    the model's own predictions. Works on a copy; the model itself is left as it was.
    """
    probe = copy.deepcopy(model)
    for module in probe.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = module.running_var = None
    batch_stats = evaluate_pretrained(probe, n_trajectories=n_trajectories, progress=False)
    running = evaluate_pretrained(model, n_trajectories=n_trajectories, progress=False)
    return {
        "name": model.name,
        "n_trajectories": n_trajectories,
        "running_statistics": {"l2": running["l2"]["mean"], "rollout_l2": running.get("rollout_l2")},
        "batch_statistics": {"l2": batch_stats["l2"]["mean"], "rollout_l2": batch_stats.get("rollout_l2")},
    }


def targets(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figures and met / not met."""
    out = []

    def add(name: str, figures: dict[str, float], met: bool, rule: str) -> None:
        out.append({"target": name, "rule": rule, "figures": figures, "met": bool(met)})

    fno, tfno, mg, t1 = (rows.get(k) for k in ("fno_ns64", "tfno_ns64", "mg_tfno_ns64", "t1_ns64"))
    if fno and tfno:
        p, e = fno["params"] / tfno["params"], tfno["test"]["l2"] / fno["test"]["l2"]
        add(
            "TFNO vs FNO",
            {"param_ratio": p, "l2_ratio": e},
            p >= 10 and e <= 1.05,
            ">= 10x fewer params, <= 1.05x L2",
        )
    if tfno and mg and mg["patch_domain_ratio"]:
        d, e = mg["patch_domain_ratio"], mg["test"]["l2"] / tfno["test"]["l2"]
        add(
            "MG-TFNO vs TFNO",
            {"domain_ratio": d, "l2_ratio": e},
            d >= 4 and e <= 1.1,
            ">= 4x smaller patch, <= 1.1x L2",
        )
    if fno and t1:
        e = t1["test"]["l2"] / fno["test"]["l2"]
        add("T1 vs FNO (error)", {"l2_ratio": e}, e <= 1.0, "L2 no worse than FNO's")
    pairs = [
        ("", "fno_window_ns64", "lsm_ns64"),
        (", both unrolled", "fno_window_unroll_ns64", "lsm_unroll_ns64"),
        (", both pushforward", "fno_window_pushforward_ns64", "lsm_pushforward_ns64"),
    ]
    for label, window_name, lsm_name in pairs:
        window, lsm = rows.get(window_name), rows.get(lsm_name)
        if window and lsm and "rollout_mean_l2" in lsm and "rollout_mean_l2" in window:
            e = lsm["rollout_mean_l2"] / window["rollout_mean_l2"]
            add(
                f"LSM vs FNO (autoregressive{label})",
                {"rollout_l2_ratio": e, "one_step_l2_ratio": lsm["test"]["l2"] / window["test"]["l2"]},
                e <= 1.0,
                "10-step rollout L2 at or below FNO's",
            )
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Test rel L2 against parameters, one point per family."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for row in rows:
        ax.scatter(row["params"], row["test"]["l2"], label=row["name"])
        ax.annotate(row["family"], (row["params"], row["test"]["l2"]), fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test rel L2 (fresh trajectories)")
    ax.set_title("zoo models, 64^2 FNO-setting Navier-Stokes")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def markdown(record: dict[str, Any]) -> str:
    """The families table and the target verdicts as markdown."""
    lines = [
        f"`{record['command']}` ({record['date'][:10]}, {record['device']}, {record['threads']} thread(s); "
        f"`solvers/results/{record['benchmark']}.json`)",
        "",
        "| model | family | params | training | train s | train ms/sample | infer ms/sample | rel L2 "
        "| rel H1 | rel H^-1 | L2 @128 zero-shot | rollout L2 (mean of 10 / frame 10) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        train_ms = f"{r['train_ms_per_sample']:.1f}" if r["train_ms_per_sample"] else "-"
        zero_shot = f"{r['run_test']['128']:.4f}" if "128" in r["run_test"] else "-"
        rollout = (
            f"{r['rollout_mean_l2']:.4f} / {r['rollout_final_l2']:.4f}" if "rollout_mean_l2" in r else "-"
        )
        training = r.get("training", f"{r['epochs']} ep")
        lines.append(
            f"| `{r['name']}` | {r['family']} | {r['params']:,} | {training} | {r['train_seconds']:.0f} | "
            f"{train_ms} | {r['inference_ms_per_sample']:.2f} | {r['test']['l2']:.4f} | "
            f"{r['test']['h1']:.4f} | {r['test']['h-1']:.4f} | {zero_shot} | {rollout} |"
        )
    lines += ["", "| target | rule | measured | verdict |", "|---|---|---|---|"]
    for t in record["targets"]:
        figures = ", ".join(f"{k} {v:.2f}" for k, v in t["figures"].items())
        lines.append(
            f"| {t['target']} | {t['rule']} | {figures} | {'**met**' if t['met'] else '**not met**'} |"
        )
    check = record.get("lsm_batchnorm_check")
    if check and check["running_statistics"]["rollout_l2"]:
        run, batch = check["running_statistics"], check["batch_statistics"]
        lines += [
            "",
            f"BatchNorm check (`{check['name']}`, {check['n_trajectories']} test trajectories): one-step "
            f"rel L2 {run['l2']:.4f} with the running statistics, {batch['l2']:.4f} with each batch's own; "
            f"rollout L2 at frame 10 {run['rollout_l2'][-1]:.4f} against {batch['rollout_l2'][-1]:.4f}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Measure and tabulate every zoo entry; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 test trajectory, batch 2, 2 timing rounds")
    parser.add_argument("--names", nargs="*", help="zoo entries (default: all with test metrics)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", help="folder of the JSON and PNG (default solvers/results[/quick])")
    args = parser.parse_args(argv)
    out = output_path(args.out, "", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.names or [e.name for e in sciml.zoo.list() if e.has_test_metrics]
    models = {name: sciml.zoo.load(name) for name in names}
    n_traj, batch, rounds = (1, 2, 2) if args.quick else (20, 8, args.rounds)
    inputs = {name: _inputs(model, n_traj, batch) for name, model in models.items()}
    times = inference_ms(models, inputs, rounds)
    rows = [row_of(name, models[name], times[name]) for name in names]
    record = {
        "benchmark": "zoo_families_quick" if args.quick else "zoo_families",
        "command": "python solvers/bench_zoo_families.py" + (" --quick" if args.quick else ""),
        **environment("cpu"),
        "rows": rows,
        "targets": targets({r["name"]: r for r in rows}),
    }
    if "lsm_ns64" in models:
        record["lsm_batchnorm_check"] = batch_statistics_rollout(models["lsm_ns64"], n_traj)
    write_record(out / f"{record['benchmark']}.json", record)
    plot(rows, out / f"{record['benchmark']}.png")
    print(markdown(record))
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
