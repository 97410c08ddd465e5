"""FieldNormalizer: streaming statistics equal NumPy's, exact inverse, JSON round trip."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from sciml.datasets import ArrayTrajectoryDataset, FieldNormalizer, TimeWindowDataset
from sciml.errors import ConfigError, DataFormatError

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
    # the per-field statistics apply to every frame of a window (time-major channels)
    x = windows[0]["x"]
    z = norm.normalize(x)
    for j in range(t_in):
        for c in range(C):
            expected = (x[j * C + c] - norm.mean[c]) / norm.std[c]
            torch.testing.assert_close(z[j * C + c], expected)
    assert norm.mean_tensor(repeat=t_in).shape == (t_in * C,)
    torch.testing.assert_close(norm.mean_tensor(repeat=2)[C:], norm.mean_tensor())
    # outputs of the windows: fit on "y"
    out = FieldNormalizer().fit(windows, key="y")
    assert out.n_channels == C


def test_normalize_then_denormalize_is_the_identity(data) -> None:
    norm = FieldNormalizer().fit(ArrayTrajectoryDataset(data))
    traj = torch.from_numpy(data[1])  # [T, C, *grid]
    z = norm.normalize(traj, channel_dim=1)
    assert z.dtype == torch.float64
    flat = z.transpose(0, 1).reshape(C, -1)
    torch.testing.assert_close(flat.mean(dim=1), torch.zeros(C, dtype=torch.float64), atol=0.5, rtol=0)
    torch.testing.assert_close(norm.denormalize(z, channel_dim=1), traj, rtol=1e-12, atol=1e-12)
    # over the whole data the normalized values have mean 0 and std 1
    zall = norm.normalize(data.reshape(N * T, C, NX, NY), channel_dim=1)
    np.testing.assert_allclose(zall.mean(axis=(0, 2, 3)), 0.0, atol=1e-9)
    np.testing.assert_allclose(zall.std(axis=(0, 2, 3)), 1.0, rtol=1e-9)
    # [C, *grid] samples, float32, and the module variant agree
    sample = torch.from_numpy(data[0, 0]).float()
    z32 = norm.normalize(sample)
    assert z32.dtype == torch.float32
    torch.testing.assert_close(norm.denormalize(z32), sample, rtol=1e-5, atol=1e-3)
    module = norm.as_module(channel_dim=1)
    torch.testing.assert_close(module(sample[None]), z32[None], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(module.inverse(module(sample[None])), sample[None], rtol=1e-5, atol=1e-3)
    assert set(dict(module.named_buffers())) == {"mean", "std"}


def test_constant_channel_std_is_floored() -> None:
    data = np.zeros((2, 3, 2, 4, 4))
    data[:, :, 1] = 7.0
    norm = FieldNormalizer(eps=1e-6).fit(ArrayTrajectoryDataset(data))
    np.testing.assert_array_equal(norm.std, [1e-6, 1e-6])
    z = norm.normalize(torch.from_numpy(data[0]), channel_dim=1)
    assert torch.isfinite(z).all() and float(z.abs().max()) == 0.0


def test_state_dict_and_json_round_trip(data, tmp_path) -> None:
    norm = FieldNormalizer(eps=1e-7).fit(ArrayTrajectoryDataset(data, field_names=("p", "u", "v")))
    state = norm.state_dict()
    assert json.loads(json.dumps(state)) == state  # plain JSON types only
    restored = FieldNormalizer.from_state_dict(state)
    np.testing.assert_array_equal(restored.mean, norm.mean)
    np.testing.assert_array_equal(restored.std, norm.std)
    path = norm.save(tmp_path / "stats" / "norm.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["norm.json"]  # no temporary file left
    loaded = FieldNormalizer.load(path)
    np.testing.assert_array_equal(loaded.mean, norm.mean)
    np.testing.assert_array_equal(loaded.std, norm.std)
    assert loaded.count == norm.count and loaded.eps == norm.eps
    assert loaded.channel_names == ("p", "u", "v")
    x = torch.from_numpy(data[2, 3])
    torch.testing.assert_close(loaded.normalize(x), norm.normalize(x), rtol=0, atol=0)
    # streaming can continue from a loaded state and still equals numpy
    loaded.update(torch.from_numpy(data[0]), channel_dim=1)
    both = np.concatenate([data, data[:1]])
    np.testing.assert_allclose(loaded.mean, numpy_stats(both)[0], rtol=1e-10, atol=1e-10)
    # a hand-written state with mean/std only is accepted
    simple = FieldNormalizer.from_state_dict({"mean": [1.0, 2.0], "std": [3.0, 4.0]})
    np.testing.assert_allclose(simple.std, [3.0, 4.0])


def test_load_of_bad_files_is_a_data_format_error(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataFormatError, match=r"bad\.json.*not valid JSON"):
        FieldNormalizer.load(bad)
    bad.write_text(json.dumps({"mean": [0.0, 1.0], "var": [1.0]}))
    with pytest.raises(DataFormatError, match="2 means and 1 variances"):
        FieldNormalizer.load(bad)
    with pytest.raises(DataFormatError, match=r"missing\.json"):
        FieldNormalizer.load(tmp_path / "missing.json")


def test_errors_name_the_problem(data) -> None:
    norm = FieldNormalizer()
    with pytest.raises(ConfigError, match="no statistics"):
        norm.normalize(torch.zeros(C, 2, 2))
    norm.fit(ArrayTrajectoryDataset(data))
    with pytest.raises(ConfigError, match=r"4 channels.*multiple of 3"):
        norm.normalize(torch.zeros(4, 2, 2))
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
