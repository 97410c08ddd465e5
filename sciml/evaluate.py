"""``python -m sciml.evaluate RUN_DIR [--data PATH] [--resolution R ...] [--checkpoint last|best]``.

Rebuilds a trained run's model from its ``config.yaml`` and checkpoint and evaluates it on the test split
of its data, or of another file (``--data``), at the training resolution and at any ``--resolution``
the model supports (zero-shot super-resolution). The checkpoint defaults to ``last`` (the final weights,
which the training report evaluated), so the numbers agree with ``report/metrics.json``; ``best`` takes
``checkpoints/best.pt``. The evaluation goes to its own files, ``RUN_DIR/report/evaluate_<checkpoint>
[_<resolution>...][_<data>].json`` (recording the checkpoint file and its epoch) and PNGs with the same
prefix; the training report is rewritten only with ``--overwrite-report``.

``python -m sciml.evaluate zoo:NAME [--n-test N]`` evaluates a zoo model (verified against the zoo's
manifest) on freshly generated test trajectories of its recipe and sets the numbers beside the card's for
the same trajectories (within 2%, trajectory by trajectory); the exit code is 1 when they do not
reproduce. ``pretrained:FOLDER`` does the same for a local pretrained folder, loaded explicitly and
reported as unverified (``zoo:`` takes names only: a zoo name, or a Hub name ``zoo:hf://org/name[@rev]``
loaded through :func:`sciml.zoo.load` with every file checked).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sciml.bench.record import write_record
from sciml.cli import program
from sciml.errors import ConfigError, SciMLError
from sciml.training.checkpoint import CheckpointError, load_checkpoint
from sciml.training.config import load_config
from sciml.training.data import build_data
from sciml.training.distributed import resolve_device
from sciml.zoo.hub import looks_like_path

if TYPE_CHECKING:
    from sciml.zoo.evaluation import CardComparison

logger = logging.getLogger("sciml.evaluate")

CHECKPOINTS = ("last", "best")
DEFAULT_CHECKPOINT = "last"
"""The weights the training report evaluated (the final epoch's), so that both report the same numbers."""


def checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    """``run_dir/checkpoints/<checkpoint>.pt``; a run without ``best.pt`` (no validation metric) falls back
    to ``last.pt``, with a warning. Raises :class:`ConfigError` when the folder is not a run folder or the
    checkpoint does not exist."""
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint {checkpoint!r}: expected one of {', '.join(CHECKPOINTS)}")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(
            f"{run_dir}: not a run folder (no config.yaml); expected a directory written by "
            "python -m sciml.train, zoo:NAME or pretrained:FOLDER"
        )
    folder = run_dir / "checkpoints"
    path = folder / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists() and (folder / "last.pt").exists():
        logger.warning("%s has no best.pt (no validation metric): evaluating last.pt", run_dir)
        path = folder / "last.pt"
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint; expected a run that finished at least one epoch")
    return path


