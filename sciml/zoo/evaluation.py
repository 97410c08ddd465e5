"""Evaluate a pretrained model on freshly generated test data: the numbers on its card, reproduced.

The test trajectories come from the model's own dataset recipe with the card's test seed (never a
training trajectory: trajectory ``i`` depends only on ``(seed, i)``). Errors are the same relative L2,
H1 and H^-1 errors the training reports use, per sample, then averaged per trajectory; windowed models
are also rolled out from each trajectory's first frames. A reduced evaluation (the first few test
trajectories) reproduces the card's per-trajectory values, which is how the test suite checks every entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

import sciml.datasets as sd
from sciml.datasets.generate import default_output_path, generate
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.training.config import DataConfig
from sciml.training.data import channel_indices, trajectory_samples
from sciml.training.report import evaluate_errors, evaluate_rollouts

logger = logging.getLogger(__name__)

ERROR_NAMES = ("l2", "h1", "h-1")
TASK_KEYS = ("mode", "fields", "input_time", "output_time", "t_in", "t_out", "stride")


def test_recipe(config: dict[str, Any], n_trajectories: int | None = None) -> Recipe:
    """The model's dataset recipe with the card's test seed and number of test trajectories."""
    evaluation, dataset = config.get("evaluation", {}), config.get("dataset", {})
    if "recipe" not in dataset:  # a file, or a recipe of another kind (e.g. DCDM's poisson_ritz)
        source = dataset.get("recipe_file") or dataset.get("path") or "an unknown file"
        raise ConfigError(
            f"{config.get('name', 'this model')}: no test set can be regenerated (trained on {source}, not a "
            "flow recipe); its card records the training run's held-out split instead: evaluate the run "
            "folder that trained it (python -m sciml.evaluate RUN_DIR)"
        )
    mapping = dict(dataset["recipe"])
    mapping["seed"] = int(evaluation["seed"])
    mapping["n_trajectories"] = int(n_trajectories or evaluation["n_trajectories"])
    mapping["batch_size"] = min(int(mapping.get("batch_size", 16)), mapping["n_trajectories"])
    return Recipe.from_mapping(mapping)


def test_samples(config: dict[str, Any], source: Any) -> Dataset:
    """Cut the model's samples (its task: initial-to-final or windows, selected fields) from ``source``."""
    task = {k: v for k, v in config["task"].items() if k in TASK_KEYS}
    return trajectory_samples(source, DataConfig(path=str(source.metadata.path), **task))


