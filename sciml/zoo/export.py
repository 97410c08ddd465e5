"""From a training run to a pretrained folder: ``python -m sciml.zoo export RUN_DIR NAME``.

The run's config and checkpoint rebuild the model; its normalization, task and dataset recipe go into
``config.json``; the model is evaluated on freshly generated test trajectories (the recipe with a test
seed), and those numbers, with how and where it was trained, make the model card.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any

import torch

from sciml.assets import resolve_config
from sciml.config import to_dict
from sciml.datasets.recipes import Recipe, load_recipe
from sciml.errors import ConfigError
from sciml.models.registry import model_defined_loss
from sciml.training.config import RunConfig, load_config
from sciml.zoo.card import render_card
from sciml.zoo.evaluation import as_tensor_stats, evaluate_pretrained
from sciml.zoo.files import FORMAT_VERSION, read_json
from sciml.zoo.hub import register, zoo_root
from sciml.zoo.pretrained import PretrainedOperator
from sciml.zoo.weights import round_weights, storage_dtype

logger = logging.getLogger(__name__)

TEST_SEED_OFFSET = 1000


def _task(config: RunConfig) -> dict[str, Any]:
    d = config.data
    task: dict[str, Any] = {"mode": d.mode, "fields": d.fields}
    if d.mode == "window":
        task.update(t_in=d.t_in, t_out=d.t_out, stride=d.stride)
    else:
        task.update(input_time=d.input_time, output_time=d.output_time)
    return task


def _run_report(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "report" / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def pretrained_from_run(
    run_dir: str | Path,
    name: str,
    description: str = "",
    checkpoint: str = "best",
    n_test: int = 20,
    test_seed: int | None = None,
    command: str | None = None,
) -> PretrainedOperator:
    """Rebuild a run's trained model as a :class:`PretrainedOperator` with its full ``config.json``."""
    from sciml.train import restore_run

    run_dir = Path(run_dir)
    restored = restore_run(run_dir, checkpoint)
    normalized, config, bundle, state, path = (
        restored.model,
        restored.config,
        restored.data,
        restored.state,
        restored.checkpoint,
    )
    meta = bundle.metadata
    report = _run_report(run_dir)
    dataset: dict[str, Any] = {
        "split": {"train": config.data.train, "valid": config.data.valid, "test": config.data.test},
        "split_seed": config.data.split_seed,
        "train_trajectories": len(bundle.splits["train"]),
    }
    evaluation: dict[str, Any] = {"n_trajectories": n_test, "rollout_steps": config.eval.rollout_steps}
    recipe = load_recipe(config.data.recipe) if config.data.recipe is not None else None
    if recipe is not None and not isinstance(recipe, Recipe):
        # generated, but no Navier-Stokes test set to regenerate (e.g. DCDM's kind: poisson_ritz): the card
        # shows the generated file and the recipe that made it
        dataset["path"] = Path(bundle.path).name
        dataset["recipe_file"] = str(config.data.recipe)
    elif recipe is not None:
        dataset["recipe"] = to_dict(recipe)
        dataset["recipe_file"] = str(config.data.recipe)
        evaluation["seed"] = recipe.seed + TEST_SEED_OFFSET if test_seed is None else test_seed
    else:
        dataset["path"] = str(config.data.path)
    history = state.get("history", [])
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "model": {"name": config.model_name, "kwargs": config.model_kwargs},
        "context": {
            "in_channels": bundle.in_channels,
            "out_channels": bundle.out_channels,
            "grid_shape": list(meta.grid_shape),
            "domain_lengths": list(bundle.lengths),
            "periodic": [bool(p) for p in meta.periodic],
            "field_names": list(config.data.fields or meta.field_names),
        },
        "normalization": {
            key: as_tensor_stats(getattr(normalized, key)) for key in ("x_mean", "x_std", "y_mean", "y_std")
        },
        "task": _task(config),
        "dataset": dataset,
        "evaluation": evaluation,
        "training": {
            "command": command or f"python -m sciml.train {shlex.quote(str(run_dir / 'config.yaml'))}",
            "config": to_dict(config),
            "epochs": config.train.epochs,
            "checkpoint": path.name,
            "checkpoint_epoch": len(history),
            "best_valid_l2": min((h["valid_l2"] for h in history if "valid_l2" in h), default=None),
            "loss": "model-defined" if model_defined_loss(normalized) is not None else config.train.loss,
            "train_seconds": float(report.get("train_seconds", state.get("train_seconds", 0.0))),
            "train_samples_per_second": report.get("train_samples_per_second"),
            "environment": report.get("environment", {}),
            "run_test": report.get("test", {}),
        },
        "versions": {"torch": torch.__version__},
        "weights": {},
    }
    return PretrainedOperator(normalized.model, payload)


