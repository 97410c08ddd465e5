"""From the ``data`` section of a run config to train/valid/test sample datasets.

The data are a file in any format ``sciml.datasets.open`` reads, or a recipe generated into the cache
on first use. Trajectories are split into train/valid/test (never windows), samples are cut in the
configured mode, and normalization statistics are computed on the training trajectories only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

import sciml.datasets as sd
from sciml.datasets import poisson_ritz
from sciml.datasets.base import PairDataset, TrajectoryDataset
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.normalization import FieldNormalizer
from sciml.datasets.remote import is_url, local_path
from sciml.datasets.windows import InitialToFinalDataset, TimeWindowDataset, split_by_trajectory
from sciml.errors import ConfigError
from sciml.training.config import DataConfig

logger = logging.getLogger(__name__)


@dataclass
class DataBundle:
    """The three splits, the source metadata and the normalization of inputs and outputs."""

    train: Dataset
    valid: Dataset | None
    test: Dataset | None
    metadata: DatasetMetadata
    in_channels: int
    out_channels: int
    x_stats: tuple[torch.Tensor, torch.Tensor]
    y_stats: tuple[torch.Tensor, torch.Tensor]
    source: Any
    path: Path | str  # a local file, or a URL
    splits: dict[str, np.ndarray]

    @property
    def lengths(self) -> tuple[float, ...]:
        """Box lengths of the grid (1 per axis when the file does not say)."""
        return tuple(self.metadata.domain_lengths) or (1.0,) * len(self.metadata.grid_shape)


def resolve_data_path(
    cfg: DataConfig, base_dir: Path | None = None, generate_missing: bool = True
) -> Path | str:
    """The data file of a config: ``path`` as given, or the cache file of ``recipe`` (generated if absent).

    A remote URL (``https://``, ``s3://``, ``hf://``, ...) is returned unchanged, as a string; a ``file://``
    URL as its local path.
    """
    base = base_dir or Path.cwd()
    if cfg.path is not None:
        if is_url(cfg.path):
            return local_path(cfg.path) or cfg.path
        p = Path(cfg.path)
        return p if p.is_absolute() or p.exists() else base / p
    from sciml.datasets.generate import default_output_path, generate

    recipe = _recipe(cfg, base)
    if isinstance(recipe, poisson_ritz.PoissonRitzRecipe):  # DCDM's data (sciml.datasets.poisson_ritz)
        return poisson_ritz.resolve(recipe, generate_missing)
    path = default_output_path(recipe)
    if not path.exists() and generate_missing:
        logger.info("generating %s into the cache (%s)", recipe.name, path)
        generate(recipe, path, reuse_existing=True)
    return path


def _recipe(cfg: DataConfig, base: Path) -> Any:
    """The recipe of ``cfg`` (a file here or in ``base``, else a shipped recipe's name), of any kind."""
    from sciml.datasets.recipes import load_recipe

    recipe_path = Path(str(cfg.recipe))
    if not recipe_path.exists() and not recipe_path.is_absolute() and (base / recipe_path).exists():
        recipe_path = base / recipe_path
    return load_recipe(recipe_path)


def reader_options(cfg: DataConfig, base_dir: Path | None = None) -> dict[str, Any]:
    """Keyword arguments of the data file's reader: those a ``poisson_ritz`` recipe's files need, updated
    by the config's own ``data.options`` (which take precedence)."""
    options: dict[str, Any] = {}
    if cfg.recipe is not None and isinstance(
        _recipe(cfg, base_dir or Path.cwd()), poisson_ritz.PoissonRitzRecipe
    ):
        options.update(poisson_ritz.READER_OPTIONS)
    options.update(cfg.options or {})
    return options


def channel_indices(metadata: DatasetMetadata, fields: list[str] | None) -> list[int] | None:
    """Channel numbers of the selected field names (``None``: all channels)."""
    if fields is None:
        return None
    names = list(metadata.field_names)
    missing = [f for f in fields if f not in names]
    if missing:
        raise ConfigError(f"data.fields: {missing} not in the file's fields {names}")
    return [names.index(f) for f in fields]


class ChannelSelection(Dataset):
    """Keep only some channels of each frame of ``x`` and ``y`` (fields selected by the config)."""

    def __init__(self, samples: Dataset, channels: list[int], n_channels: int, t_in: int, t_out: int) -> None:
        self.samples = samples
        self.x_index = [t * n_channels + c for t in range(t_in) for c in channels]
        self.y_index = [t * n_channels + c for t in range(t_out) for c in channels]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.samples[i]
        return {**item, "x": item["x"][self.x_index], "y": item["y"][self.y_index]}


def trajectory_samples(
    source: TrajectoryDataset, cfg: DataConfig, indices: np.ndarray | None = None
) -> Dataset:
    """The samples of ``cfg`` (initial-to-final pairs or time windows, selected fields) of some trajectories.

    ``indices`` are trajectory numbers of ``source`` (all when ``None``).
    """
    if cfg.mode == "initial_to_final":
        samples: Dataset = InitialToFinalDataset(
            source, cfg.input_time, cfg.output_time, trajectory_indices=indices
        )
        t_in = t_out = 1
    elif cfg.mode == "window":
        t_in, t_out = cfg.t_in, cfg.t_out
        samples = TimeWindowDataset(source, t_in, t_out, stride=cfg.stride, trajectory_indices=indices)
    else:
        raise ConfigError(f"data.mode: {cfg.mode!r} does not cut samples from trajectories")
    channels = channel_indices(source.metadata, cfg.fields)
    if channels is None:
        return samples
    return ChannelSelection(samples, channels, source.metadata.n_channels, t_in, t_out)


def build_data(
    cfg: DataConfig, base_dir: Path | None = None, path: Path | str | None = None, unroll: int = 1
) -> DataBundle:
    """Open the data, split by trajectory, cut samples and fit the normalization on the training split.

    ``unroll > 1`` (windowed data; the Trainer's ``train.unroll``): training windows carry ``unroll`` times
    ``t_out`` target frames, for a model of ``t_out`` output frames rolled out ``unroll`` steps; the
    validation and test windows, the normalization and ``out_channels`` stay those of ``t_out``.
    """
    path = path or resolve_data_path(cfg, base_dir)
    source = sd.open(path, format=cfg.format, **reader_options(cfg, base_dir))
    meta = source.metadata
    splits = split_by_trajectory(
        len(source),
        fractions=(cfg.train, cfg.valid, cfg.test),
        seed=cfg.split_seed,
        shuffle=cfg.shuffle_split,
    )
    if isinstance(source, PairDataset):
        if cfg.mode != "pairs":
            raise ConfigError(f"data.mode: {path} holds input/output pairs; use mode: pairs")
        parts = {name: torch.utils.data.Subset(source, idx.tolist()) for name, idx in splits.items()}
        t_in = t_out = 1
        channels = channel_indices(meta, cfg.fields)
        if channels is not None:
            n = meta.n_channels
            parts = {name: ChannelSelection(ds, channels, n, 1, 1) for name, ds in parts.items()}
    else:
        if not isinstance(source, TrajectoryDataset):
            raise ConfigError(f"{path}: unsupported dataset type {type(source).__name__}")
        if cfg.mode == "pairs":
            raise ConfigError(f"data.mode: {path} holds trajectories; use mode initial_to_final or window")
        parts = {name: trajectory_samples(source, cfg, idx) for name, idx in splits.items()}
        if unroll > 1:
            if cfg.mode != "window":
                raise ConfigError(f"train.unroll {unroll} needs data.mode window, got {cfg.mode!r}")
            unrolled = replace(cfg, t_out=cfg.t_out * unroll)
            parts["train"] = trajectory_samples(source, unrolled, splits["train"])
        t_in, t_out = (1, 1) if cfg.mode == "initial_to_final" else (cfg.t_in, cfg.t_out)
        channels = channel_indices(meta, cfg.fields)
    if len(parts["train"]) == 0:
        raise ConfigError(
            f"data: the training split of {path} is empty ({len(source)} trajectories"
            + (f"; windows of {cfg.t_in} + {unroll} x {cfg.t_out} frames" if unroll > 1 else "")
            + ")"
        )
    sample = parts["train"][0]
    if isinstance(source, PairDataset):
        x_stats, y_stats = _fit_pair_stats(parts["train"], cfg.normalize)
    else:
        x_stats, y_stats = _fit_field_stats(source, splits["train"], channels, t_in, t_out, cfg.normalize)
    return DataBundle(
        train=parts["train"],
        valid=parts["valid"] if len(parts["valid"]) else None,
        test=parts["test"] if len(parts["test"]) else None,
        metadata=meta,
        in_channels=int(sample["x"].shape[0]),
        out_channels=int(sample["y"].shape[0]) // unroll,
        x_stats=x_stats,
        y_stats=y_stats,
        source=source,
        path=path if is_url(path) else Path(path),
        splits=splits,
    )


def _fit_field_stats(
    source: TrajectoryDataset,
    train_indices: np.ndarray,
    channels: list[int] | None,
    t_in: int,
    t_out: int,
    normalize: bool,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Per-field mean/std over every frame of the training trajectories (one streaming pass).

    The statistics of a field are shared by all frames of a window (repeated ``t_in`` / ``t_out`` times).
    """
    n_fields = len(channels) if channels is not None else source.metadata.n_channels
    if not normalize:
        mean, std = torch.zeros(n_fields), torch.ones(n_fields)
    else:
        stats = FieldNormalizer()
        frames = (source.read(int(i)) for i in train_indices)
        stats.fit((f[:, channels] if channels is not None else f for f in frames), channel_dim=1)
        mean, std = stats.mean_tensor(), stats.std_tensor()
    return (mean.repeat(t_in), std.repeat(t_in)), (mean.repeat(t_out), std.repeat(t_out))


def _fit_pair_stats(
    train: Dataset, normalize: bool
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel mean/std of x and y over the training pairs."""
    first = train[0]
    cx, cy = first["x"].shape[0], first["y"].shape[0]
    if not normalize:
        return (torch.zeros(cx), torch.ones(cx)), (torch.zeros(cy), torch.ones(cy))
    fx, fy = FieldNormalizer(), FieldNormalizer()
    fx.fit(train, key="x")
    fy.fit(train, key="y")
    return (fx.mean_tensor(), fx.std_tensor()), (fy.mean_tensor(), fy.std_tensor())
