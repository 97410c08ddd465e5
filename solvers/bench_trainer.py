"""Overhead of the shared Trainer: one epoch through it vs a minimal hand-written loop vs neuraloperator's.

All three train the same FNO (same initial weights) on the same in-memory samples with the same loss
(relative L2), optimizer (AdamW) and batch size, one epoch each, interleaved and repeated; the medians
are compared as ratios measured in one run, paired round by round (median of the per-round ratios).
Run ``python solvers/bench_trainer.py`` (``--quick`` for the test suite). Writes JSON with the machine,
torch version and date; ``markdown(record)`` renders it for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import statistics
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from neuralop.training import Trainer as NeuralopTrainer
from torch import nn
from torch.utils.data import DataLoader

from sciml.bench.record import bar_chart, environment, output_path, run_script, write_record
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import interleaved_times
from sciml.datasets.in_memory import ArrayPairDataset
from sciml.metrics import SobolevLoss
from sciml.models.registry import ModelContext, build_model
from sciml.training.config import RunConfig, config_from_mapping
from sciml.training.trainer import Trainer

logger = logging.getLogger("bench_trainer")


def markdown(record: dict) -> str:
    """The record as a BENCHMARKS.md table: epoch time of each loop and the sciml Trainer's ratio to it."""
    setup, sec = record["setup"], record["epoch_seconds"]
    rounds = len(record["epoch_seconds_all"]["sciml"])
    rows = [
        [
            "minimal hand-written loop",
            num(sec["hand_loop"]),
            f"{num(record['ratio_sciml_to_hand_loop'], bold=True)} "
            f"({record['ratio_of_best_times_to_hand_loop']:.2f} on best times)",
        ],
        [
            "neuraloperator `Trainer`",
            num(sec["neuralop"]),
            f"{num(record['ratio_sciml_to_neuralop'], bold=True)} "
            f"({record['ratio_of_best_times_to_neuralop']:.2f} on best times)",
        ],
        ["sciml `Trainer`", num(sec["sciml"]), "-"],
    ]
    text = (
        f"One epoch of neuraloperator's FNO ({setup['model']}), {setup['samples']} samples at "
        f"{setup['resolution']}², batch {setup['batch']}, relative-L2 loss and AdamW, from identical initial "
        f"weights; {rounds} interleaved rounds, ratios paired round by round (median)."
    )
    return "\n".join(
        [provenance(record), "", para(text), "", table(["loop", "epoch s (median)", "sciml / it"], rows)]
    )


def plot(record: dict, path: str | Path) -> Path:
    """Median epoch time of each training loop (PNG)."""
    times = record["epoch_seconds"]
    return bar_chart(
        path, list(times), list(times.values()), "Same model, data and epochs", "epoch seconds (median)"
    )


@dataclass(frozen=True)
class Workload:
    """What every loop trains: the samples, the FNO whose initial weights each loop copies, the loss."""

    dataset: ArrayPairDataset
    template: nn.Module
    loss_fn: SobolevLoss
    batch: int
    device: torch.device

    def fresh(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        """A copy of the template and its AdamW optimizer."""
        model = copy.deepcopy(self.template)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)


def sizes(quick: bool) -> tuple[int, int, int, int]:
    """Samples, resolution, batch size and interleaved rounds."""
    return (32, 32, 8, 3) if quick else (256, 64, 16, 7)


def build_workload(n: int, res: int, batch: int, device: torch.device) -> Workload:
    """``n`` random fields at ``res``² mapped to a shifted, squared copy; the FNO seeded with 0."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, res, res, generator=generator)
    y = torch.roll(x, 3, dims=-1) + 0.1 * x**2
    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(res, res))
    torch.manual_seed(0)
    template = build_model("fno", {"modes": 12, "width": 32, "n_layers": 4}, context).to(device)
    return Workload(ArrayPairDataset(x, y), template, SobolevLoss(s=0.0, relative=True), batch, device)


def hand_loop_epoch(work: Workload) -> None:
    """One epoch of the minimal loop: shuffle, forward, loss, backward, step."""
    model, opt = work.fresh()
    model.train()
    for item in DataLoader(work.dataset, batch_size=work.batch, shuffle=True):
        xb, yb = item["x"].to(work.device), item["y"].to(work.device)
        opt.zero_grad(set_to_none=True)
        loss = work.loss_fn(model(xb), yb)
        loss.backward()
        opt.step()


def sciml_config(work: Workload) -> RunConfig:
    """The run config of the sciml Trainer: the same batch, one epoch, no progress bar, no autocast."""
    return config_from_mapping(
        {
            "data": {"path": "in-memory", "batch_size": work.batch},
            "model": {"name": "fno"},
            "train": {"epochs": 1, "progress": False, "device": str(work.device), "amp": "none"},
        }
    )


def sciml_epoch(work: Workload, config: RunConfig) -> None:
    """One epoch through sciml's Trainer (nothing written)."""
    model, _ = work.fresh()
    trainer = Trainer(model, config, work.dataset, None, run_dir=None)
    trainer.train_epoch()


