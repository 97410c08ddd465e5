"""Test data at another resolution than training (zero-shot super-resolution).

For a recipe the test trajectories are solved again and stored at the new resolution (the same initial
conditions, a solver grid at least as fine): true data at that resolution. For a file, the test samples
are resampled by Fourier interpolation, which is reported as such: it adds no finer scales.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

import sciml.datasets as sd
from sciml.config import to_dict
from sciml.datasets.resample import fourier_resample
from sciml.errors import ConfigError

logger = logging.getLogger(__name__)


class Resampled(Dataset):
    """Samples of another dataset with ``x`` and ``y`` Fourier-resampled to ``resolution``."""

    def __init__(self, samples: Dataset, resolution: int) -> None:
        self.samples = samples
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.samples[i]
        return {
            **item,
            "x": fourier_resample(item["x"], (self.resolution, self.resolution)),
            "y": fourier_resample(item["y"], (self.resolution, self.resolution)),
        }


def test_set_at_resolution(config: Any, data: Any, resolution: int) -> tuple[Dataset, str]:
    """The test split at ``resolution`` and a note saying how it was obtained."""
    if config.data.recipe is None:
        return Resampled(data.test, resolution), "fourier-resampled test samples (no finer scales)"
    from sciml.datasets.generate import default_output_path, generate
    from sciml.datasets.recipes import Recipe
    from sciml.training.data import build_data, trajectory_samples

    recipe = Recipe.from_yaml(config.data.recipe)
    mapping = to_dict(recipe)
    solver_resolution = max(recipe.solver.resolution, resolution)
    if solver_resolution % resolution:
        raise ConfigError(
            f"eval.resolutions: {resolution} does not divide the solver grid {solver_resolution}"
        )
    mapping["solver"]["resolution"] = solver_resolution
    mapping["output"]["resolution"] = resolution
    mapping["name"] = f"{recipe.name}_r{resolution}"
    finer = Recipe.from_mapping(mapping)
    test_indices = np.asarray(data.splits["test"])
    first = int(test_indices[0]) if len(test_indices) else 0
    if len(test_indices) and np.array_equal(test_indices, np.arange(first, first + len(test_indices))):
        # each trajectory depends only on (seed, index): solve the test trajectories alone
        path = default_output_path(finer, first_index=first)
        if not path.exists():
            logger.info(
                "solving the %d test trajectories again at %d^2 (zero-shot)", len(test_indices), resolution
            )
            generate(finer, path, n_trajectories=len(test_indices), first_index=first, reuse_existing=True)
        source = sd.open(path)
        return trajectory_samples(source, config.data), (
            f"test trajectories solved again at {solver_resolution}^2, stored at {resolution}^2"
        )
    path = default_output_path(finer)
    if not path.exists():
        logger.info("solving the recipe again at %d^2 for the zero-shot evaluation", resolution)
        generate(finer, path, reuse_existing=True)
    data_config = copy.deepcopy(config.data)
    data_config.recipe, data_config.path = None, str(path)
    other = build_data(data_config, path=path)
    return other.test, f"recipe solved at {solver_resolution}^2, stored at {resolution}^2"
