"""``python -m sciml.train CONFIG.yaml [section.key=value ...] [--resume] [--run-dir DIR]``.

Reads the run config, prepares the data (generating a recipe's dataset into the cache on first use),
builds the model from the registry, trains it with the shared :class:`~sciml.training.trainer.Trainer`
and writes the run directory: ``config.yaml`` (resolved), ``metrics.jsonl`` (one row per epoch),
``checkpoints/{last,best}.pt`` and the evaluation report (``report/metrics.json`` and PNGs).

Multi-GPU / multi-node: ``torchrun --nproc_per_node=G -m sciml.train CONFIG.yaml``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from sciml.atomic import write_text_atomically
from sciml.cli import program
from sciml.errors import SciMLError
from sciml.models.registry import ModelContext, build_model
from sciml.models.wrappers import Normalized
from sciml.training.config import RunConfig, load_config
from sciml.training.data import DataBundle, build_data, resolve_data_path
from sciml.training.distributed import DistributedContext, setup, teardown, watch_collectives
from sciml.training.trainer import Trainer, check_device_available

logger = logging.getLogger("sciml.train")


def default_run_dir(config: RunConfig) -> Path:
    """``runs/<config name>/<train.name or a UTC timestamp>``."""
    name = config.train.name or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / config.name / name


def build_operator(config: RunConfig, data: DataBundle) -> torch.nn.Module:
    """The registry's model for this data, wrapped with the data's normalization."""
    meta = data.metadata
    context = ModelContext(
        in_channels=data.in_channels,
        out_channels=data.out_channels,
        grid_shape=tuple(meta.grid_shape),
        domain_lengths=data.lengths,
        periodic=tuple(meta.periodic),
    )
    torch.manual_seed(config.train.seed)
    model = build_model(config.model_name, config.model_kwargs, context)
    return Normalized(model, *data.x_stats, *data.y_stats)


@dataclass
class RestoredRun:
    """A finished run read back: its trained model, config, data and the checkpoint the weights came from."""

    model: torch.nn.Module
    config: RunConfig
    data: DataBundle
    checkpoint: Path
    state: dict


def restore_run(run_dir: str | Path, checkpoint: str = "last", base_dir: Path | None = None) -> RestoredRun:
    """A finished run's model (the :class:`~sciml.models.wrappers.Normalized` operator it trained, on the
    CPU, in eval mode) with its weights from ``checkpoint`` (``"last"`` or ``"best"``; ``last.pt`` when the
    run has no ``best.pt``), its config and its data (a relative data path or recipe is resolved against
    ``base_dir``, default the working directory).

    Raises :class:`~sciml.training.checkpoint.CheckpointError` when the weights do not fit the config.
    """
    from sciml.training.checkpoint import CheckpointError, load_checkpoint

    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.exists():
        path = run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    bundle = build_data(config.data, path=resolve_data_path(config.data, base_dir))
    model = build_operator(config, bundle)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        where = run_dir / "config.yaml"
        raise CheckpointError(f"{path}: weights do not fit the model of {where} ({err})") from err
    return RestoredRun(model.eval(), config, bundle, path, state)


def _agree_on_run_dir(run_dir: Path, context: DistributedContext) -> Path:
    """Every process uses rank 0's run directory (timestamps may differ between processes)."""
    if not context.enabled:
        return run_dir
    holder = [str(run_dir)]
    dist.broadcast_object_list(holder, src=0)
    return Path(holder[0])