def evaluate_pretrained(
    model: Any,
    n_trajectories: int | None = None,
    batch_size: int = 8,
    generate_device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Test errors of a :class:`~sciml.zoo.pretrained.PretrainedOperator` on its freshly generated test set.

    Returns ``{"n_trajectories", "seed", "l2"/"h1"/"h-1": {mean, std, median}, "per_trajectory":
    {error: [...]}, "rollout_l2": [...] (windowed models)}``.
    """
    config = model.config
    recipe = test_recipe(config, n_trajectories)
    path = default_output_path(recipe)
    if not path.exists():
        logger.info(
            "generating %d test trajectories of %s (seed %d)", recipe.n_trajectories, recipe.name, recipe.seed
        )
        generate(recipe, path, device=generate_device, progress=progress, reuse_existing=True)
    source = sd.open(path)
    try:
        samples = test_samples(config, source)
        errors = evaluate_errors(model, samples, source.metadata, batch_size=batch_size, per_sample=True)
        n_traj = len(source)
        per_trajectory = {
            name: np.asarray(errors["per_sample"][name]).reshape(n_traj, -1).mean(axis=1).tolist()
            for name in ERROR_NAMES
        }
        result: dict[str, Any] = {
            "n_trajectories": n_traj,
            "seed": recipe.seed,
            "n_samples": errors["n_samples"],
            **{name: errors[name] for name in ERROR_NAMES},
            "per_trajectory": per_trajectory,
        }
        steps = int(config.get("evaluation", {}).get("rollout_steps", 0))
        task = config["task"]
        if task["mode"] == "window" and steps > 0:
            curves = evaluate_rollouts(
                model,
                source,
                np.arange(n_traj),
                int(task["t_in"]),
                int(task["t_out"]),
                steps,
                source.metadata,
                channel_indices(source.metadata, task.get("fields")),
            )
            result["rollout_l2"] = curves.mean(0).tolist()
            result["per_trajectory"]["rollout_final_l2"] = curves[:, -1].tolist()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return result


def compare_with_card(measured: dict[str, Any], card: dict[str, Any], rtol: float = 0.02) -> list[str]:
    """Every card value the measurement misses by more than ``rtol`` (relative), as readable lines.

    The per-trajectory values of the trajectories both hold (the first ``min(n, card's n)``) are compared;
    with the card's full set, the means are compared too.
    """
    misses = []
    n = measured["n_trajectories"]
    for name, values in measured["per_trajectory"].items():
        reference = card.get("per_trajectory", {}).get(name)
        if reference is None:
            misses.append(f"{name}: not on the card")
            continue
        for i, (got, want) in enumerate(zip(values, reference[:n], strict=False)):
            if abs(got - want) > rtol * abs(want):
                misses.append(f"{name}[trajectory {i}]: measured {got:.6g}, card {want:.6g}")
    if n == card.get("n_trajectories"):
        for name in ERROR_NAMES:
            got, want = measured[name]["mean"], card[name]["mean"]
            if abs(got - want) > rtol * abs(want):
                misses.append(f"{name} mean: measured {got:.6g}, card {want:.6g}")
    return misses


@dataclass
class CardComparison:
    """A measurement beside its card, like with like: both averaged over the same test trajectories.

    Attributes:
        name: the model.
        seed: the test seed of the trajectories.
        n_measured: trajectories measured.
        n_card: trajectories the card's values were measured on.
        n_compared: trajectories both hold (the first ones of the card's test set).
        rows: ``{error: (measured mean, card mean)}`` over the compared trajectories; the card value is
            ``None`` where the card holds nothing comparable.
        misses: every value that differs by more than ``rtol`` (:func:`compare_with_card`, then the rows).
        rtol: the relative tolerance.
    """

    name: str
    seed: int
    n_measured: int
    n_card: int
    n_compared: int
    rows: dict[str, tuple[float, float | None]]
    misses: list[str]
    rtol: float

    @property
    def reproduced(self) -> bool:
        """Whether every compared value is within ``rtol`` of the card."""
        return not self.misses

    def lines(self) -> list[str]:
        """The table and the verdict, as printed by ``python -m sciml.evaluate zoo:NAME``."""
        subset = (
            f"the card's values for the same {self.n_compared} trajectories (the card: {self.n_card})"
            if self.n_compared < self.n_card
            else f"the card's values for the same {self.n_card} trajectories"
        )
        lines = [
            f"{self.name}: {self.n_measured} fresh test trajectories (seed {self.seed}), "
            f"compared with {subset}",
            f"{'error':<16} {'measured':>10} {'card':>10} {'diff':>8}",
        ]
        for error, (got, want) in self.rows.items():
            if want is None:
                lines.append(f"{error:<16} {got:>10.5g} {'n/a':>10} {'':>8}")
            else:
                lines.append(f"{error:<16} {got:>10.5g} {want:>10.5g} {(got - want) / abs(want):>+8.1%}")
        scope = (
            f"on the first {self.n_compared} of the card's {self.n_card} test trajectories, trajectory by "
            "trajectory"
            if self.n_compared < self.n_card
            else f"on all {self.n_card} of the card's test trajectories"
        )
        if self.reproduced:
            lines.append(f"card metrics reproduced within {self.rtol:.0%} {scope}")
        else:
            lines.append(f"card metrics NOT reproduced within {self.rtol:.0%} {scope}:")
            lines += [f"  {miss}" for miss in self.misses]
        return lines


def compare_like_with_like(
    name: str, measured: dict[str, Any], card: dict[str, Any], rtol: float = 0.02
) -> CardComparison:
    """Compare ``measured`` (:func:`evaluate_pretrained`) with ``card`` over the trajectories both hold.

    A reduced evaluation (``--n-test 2``) is set against the card's per-trajectory values of the same
    trajectories, never against the card's mean over its full set; a value the card does not hold for
    those trajectories is shown as ``n/a`` and counts as a miss, so the verdict can only claim what the
    table shows.
    """
    n_measured = int(measured["n_trajectories"])
    n_card = int(card.get("n_trajectories", n_measured))
    n = min(n_measured, n_card)
    misses = compare_with_card(measured, card, rtol) if card else ["the model has no card metrics"]
    rows: dict[str, tuple[float, float | None]] = {}
    for error, values in measured["per_trajectory"].items():
        got = float(np.mean(values[:n]))
        reference = card.get("per_trajectory", {}).get(error)
        if reference is not None and len(reference) >= n:
            want: float | None = float(np.mean(reference[:n]))
        elif n_measured == n_card and error in card:
            want = float(card[error]["mean"])
        else:
            want = None
        rows[error] = (got, want)
        if want is None:
            if not any(miss.startswith(f"{error}:") for miss in misses):
                misses.append(f"{error}: the card holds no value for these {n} trajectories")
        elif abs(got - want) > rtol * abs(want):
            misses.append(f"{error} mean over {n} trajectories: measured {got:.6g}, card {want:.6g}")
    return CardComparison(
        name=name,
        seed=int(measured["seed"]),
        n_measured=n_measured,
        n_card=n_card,
        n_compared=n,
        rows=rows,
        misses=misses,
        rtol=rtol,
    )


def as_tensor_stats(values: torch.Tensor) -> list[float]:
    """Normalization statistics as a JSON list."""
    return [float(v) for v in values.reshape(-1)]
