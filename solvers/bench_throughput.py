"""Training throughput of every registered model family: samples per second of full train steps, and memory.

A train step is what the Trainer does per batch: forward, relative-L2 loss, backward and an AdamW step.
Each family (``sciml.models.available_models()``) is built with the model section of its config
(``configs/<family>_ns.yaml``; ``configs/quickstart.yaml`` for ``fno``) and the channels of that config's
task (one frame in and out, or ``t_in`` frames in and ``t_out`` out), on random fields of the grid. At each
grid (64^2 and 128^2; ``--quick``: 32^2, widths capped at 8) the families are timed in interleaved rounds
(every family once per round, so that machine noise hits all alike), and samples/s is the median over the
rounds.

Peak memory is measured over the first two steps of a fresh model (they allocate the optimizer state),
after one step of a throwaway copy (so that one-time library set-up is not charged to the model):
on a GPU, ``torch.cuda.max_memory_allocated`` minus the memory allocated before (the model and the batch);
on the CPU, the increase of the process's peak resident set (Linux ``VmHWM`` reset through
``/proc/self/clear_refs``), which also counts allocator caches and is therefore a coarser figure
(see :mod:`sciml.bench.memory`). Run ``python solvers/bench_throughput.py`` (``--quick`` for the test
suite); writes JSON and a PNG bar chart; ``markdown(record)`` renders the record for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from sciml.bench.memory import PeakMemory
from sciml.bench.record import environment, output_path, run_script, save_figure, write_record_and_plot
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import interleaved_times, synchronize
from sciml.metrics import relative_l2
from sciml.models import ModelContext, available_models, build_model

logger = logging.getLogger("bench_throughput")
ROOT = Path(__file__).resolve().parents[1]


def family_config(family: str) -> tuple[str | None, dict[str, Any], int, int]:
    """``(config path, model kwargs, in_channels, out_channels)`` of a family from its config file.

    ``configs/<family>_ns.yaml`` first, then ``configs/quickstart.yaml``, then any config of that family;
    a family without one gets its builder's defaults and one channel in and out.
    """
    candidates = [ROOT / "configs" / f"{family}_ns.yaml", ROOT / "configs" / "quickstart.yaml"]
    candidates += sorted((ROOT / "configs").glob("*.yaml"))
    for path in candidates:
        if not path.exists():
            continue
        config = yaml.safe_load(path.read_text())
        model = dict(config.get("model", {}))
        if model.pop("name", None) != family:
            continue
        data = config.get("data", {})
        fields = len(data.get("fields") or [1])
        if data.get("mode") == "window":
            return str(path.relative_to(ROOT)), model, fields * data["t_in"], fields * data["t_out"]
        return str(path.relative_to(ROOT)), model, fields, fields
    return None, {}, 1, 1


def shrink(kwargs: dict[str, Any], width: int = 8, modes: int = 6) -> dict[str, Any]:
    """Tiny widths for the quick mode: ``width``/``modes``-like arguments capped (nested dicts too)."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, dict):
            out[key] = shrink(value, width, modes)
        elif key in ("width", "head_width", "basis") and isinstance(value, int):
            out[key] = min(value, width)
        elif key in ("modes",) and isinstance(value, int):
            out[key] = min(value, modes)
        elif key in ("branch_widths", "trunk_widths") and isinstance(value, list):
            out[key] = [min(v, 4 * width) for v in value]
        else:
            out[key] = value
    return out


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One full training step (forward, relative-L2 loss, backward, AdamW step) as a closure."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = relative_l2(model(x), y).mean()
        loss.backward()
        optimizer.step()

    return step


def bench_resolution(
    families: list[str],
    resolution: int,
    batch: int,
    quick: bool,
    device: torch.device,
    rounds: int,
    steps: int,
) -> list[dict[str, Any]]:
    """Peak memory (first two steps) and interleaved samples/s of every family at ``resolution``^2."""
    generator = torch.Generator().manual_seed(0)
    entries = {}
    for family in families:
        config, kwargs, c_in, c_out = family_config(family)
        if quick:
            kwargs = shrink(kwargs)
        context = ModelContext(
            in_channels=c_in,
            out_channels=c_out,
            grid_shape=(resolution, resolution),
            domain_lengths=(1.0, 1.0),
            periodic=(True, True),
        )
        x = torch.randn(batch, c_in, resolution, resolution, generator=generator).to(device)
        y = torch.randn(batch, c_out, resolution, resolution, generator=generator).to(device)
        # a throwaway copy takes one step first, so that one-time library set-up (kernels, FFT plans) is
        # not charged to the memory of the family that happens to run first
        train_step(build_model(family, kwargs, context).to(device), x, y)()
        torch.manual_seed(0)
        model = build_model(family, kwargs, context).to(device)
        step = train_step(model, x, y)
        with PeakMemory(device) as memory:
            for _ in range(2):  # the first steps allocate the optimizer state and the autograd buffers
                step()
            synchronize(device)
        entries[family] = {
            "step": step,
            "row": {
                "family": family,
                "config": config,
                "model_kwargs": kwargs,
                "in_channels": c_in,
                "out_channels": c_out,
                "params": sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()),
                "resolution": resolution,
                "batch": batch,
                "peak_memory_increase_mb": memory.increase_mb,
                "peak_memory_mb": memory.peak_mb,
                "memory_method": memory.method,
            },
        }
    # interleaved: every family once per round; each timing is the mean of `steps` steps
    seconds = interleaved_times({f: entries[f]["step"] for f in families}, rounds, device, repeats=steps)
    rows = []
    for family in families:
        row = entries[family]["row"]
        per_step = statistics.median(seconds[family])
        row["step_ms"] = 1e3 * per_step
        row["step_ms_all"] = [1e3 * s for s in seconds[family]]
        row["samples_per_second"] = batch / per_step
        row["best_samples_per_second"] = batch / min(seconds[family])
        rows.append(row)
        logger.info(
            f"{family:>9} {resolution:>4}^2  batch {batch}  {row['samples_per_second']:>8.1f} samples/s  "
            f"{row['step_ms']:>8.1f} ms/step  peak +{row['peak_memory_increase_mb']:.1f} MB  "
            f"{row['params']:>9,d} params"
        )
    return rows


