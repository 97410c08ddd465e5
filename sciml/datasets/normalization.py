"""Per-channel normalization of fields, with statistics computed in one streaming pass.

:class:`FieldNormalizer` keeps, per channel, the number of values seen, their mean and the sum of squared
deviations (``M2``) in float64, and merges the statistics of each new batch with the parallel-variance
update of Chan, Golub and LeVeque (1979)::

    delta = mean_b - mean_a
    n     = n_a + n_b
    mean  = mean_a + delta * n_b / n
    M2    = M2_a + M2_b + delta**2 * n_a * n_b / n

so a whole dataset is never held in memory and the result matches a two-pass computation to rounding.
The standard deviation is the population one (``ddof=0``, like ``numpy.std``), floored at ``eps``.

Windowed samples stack ``t`` frames of ``C`` fields time-major (``C * t`` channels, see
:mod:`sciml.datasets.windows`). ``fit(..., repeat=t)`` pools the ``t`` frames into per-field statistics,
and ``normalize``/``denormalize`` reuse the ``C`` per-field statistics for any tensor whose channel count is
a multiple of ``C``.

Statistics are saved as JSON (``save``/``load``, via a temporary file and a rename), never pickled.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from sciml.datasets.metadata import DatasetMetadata
from sciml.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

STATE_VERSION = 1
ArrayLike = TypeVar("ArrayLike", torch.Tensor, np.ndarray)


def _to_float64(batch: Any) -> np.ndarray:
    """A float64 NumPy view/copy of a tensor or array."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().to("cpu", torch.float64).numpy()
    return np.asarray(batch, dtype=np.float64)


