"""Data-parallel scaling of the shared Trainer: the same run on 1 process and on several with torchrun.

Every run is ``torchrun --nproc_per_node=P -m sciml.train CONFIG ...`` (the command users run; DDP over
gloo on the CPU, NCCL on GPUs) with the same config and the same global batch (each process takes
``batch / P`` samples per step, so the runs follow the same optimization: strong scaling). Throughput is
the Trainer's own ``samples_per_second`` of each epoch (all processes' samples over the epoch's wall
time), the median over the epochs after the first; speedup = samples/s with P processes over samples/s
with one, efficiency = speedup / P.

On the CPU every process gets ``--threads`` torch threads (default 1), so 2 processes use 2 cores; full
mode also runs one process with 2 threads (intra-op parallelism on the same cores) as the alternative to
compare with. When more than one GPU is visible, the same series runs on the GPUs (1, 2, 4, ... processes).
Repeats of each setting are interleaved. Full mode trains ``configs/fno_window_ns.yaml`` (FNO, 5 frames in,
1 out, ns_quick data) for 5 epochs; ``--quick`` a tiny FNO on a tiny generated dataset for 2 epochs.
Run ``python solvers/bench_scaling.py`` (``--quick`` for the test suite); writes JSON and a PNG;
``markdown(record)`` renders the record for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record_and_plot
from sciml.bench.render import num, para, provenance, table

logger = logging.getLogger("bench_scaling")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that is free on this machine now (for torchrun's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_config(folder: Path) -> Path:
    """Generate a tiny dataset into ``folder`` and write a run config for it (the quick mode)."""
    from sciml.datasets.generate import generate
    from sciml.datasets.recipes import Recipe

    recipe = Recipe.from_mapping(
        {
            "name": "scaling_tiny",
            "solver": {"resolution": 32, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
            "output": {"t_final": 1.0, "record_every": 0.1},
            "n_trajectories": 16,
            "batch_size": 16,
        }
    )
    data = generate(recipe, folder / "tiny.hdf5", progress=False, device="cpu")
    config = {
        "data": {
            "path": str(data),
            "mode": "window",
            "t_in": 2,
            "t_out": 1,
            "fields": ["vorticity"],
            "train": 0.75,
            "valid": 0.125,
            "test": 0.125,
            "batch_size": 8,
        },
        "model": {"name": "fno", "modes": 8, "width": 16, "n_layers": 2},
        "optim": {"lr": 1e-3},
        "train": {"epochs": 2, "progress": False},
        "eval": {"plots": False, "rollout_steps": 0},
    }
    path = folder / "scaling_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def launch(
    config: str,
    overrides: list[str],
    processes: int,
    threads: int,
    device: str,
    run_dir: Path,
    timeout: float,
) -> dict[str, Any]:
    """One training run with torchrun; returns its per-epoch samples/s and wall time."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        f"--master_port={free_port()}",
        "-m",
        "sciml.train",
        config,
        *overrides,
        f"train.device={device}",
        "--run-dir",
        str(run_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    per_epoch = [h["samples_per_second"] for h in history]
    steady = per_epoch[1:] if len(per_epoch) > 1 else per_epoch  # the first epoch pays the warm-up
    return {
        "samples_per_second_epochs": per_epoch,
        "samples_per_second": statistics.median(steady),
        "wall_s": wall,
    }


def run_series(
    device: str,
    settings: list[tuple[int, int]],
    config: str,
    overrides: list[str],
    repeats: int,
    workdir: Path,
    timeout: float,
) -> dict[str, Any]:
    """Every (processes, threads per process) setting ``repeats`` times, interleaved."""
    samples: dict[tuple[int, int], list[dict[str, Any]]] = {s: [] for s in settings}
    for repeat in range(repeats):
        for processes, threads in settings:
            run_dir = workdir / f"{device}_p{processes}_t{threads}_r{repeat}"
            result = launch(config, overrides, processes, threads, device, run_dir, timeout)
            samples[(processes, threads)].append(result)
            logger.info(
                f"{device} {processes} process(es) x {threads} thread(s): "
                f"{result['samples_per_second']:.1f} samples/s (launch {result['wall_s']:.1f} s)"
            )
    base = statistics.median(r["samples_per_second"] for r in samples[settings[0]])
    rows = []
    for processes, threads in settings:
        runs = samples[(processes, threads)]
        sps = statistics.median(r["samples_per_second"] for r in runs)
        rows.append(
            {
                "processes": processes,
                "threads_per_process": threads,
                "samples_per_second": sps,
                "samples_per_second_runs": [r["samples_per_second"] for r in runs],
                "samples_per_second_epochs": [r["samples_per_second_epochs"] for r in runs],
                "launch_wall_s": [r["wall_s"] for r in runs],
                "speedup": sps / base,
                "efficiency": sps / base / processes,
            }
        )
    backend = "nccl" if device == "cuda" else "gloo"
    return {"device": device, "backend": backend, "rows": rows}


def plot(record: dict[str, Any], path: Path) -> Path:
    """Samples/s against the number of processes per device series, with the ideal linear line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for series in record["series"]:
        rows = [
            r for r in series["rows"] if r["threads_per_process"] == series["rows"][0]["threads_per_process"]
        ]
        procs = [r["processes"] for r in rows]
        ax.plot(
            procs,
            [r["samples_per_second"] for r in rows],
            "o-",
            label=f"{series['device']} ({series['backend']})",
        )
        ax.plot(procs, [rows[0]["samples_per_second"] * p for p in procs], "--", color="gray", lw=0.8)
        for r in series["rows"]:
            if r not in rows:
                ax.plot(
                    [r["processes"]],
                    [r["samples_per_second"]],
                    "s",
                    label=f"{series['device']}: 1 process x {r['threads_per_process']} threads",
                )
    ax.set_xlabel("processes (torchrun --nproc_per_node)")
    ax.set_ylabel("training samples / s")
    ax.set_title("DDP strong scaling (dashed: ideal)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(record: dict[str, Any]) -> str:
    """The record as a BENCHMARKS.md table: samples/s, speedup and efficiency per number of processes."""
    rows = []
    for series in record["series"]:
        for r in series["rows"]:
            rows.append(
                [
                    series["device"],
                    series["backend"] if r["processes"] > 1 else "-",
                    str(r["processes"]),
                    str(r["threads_per_process"]),
                    num(r["samples_per_second"], 1),
                    num(r["speedup"], bold=r["processes"] > 1),
                    num(r["efficiency"]),
                ]
            )
    text = (
        f"`{record['run_command']}` with P = 1, 2, ... on the same config and global batch (strong scaling), "
        f"{record['repeats']} interleaved repeat(s) per setting; samples/s is the Trainer's, median over the "
        f"epochs after the first. {record['cpu_count']} CPU cores on this machine; ideal speedup = P, "
        "efficiency = speedup / P."
    )
    if record.get("notes"):
        text += " " + " ".join(record["notes"])
    header = ["device", "backend", "processes", "threads each", "samples/s", "speedup vs 1", "efficiency"]
    parts = [provenance(record), "", para(text), "", table(header, rows)]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the scaling series, log them, write JSON and PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and model, 2 epochs (under a minute)")
    parser.add_argument("--config", default="configs/fno_window_ns.yaml", help="run config (full mode)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (full mode)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per CPU process")
    parser.add_argument("--repeats", type=int, default=None, help="runs per setting (default 2, quick 1)")
    parser.add_argument("--no-gpu", action="store_true", help="CPU series only, even with several GPUs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per launch")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/scaling.json)")
    args = parser.parse_args(argv)
    out = output_path(args.out, "scaling.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    repeats = args.repeats or (1 if args.quick else 2)
    notes = []
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        workdir = Path(tmp)
        if args.quick:
            config = str(tiny_config(workdir))
            overrides = ["train.progress=false"]
        else:
            config = args.config
            overrides = [
                f"train.epochs={args.epochs}",
                "train.progress=false",
                "eval.plots=false",
                "eval.rollout_steps=0",
            ]
        cpu_settings = [(1, args.threads), (2, args.threads)]
        if not args.quick:
            cpu_settings.append((1, 2 * args.threads))  # the alternative: the same cores as threads
        series = [run_series("cpu", cpu_settings, config, overrides, repeats, workdir, args.timeout)]
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > 1 and not args.no_gpu:
            counts = [p for p in (1, 2, 4, 8, 16) if p <= gpus]
            settings = [(p, args.threads) for p in counts]
            series.append(run_series("cuda", settings, config, overrides, repeats, workdir, args.timeout))
        elif gpus == 1:
            notes.append("One GPU is visible: no GPU scaling series (it needs at least two).")
        else:
            notes.append("No GPU was visible: the GPU (NCCL) series was not measured.")
    record = {
        "benchmark": "ddp_scaling",
        "command": "python solvers/bench_scaling.py" + (" --quick" if args.quick else ""),
        **environment("cpu"),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "config": config if not args.quick else "tiny generated config (quick mode)",
        "run_command": "torchrun --nproc_per_node=P -m sciml.train "
        + (config if not args.quick else "<tiny config>")
        + " "
        + " ".join(overrides),
        "repeats": repeats,
        "series": series,
        "notes": notes,
        "plot": str(out.with_suffix(".png")),
    }
    write_record_and_plot(out, record, plot)
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