def plot(record: dict[str, Any], path: Path) -> Path:
    """Bar charts: samples/s and peak memory increase per family, one bar per grid."""
    from matplotlib.figure import Figure

    families = list(dict.fromkeys(r["family"] for r in record["rows"]))
    resolutions = sorted({r["resolution"] for r in record["rows"]})
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2)
    width = 0.8 / len(resolutions)
    for i, res in enumerate(resolutions):
        by_family = {r["family"]: r for r in record["rows"] if r["resolution"] == res}
        xs = [j + i * width for j in range(len(families))]
        axes[0].bar(xs, [by_family[f]["samples_per_second"] for f in families], width, label=f"{res}²")
        axes[1].bar(xs, [by_family[f]["peak_memory_increase_mb"] for f in families], width, label=f"{res}²")
    for ax, label in zip(axes, ("training samples / s", "peak memory increase (MB)"), strict=True):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(families))], families, rotation=30)
        ax.set_ylabel(label)
        ax.legend()
    axes[0].set_yscale("log")
    fig.suptitle(f"train-step throughput on {record['device']} ({record['threads']} threads)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(record: dict[str, Any]) -> str:
    """The record as a BENCHMARKS.md table: samples/s, ms per step and peak memory per family and grid."""
    rows = [
        [
            r["family"],
            f"`{r['config']}`" if r["config"] else "defaults",
            f"{r['params'] / 1e3:.0f}k",
            f"{r['resolution']}²",
            str(r["batch"]),
            num(r["samples_per_second"], 1),
            num(r["step_ms"], 1),
            num(r["peak_memory_increase_mb"], 1),
        ]
        for r in record["rows"]
    ]
    memory = record["rows"][0]["memory_method"] if record["rows"] else "-"
    text = (
        f"A train step = forward, relative-L2 loss, backward, AdamW step, on random fields with the channels "
        f"of each config's task; {record['rounds']} interleaved rounds of {record['steps_per_round']} steps, "
        f"median. Peak memory over the first two steps of a fresh model (after one warm-up step of a "
        f"throwaway "
        f"copy), measured as: {memory}."
    )
    if record.get("quick"):
        text += " Quick mode: model widths capped at 8, so these are not the configs' models."
    header = ["family", "config", "real params", "grid", "batch", "samples/s", "ms/step", "peak memory +MB"]
    parts = [provenance(record), "", para(text), "", table(header, rows)]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, log the table, write JSON and PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="32^2, tiny widths, few steps (seconds)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--families", default=None, help="comma-separated subset (default: every family)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 8, quick 2)")
    parser.add_argument(
        "--resolutions", default=None, help="comma-separated grids (default 64,128; quick 32)"
    )
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/throughput.json)")
    args = parser.parse_args(argv)
    out = output_path(args.out, "throughput.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    # flow-field families only (dcdm's input is a Poisson right-hand side and cell codes: bench_dcdm)
    families = [f for f in available_models() if f != "dcdm"]
    if args.families:
        wanted = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = sorted(set(wanted) - set(families))
        if unknown:
            parser.error(f"unknown families {unknown}; registered: {families}")
        families = wanted
    if args.resolutions:
        resolutions = [int(r) for r in args.resolutions.split(",")]
    else:
        resolutions = [32] if args.quick else [64, 128]
    batch = args.batch or (2 if args.quick else 8)
    rounds, steps = (2, 1) if args.quick else (5, 3)
    rows = []
    for resolution in resolutions:
        rows += bench_resolution(families, resolution, batch, args.quick, device, rounds, steps)
    command = "python solvers/bench_throughput.py" + (" --quick" if args.quick else "")
    record = {
        "benchmark": "training_throughput_per_family",
        "command": command,
        **environment(device),
        "quick": args.quick,
        "rounds": rounds,
        "steps_per_round": steps,
        "rows": rows,
        "plot": str(out.with_suffix(".png")),
    }
    write_record_and_plot(out, record, plot)
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