class FieldNormalizer:
    """Per-channel mean/std normalization ``(x - mean) / std`` and its inverse.

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
            raise ConfigError("FieldNormalizer: no statistics yet; call fit() or load() first")

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

    # ------------------------------------------------------------------ applying
    def _stats_for(self, x: Any, channel_dim: int) -> tuple[Any, Any]:
        """Mean and std shaped to broadcast against ``x`` along ``channel_dim``, in ``x``'s type."""
        self._require_fitted()
        ndim = x.ndim
        if not -ndim <= channel_dim < ndim:
            raise ConfigError(
                f"FieldNormalizer: channel_dim={channel_dim} out of range for a {ndim}-D input of shape "
                f"{tuple(x.shape)}"
            )
        n_in = x.shape[channel_dim]
        c = self.n_channels
        if n_in % c:
            raise ConfigError(
                f"FieldNormalizer: input has {n_in} channels along axis {channel_dim}; expected "
                f"{c} fields or a multiple of {c} (time-major frames of the fields)"
            )
        reps = n_in // c
        shape = [1] * ndim
        shape[channel_dim] = n_in
        mean = np.tile(self.mean, reps).reshape(shape)
        std = np.tile(self.std, reps).reshape(shape)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
            return (
                torch.as_tensor(mean, dtype=dtype, device=x.device),
                torch.as_tensor(std, dtype=dtype, device=x.device),
            )
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return mean.astype(dtype), std.astype(dtype)

    def normalize(self, x: ArrayLike, channel_dim: int = 0) -> ArrayLike:
        """``(x - mean) / std`` per channel; ``x`` is ``[C, *grid]`` (``channel_dim=0``), ``[B, C, *grid]``
        or ``[T, C, *grid]`` (``channel_dim=1``), with ``C`` the fields or a multiple (windowed frames)."""
        if isinstance(x, np.ndarray) or not isinstance(x, torch.Tensor):
            x = np.asarray(x)
        mean, std = self._stats_for(x, channel_dim)
        return (x - mean) / std

    def denormalize(self, x: ArrayLike, channel_dim: int = 0) -> ArrayLike:
        """``x * std + mean`` per channel: the inverse of :meth:`normalize` (same layouts)."""
        if isinstance(x, np.ndarray) or not isinstance(x, torch.Tensor):
            x = np.asarray(x)
        mean, std = self._stats_for(x, channel_dim)
        return x * std + mean

    def mean_tensor(self, repeat: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The per-channel mean as a tensor ``[C * repeat]`` (tiled time-major for windows)."""
        return torch.as_tensor(np.tile(self.mean, repeat), dtype=dtype)

    def std_tensor(self, repeat: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The per-channel (floored) standard deviation as a tensor ``[C * repeat]``."""
        return torch.as_tensor(np.tile(self.std, repeat), dtype=dtype)

    def as_module(self, channel_dim: int = 1) -> NormalizerModule:
        """A ``torch.nn.Module`` holding the statistics as buffers (``forward`` normalizes)."""
        return NormalizerModule(self.mean_tensor(), self.std_tensor(), channel_dim=channel_dim)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The statistics as plain Python values (lists, floats, ints), ready for ``json.dump``."""
        self._require_fitted()
        return {
            "version": STATE_VERSION,
            "eps": self.eps,
            "count": int(self.count),
            "mean": [float(v) for v in self.mean],
            "var": [float(v) for v in self.var],
            "std": [float(v) for v in self.std],
            "channel_names": None if self.channel_names is None else list(self.channel_names),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> FieldNormalizer:
        """Rebuild a normalizer from :meth:`state_dict` output.

        ``var`` and ``count`` restore the exact streaming state; a state with only ``mean`` and ``std``
        (hand-written) is accepted too, with ``var = std**2``.

        Raises:
            ConfigError: keys are missing or lengths disagree.
        """
        if not isinstance(state, Mapping):
            raise ConfigError(f"FieldNormalizer state must be a mapping, got {type(state).__name__}")
        version = state.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ConfigError(f"FieldNormalizer state version {version!r}; expected {STATE_VERSION}")
        if "mean" not in state or ("var" not in state and "std" not in state):
            raise ConfigError(
                f"FieldNormalizer state needs 'mean' and 'var' or 'std'; found keys {sorted(state)}"
            )
        try:
            mean = np.asarray(state["mean"], dtype=np.float64).reshape(-1)
            if "var" in state:
                var = np.asarray(state["var"], dtype=np.float64).reshape(-1)
            else:
                var = np.square(np.asarray(state["std"], dtype=np.float64).reshape(-1))
            count = int(state.get("count", 1))
            out = cls(eps=float(state.get("eps", 1e-8)))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"FieldNormalizer state holds non-numeric values ({err})") from err
        if mean.shape != var.shape or mean.size == 0:
            raise ConfigError(
                f"FieldNormalizer state: {mean.size} means and {var.size} variances; expected the same "
                f"non-zero number"
            )
        if count < 1 or not (np.isfinite(mean).all() and np.isfinite(var).all()) or (var < 0).any():
            raise ConfigError(
                f"FieldNormalizer state: count must be >= 1 and mean/var finite with var >= 0; got "
                f"count={count}, mean={mean.tolist()}, var={var.tolist()}"
            )
        names = state.get("channel_names")
        if names is not None and len(names) != mean.size:
            raise ConfigError(f"FieldNormalizer state: {len(names)} channel_names for {mean.size} channels")
        out.count, out._mean, out._m2 = count, mean, var * count
        out.channel_names = None if names is None else tuple(str(n) for n in names)
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state_dict` as JSON to ``path`` (via a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.state_dict(), indent=2)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.info("saved normalization statistics to %s", path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FieldNormalizer:
        """Read statistics written by :meth:`save`.

        Raises:
            DataFormatError: the file is missing, not JSON, or not a normalizer state.
        """
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except OSError as err:
            raise DataFormatError(path, f"cannot read normalization statistics ({err})") from err
        except json.JSONDecodeError as err:
            raise DataFormatError(path, f"not valid JSON ({err})") from err
        try:
            return cls.from_state_dict(state)
        except ConfigError as err:
            raise DataFormatError(path, str(err)) from err

    def __repr__(self) -> str:
        if not self.fitted:
            return f"{type(self).__name__}(unfitted, eps={self.eps})"
        names = f", channels={list(self.channel_names)}" if self.channel_names else ""
        return (
            f"{type(self).__name__}(mean={np.round(self.mean, 6).tolist()}, "
            f"std={np.round(self.std, 6).tolist()}, count={self.count}{names})"
        )


class NormalizerModule(nn.Module):
    """Per-channel normalization as a module: buffers ``mean``/``std`` ``[C]`` that move with the model.

    ``forward`` normalizes, :meth:`inverse` denormalizes. Inputs with ``k * C`` channels (time-major
    windows) reuse the per-field statistics for each frame.
    """

    def __init__(
        self, mean: torch.Tensor | Sequence[float], std: torch.Tensor | Sequence[float], channel_dim: int = 1
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.shape != std_t.shape:
            raise ConfigError(f"NormalizerModule: {mean_t.numel()} means for {std_t.numel()} stds")
        self.channel_dim = channel_dim
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def _shaped(self, stat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        dim = self.channel_dim % x.ndim
        n_in, c = x.shape[dim], stat.numel()
        if n_in % c:
            raise ConfigError(
                f"NormalizerModule: input has {n_in} channels along axis {dim}; expected a multiple of {c}"
            )
        shape = [1] * x.ndim
        shape[dim] = n_in
        return stat.repeat(n_in // c).reshape(shape).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` along the channel axis."""
        return (x - self._shaped(self.mean, x)) / self._shaped(self.std, x)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """``x * std + mean`` along the channel axis."""
        return x * self._shaped(self.std, x) + self._shaped(self.mean, x)

    def extra_repr(self) -> str:
        return f"channels={self.mean.numel()}, channel_dim={self.channel_dim}"
