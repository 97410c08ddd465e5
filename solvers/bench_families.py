"""Every model family trained by the same Trainer on the same data with the same budget, in one table.

For each config (default: every ``configs/*_ns.yaml`` plus the quickstart FNO) the script trains a run
with the given number of epochs, then reads its report and times inference, and prints and writes
(``solvers/results/families.json``): relative L2, H1 and H^-1 test errors at the training resolution and
zero-shot at the others of the report, parameters (real numbers), train ms per sample, inference ms per
sample. ``--quick`` trains 2 epochs of ``configs/deeponet_ns.yaml`` unless ``--configs`` says otherwise, on a
smoke-size version of each config's recipe (8 trajectories, 32^2 solve stored at 16^2, t = 1; zero-shot at
32^2): a test of the whole pipeline, not a comparison. ``markdown(record)`` renders the record for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from sciml.bench.record import environment, output_path, run_script, write_record
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import seconds_per_call
from sciml.train import build_operator, run
from sciml.training.checkpoint import load_checkpoint
from sciml.training.config import load_config
from sciml.training.data import build_data

logger = logging.getLogger("bench_families")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = [
    "configs/quickstart.yaml",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("configs/*_ns.yaml")),
]
QUICK_CONFIGS = ["configs/deeponet_ns.yaml"]


def smoke_data(config_path: str, folder: Path) -> list[str]:
    """Overrides that train ``config_path`` on a smoke-size version of its flow recipe, written to ``folder``
    (8 trajectories, 32^2 solve stored at 16^2, up to t = 1; zero-shot at 32^2); none for other data."""
    import dataclasses

    from sciml.datasets.recipes import Recipe, load_recipe

    data = load_config(ROOT / config_path).data
    recipe = load_recipe(ROOT / data.recipe) if data.recipe is not None else None
    if not isinstance(recipe, Recipe):
        return []
    smoke = dataclasses.replace(
        recipe,
        name=f"{recipe.name}_smoke",
        n_trajectories=8,
        batch_size=8,
        solver=dataclasses.replace(recipe.solver, resolution=32, dt=min(recipe.solver.dt, 0.01)),
        output=dataclasses.replace(recipe.output, resolution=16, t_final=1.0, record_every=0.5),
    )
    path = folder / f"{smoke.name}.yaml"
    path.write_text(smoke.to_yaml())
    return [f"data.recipe={path}", "eval.resolutions=[32]"]


@torch.no_grad()
def inference_ms_per_sample(run_dir: Path, config_path: str, overrides: list[str], repeats: int = 5) -> float:
    """Median forward time per test sample of a trained run (batch of the test split, CPU threads as set)."""
    config = load_config(ROOT / config_path, overrides)
    data = build_data(config.data, base_dir=ROOT)
    model = build_operator(config, data)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    model.eval()
    test = data.test if data.test is not None else data.valid
    batch = next(iter(DataLoader(test, batch_size=len(test))))["x"]
    forward = functools.partial(model, batch)
    forward()  # warm-up
    times = [seconds_per_call(forward, batch.device) for _ in range(repeats)]
    return 1e3 * statistics.median(times) / batch.shape[0]


def markdown(record: dict) -> str:
    """The record as a BENCHMARKS.md table: parameters, costs and test errors of every config."""
    resolutions = sorted({res for row in record["rows"] for res in row["test"]}, key=int)
    header = ["config", "family", "real params", "train ms/sample", "inference ms/sample"]
    header += [f"rel L2 / H1 / H^-1 @{res}²" for res in resolutions] + ["rollout rel L2 (first, last)"]
    rows = []
    for row in record["rows"]:
        cells = [
            f"`{row['config']}`",
            str(row["model"]),
            f"{row['params'] / 1e3:.0f}k",
            num(row["train_ms_per_sample"]),
            num(row["inference_ms_per_sample"], 3),
        ]
        for res in resolutions:
            m = row["test"].get(res)
            cells.append(f"{m['l2']:.3f} / {m['h1']:.3f} / {m['h-1']:.3f}" if m else "-")
        rollout = row.get("rollout_l2")
        cells.append(f"{rollout[0]:.3f}, {rollout[-1]:.3f}" if rollout else "-")
        rows.append(cells)
    text = f"Every config trained {record['epochs']} epochs by the same Trainer on its own data."
    return "\n".join([provenance(record), "", para(text), "", table(header, rows)])


def main(argv: list[str] | None = None) -> dict:
    """Train every config, print the table, write the JSON; returns the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="*", default=None, help="default: every family's config")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--quick", action="store_true", help="2 epochs: checks the pipeline, compares nothing"
    )
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/families.json)")
    args = parser.parse_args(argv)
    out = output_path(args.out, "families.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    epochs = 2 if args.quick else args.epochs
    if args.configs is None:
        args.configs = QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config_path in args.configs:
            overrides = [f"train.epochs={epochs}", "train.progress=false"]
            if args.quick:
                overrides += ["eval.plots=false", *smoke_data(config_path, Path(tmp))]
            config = load_config(ROOT / config_path, overrides)
            run_dir = Path(tmp) / config.name
            run(config, run_dir=run_dir, base_dir=ROOT)
            report = json.loads((run_dir / "report" / "metrics.json").read_text())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            train_ms = 1e3 * statistics.median(1.0 / h["samples_per_second"] for h in history)
            row = {
                "config": config_path,
                "model": report["model"],
                "params": report["params"],
                "train_ms_per_sample": train_ms,
                "inference_ms_per_sample": inference_ms_per_sample(run_dir, config_path, overrides),
                "test": {
                    res: {k: v["mean"] for k, v in metrics.items() if isinstance(v, dict)}
                    for res, metrics in report["test"].items()
                },
            }
            if "rollout_l2" in report:
                row["rollout_l2"] = report["rollout_l2"]
            rows.append(row)
    header = f"{'config':<28} {'params':>9} {'train ms/s':>10} {'infer ms/s':>10}"
    logger.info("%s  test errors (rel L2 / H1 / H^-1)", header)
    for row in rows:
        errors = "  ".join(
            f"@{res}: {m['l2']:.3f}/{m['h1']:.3f}/{m['h-1']:.3f}" for res, m in row["test"].items()
        )
        logger.info(
            f"{row['config']:<28} {row['params']:>9} {row['train_ms_per_sample']:>10.2f} "
            f"{row['inference_ms_per_sample']:>10.3f}  {errors}"
        )
    result = {
        "benchmark": "families_same_budget",
        "command": "python solvers/bench_families.py" + (" --quick" if args.quick else f" --epochs {epochs}"),
        **environment("cuda" if torch.cuda.is_available() else "cpu"),
        "epochs": epochs,
        "rows": rows,
    }
    write_record(out, result)
    return result


if __name__ == "__main__":
    sys.exit(run_script(main))
