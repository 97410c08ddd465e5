"""Time windows, initial-to-final samples and trajectory splits give exactly the expected frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sciml.datasets import (
    ArrayTrajectoryDataset,
    InitialToFinalDataset,
    TimeWindowDataset,
    split_by_trajectory,
)
from sciml.errors import ConfigError

N, T, C, NX, NY = 4, 12, 2, 3, 5


def encoded(n: int = N, t: int = T, c: int = C) -> np.ndarray:
    """``a[i, k, ch, x, y] = 10000 i + 100 k + 10 ch + (x * NY + y) / 1000``: every value names its origin."""
    i, k, ch = np.meshgrid(np.arange(n), np.arange(t), np.arange(c), indexing="ij")
    base = 10000.0 * i + 100.0 * k + 10.0 * ch
    grid = np.arange(NX * NY, dtype=np.float64).reshape(NX, NY) / 1000.0
    return base[..., None, None] + grid


def decode(frame: torch.Tensor) -> tuple[int, int, int]:
    """(trajectory, time, channel) of a ``[NX, NY]`` channel of ``encoded`` data."""
    v = round(float(frame[0, 0]))
    return v // 10000, (v % 10000) // 100, (v % 100) // 10


class CountingDataset(ArrayTrajectoryDataset):
    """Records every ``(trajectory, frame slice)`` read from the array."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, slice]] = []

    def _read(self, index: int, times: slice) -> np.ndarray:
        self.calls.append((index, times))
        return super()._read(index, times)


@pytest.fixture
def data() -> np.ndarray:
    return encoded()


@pytest.fixture
def source(data: np.ndarray) -> CountingDataset:
    return CountingDataset(data, field_names=("u", "v"))


@pytest.mark.parametrize(
    ("t_in", "t_out", "stride", "frame_step"),
    [(1, 1, 1, 1), (3, 2, 1, 1), (2, 1, 3, 1), (2, 2, 2, 2), (1, 3, 5, 3), (4, 1, 1, 2)],
)
def test_windows_hold_exactly_the_expected_frames(data, source, t_in, t_out, stride, frame_step) -> None:
    ds = TimeWindowDataset(source, t_in, t_out, stride=stride, frame_step=frame_step)
    span = (t_in + t_out - 1) * frame_step + 1
    starts = [s for s in range(0, T, stride) if s + span <= T]
    assert len(ds) == N * len(starts)
    k = 0
    for i in range(N):
        for s in starts:
            in_frames = [s + j * frame_step for j in range(t_in)]
            out_frames = [s + j * frame_step for j in range(t_in, t_in + t_out)]
            item = ds[k]
            assert ds.window_index(k) == (i, s)
            assert ds.frames(k) == (in_frames, out_frames)
            assert item["x"].shape == (C * t_in, NX, NY)
            assert item["y"].shape == (C * t_out, NX, NY)
            # time-major: channel j*C + c is field c of the j-th frame
            np.testing.assert_array_equal(item["x"].numpy(), data[i, in_frames].reshape(-1, NX, NY))
            np.testing.assert_array_equal(item["y"].numpy(), data[i, out_frames].reshape(-1, NX, NY))
            for j, t in enumerate(in_frames):
                for c in range(C):
                    assert decode(item["x"][j * C + c]) == (i, t, c)
            k += 1


def test_each_window_reads_one_slice_of_its_own_frames(source) -> None:
    ds = TimeWindowDataset(source, 2, 3, stride=2, frame_step=2)
    for k in (0, 3, len(ds) - 1):
        source.calls.clear()
        ds[k]
        trajectory, start = ds.window_index(k)
        assert source.calls == [(trajectory, slice(start, start + 9, 2))]


def test_window_indexing_negative_and_out_of_range(source) -> None:
    ds = TimeWindowDataset(source, 2, 1)
    n = len(ds)
    assert n == N * (T - 2)
    torch.testing.assert_close(ds[-1]["x"], ds[n - 1]["x"])
    assert ds.window_index(-n) == ds.window_index(0)
    with pytest.raises(IndexError):
        ds[n]
    with pytest.raises(IndexError):
        ds[-n - 1]


def test_window_that_does_not_fit_is_a_config_error_with_the_numbers(source) -> None:
    with pytest.raises(ConfigError, match=r"t_in=8.*t_out=5.*13 frames.*only 12 frames"):
        TimeWindowDataset(source, 8, 5)
    with pytest.raises(ConfigError, match="frame_step=2"):
        TimeWindowDataset(source, 4, 3, frame_step=2)
    TimeWindowDataset(source, 7, 5)  # exactly fits: one window per trajectory
    with pytest.raises(ConfigError, match="stride"):
        TimeWindowDataset(source, 1, 1, stride=0)
    with pytest.raises(ConfigError, match="out of range"):
        TimeWindowDataset(source, 1, 1, trajectory_indices=[0, N])


