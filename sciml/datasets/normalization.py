"""The statistics of a per-channel normalization of fields, computed in one streaming pass.

:class:`FieldNormalizer` computes the per-channel mean and standard deviation over a dataset; applying
them is the model's business (:class:`sciml.models.wrappers.Normalized` holds them as buffers and maps
physical inputs to physical outputs), so this module knows nothing about models.

It keeps, per channel, the number of values seen, their mean and the sum of squared deviations (``M2``)
in float64, and merges the statistics of each new batch with the parallel-variance update of Chan, Golub
and LeVeque (1979)::

    delta = mean_b - mean_a
    n     = n_a + n_b
    mean  = mean_a + delta * n_b / n
    M2    = M2_a + M2_b + delta**2 * n_a * n_b / n

so a whole dataset is never held in memory and the result matches a two-pass computation to rounding.
The standard deviation is the population one (``ddof=0``, like ``numpy.std``), floored at ``eps``.

Windowed samples stack ``t`` frames of ``C`` fields time-major (``C * t`` channels, see
:mod:`sciml.datasets.windows`). ``fit(..., repeat=t)`` pools the ``t`` frames into per-field statistics,
and ``mean_tensor(repeat=t)``/``std_tensor(repeat=t)`` tile them back to one entry per channel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from sciml.datasets.metadata import DatasetMetadata
from sciml.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)


def _to_float64(batch: Any) -> np.ndarray:
    """A float64 NumPy view/copy of a tensor or array."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().to("cpu", torch.float64).numpy()
    return np.asarray(batch, dtype=np.float64)


