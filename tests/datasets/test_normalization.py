"""Normalization: FieldNormalizer's streaming statistics equal NumPy's; Normalized applies them exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from sciml.datasets import ArrayTrajectoryDataset, FieldNormalizer, TimeWindowDataset
from sciml.errors import ConfigError, DataFormatError
from sciml.models.wrappers import Normalized

N, T, C, NX, NY = 5, 6, 3, 8, 4


@pytest.fixture
def data() -> np.ndarray:
    """Channels with very different offsets and scales (a naive sum-of-squares loses digits here)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, T, C, NX, NY))
    offsets = np.array([1e4, -3.0, 0.0])[None, None, :, None, None]
    scales = np.array([1e-3, 2.0, 50.0])[None, None, :, None, None]
    return a * scales + offsets


def numpy_stats(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = (0, 1, 3, 4)
    return data.mean(axis=axes), data.std(axis=axes)


def test_streaming_fit_over_trajectories_equals_numpy(data) -> None:
    ds = ArrayTrajectoryDataset(data, field_names=("p", "u", "v"))
    norm = FieldNormalizer().fit(ds)  # one trajectory [T, C, *grid] at a time, channel axis 1
    mean, std = numpy_stats(data)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std, std, rtol=1e-10, atol=1e-10)
    assert norm.count == N * T * NX * NY
    assert norm.channel_names == ("p", "u", "v")


def test_streaming_fit_over_uneven_batches_and_layouts(data) -> None:
    mean, std = numpy_stats(data)
    frames = data.reshape(N * T, C, NX, NY)
    # uneven [B, C, *grid] batches, torch and numpy mixed
    cuts = [0, 1, 4, 11, 12, N * T]
    batches = [frames[a:b] for a, b in itertools.pairwise(cuts)]
    batches = [torch.from_numpy(b) if k % 2 else b for k, b in enumerate(batches)]
    norm = FieldNormalizer().fit(batches, channel_dim=1)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std, std, rtol=1e-10, atol=1e-10)
    # single samples [C, *grid] from a generator, and channels last
    norm = FieldNormalizer().fit(torch.from_numpy(f) for f in frames)
    np.testing.assert_allclose(norm.std, std, rtol=1e-10, atol=1e-10)
    norm = FieldNormalizer().fit([np.moveaxis(frames, 1, -1)], channel_dim=-1)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-10, atol=1e-10)


def test_max_samples_uses_only_the_first_items(data) -> None:
    ds = ArrayTrajectoryDataset(data)
    norm = FieldNormalizer().fit(ds, max_samples=2)
    mean, std = numpy_stats(data[:2])
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std, std, rtol=1e-10, atol=1e-10)
    assert norm.count == 2 * T * NX * NY


def test_windowed_channels_pool_frames_per_field(data) -> None:
    t_in = 3
    windows = TimeWindowDataset(ArrayTrajectoryDataset(data), t_in, 1, stride=t_in + 1)
    # per-field statistics pooled over the frames of each window
    norm = FieldNormalizer().fit(windows, repeat=t_in)
    xs = np.stack([windows[k]["x"].numpy() for k in range(len(windows))])  # [B, t_in * C, *grid]
    pooled = xs.reshape(len(windows), t_in, C, NX, NY)
    np.testing.assert_allclose(norm.mean, pooled.mean(axis=(0, 1, 3, 4)), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std, pooled.std(axis=(0, 1, 3, 4)), rtol=1e-10, atol=1e-10)
    # the per-field statistics, tiled time-major, apply to every frame of a window
    x = windows[0]["x"][None].float()
    mean, std = norm.mean_tensor(repeat=t_in), norm.std_tensor(repeat=t_in)
    assert mean.shape == (t_in * C,)
    z = Normalized(nn.Identity(), mean, std, torch.zeros(t_in * C), torch.ones(t_in * C))(x)
    for j in range(t_in):
        for c in range(C):
            expected = (x[0, j * C + c] - np.float32(norm.mean[c])) / np.float32(norm.std[c])
            torch.testing.assert_close(z[0, j * C + c], expected)
    torch.testing.assert_close(norm.mean_tensor(repeat=2)[C:], norm.mean_tensor())
    # outputs of the windows: fit on "y"
    out = FieldNormalizer().fit(windows, key="y")
    assert out.n_channels == C