def neuralop_epoch(work: Workload) -> None:
    """One epoch through neuraloperator's Trainer (evaluation never due, a schedule that never steps)."""
    model, opt = work.fresh()
    trainer = NeuralopTrainer(
        model=model, n_epochs=1, device=str(work.device), verbose=False, eval_interval=10**6
    )
    loader = DataLoader(work.dataset, batch_size=work.batch, shuffle=True)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=10**6)

    def loss(out: torch.Tensor, y: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        return work.loss_fn(out, y)  # neuraloperator calls training_loss(out, **sample)

    trainer.train(loader, {}, opt, scheduler, training_loss=loss, eval_losses={})


def time_loops(work: Workload, repeats: int) -> dict[str, list[float]]:
    """Seconds of one epoch of each loop, ``repeats`` interleaved rounds after one warm-up epoch each
    (the device synchronized at the end of each epoch)."""
    runners = {
        "hand_loop": functools.partial(hand_loop_epoch, work),
        "sciml": functools.partial(sciml_epoch, work, sciml_config(work)),
        "neuralop": functools.partial(neuralop_epoch, work),
    }
    return interleaved_times(runners, repeats, work.device, warmup=1)


def paired_ratio(timings: dict[str, list[float]], other: str) -> float:
    """Median over rounds of sciml's time over ``other``'s (the runs of a round see the same load)."""
    return statistics.median(a / b for a, b in zip(timings["sciml"], timings[other], strict=True))


def summarize(timings: dict[str, list[float]], work: Workload, res: int, quick: bool) -> dict:
    """The JSON record: machine, setup, median epoch times, paired and best-time ratios, target."""
    return {
        "benchmark": "trainer_overhead",
        "command": "python solvers/bench_trainer.py" + (" --quick" if quick else ""),
        **environment(work.device),
        "setup": {
            "samples": len(work.dataset),
            "resolution": res,
            "batch": work.batch,
            "model": "fno modes 12 width 32 layers 4",
        },
        "epoch_seconds": {k: statistics.median(v) for k, v in timings.items()},
        "epoch_seconds_all": timings,
        "ratio_sciml_to_hand_loop": paired_ratio(timings, "hand_loop"),
        "ratio_sciml_to_neuralop": paired_ratio(timings, "neuralop"),
        "ratio_of_best_times_to_hand_loop": min(timings["sciml"]) / min(timings["hand_loop"]),
        "ratio_of_best_times_to_neuralop": min(timings["sciml"]) / min(timings["neuralop"]),
        "target": "sciml <= 1.05x hand loop and <= 1.0x neuraloperator's Trainer",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """``--quick`` (the test suite's size), ``--device``, ``--out`` (the JSON record)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/trainer.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, print it, write the JSON; returns the result."""
    args = parse_args(argv)
    out = output_path(args.out, "trainer.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # neuraloperator's Trainer passes every sample key to the model, which warns about 'y' each step
    warnings.filterwarnings("ignore", message=".*unexpected keyword arguments.*")
    n, res, batch, repeats = sizes(args.quick)
    work = build_workload(n, res, batch, torch.device(args.device))
    result = summarize(time_loops(work, repeats), work, res, args.quick)
    med = result["epoch_seconds"]
    logger.info(
        "epoch: hand loop %.3f s, sciml %.3f s (%.3fx), neuraloperator Trainer %.3f s (sciml/neuralop %.3fx)",
        med["hand_loop"],
        med["sciml"],
        result["ratio_sciml_to_hand_loop"],
        med["neuralop"],
        result["ratio_sciml_to_neuralop"],
    )
    write_record(out, result)
    plot(result, out.with_suffix(".png"))
    return result


if __name__ == "__main__":
    sys.exit(run_script(main))
