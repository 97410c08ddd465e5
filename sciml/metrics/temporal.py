"""Error curves of autoregressive rollouts: the H^s error of every predicted time step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sciml.errors import ConfigError
from sciml.metrics._common import common_pair, spatial_dims
from sciml.metrics._fourier import root
from sciml.metrics.sobolev import GridMetadata, error_from_norms, metadata_options, pair_norms

CHANNEL_REDUCTIONS = ("mean", "joint", "none")


def rollout_errors(
    pred: torch.Tensor,
    target: torch.Tensor,
    s: float = 0.0,
    time_dim: int = 1,
    relative: bool = True,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    channel_reduction: str = "mean",
    metadata: GridMetadata | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """H^s error of each time step of a rollout: ``[B, T]`` for ``[B, T, C, *grid]`` inputs.

    ``e[b, t] = reduce_c ||pred[b,t,c] - target[b,t,c]||_{H^s} / ||target[b,t,c]||_{H^s}`` (or absolute),
    where the channel reduction is ``"mean"`` (mean of per-channel errors), ``"joint"`` (one norm over
    all channels: ``sqrt(sum_c ||d_c||^2 / sum_c ||t_c||^2)``) or ``"none"`` (keep ``[B, T, C...]``).

    Args:
        pred, target: same shape, with a batch axis first and a time axis at ``time_dim``.
        s: Sobolev index (0: L2, 1: H1, -1: H^-1).
        time_dim: axis of the time steps (moved to position 1).
        relative: divide by the target's norm.
        lengths, dims: box lengths and spatial axes (default: the last two), as in
            :func:`sciml.metrics.sobolev_error`; ``dims`` count in the original layout.
        channel_reduction: see above.
        metadata: when given, lengths, spatial axes and periodicity come from it (as in
            :func:`sciml.metrics.sobolev_error_for`).
        kwargs: further :func:`sciml.metrics.sobolev_error` options (``seminorm``, ``cutoff``, ``eps``...).
    """
    pred, target = common_pair(pred, target)
    if pred.ndim < 3:
        raise ConfigError(f"a rollout needs [B, T, *grid] at least, got shape {tuple(pred.shape)}")
    if channel_reduction not in CHANNEL_REDUCTIONS:
        raise ConfigError(f"channel_reduction must be one of {CHANNEL_REDUCTIONS}, got {channel_reduction!r}")
    ndim = pred.ndim
    if not -ndim <= time_dim < ndim:
        raise ConfigError(f"time_dim {time_dim} is out of range for a tensor with {ndim} dims")
    time_dim %= ndim
    if time_dim == 0:
        raise ConfigError("time_dim 0 is the batch axis")
    eps = float(kwargs.pop("eps", 0.0))
    squared = bool(kwargs.pop("squared", False))
    options: dict[str, Any] = {"lengths": lengths, "dims": dims}
    if metadata is not None:
        options = metadata_options(metadata, ndim)
    dims_t = spatial_dims(ndim, options["dims"])
    if time_dim in dims_t:
        raise ConfigError(f"time_dim {time_dim} is one of the spatial dims {dims_t}")
    # Move time to axis 1 and renumber the spatial axes accordingly.
    order = [0, time_dim] + [d for d in range(1, ndim) if d != time_dim]
    options["dims"] = tuple(order.index(d) for d in dims_t)
    pred, target = pred.permute(order), target.permute(order)
    diff, target_norm = pair_norms(pred, target, s, **(options | kwargs))
    if channel_reduction == "joint":
        rest = tuple(range(2, diff.ndim))
        if rest:  # one norm over all channels: root of the summed squares
            diff = root(diff.square().sum(dim=rest))
            target_norm = root(target_norm.square().sum(dim=rest))
    err = error_from_norms(diff, target_norm, relative, squared, eps)
    if channel_reduction == "mean" and err.ndim > 2:
        err = err.mean(dim=tuple(range(2, err.ndim)))
    return err


@dataclass(frozen=True)
class RolloutSummary:
    """Aggregates of a ``[B, T]`` rollout error curve.

    Attributes:
        mean: mean error over the batch at each step, ``[T]``.
        std: standard deviation over the batch at each step, ``[T]`` (0 for one sample).
        median: median over the batch at each step, ``[T]``.
        overall_mean: mean over batch and steps.
        threshold: the threshold used (``None``: none given).
        first_exceed: first step (0-based) where the mean curve exceeds the threshold, ``None`` if never.
        first_exceed_per_sample: per sample, the first step whose error exceeds the threshold, -1 if
            never, ``[B]`` (``None`` without a threshold).
    """

    mean: torch.Tensor
    std: torch.Tensor
    median: torch.Tensor
    overall_mean: float
    threshold: float | None = None
    first_exceed: int | None = None
    first_exceed_per_sample: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view."""
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "median": self.median.tolist(),
            "overall_mean": self.overall_mean,
            "threshold": self.threshold,
            "first_exceed": self.first_exceed,
            "first_exceed_per_sample": (
                None if self.first_exceed_per_sample is None else self.first_exceed_per_sample.tolist()
            ),
        }


def _first_exceed(curve: torch.Tensor, threshold: float) -> torch.Tensor:
    """Index of the first entry ``> threshold`` along the last axis, -1 if none (NaN counts as above)."""
    over = (curve > threshold) | torch.isnan(curve)
    steps = torch.arange(curve.shape[-1], device=curve.device)
    first = torch.where(over, steps, curve.shape[-1]).amin(dim=-1)
    return torch.where(first == curve.shape[-1], -1, first)


def rollout_summary(errors: torch.Tensor, threshold: float | None = None) -> RolloutSummary:
    """Summarize ``[B, T]`` rollout errors (from :func:`rollout_errors`): per-step mean/std/median, and
    the first step whose error exceeds ``threshold`` (for the mean curve and for each sample).
    """
    if not isinstance(errors, torch.Tensor) or errors.ndim != 2:
        raise ConfigError(
            f"rollout_summary needs a [B, T] tensor of errors, got {getattr(errors, 'shape', errors)}"
        )
    if errors.shape[0] == 0 or errors.shape[1] == 0:
        raise ConfigError(f"rollout_summary needs a non-empty [B, T] tensor, got {tuple(errors.shape)}")
    e = errors.detach().to(torch.float64).cpu()
    mean = e.mean(dim=0)
    std = e.std(dim=0) if e.shape[0] > 1 else torch.zeros_like(mean)
    median = e.median(dim=0).values
    first = per_sample = None
    if threshold is not None:
        threshold = float(threshold)
        f = int(_first_exceed(mean, threshold))
        first = None if f < 0 else f
        per_sample = _first_exceed(e, threshold)
    return RolloutSummary(
        mean=mean,
        std=std,
        median=median,
        overall_mean=float(e.mean()),
        threshold=threshold,
        first_exceed=first,
        first_exceed_per_sample=per_sample,
    )
