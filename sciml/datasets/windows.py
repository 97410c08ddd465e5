"""Input/output samples cut from trajectories, and splits of trajectories into train/valid/test.

Two sample views over a :class:`~sciml.datasets.base.TrajectoryDataset`:

* :class:`TimeWindowDataset`: every window of ``t_in`` frames followed by ``t_out`` frames, for
  autoregressive models.
* :class:`InitialToFinalDataset`: one sample per trajectory, chosen frame(s) in and chosen frame(s) out
  (the FNO "``w0 -> w(T)``" operator setting).

Both yield ``{"x": Tensor[C * t_in, *grid], "y": Tensor[C * t_out, *grid]}``. **Channel order is
time-major**: the ``C`` channels of the first frame, then the ``C`` channels of the second frame, and so on,
so channel ``k`` of ``x`` is field ``k % C`` of frame ``k // C``. Only the frames a sample needs are read.

Splits are always by trajectory (:func:`split_by_trajectory`), never by window: pass a split's indices as
``trajectory_indices=`` so windows of the test trajectories never overlap the training trajectories.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from sciml.datasets.base import normalize_index
from sciml.datasets.metadata import DatasetMetadata
from sciml.errors import ConfigError

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "valid", "test")


class Trajectories(Protocol):
    """What the sample views need: metadata, a length and ``read(i, times) -> [T_sel, C, *grid]``."""

    metadata: DatasetMetadata

    def __len__(self) -> int: ...

    def read(self, index: int, times: slice | int = ...) -> torch.Tensor: ...


def _check_trajectories(trajectories: Any, who: str) -> DatasetMetadata:
    """The metadata of ``trajectories``, or a :class:`ConfigError` if it is not a trajectory dataset."""
    metadata = getattr(trajectories, "metadata", None)
    if not isinstance(metadata, DatasetMetadata) or not callable(getattr(trajectories, "read", None)):
        raise ConfigError(
            f"{who}: expected a trajectory dataset (with .metadata and .read(i, times)), got "
            f"{type(trajectories).__name__}; input/output pair files are used directly, not windowed"
        )
    return metadata


def _as_trajectory_indices(indices: Any, n_trajectories: int, who: str) -> np.ndarray:
    """Validated trajectory numbers (negative ones counted from the end) as an int64 array."""
    if indices is None:
        return np.arange(n_trajectories, dtype=np.int64)
    array = np.asarray(indices)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ConfigError(
            f"{who}: trajectory_indices must be a 1-D sequence of integers, got dtype {array.dtype} "
            f"and shape {array.shape}"
        )
    array = array.astype(np.int64)
    bad = array[(array < -n_trajectories) | (array >= n_trajectories)]
    if bad.size:
        raise ConfigError(
            f"{who}: trajectory_indices {bad[:5].tolist()} out of range for {n_trajectories} trajectories"
        )
    return np.where(array < 0, array + n_trajectories, array)


def _stack_time_major(frames: torch.Tensor) -> torch.Tensor:
    """``[T, C, *grid] -> [T * C, *grid]`` with channel ``t * C + c`` = field ``c`` of frame ``t``."""
    return frames.reshape(frames.shape[0] * frames.shape[1], *frames.shape[2:])


class TimeWindowDataset(Dataset):
    """Every time window of every (selected) trajectory as an input/output pair.

    A window starting at frame ``s`` has input frames ``s, s + f, ..., s + (t_in - 1) f`` and output frames
    ``s + t_in f, ..., s + (t_in + t_out - 1) f`` where ``f = frame_step``; it spans
    ``(t_in + t_out - 1) f + 1`` frames. Windows start every ``stride`` frames from frame 0, as long as the
    whole window fits, so each trajectory of ``T`` frames gives ``(T - span) // stride + 1`` windows.

    Item ``k`` is ``{"x": [C * t_in, *grid], "y": [C * t_out, *grid]}`` with time-major channels (see the
    module docstring). Each item reads one strided slice of one trajectory through ``trajectories.read``.

    Args:
        trajectories: a trajectory dataset (``metadata``, ``read(i, times)``).
        t_in: number of input frames (>= 1).
        t_out: number of output frames (>= 1).
        stride: frames between the starts of consecutive windows (>= 1).
        frame_step: frames between consecutive frames inside a window (>= 1).
        trajectory_indices: the trajectories to cut windows from (a split); all when ``None``.

    Raises:
        ConfigError: bad arguments, or a window of ``t_in + t_out`` frames does not fit in a trajectory.
    """

    def __init__(
        self,
        trajectories: Trajectories,
        t_in: int,
        t_out: int,
        stride: int = 1,
        frame_step: int = 1,
        trajectory_indices: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        who = type(self).__name__
        self.metadata = _check_trajectories(trajectories, who)
        for name, value in (("t_in", t_in), ("t_out", t_out), ("stride", stride), ("frame_step", frame_step)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{who}: {name} must be an integer >= 1, got {value!r}")
        self.trajectories = trajectories
        self.t_in, self.t_out = int(t_in), int(t_out)
        self.stride, self.frame_step = int(stride), int(frame_step)
        n_times = self.metadata.n_times
        self.span = (self.t_in + self.t_out - 1) * self.frame_step + 1
        if self.span > n_times:
            raise ConfigError(
                f"{who}: a window of t_in={self.t_in} + t_out={self.t_out} frames with frame_step="
                f"{self.frame_step} spans {self.span} frames, but the trajectories of "
                f"{self.metadata.path} have only {n_times} frames"
            )
        self.windows_per_trajectory = (n_times - self.span) // self.stride + 1
        self.trajectory_indices = _as_trajectory_indices(
            trajectory_indices, self.metadata.n_trajectories, who
        )
        logger.debug(
            "%s: %d trajectories x %d windows (t_in=%d, t_out=%d, stride=%d, frame_step=%d)",
            who,
            len(self.trajectory_indices),
            self.windows_per_trajectory,
            self.t_in,
            self.t_out,
            self.stride,
            self.frame_step,
        )

    def __len__(self) -> int:
        return len(self.trajectory_indices) * self.windows_per_trajectory

    def window_index(self, index: int) -> tuple[int, int]:
        """``(trajectory, start frame)`` of window ``index``; the trajectory is its number in the source."""
        k = normalize_index(index, len(self), type(self).__name__)
        j, w = divmod(k, self.windows_per_trajectory)
        return int(self.trajectory_indices[j]), w * self.stride

    def frames(self, index: int) -> tuple[list[int], list[int]]:
        """Frame numbers of the input and of the output of window ``index``."""
        _, start = self.window_index(index)
        f = self.frame_step
        return (
            [start + k * f for k in range(self.t_in)],
            [start + k * f for k in range(self.t_in, self.t_in + self.t_out)],
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        trajectory, start = self.window_index(index)
        frames = self.trajectories.read(trajectory, slice(start, start + self.span, self.frame_step))
        return {
            "x": _stack_time_major(frames[: self.t_in]),
            "y": _stack_time_major(frames[self.t_in :]),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, trajectories={len(self.trajectory_indices)}, "
            f"t_in={self.t_in}, t_out={self.t_out}, stride={self.stride}, frame_step={self.frame_step})"
        )


def _as_times(value: int | Sequence[int], n_times: int, name: str, who: str) -> list[int]:
    """Frame numbers of ``value`` (one int or a sequence), negative ones counted from the end."""
    raw = [value] if isinstance(value, int | np.integer) else list(value)
    if not raw:
        raise ConfigError(f"{who}: {name} must name at least one frame, got an empty sequence")
    out = []
    for t in raw:
        if not isinstance(t, int | np.integer):
            raise ConfigError(f"{who}: {name} must be an int or a sequence of ints, got {t!r}")
        if not -n_times <= t < n_times:
            raise ConfigError(
                f"{who}: {name}={int(t)} is out of range for trajectories of {n_times} frames "
                f"(valid: {-n_times}..{n_times - 1})"
            )
        out.append(int(t) + (n_times if t < 0 else 0))
    return out


def _frames_as_slice(frames: list[int]) -> slice | None:
    """A slice reading exactly ``frames`` in order, when they are an evenly spaced ascending run."""
    if len(frames) == 1:
        return slice(frames[0], frames[0] + 1)
    step = frames[1] - frames[0]
    if step <= 0 or any(b - a != step for a, b in itertools.pairwise(frames)):
        return None
    return slice(frames[0], frames[-1] + 1, step)


def read_frames(trajectories: Trajectories, index: int, frames: list[int]) -> torch.Tensor:
    """Frames ``frames`` (in that order) of trajectory ``index`` as ``[len(frames), C, *grid]``.

    Evenly spaced ascending frames are read in one call; other lists frame by frame.
    """
    as_slice = _frames_as_slice(frames)
    if as_slice is not None:
        return trajectories.read(index, as_slice)
    return torch.cat([trajectories.read(index, t) for t in frames], dim=0)


class InitialToFinalDataset(Dataset):
    """One sample per trajectory: frame(s) ``input_time`` in, frame(s) ``output_time`` out.

    The default ``input_time=0, output_time=-1`` is the operator setting of FNO's Navier-Stokes benchmark
    (vorticity at ``t = 0`` to vorticity at the final time). Either time may be a sequence of frame numbers;
    the frames are stacked time-major in the given order, so ``x`` has ``C * len(input_time)`` channels.

    Args:
        trajectories: a trajectory dataset (``metadata``, ``read(i, times)``).
        input_time: frame number(s) of the input; negative numbers count from the end.
        output_time: frame number(s) of the output; negative numbers count from the end.
        trajectory_indices: the trajectories to use (a split); all when ``None``.

    Raises:
        ConfigError: a frame number is out of range for the trajectories, or the arguments are malformed.
    """

    def __init__(
        self,
        trajectories: Trajectories,
        input_time: int | Sequence[int] = 0,
        output_time: int | Sequence[int] = -1,
        trajectory_indices: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        who = type(self).__name__
        self.metadata = _check_trajectories(trajectories, who)
        self.trajectories = trajectories
        n_times = self.metadata.n_times
        self.input_frames = _as_times(input_time, n_times, "input_time", who)
        self.output_frames = _as_times(output_time, n_times, "output_time", who)
        overlap = sorted(set(self.input_frames) & set(self.output_frames))
        if overlap:
            logger.warning("%s: frames %s are both input and output", who, overlap)
        self.trajectory_indices = _as_trajectory_indices(
            trajectory_indices, self.metadata.n_trajectories, who
        )

    @property
    def t_in(self) -> int:
        """Number of input frames."""
        return len(self.input_frames)

    @property
    def t_out(self) -> int:
        """Number of output frames."""
        return len(self.output_frames)

    def __len__(self) -> int:
        return len(self.trajectory_indices)

    def window_index(self, index: int) -> tuple[int, int]:
        """``(trajectory, first input frame)`` of sample ``index`` (same interface as the windows)."""
        k = normalize_index(index, len(self), type(self).__name__)
        return int(self.trajectory_indices[k]), self.input_frames[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        trajectory, _ = self.window_index(index)
        both = self.input_frames + self.output_frames
        joint = _frames_as_slice(both)
        if joint is not None:  # e.g. input 0..3, output 4..5: one read
            frames = self.trajectories.read(trajectory, joint)
            x, y = frames[: self.t_in], frames[self.t_in :]
        else:
            x = read_frames(self.trajectories, trajectory, self.input_frames)
            y = read_frames(self.trajectories, trajectory, self.output_frames)
        return {"x": _stack_time_major(x), "y": _stack_time_major(y)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, input_frames={self.input_frames}, "
            f"output_frames={self.output_frames})"
        )


def _split_counts(
    n: int,
    fractions: Sequence[float] | Mapping[str, float] | None,
    counts: Sequence[int] | Mapping[str, int] | None,
) -> tuple[int, int, int]:
    """Numbers of train/valid/test trajectories from fractions or explicit counts."""

    def as_triple(value: Sequence[Any] | Mapping[str, Any], what: str) -> list[Any]:
        if isinstance(value, Mapping):
            unknown = set(value) - set(SPLIT_NAMES)
            if unknown:
                raise ConfigError(f"split_by_trajectory: unknown split names {sorted(unknown)} in {what}")
            return [value.get(name, 0) for name in SPLIT_NAMES]
        values = list(value)
        if len(values) == 2:  # (train, test)
            return [values[0], 0, values[1]]
        if len(values) != 3:
            raise ConfigError(
                f"split_by_trajectory: {what} must have 2 (train, test) or 3 (train, valid, test) entries, "
                f"got {values}"
            )
        return values

    if counts is not None:
        c = as_triple(counts, "counts")
        if any(not isinstance(v, int | np.integer) or v < 0 for v in c):
            raise ConfigError(f"split_by_trajectory: counts must be non-negative integers, got {c}")
        if sum(c) > n:
            raise ConfigError(
                f"split_by_trajectory: counts train={c[0]} + valid={c[1]} + test={c[2]} = {sum(c)} "
                f"exceed the {n} trajectories"
            )
        return int(c[0]), int(c[1]), int(c[2])
    f = [float(v) for v in as_triple(fractions if fractions is not None else (0.8, 0.1, 0.1), "fractions")]
    if any(v < 0 or not np.isfinite(v) for v in f) or sum(f) > 1 + 1e-9:
        raise ConfigError(
            f"split_by_trajectory: fractions must be non-negative and sum to at most 1, got {f} "
            f"(sum {sum(f):.6g})"
        )
    n_test = min(round(f[2] * n), n)
    n_valid = min(round(f[1] * n), n - n_test)
    # fractions summing to 1: training takes what rounding leaves, so every trajectory is used
    covering = abs(sum(f) - 1) <= 1e-9
    n_train = n - n_valid - n_test if covering else min(int(np.floor(f[0] * n + 1e-9)), n - n_valid - n_test)
    return n_train, n_valid, n_test


def split_by_trajectory(
    n_trajectories: int,
    fractions: Sequence[float] | Mapping[str, float] | None = None,
    *,
    counts: Sequence[int] | Mapping[str, int] | None = None,
    seed: int = 0,
    shuffle: bool = True,
) -> dict[str, np.ndarray]:
    """Split trajectory numbers ``0 .. n_trajectories - 1`` into disjoint train/valid/test index arrays.

    Args:
        n_trajectories: number of trajectories in the source.
        fractions: ``(train, valid, test)`` or ``(train, test)`` fractions, or a mapping by split name;
            ``(0.8, 0.1, 0.1)`` when neither fractions nor counts are given.
            When they sum to 1, the training split takes what rounding of the others leaves, so the splits
            cover every trajectory; when they sum to less, the rest is left out.
        counts: explicit numbers of trajectories instead of fractions, e.g. ``(1000, 0, 200)``.
        seed: seed of the shuffle; the same seed always gives the same split.
        shuffle: shuffle the trajectories before splitting. With ``shuffle=False`` the training split is the
            first trajectories, validation the ones after it, and test the **last** ones (FNO's convention
            of the first 1000 for training and the last 200 for testing).

    Returns:
        ``{"train": ..., "valid": ..., "test": ...}``, each a sorted int64 array (possibly empty).

    Raises:
        ConfigError: fractions/counts are malformed or ask for more trajectories than there are.
    """
    if not isinstance(n_trajectories, int | np.integer) or n_trajectories < 0:
        raise ConfigError(
            f"split_by_trajectory: n_trajectories must be an integer >= 0, got {n_trajectories}"
        )
    n = int(n_trajectories)
    if counts is not None and fractions is not None:
        raise ConfigError(f"split_by_trajectory: give fractions ({fractions}) or counts ({counts}), not both")
    n_train, n_valid, n_test = _split_counts(n, fractions, counts)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    order = order.astype(np.int64)
    splits = {
        "train": order[:n_train],
        "valid": order[n_train : n_train + n_valid],
        "test": order[n - n_test :] if n_test else order[:0],
    }
    splits = {name: np.sort(idx) for name, idx in splits.items()}
    logger.debug(
        "split %d trajectories: train=%d valid=%d test=%d (shuffle=%s, seed=%d)",
        n,
        n_train,
        n_valid,
        n_test,
        shuffle,
        seed,
    )
    return splits