def evaluation_name(checkpoint: str, resolutions: list[int] | None, data: str | None) -> str:
    """The stem of an evaluation's files: ``evaluate_<checkpoint>[_<resolution>...][_<data file stem>]``."""
    parts = ["evaluate", checkpoint, *(str(r) for r in resolutions or [])]
    if data is not None:
        parts.append(re.sub(r"[^A-Za-z0-9.-]+", "-", Path(data).stem))
    return "_".join(parts)


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    resolutions: list[int] | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    device: str = "auto",
    overwrite_report: bool = False,
) -> dict[str, Any]:
    """Evaluate a run folder with the weights of ``checkpoint`` (``"last"`` or ``"best"``).

    Writes ``report/<evaluation_name(...)>.json`` and its PNGs (with ``overwrite_report``: the training
    report's ``report/metrics.json`` and PNGs); returns the metrics written, whose ``"checkpoint"`` names
    the checkpoint file, its epoch and the file written.
    """
    from sciml.train import build_operator, describe_test_errors
    from sciml.training.report import write_report

    run_dir = Path(run_dir)
    path = checkpoint_path(run_dir, checkpoint)
    used = path.stem
    config = load_config(run_dir / "config.yaml")
    if data is not None:
        config.data.path, config.data.recipe = data, None
    if resolutions:
        config.eval.resolutions = list(resolutions)
    state = load_checkpoint(path)
    bundle = build_data(config.data)
    model = build_operator(config, bundle)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit the model of {run_dir / 'config.yaml'} ({err})"
        ) from err
    model.to(resolve_device(device))
    history = SimpleNamespace(history=state["history"], train_seconds=state.get("train_seconds", 0.0))
    report_dir = run_dir / "report"
    stem = "metrics" if overwrite_report else evaluation_name(used, resolutions, data)
    report_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".evaluate-", dir=report_dir))
    try:  # the report is written aside, then each file renamed into place: nothing half-written
        results = write_report(staging, model, config, bundle, history)
        results["checkpoint"] = {
            "name": used,
            "path": str(path),
            "epoch": int(state.get("epoch", len(state["history"]))),
            "report": str(report_dir / f"{stem}.json"),
        }
        written = [write_record(report_dir / f"{stem}.json", results)]
        for figure in sorted((staging / "report").glob("*.png")):
            target = report_dir / (figure.name if overwrite_report else f"{stem}_{figure.name}")
            os.replace(figure, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lines = [
        f"{run_dir}: evaluated checkpoints/{used}.pt (epoch {results['checkpoint']['epoch']})",
        *describe_test_errors(results),
        f"  wrote {', '.join(str(p) for p in written)}",
    ]
    logger.info("%s", "\n".join(lines))
    return results


def evaluate_zoo(
    name: str | None = None,
    n_test: int | None = None,
    device: str = "auto",
    *,
    path: str | Path | None = None,
) -> CardComparison:
    """Evaluate a zoo model or a local folder (``path=``, unverified) against its card, like with like."""
    from sciml.zoo import load
    from sciml.zoo.evaluation import compare_like_with_like, evaluate_pretrained

    model = load(name, path=path, device=resolve_device(device))
    measured = evaluate_pretrained(model, n_trajectories=n_test)
    return compare_like_with_like(model.name, measured, model.metrics)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.evaluate"), description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "run_dir",
        help="a run directory written by python -m sciml.train, zoo:NAME, or pretrained:FOLDER (unverified)",
    )
    parser.add_argument("--data", help="evaluate on this data file instead of the run's own")
    parser.add_argument("--resolution", type=int, action="append", help="extra test resolution (repeatable)")
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        choices=CHECKPOINTS,
        help="last: the final weights, as the training report (default); best: the best validation epoch",
    )
    parser.add_argument(
        "--overwrite-report",
        action="store_true",
        help="write report/metrics.json and its PNGs (default: report/evaluate_<checkpoint>_... files)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-test", type=int, help="zoo: evaluate on the first N test trajectories only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.run_dir.startswith(("zoo:", "pretrained:")):
            kind, _, target = args.run_dir.partition(":")
            if kind == "zoo" and looks_like_path(target) and not target.startswith("hf://"):
                raise ConfigError(
                    f"zoo:{target} names a path; zoo: takes a zoo name (zoo:fno_ns64) or a Hub name "
                    f"(zoo:hf://org/name), a local pretrained "
                    f"folder is evaluated with pretrained:{target} (unverified)"
                )
            if args.n_test is not None and args.n_test < 1:
                raise ConfigError(f"--n-test {args.n_test}: expected a positive number of test trajectories")
            if kind == "zoo":
                comparison = evaluate_zoo(target, args.n_test, args.device)
            else:
                comparison = evaluate_zoo(None, args.n_test, args.device, path=target)
            print("\n".join(comparison.lines()))
            return 0 if comparison.reproduced else 1
        evaluate_run(
            args.run_dir, args.data, args.resolution, args.checkpoint, args.device, args.overwrite_report
        )
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
