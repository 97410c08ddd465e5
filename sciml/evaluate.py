"""``python -m sciml.evaluate RUN_DIR [--data PATH] [--resolution R ...] [--checkpoint best|last]``.

Rebuilds a trained run's model from its ``config.yaml`` and checkpoint and evaluates it on the test split
of its data, or of another file (``--data``), at the training resolution and at any ``--resolution``
the model supports (zero-shot super-resolution), then writes the report again (``RUN_DIR/report``).

``python -m sciml.evaluate zoo:NAME [--n-test N]`` evaluates a zoo model (verified against the zoo's
manifest) on freshly generated test trajectories of its recipe and checks the numbers on its card (within
2%, per trajectory); the exit code is 1 when they do not reproduce. ``pretrained:FOLDER`` does the same for
a local pretrained folder, loaded explicitly and reported as unverified (``zoo:`` takes names only).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

from sciml.errors import ConfigError, SciMLError
from sciml.training.checkpoint import CheckpointError, load_checkpoint
from sciml.training.config import load_config
from sciml.training.data import build_data
from sciml.training.distributed import resolve_device
from sciml.zoo.hub import looks_like_path

logger = logging.getLogger("sciml.evaluate")


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    resolutions: list[int] | None = None,
    checkpoint: str = "best",
    device: str = "auto",
) -> dict:
    """Evaluate a run directory; returns the report's metrics."""
    from sciml.train import build_operator
    from sciml.training.report import write_report

    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    if data is not None:
        config.data.path, config.data.recipe = data, None
    if resolutions:
        config.eval.resolutions = list(resolutions)
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists():
        path = run_dir / "checkpoints" / "last.pt"
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
    return write_report(run_dir, model, config, bundle, history)


def evaluate_zoo(
    name: str | None = None,
    n_test: int | None = None,
    device: str = "auto",
    *,
    path: str | Path | None = None,
) -> list[str]:
    """Evaluate a zoo model or a local folder (``path=``, unverified); returns the card values it misses."""
    from sciml.zoo import load
    from sciml.zoo.evaluation import ERROR_NAMES, compare_with_card, evaluate_pretrained

    model = load(name, path=path, device=resolve_device(device))
    measured = evaluate_pretrained(model, n_trajectories=n_test)
    card = model.metrics
    print(f"{model.name}: {measured['n_trajectories']} fresh test trajectories (seed {measured['seed']})")
    print(f"{'error':<6} {'measured':>10} {'card':>10}")
    for name in ERROR_NAMES:
        print(
            f"{name:<6} {measured[name]['mean']:>10.5g} {card.get(name, {}).get('mean', float('nan')):>10.5g}"
        )
    if not card:
        return ["the model has no card metrics"]
    return compare_with_card(measured, card)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m sciml.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "run_dir",
        help="a run directory written by python -m sciml.train, zoo:NAME, or pretrained:FOLDER (unverified)",
    )
    parser.add_argument("--data", help="evaluate on this data file instead of the run's own")
    parser.add_argument("--resolution", type=int, action="append", help="extra test resolution (repeatable)")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-test", type=int, help="zoo: evaluate on the first N test trajectories only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.run_dir.startswith(("zoo:", "pretrained:")):
            kind, _, target = args.run_dir.partition(":")
            if kind == "zoo" and looks_like_path(target):
                raise ConfigError(
                    f"zoo:{target} names a path; zoo: takes a zoo name (zoo:fno_ns64), a local pretrained "
                    f"folder is evaluated with pretrained:{target} (unverified)"
                )
            if kind == "zoo":
                misses = evaluate_zoo(target, args.n_test, args.device)
            else:
                misses = evaluate_zoo(None, args.n_test, args.device, path=target)
            for miss in misses:
                logger.error("does not reproduce the card: %s", miss)
            if not misses:
                print("card metrics reproduced within 2%")
            return 1 if misses else 0
        evaluate_run(args.run_dir, args.data, args.resolution, args.checkpoint, args.device)
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