class FieldNormalizer:
    """Per-channel mean and standard deviation of fields, the statistics of ``(x - mean) / std``.

    Args:
        eps: floor of the standard deviation, so constant channels do not divide by zero.

    Attributes:
        count: number of values per channel seen so far.
        channel_names: names of the channels (from the dataset metadata) when known.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        if not eps > 0:
            raise ConfigError(f"FieldNormalizer: eps must be > 0, got {eps}")
        self.eps = float(eps)
        self.channel_names: tuple[str, ...] | None = None
        self.reset()

    # ------------------------------------------------------------------ statistics
    def reset(self) -> None:
        """Forget all statistics."""
        self.count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        """Whether statistics are available."""
        return self._mean is not None and self.count > 0

    @property
    def n_channels(self) -> int:
        """Number of per-field channels of the statistics."""
        self._require_fitted()
        assert self._mean is not None
        return int(self._mean.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """Per-channel mean, float64 ``[C]``."""
        self._require_fitted()
        assert self._mean is not None
        return self._mean.copy()

    @property
    def var(self) -> np.ndarray:
        """Per-channel population variance, float64 ``[C]`` (not floored)."""
        self._require_fitted()
        assert self._m2 is not None
        return self._m2 / self.count

    @property
    def std(self) -> np.ndarray:
        """Per-channel population standard deviation floored at ``eps``, float64 ``[C]``."""
        return np.maximum(np.sqrt(self.var), self.eps)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError("FieldNormalizer: no statistics yet; call fit() or update() first")

    def update(self, batch: torch.Tensor | np.ndarray, channel_dim: int = 0, repeat: int = 1) -> None:
        """Merge the statistics of one batch into the running ones.

        Args:
            batch: a tensor/array with a channel axis, e.g. ``[C, *grid]``, ``[B, C, *grid]`` or
                ``[T, C, *grid]``.
            channel_dim: the channel axis of ``batch`` (negative counts from the end).
            repeat: the channel axis holds ``repeat`` frames of ``C`` fields, time-major; their values are
                pooled into per-field statistics.

        Raises:
            ConfigError: the channel count does not match earlier batches or is not divisible by
                ``repeat``.
            DataFormatError: the batch holds NaN/inf values.
        """
        self._update(batch, channel_dim, repeat, "<normalizer input>")

    def _update(self, batch: Any, channel_dim: int, repeat: int, where: str) -> None:
        x = _to_float64(batch)
        if x.ndim == 0:
            raise ConfigError("FieldNormalizer.update: expected an array with a channel axis, got a scalar")
        if not -x.ndim <= channel_dim < x.ndim:
            raise ConfigError(
                f"FieldNormalizer.update: channel_dim={channel_dim} out of range for a {x.ndim}-D batch "
                f"of shape {x.shape}"
            )
        if repeat < 1 or x.shape[channel_dim] % repeat:
            raise ConfigError(
                f"FieldNormalizer.update: {x.shape[channel_dim]} channels cannot be split into "
                f"repeat={repeat} frames of equal size"
            )
        n_fields = x.shape[channel_dim] // repeat
        x = np.moveaxis(x, channel_dim, 0).reshape(repeat, n_fields, -1)
        x = np.swapaxes(x, 0, 1).reshape(n_fields, -1)
        if self._mean is not None and n_fields != self._mean.shape[0]:
            raise ConfigError(
                f"FieldNormalizer.update: batch has {n_fields} channels (after repeat={repeat}), "
                f"earlier batches had {self._mean.shape[0]}"
            )
        n_b = x.shape[1]
        if n_b == 0:
            return
        if not np.isfinite(x).all():
            bad = int(x.size - np.isfinite(x).sum())
            raise DataFormatError(where, f"{bad} non-finite values (NaN/inf) in a batch")
        mean_b = x.mean(axis=1)
        m2_b = np.square(x - mean_b[:, None]).sum(axis=1)
        if self._mean is None or self._m2 is None or self.count == 0:
            self._mean, self._m2, self.count = mean_b, m2_b, n_b
            return
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.square(delta) * (n_a * n_b / n)
        self.count = n

    def fit(
        self,
        data: Any,
        channel_dim: int | None = None,
        *,
        key: str = "x",
        repeat: int = 1,
        max_samples: int | None = None,
    ) -> FieldNormalizer:
        """Compute the statistics in one streaming pass over ``data`` (earlier statistics are discarded).

        ``data`` may be:

        * a trajectory dataset (``metadata`` and ``read(i)``): each trajectory ``[T, C, *grid]`` is read
          once, one at a time; the channel axis defaults to 1;
        * a map-style dataset of sample dicts (windows, pairs): the ``key`` entry of each sample
          (``"x"`` by default, ``"y"`` for outputs); the channel axis defaults to 0;
        * any iterable of tensors/arrays (or of sample dicts); the channel axis defaults to 0 (pass
          ``channel_dim=1`` for ``[T, C, *grid]`` trajectories or ``[B, C, *grid]`` batches).

        Args:
            data: the data, see above.
            channel_dim: channel axis of each item; see above for the default.
            key: entry of dict items to use.
            repeat: each item's channels are ``repeat`` frames of the fields, time-major (windowed data);
                the statistics are per field.
            max_samples: use at most this many items (trajectories or samples), the first ones.

        Returns:
            ``self``, for chaining.
        """
        if max_samples is not None and max_samples < 1:
            raise ConfigError(f"FieldNormalizer.fit: max_samples must be >= 1 or None, got {max_samples}")
        self.reset()
        self.channel_names = None
        metadata = getattr(data, "metadata", None)
        is_trajectories = isinstance(metadata, DatasetMetadata) and callable(getattr(data, "read", None))
        if is_trajectories:
            dim = 1 if channel_dim is None else channel_dim
            n = len(data) if max_samples is None else min(len(data), max_samples)
            items: Iterable[Any] = (data.read(i) for i in range(n))
        else:
            dim = 0 if channel_dim is None else channel_dim
            if (
                hasattr(data, "__getitem__")
                and hasattr(data, "__len__")
                and not isinstance(data, torch.Tensor | np.ndarray)
            ):
                n = len(data) if max_samples is None else min(len(data), max_samples)
                items = (data[i] for i in range(n))
            else:
                items = iter(data)
        source = metadata.path if isinstance(metadata, DatasetMetadata) else "<normalizer input>"
        n_items = 0
        for item in items:
            if max_samples is not None and n_items >= max_samples:
                break
            if isinstance(item, Mapping):
                if key not in item:
                    raise ConfigError(
                        f"FieldNormalizer.fit: item {n_items} has keys {sorted(item)}, not key={key!r}"
                    )
                item = item[key]
            self._update(item, dim, repeat, f"{source} (item {n_items})")
            n_items += 1
        if not self.fitted:
            raise ConfigError(f"FieldNormalizer.fit: no values to fit ({n_items} items, all empty)")
        if isinstance(metadata, DatasetMetadata) and len(metadata.field_names) == self.n_channels:
            self.channel_names = tuple(metadata.field_names)
        logger.debug(
            "fitted normalizer on %d items (%d values per channel): mean=%s std=%s",
            n_items,
            self.count,
            self.mean,
            self.std,
        )
        return self

    def mean_tensor(self, repeat: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The per-channel mean as a tensor ``[C * repeat]`` (tiled time-major for windows)."""
        return torch.as_tensor(np.tile(self.mean, repeat), dtype=dtype)

    def std_tensor(self, repeat: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The per-channel (floored) standard deviation as a tensor ``[C * repeat]``."""
        return torch.as_tensor(np.tile(self.std, repeat), dtype=dtype)

    def __repr__(self) -> str:
        if not self.fitted:
            return f"{type(self).__name__}(unfitted, eps={self.eps})"
        names = f", channels={list(self.channel_names)}" if self.channel_names else ""
        return (
            f"{type(self).__name__}(mean={np.round(self.mean, 6).tolist()}, "
            f"std={np.round(self.std, 6).tolist()}, count={self.count}{names})"
        )