def test_windows_of_a_split_touch_only_its_trajectories(source) -> None:
    splits = split_by_trajectory(N, (0.5, 0.25, 0.25), seed=3)
    train = TimeWindowDataset(source, 2, 2, trajectory_indices=splits["train"])
    test = TimeWindowDataset(source, 2, 2, trajectory_indices=splits["test"])
    assert len(train) == len(splits["train"]) * (T - 3)
    seen_test = set()
    for k in range(len(test)):
        item = test[k]
        trajectories = {decode(f)[0] for f in torch.cat([item["x"], item["y"]])}
        assert trajectories == {test.window_index(k)[0]}
        seen_test |= trajectories
    assert seen_test == set(splits["test"].tolist())
    assert not seen_test & set(splits["train"].tolist())
    assert test.metadata is source.metadata


def test_windows_batch_through_a_dataloader(source) -> None:
    ds = TimeWindowDataset(source, 3, 2, stride=4)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 3 * C, NX, NY)
    assert batch["y"].shape == (4, 2 * C, NX, NY)
    assert batch["x"].dtype == torch.float64


def test_initial_to_final_default_is_first_to_last_frame(data, source) -> None:
    ds = InitialToFinalDataset(source)
    assert len(ds) == N and ds.t_in == ds.t_out == 1
    for i in range(N):
        np.testing.assert_array_equal(ds[i]["x"].numpy(), data[i, 0])
        np.testing.assert_array_equal(ds[i]["y"].numpy(), data[i, T - 1])
    torch.testing.assert_close(ds[-1]["y"], ds[N - 1]["y"])
    with pytest.raises(IndexError):
        ds[N]


def test_initial_to_final_with_sequences_and_subsets(data, source) -> None:
    ds = InitialToFinalDataset(source, input_time=[0, 1, 2], output_time=[-1, 5], trajectory_indices=[3, 1])
    assert len(ds) == 2 and ds.t_in == 3 and ds.t_out == 2
    item = ds[0]
    np.testing.assert_array_equal(item["x"].numpy(), data[3, [0, 1, 2]].reshape(-1, NX, NY))
    np.testing.assert_array_equal(item["y"].numpy(), data[3, [T - 1, 5]].reshape(-1, NX, NY))
    assert [decode(f) for f in item["y"]] == [(3, T - 1, 0), (3, T - 1, 1), (3, 5, 0), (3, 5, 1)]
    # contiguous input and output frames are read in one call
    source.calls.clear()
    InitialToFinalDataset(source, input_time=[2, 3], output_time=4)[1]
    assert source.calls == [(1, slice(2, 5, 1))]


def test_initial_to_final_out_of_range_times(source) -> None:
    with pytest.raises(ConfigError, match=r"output_time=12 .*12 frames"):
        InitialToFinalDataset(source, 0, 12)
    with pytest.raises(ConfigError, match=r"input_time=-13"):
        InitialToFinalDataset(source, -13, 1)
    with pytest.raises(ConfigError, match="empty"):
        InitialToFinalDataset(source, [], 1)


def test_split_is_disjoint_covering_and_deterministic() -> None:
    for n in (0, 1, 7, 10, 101):
        splits = split_by_trajectory(n, (0.8, 0.1, 0.1), seed=5)
        assert set(splits) == {"train", "valid", "test"}
        joined = np.concatenate(list(splits.values()))
        assert sorted(joined.tolist()) == list(range(n))  # disjoint and covering
        again = split_by_trajectory(n, (0.8, 0.1, 0.1), seed=5)
        for name in splits:
            np.testing.assert_array_equal(splits[name], again[name])
    a = split_by_trajectory(100, seed=0)
    b = split_by_trajectory(100, seed=1)
    assert [len(a[k]) for k in ("train", "valid", "test")] == [80, 10, 10]
    assert not np.array_equal(a["test"], b["test"])


def test_split_counts_fno_convention_first_train_last_test() -> None:
    splits = split_by_trajectory(1200, counts=(1000, 0, 200), shuffle=False)
    np.testing.assert_array_equal(splits["train"], np.arange(1000))
    assert splits["valid"].size == 0
    np.testing.assert_array_equal(splits["test"], np.arange(1000, 1200))
    # fewer trajectories used than present: train first, valid next, test last
    s = split_by_trajectory(10, counts={"train": 3, "valid": 2, "test": 2}, shuffle=False)
    assert s["train"].tolist() == [0, 1, 2] and s["valid"].tolist() == [3, 4] and s["test"].tolist() == [8, 9]
    s = split_by_trajectory(10, (0.5, 0.5), shuffle=False)
    assert s["train"].tolist() == [0, 1, 2, 3, 4] and s["test"].tolist() == [5, 6, 7, 8, 9]


def test_split_rejects_bad_requests() -> None:
    with pytest.raises(ConfigError, match=r"1000 \+ valid=0 \+ test=300 = 1300.*1200"):
        split_by_trajectory(1200, counts=(1000, 0, 300))
    with pytest.raises(ConfigError, match="sum to at most 1"):
        split_by_trajectory(10, (0.8, 0.2, 0.1))
    with pytest.raises(ConfigError, match="not both"):
        split_by_trajectory(10, (0.8, 0.1, 0.1), counts=(1, 1, 1))
    with pytest.raises(ConfigError, match=r"2 .* or 3"):
        split_by_trajectory(10, (0.2, 0.2, 0.2, 0.4))


def test_non_trajectory_input_is_rejected() -> None:
    with pytest.raises(ConfigError, match="trajectory dataset"):
        TimeWindowDataset([1, 2, 3], 1, 1)  # type: ignore[arg-type]