def test_normalized_round_trip_returns_the_input(data) -> None:
    """x -> normalized -> back with the same statistics is the identity (float64 input, float32 stats)."""
    norm = FieldNormalizer().fit(ArrayTrajectoryDataset(data))
    mean, std = norm.mean_tensor(), norm.std_tensor()
    x = torch.from_numpy(data[1])  # [T, C, *grid]: T samples of C channels
    out = Normalized(nn.Identity(), mean, std, mean, std)(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, x, rtol=1e-12, atol=1e-12)


def test_normalized_inputs_have_zero_mean_and_unit_std() -> None:
    rng = np.random.default_rng(1)
    scales, offsets = np.array([2.0, 50.0]), np.array([-3.0, 7.0])
    data = rng.standard_normal((4, 5, 2, 8, 8)) * scales[:, None, None] + offsets[:, None, None]
    norm = FieldNormalizer().fit(ArrayTrajectoryDataset(data))
    model = Normalized(nn.Identity(), norm.mean_tensor(), norm.std_tensor(), torch.zeros(2), torch.ones(2))
    z = model(torch.from_numpy(data.reshape(20, 2, 8, 8)))
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-6)
    std = z.std(dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(std, torch.ones(2, dtype=torch.float64), rtol=1e-6, atol=0)


def test_normalized_matches_a_hand_computation() -> None:
    """y = model((x - x_mean) / x_std) * y_std + y_mean, channel by channel."""
    torch.manual_seed(0)
    model = nn.Conv2d(2, 3, kernel_size=1)
    x_mean, x_std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 4.0])
    y_mean, y_std = torch.tensor([10.0, 0.0, -1.0]), torch.tensor([2.0, 3.0, 0.25])
    x = torch.randn(2, 2, 5, 4)
    got = Normalized(model, x_mean, x_std, y_mean, y_std)(x)
    z = torch.stack([(x[:, c] - x_mean[c]) / x_std[c] for c in range(2)], dim=1)
    out = model(z)
    expected = torch.stack([out[:, c] * y_std[c] + y_mean[c] for c in range(3)], dim=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_constant_channel_std_is_floored() -> None:
    data = np.zeros((2, 3, 2, 4, 4))
    data[:, :, 1] = 7.0
    norm = FieldNormalizer(eps=1e-6).fit(ArrayTrajectoryDataset(data))
    np.testing.assert_array_equal(norm.std, [1e-6, 1e-6])
    model = Normalized(nn.Identity(), norm.mean_tensor(), norm.std_tensor(), torch.zeros(2), torch.ones(2))
    z = model(torch.from_numpy(data[0]))
    assert torch.isfinite(z).all() and float(z.abs().max()) == 0.0


def test_errors_name_the_problem(data) -> None:
    norm = FieldNormalizer()
    with pytest.raises(ConfigError, match="no statistics"):
        norm.mean_tensor()
    norm.fit(ArrayTrajectoryDataset(data))
    with pytest.raises(ConfigError, match="earlier batches had 3"):
        norm.update(torch.zeros(2, 4, 4))
    with pytest.raises(ConfigError, match="repeat=2"):
        FieldNormalizer().update(torch.zeros(3, 4), repeat=2)
    bad = torch.zeros(3, 4, 4)
    bad[1, 2, 2] = float("nan")
    with pytest.raises(DataFormatError, match="1 non-finite"):
        FieldNormalizer().fit([torch.zeros(3, 4, 4), bad])
    with pytest.raises(ConfigError, match="eps"):
        FieldNormalizer(eps=0.0)
