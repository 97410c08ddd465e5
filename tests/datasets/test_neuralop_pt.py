"""neuraloperator .pt reader: torch.save'd dicts {"x": (N, *spatial), "y": (N, *spatial)} built here."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.base import PairDataset
from sciml.datasets.readers.neuralop_pt import NeuralopPtReader
from sciml.errors import DataFormatError

N, X, Y = 4, 5, 7  # X != Y to catch transposes


class NotATensor:
    """A pickled object that torch.load(weights_only=True) must refuse."""


def darcy_like(n: int = N) -> dict[str, torch.Tensor]:
    """x bool and y float, both (N, X, Y) and non-contiguous, as in neuraloperator's files."""
    x = (torch.arange(n * Y * X).reshape(n, Y, X) % 3 == 0).transpose(1, 2)  # (N, X, Y), bool, strided
    y = (torch.arange(n * X * 2 * Y, dtype=torch.float32).reshape(n, X, 2 * Y) + 0.5)[:, :, ::2]
    assert not x.is_contiguous() and not y.is_contiguous()
    return {"x": x, "y": y}


def test_detected_values_exact_and_metadata(tmp_path, monkeypatch):
    data = darcy_like()
    path = tmp_path / "darcy_train_16.pt"
    torch.save(data, path)
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ds = sd.open(path)
    assert calls and calls[0]["weights_only"] is True and calls[0]["mmap"] is True
    assert isinstance(ds, NeuralopPtReader) and isinstance(ds, PairDataset)
    m, mo = ds.metadata, ds.output_metadata
    assert m.format == "neuralop_pt" and len(ds) == N
    assert (m.grid_shape, m.field_names, m.spatial_dims, m.n_times) == ((X, Y), ("x",), ("x", "y"), 1)
    assert (mo.grid_shape, mo.field_names) == ((X, Y), ("y",))
    assert m.parameters["dtype"] == "bool" and m.periodic == (False, False)
    np.testing.assert_array_equal(m.coords["y"], np.arange(Y) / Y)
    for i in range(N):
        sample = ds[i]
        assert sample["x"].shape == (1, X, Y) and sample["x"].dtype == torch.float32
        torch.testing.assert_close(sample["x"][0], data["x"][i].float(), rtol=0, atol=0)
        torch.testing.assert_close(sample["y"][0], data["y"][i], rtol=0, atol=0)
    # a sample never aliases the mapped file: changing it leaves the next read intact
    sample = ds[-1]
    sample["y"].zero_()
    torch.testing.assert_close(ds[N - 1]["y"][0], data["y"][N - 1], rtol=0, atol=0)


def test_channel_axis_and_1d(tmp_path):
    x = torch.arange(N * 3 * X * Y, dtype=torch.float64).reshape(N, 3, X, Y)
    y = torch.arange(N * X * Y * 2, dtype=torch.float32).reshape(N, X, Y, 2)
    path = tmp_path / "c.pt"
    torch.save({"x": x, "y": y.movedim(-1, 1)}, path)
    ds = sd.open(path, channel_dim=1, input_names=["a", "b", "c"])
    assert ds.metadata.field_names == ("a", "b", "c") and ds.output_metadata.field_names == ("y0", "y1")
    torch.testing.assert_close(ds[2]["x"], x[2], rtol=0, atol=0)
    assert ds[2]["x"].dtype == torch.float64
    torch.testing.assert_close(ds[2]["y"], y[2].movedim(-1, 0), rtol=0, atol=0)
    last = tmp_path / "last.pt"
    torch.save({"x": x.movedim(1, -1), "y": y}, last)
    ds = sd.open(last, channel_dim=-1)
    torch.testing.assert_close(ds[1]["x"], x[1], rtol=0, atol=0)
    assert ds.output_metadata.grid_shape == (X, Y)

    line = tmp_path / "burgers.pth"
    u = torch.arange(N * X, dtype=torch.float32).reshape(N, X)
    torch.save({"x": u, "y": -u}, line)
    ds = sd.open(line, periodic=True, domain_lengths=2.0)
    assert ds.metadata.spatial_dims == ("x",) and ds.metadata.grid_shape == (X,)
    assert ds.metadata.periodic == (True,) and ds.metadata.domain_lengths == (2.0,)
    torch.testing.assert_close(ds[3]["y"], -u[3:4], rtol=0, atol=0)


def test_legacy_format_falls_back_to_full_load(tmp_path, caplog):
    data = darcy_like()
    path = tmp_path / "old.pt"
    torch.save(data, path, _use_new_zipfile_serialization=False)
    with caplog.at_level(logging.WARNING, logger="sciml.datasets.readers.neuralop_pt"):
        ds = sd.open(path)
    assert ds.metadata.format == "neuralop_pt" and "legacy" in caplog.text
    torch.testing.assert_close(ds[1]["y"][0], data["y"][1], rtol=0, atol=0)


def test_bad_contents(tmp_path):
    cases = {
        "list.pt": ([torch.zeros(2, 3)], "not a dict"),
        "missing.pt": ({"x": torch.zeros(2, 3), "z": torch.zeros(2, 3)}, r"\[key 'y'\].*'x', 'z'"),
        "count.pt": ({"x": torch.zeros(2, 3), "y": torch.zeros(3, 3)}, r"\[key 'y'\].*different numbers"),
        "ndim.pt": ({"x": torch.zeros(2), "y": torch.zeros(2)}, r"\[key 'x'\].*dimensions"),
        "types.pt": ({"x": torch.zeros(2, 3), "y": [1, 2]}, r"\[key 'y'\].*not a tensor"),
        "pickle.pt": ({"x": torch.zeros(2, 3), "y": NotATensor()}, "only a dict of tensors"),
    }
    for name, (obj, pattern) in cases.items():
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(DataFormatError, match=pattern) as err:
            sd.open(path)
        assert str(path) in str(err.value)
    good = tmp_path / "good.pt"
    torch.save({"x": torch.zeros(2, 3, 4), "y": torch.zeros(2, 3, 4)}, good)
    with pytest.raises(DataFormatError, match="sample axis"):
        sd.open(good, format="neuralop_pt", channel_dim=0)


def test_truncated_and_unknown(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(darcy_like(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated") as err:
        sd.open(path)
    assert str(path) in str(err.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a torch file" * 8)
    with pytest.raises(DataFormatError, match="unknown or unreadable format"):
        sd.open(junk)


def test_nan_is_reported_for_that_sample(tmp_path):
    data = darcy_like()
    y = data["y"].clone()
    y[2, 1, 3] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save({"x": data["x"], "y": y}, path)
    ds = sd.open(path)
    ds[1]
    with pytest.raises(DataFormatError, match=r"\[key 'y'\].*non-finite") as err:
        ds[2]
    assert str(path) in str(err.value)
