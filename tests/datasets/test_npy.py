"""NumPy .npy reader: memory-mapped arrays named by a layout (IFactFormer-m: [b, t, nx, ny, nz, c])."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.readers.numpy_npy import NpyReader
from sciml.errors import DataFormatError

N, T, X, Y, Z, C = 3, 4, 5, 6, 7, 2


def distinct(shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + offset).astype(np.float32)


def test_default_layout_values_and_metadata(tmp_path):
    data = distinct((N, T, X, Y, C), 0.5)
    path = tmp_path / "flow.npy"
    np.save(path, data)
    ds = sd.open(path)
    assert isinstance(ds, NpyReader)
    m = ds.metadata
    assert m.format == "npy" and len(ds) == N
    assert (m.n_times, m.grid_shape, m.field_names, m.spatial_dims) == (T, (X, Y), ("c0", "c1"), ("x", "y"))
    assert m.times is None and m.periodic == (False, False) and m.domain_lengths == (1.0, 1.0)
    np.testing.assert_array_equal(m.coords["x"], np.linspace(0, 1, X))
    assert isinstance(ds.handle(), np.memmap)
    for i in range(N):
        np.testing.assert_array_equal(ds.read(i).numpy(), data[i].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.read(1, slice(1, 4, 2)).numpy(), data[1, 1:4:2].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.read(2, -1).numpy(), data[2, -1:].transpose(0, 3, 1, 2))
    # frames are copies, never views of the read-only map
    frames = ds.read(0)
    frames.zero_()
    np.testing.assert_array_equal(ds.read(0).numpy(), data[0].transpose(0, 3, 1, 2))


def test_channel_flow_layout(tmp_path):
    data = distinct((2, T, X, Y, Z, 4))
    path = tmp_path / "channel_re180.npy"
    np.save(path, data)
    wall = np.cos(np.linspace(np.pi, 0, Y))
    ds = sd.open(
        path,
        layout="ntxyzc",
        field_names=["u", "v", "w", "p"],
        domain_lengths=(4 * np.pi, 2.0, 4 * np.pi / 3),
        periodic=(True, False, True),
        coords={"y": wall},
        times=np.arange(T) * 0.1,
    )
    m = ds.metadata
    assert (m.grid_shape, m.spatial_dims, m.field_names) == ((X, Y, Z), ("x", "y", "z"), ("u", "v", "w", "p"))
    assert m.periodic == (True, False, True) and m.dt == pytest.approx(0.1)
    np.testing.assert_array_equal(m.coords["y"], wall)
    np.testing.assert_allclose(m.coords["x"], np.arange(X) * 4 * np.pi / X)
    frames = ds.read(1, slice(1, 3))
    assert frames.shape == (2, 4, X, Y, Z)
    np.testing.assert_array_equal(frames.numpy(), np.moveaxis(data[1, 1:3], -1, 1))


def test_other_axis_orders(tmp_path):
    data = distinct((N, Y, X, T), 0.25)  # spatial axes swapped in the file, no channel axis, time last
    path = tmp_path / "nyxt.npy"
    np.save(path, data)
    ds = sd.open(path, layout="nyxt")
    assert ds.metadata.grid_shape == (X, Y) and ds.metadata.field_names == ("c0",)
    np.testing.assert_array_equal(ds.read(2)[:, 0].numpy(), data[2].transpose(2, 1, 0))
    np.testing.assert_array_equal(
        ds.read(2, slice(3, 0, -2))[:, 0].numpy(), data[2].transpose(2, 1, 0)[3:0:-2]
    )

    single = tmp_path / "cxy.npy"
    data = distinct((C, X, Y))
    np.save(single, data)
    ds = sd.open(single, layout="CXY")  # no sample or time axis: one trajectory of one frame
    assert (len(ds), ds.metadata.n_times) == (1, 1)
    np.testing.assert_array_equal(ds.read(0).numpy(), data[None])
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(distinct((N, T, X, Y, C))))
    np.testing.assert_array_equal(
        sd.open(fortran).read(1).numpy(), distinct((N, T, X, Y, C))[1].transpose(0, 3, 1, 2)
    )


def test_layout_and_option_errors(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, distinct((N, T, X, Y, C)))
    with pytest.raises(DataFormatError, match="does not match the layout") as err:
        sd.open(path, layout="ntxyzc")
    assert str(path) in str(err.value) and "shape (3, 4, 5, 6, 2)" in str(err.value)
    for bad in ("ntqxy", "nnxy", "ntc", "ntxyzw"):
        with pytest.raises(DataFormatError, match="invalid option layout="):
            sd.open(path, layout=bad)
    with pytest.raises(DataFormatError, match="field_names"):
        sd.open(path, field_names=["u"])
    with pytest.raises(DataFormatError, match="periodic"):
        sd.open(path, periodic=(True, False, True))
    with pytest.raises(DataFormatError, match="times"):
        sd.open(path, times=[0.0, 1.0])


def test_bad_files(tmp_path):
    cut = tmp_path / "cut.npy"
    np.save(cut, distinct((N, T, X, Y, C)))
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated") as err:
        sd.open(cut)
    assert str(cut) in str(err.value)

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match="Python objects"):
        sd.open(objects, layout="nx")

    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy" * 20)
    with pytest.raises(DataFormatError, match="unknown or unreadable format"):
        sd.open(junk)


def test_nan_is_reported_when_that_trajectory_is_read(tmp_path):
    data = distinct((N, T, X, Y, C))
    data[1, 2, 3, 4, 1] = np.inf
    path = tmp_path / "nan.npy"
    np.save(path, data)
    ds = sd.open(path)
    ds.read(0)
    assert torch.isfinite(ds.read(1, slice(0, 2))).all()
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(1)
    assert str(path) in str(err.value)