def run(config: RunConfig, run_dir: Path | None = None, base_dir: Path | None = None) -> Path:
    """Train and evaluate one run; returns its directory.

    Nothing is written into the run directory until the data, the model and the trainer are built and a
    resume is known to fit the run (same model, data and optimizer: see
    :data:`~sciml.training.config.RESUME_MAY_CHANGE`). A run directory this call created is removed again
    when training fails before its first checkpoint, so failed runs leave no stray folders.
    """
    check_device_available(config.train.device)
    context = setup(config.train.device, timeout_s=config.train.ddp_timeout_s)
    try:
        run_dir = _agree_on_run_dir(Path(run_dir or config.train.run_dir or default_run_dir(config)), context)
        if context.is_main:
            resolve_data_path(config.data, base_dir)  # rank 0 generates missing data first
        if context.enabled:
            dist.barrier()
        data = build_data(config.data, base_dir, unroll=config.train.unroll)
        model = build_operator(config, data)
        n_params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
        logger.info(
            "%s: %s with %d real parameters, data %s", config.name, config.model_name, n_params, data.path
        )
        trainer = Trainer(
            model, config, data.train, data.valid, run_dir=run_dir, context=context, metadata=data.metadata
        )
        trainer.try_resume()  # reads only: refuses a checkpoint of another config before anything is written
        created = _first_missing_folder(run_dir) if context.is_main else None
        if context.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomically(run_dir / "config.yaml", config.to_yaml())
        try:
            with watch_collectives(context, config.train.ddp_timeout_s):
                trainer.fit()
        except BaseException:
            if created is not None and trainer.committed is None:
                shutil.rmtree(created, ignore_errors=True)
                logger.info("removed %s: the run failed before its first checkpoint", created)
            raise
        if context.is_main:
            from sciml.training.report import write_report

            before = _file_versions(run_dir / "report")
            results = write_report(run_dir, trainer.raw_model, config, data, trainer)
            after = _file_versions(run_dir / "report")
            written = sorted(path for path, version in after.items() if before.get(path) != version)
            logger.info("%s", run_summary(config, run_dir, results, written))
        return run_dir
    finally:
        teardown()


def _file_versions(folder: Path) -> dict[Path, tuple[int, int]]:
    """Inode and modification time of each file in ``folder``: a file written anew changes them."""
    if not folder.is_dir():
        return {}
    return {
        path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir() if path.is_file()
    }


def describe_test_errors(results: dict) -> list[str]:
    """One line per evaluated resolution of a report's ``results``: the training resolution, then each
    zero-shot one with how its test data were made."""
    lines = []
    for resolution, errors in results["test"].items():
        how = f"zero-shot, {errors['source']}" if "source" in errors else "training resolution"
        lines.append(
            f"  test @{resolution} ({how}): rel L2 {errors['l2']['mean']:.4g}  H1 {errors['h1']['mean']:.4g}"
            f"  H-1 {errors['h-1']['mean']:.4g}  ({errors['n_samples']} samples)"
        )
    return lines


def run_summary(config: RunConfig, run_dir: Path, results: dict, written: list[Path]) -> str:
    """The end-of-run summary: the run folder, the test errors at every evaluated resolution (the training
    one first, then the zero-shot ones with how their data were made) and the files the report wrote."""
    lines = [f"{config.name} finished: run folder {run_dir}", *describe_test_errors(results)]
    if results.get("rollout_l2"):
        curve = results["rollout_l2"]
        lines.append(
            f"  rollout rel L2 over {len(curve)} predicted frames: {curve[0]:.4g} (first), "
            f"{curve[-1]:.4g} (last)"
        )
    reports = [path for path in written if path.suffix != ".png"]
    figures = [path for path in written if path.suffix == ".png"]
    lines.append(f"  report: {', '.join(map(str, reports)) or 'none written'}")
    lines.append(f"  figures: {', '.join(map(str, figures)) or 'none (eval.plots is off)'}")
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt"))
    lines.append(f"  checkpoints: {', '.join(map(str, checkpoints))}")
    return "\n".join(lines)


def _first_missing_folder(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what ``mkdir(parents=True)`` creates)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.train"), description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", help="run config YAML, e.g. configs/quickstart.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value (e.g. optim.lr=3e-4 train.epochs=5)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    parser.add_argument("--run-dir", help="run directory (default runs/<config>/<train.name or timestamp>)")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, args.overrides)
        if args.resume:
            config.train.resume = "auto"
            if args.run_dir is None and config.train.run_dir is None and config.train.name is None:
                raise SciMLError("--resume needs the run to continue: give --run-dir or train.name")
        run(config, Path(args.run_dir) if args.run_dir else None)
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