def export_run(
    run_dir: str | Path,
    name: str,
    out: str | Path | None = None,
    description: str = "",
    checkpoint: str = "best",
    n_test: int = 20,
    test_seed: int | None = None,
    command: str | None = None,
    progress: bool = True,
    weights_dtype: str = "float32",
) -> Path:
    """Export a run as the pretrained folder ``out/name`` (default: the zoo), evaluated and carded.

    The manifest of ``out`` (``manifest.json``) gets the folder's checksums, so ``out`` works as a zoo
    (``SCIML_ZOO=out``). With ``weights_dtype`` ``float16`` or ``bfloat16`` the real weights are stored in
    half precision: the card's metrics are those of the rounded model (what a user loads), and the test
    rel L2 of the float32 weights is measured on the same trajectories and recorded beside them
    (``half_precision`` in ``config.json``), so the card shows the error change.
    """
    storage_dtype(weights_dtype)  # a bad name fails before any work
    root = Path(out) if out is not None else zoo_root()
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"zoo export: {name!r} is not a valid model name (a plain folder name is expected)")
    model = pretrained_from_run(run_dir, name, description, checkpoint, n_test, test_seed, command)
    old_config = root / name / "config.json"
    if old_config.exists() and command is None:  # re-export: keep the command that trained it
        old_training = read_json(old_config).get("training")
        old_command = old_training.get("command") if isinstance(old_training, dict) else None
        if isinstance(old_command, str):
            model.config["training"]["command"] = old_command
    folder = store_in_zoo(model, root, name, weights_dtype, progress)
    logger.info("exported %s to %s", run_dir, folder)
    return folder


def store_in_zoo(
    model: PretrainedOperator, root: Path, name: str, weights_dtype: str = "float32", progress: bool = True
) -> Path:
    """Evaluate ``model`` on its fresh test set, store it as ``root/name`` in ``weights_dtype``, register it.

    With a half-precision ``weights_dtype`` the test errors are measured twice on the same trajectories:
    with the float32 weights, then rounded as they will be stored; the card's metrics are those of the
    rounded model (what a user loads) and ``half_precision`` in ``config.json`` records both means.
    """
    recipe = "recipe" in model.config["dataset"]
    # the float32 weights' error, measured before rounding, when the stored weights will be rounded
    full = evaluate_pretrained(model, progress=progress) if recipe and weights_dtype != "float32" else None
    round_weights(model.operator.model, weights_dtype)  # the card describes the model a user loads
    if recipe:
        model.config["metrics"] = evaluate_pretrained(model, progress=progress)
    else:
        logger.warning("%s: not trained on a flow recipe; the card has no regenerated test metrics", name)
    if full is not None:
        model.config["half_precision"] = {
            "dtype": weights_dtype,
            "rel_l2_float32": full["l2"]["mean"],
            "rel_l2_stored": model.config["metrics"]["l2"]["mean"],
            "complex_as_real": any(
                torch.is_tensor(t) and t.is_complex() for t in model.operator.model.state_dict().values()
            ),
        }
    folder = model.save_pretrained(root / name, card=render_card, weights_dtype=weights_dtype)
    register(folder, root)
    return folder


def convert_entry(name: str, weights_dtype: str, progress: bool = True) -> Path:
    """Store the zoo entry ``name`` again with its real weights in ``weights_dtype`` (e.g. ``float16``).

    The entry is loaded from the zoo (verified against its manifest; ``$SCIML_ZOO`` or ``models/``),
    evaluated on its card's test trajectories with the weights it has and rounded to ``weights_dtype``
    (:func:`store_in_zoo`), and replaced in place (atomically) with a card that states both errors. Only
    entries stored in float32 and with a regenerable test set can be converted, so the change of error is
    always measured.
    """
    from sciml.zoo import load

    storage_dtype(weights_dtype)  # a bad name fails before any work
    model = load(name)
    if "recipe" not in model.config["dataset"]:
        raise ConfigError(
            f"zoo convert {name}: no regenerable test set, so the error change cannot be measured"
        )
    stored = model.config.get("weights", {}).get("dtype", "float32")
    if stored != "float32":
        raise ConfigError(
            f"zoo convert {name}: its weights are stored in {stored} already (expected float32)"
        )
    folder = store_in_zoo(model, zoo_root(), name, weights_dtype, progress)
    logger.info("stored %s in %s: %s", name, weights_dtype, folder)
    return folder


def build_entry(
    config_path: str | Path,
    name: str | None = None,
    out: str | Path | None = None,
    run_root: str | Path = "runs/zoo",
    n_test: int = 20,
    overrides: list[str] | None = None,
) -> Path:
    """Train ``config_path`` with the shared Trainer and export the run as the zoo entry ``name``.

    ``name`` defaults to the config's file stem; the run goes to ``run_root/name``, and the card records
    ``python -m sciml.zoo build CONFIG`` as the command that made it.
    """
    from sciml.train import run

    config_path = resolve_config(config_path)  # a file, or a shipped config by name ("zoo/fno_ns64")
    name = name or config_path.stem
    config = load_config(config_path, overrides or [])
    run_dir = run(config, run_dir=Path(run_root) / name)
    command = f"python -m sciml.zoo build {config_path}" + "".join(f" {o}" for o in overrides or [])
    description = _leading_comment(config_path)
    return export_run(run_dir, name, out=out, description=description, n_test=n_test, command=command)


def _leading_comment(path: Path) -> str:
    """The comment block at the top of a YAML file as one line (the zoo entry's description)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines).removeprefix("Zoo entry:").strip()
