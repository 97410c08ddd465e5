"""Recipes of ``kind: poisson_ritz``: DCDM's training data, right-hand sides from Ritz vectors of ``A``.

For each scene of the recipe (:func:`sciml.operators.poisson.make_scene`), ``n_ritz`` Lanczos steps on the
scene's SPD matrix ``A`` give Ritz vectors, and ``samples_per_scene`` right-hand sides are drawn from them
weighted toward the low end of the spectrum (:func:`sciml.solvers.dcdm.ritz_right_hand_sides`, as Kaneda et
al. make theirs: weight ``low_weight`` on the lowest ``n_ritz / 2 + theta`` vectors). The file is a
``torch.save`` of ``{"x": (N, 2, *grid), "y": (N, 1, *grid)}`` (float32): ``x`` holds the right-hand side
``b`` (unit RMS on the fluid cells, 0 elsewhere) and the cell codes, ``y`` the exact solution ``A^-1 b``
(sparse LU), read by the ``neuralop_pt`` reader with :data:`READER_OPTIONS`. Example
(``datasets/poisson_ritz64.yaml``)::

    name: poisson_ritz64
    kind: poisson_ritz
    shape: [64, 64]
    scenes: [{kind: empty}, {kind: boxes, seed: 1}, {kind: blobs, seed: 2}]
    n_ritz: 1000
    theta: 50
    samples_per_scene: 500
    seed: 0

The cache file name holds a hash of the recipe, so a changed recipe generates a new file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch
import yaml

from sciml.atomic import write_atomically
from sciml.config import from_dict, to_dict
from sciml.datasets.recipes import SAFE_NAME
from sciml.datasets.writers.base import output_lock
from sciml.errors import ConfigError
from sciml.operators.poisson import FLUID, SCENE_KINDS, laplacian_matrix, make_scene
from sciml.solvers.dcdm import lanczos_ritz_vectors, ritz_right_hand_sides

logger = logging.getLogger(__name__)

KIND = "poisson_ritz"
"""The ``kind`` key of these recipes (Navier-Stokes recipes have none)."""

READER_OPTIONS: dict[str, Any] = {
    "channel_dim": 1,
    "input_names": ["b", "cells"],
    "output_names": ["solution"],
    "periodic": False,
}
"""Options of the ``neuralop_pt`` reader for these files (used when ``data.options`` is not given)."""


@dataclass
class SceneSection:
    """One training scene: :data:`~sciml.operators.poisson.SCENE_KINDS` kind and seed."""

    kind: str = "empty"
    seed: int = 0


@dataclass
class PoissonRitzRecipe:
    """DCDM training data: scenes, Lanczos steps, spectrum weighting, sample count and seed."""

    name: str
    shape: list[int]
    scenes: list[SceneSection] = field(default_factory=lambda: [SceneSection()])
    kind: str = KIND
    n_ritz: int = 1000
    theta: int = 50
    low_weight: float = 9.0
    samples_per_scene: int = 500
    air_layers: int = 1
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not SAFE_NAME.fullmatch(self.name):  # a cache file name
            raise ConfigError(
                f"recipe name {self.name!r} is not a plain file name: expected letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        where = f"recipe {self.name}"
        if self.kind != KIND:
            raise ConfigError(f"{where}: kind must be {KIND!r}, got {self.kind!r}")
        if len(self.shape) not in (2, 3) or min(self.shape) < 8:
            raise ConfigError(f"{where}: shape must be 2 or 3 sizes >= 8, got {self.shape}")
        for scene in self.scenes:
            if scene.kind not in SCENE_KINDS:
                raise ConfigError(f"{where}: scenes: kind {scene.kind!r} is not one of {list(SCENE_KINDS)}")
        if not self.scenes:
            raise ConfigError(f"{where}: scenes must list at least one scene")
        if self.n_ritz < 2 or self.samples_per_scene < 1:
            raise ConfigError(
                f"{where}: n_ritz >= 2 and samples_per_scene >= 1 expected, got {self.n_ritz}, "
                f"{self.samples_per_scene}"
            )

    def to_yaml(self) -> str:
        """The recipe as YAML text."""
        return yaml.safe_dump(to_dict(self), sort_keys=False)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "recipe") -> PoissonRitzRecipe:
        """Build and validate a recipe from a mapping (strict: unknown keys are errors)."""
        return from_dict(cls, data, where)


def default_output_path(recipe: PoissonRitzRecipe) -> Path:
    """The cache file of a recipe: its name and a hash of its content."""
    from sciml.datasets.generate import default_cache_dir

    digest = hashlib.sha256(recipe.to_yaml().encode()).hexdigest()[:8]
    return default_cache_dir() / f"{recipe.name}_{digest}.pt"


def scene_samples(recipe: PoissonRitzRecipe, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` arrays of scene ``index`` of the recipe: ``(S, 2, *grid)`` and ``(S, 1, *grid)``."""
    spec = recipe.scenes[index]
    cells = make_scene(spec.kind, tuple(recipe.shape), spec.seed, recipe.air_layers)
    A = laplacian_matrix(cells)
    n_ritz = min(recipe.n_ritz, A.shape[0])
    seed = recipe.seed * 1000 + index
    values, vectors = lanczos_ritz_vectors(A, n_ritz, seed=seed)
    rhs = ritz_right_hand_sides(
        values, vectors, recipe.samples_per_scene, seed=seed, theta=recipe.theta, low_weight=recipe.low_weight
    )
    solutions = spla.splu(A.tocsc()).solve(np.ascontiguousarray(rhs.T)).T
    fluid = (cells == FLUID).ravel()
    n = rhs.shape[0]
    x = np.zeros((n, 2, cells.size), dtype=np.float32)
    y = np.zeros((n, 1, cells.size), dtype=np.float32)
    x[:, 0, fluid] = rhs
    x[:, 1] = cells.ravel()
    y[:, 0, fluid] = solutions
    return x.reshape(n, 2, *cells.shape), y.reshape(n, 1, *cells.shape)


def generate(recipe: PoissonRitzRecipe, path: str | Path | None = None) -> Path:
    """Generate the recipe's file (atomically, under a lock); returns its path."""
    path = Path(path) if path is not None else default_output_path(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(path):
        if path.exists():
            return path
        parts = [scene_samples(recipe, i) for i in range(len(recipe.scenes))]
        logger.info(
            "%s: %d scenes of %d samples generated", recipe.name, len(parts), recipe.samples_per_scene
        )
        tensors = {
            "x": torch.from_numpy(np.concatenate([p[0] for p in parts])),
            "y": torch.from_numpy(np.concatenate([p[1] for p in parts])),
        }
        write_atomically(path, lambda fh: torch.save(tensors, fh))
    logger.info("wrote %s", path)
    return path


def resolve(recipe: PoissonRitzRecipe, generate_missing: bool = True) -> Path:
    """The cache file of a recipe (generated when missing and ``generate_missing``)."""
    path = default_output_path(recipe)
    if not path.exists() and generate_missing:
        logger.info("generating %s into the cache (%s)", recipe.name, path)
        generate(recipe, path)
    return path
