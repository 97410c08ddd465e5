"""The Well HDF5 schema: reader on files built here with raw h5py, and the TheWellWriter round trip."""

from __future__ import annotations

import logging
import os

import h5py
import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.readers.hdf5_common import FrameBytes
from sciml.datasets.readers.the_well import TheWellReader, TheWellSplit, open_the_well_split
from sciml.datasets.writers.the_well import TheWellWriter
from sciml.errors import DataFormatError

B, T, X, Y = 2, 3, 4, 5  # X != Y, to catch transposes
STR = h5py.string_dtype("utf-8")


def distinct(shape, offset=0.0):
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + offset).astype(np.float32)


def flags(obj, sample=True, time=True, dims=(True, True)):
    obj.attrs["sample_varying"] = sample
    obj.attrs["time_varying"] = time
    obj.attrs["dim_varying"] = np.array(dims)


def make_well(path, *, b=B, time_2d=False, bc_y="WALL", drop=(), bad_shape=False):
    """A Well file with scalar, constant, partially-varying, vector and tensor fields."""
    src = {
        "pressure": distinct((b, T, X, Y), 0.125),
        "obstacle": distinct((X, Y), 0.5),  # neither sample- nor time-varying
        "tracer": distinct((b, T, X), 0.25),  # does not vary along y
        "velocity": distinct((b, T, X, Y, 2), 0.375),
        "stress": distinct((b, T, X, Y, 2, 2), 0.625),
    }
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = "toy_flow"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = b
        f.attrs["simulation_parameters"] = np.array(["Reynolds"], dtype=STR)
        f.attrs["Reynolds"] = 100.0
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=STR)
        times = np.arange(T) * 0.25
        t = dims.create_dataset("time", data=np.tile(times, (b, 1)) if time_2d else times)
        t.attrs["sample_varying"] = time_2d
        t.attrs["time_varying"] = True
        for name, n, length in (("x", X, 2.0), ("y", Y, 1.0)):
            c = dims.create_dataset(name, data=np.arange(n) * length / n)
            c.attrs["sample_varying"] = False
            c.attrs["time_varying"] = False
        bcs = f.create_group("boundary_conditions")
        for name, dim, kind in (("x_bc", "x", "PERIODIC"), ("y_bc", "y", bc_y)):
            g = bcs.create_group(name)
            g.attrs["associated_dims"] = np.array([dim], dtype=STR)
            g.attrs["associated_fields"] = np.array([], dtype=STR)
            g.attrs["bc_type"] = kind
            g.attrs["sample_varying"] = False
            g.attrs["time_varying"] = False
            mask = np.zeros(X if dim == "x" else Y, bool)
            mask[[0, -1]] = True
            g.create_dataset("mask", data=mask)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = np.array(["viscosity", "energy"], dtype=STR)
        nu = scalars.create_dataset("viscosity", data=np.float32(0.002))
        nu.attrs["sample_varying"] = False
        nu.attrs["time_varying"] = False
        energy = scalars.create_dataset("energy", data=np.ones((b, T), np.float32))
        energy.attrs["sample_varying"] = True
        energy.attrs["time_varying"] = True
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = np.array(["pressure", "obstacle", "tracer"], dtype=STR)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = np.array(["velocity"], dtype=STR)
        t2 = f.create_group("t2_fields")
        t2.attrs["field_names"] = np.array(["stress"], dtype=STR)
        layout = {
            "pressure": (t0, {}),
            "obstacle": (t0, {"sample": False, "time": False}),
            "tracer": (t0, {"dims": (True, False)}),
            "velocity": (t1, {}),
            "stress": (t2, {}),
        }
        for name, (group, kw) in layout.items():
            if name in drop:
                continue
            data = src[name]
            if bad_shape and name == "velocity":
                data = distinct((b, T, Y, X, 2))
            flags(group.create_dataset(name, data=data), **kw)
    return src


def expected_frames(src, i):
    """[T, C, X, Y] in the reader's channel order, built independently with numpy."""
    chans = [
        src["pressure"][i],
        np.broadcast_to(src["obstacle"], (T, X, Y)),
        np.broadcast_to(src["tracer"][i][:, :, None], (T, X, Y)),
        src["velocity"][i][..., 0],
        src["velocity"][i][..., 1],
        src["stress"][i][..., 0, 0],
        src["stress"][i][..., 0, 1],
        src["stress"][i][..., 1, 0],
        src["stress"][i][..., 1, 1],
    ]
    return np.stack(chans, axis=1)


NAMES = (
    "pressure",
    "obstacle",
    "tracer",
    "velocity_x",
    "velocity_y",
    "stress_xx",
    "stress_xy",
    "stress_yx",
    "stress_yy",
)


class ReadSpy:
    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        original = h5py.Dataset.__getitem__

        def spy(ds, args, new_dtype=None):
            out = original(ds, args, new_dtype)
            self.sizes.append(int(np.size(out)))
            return out

        monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
        direct = FrameBytes.read_into  # frames read straight from the file's bytes, bypassing h5py

        def spy_direct(located, fileobj, path, index, frames, out):
            done = direct(located, fileobj, path, index, frames, out)
            self.sizes.append(int(np.size(out)) if done else 0)
            return done

        monkeypatch.setattr(FrameBytes, "read_into", spy_direct)


# ---------------------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------------------
def test_detects_and_reads_every_field_kind(tmp_path):
    path = tmp_path / "toy.hdf5"
    src = make_well(path)
    ds = sd.open(path)
    assert isinstance(ds, TheWellReader)
    m = ds.metadata
    assert m.format == "the_well" and ds.dataset_name == "toy_flow"
    assert (len(ds), m.n_times, m.grid_shape, m.spatial_dims) == (B, T, (X, Y), ("x", "y"))
    assert m.field_names == NAMES
    np.testing.assert_allclose(m.times, np.arange(T) * 0.25)
    np.testing.assert_allclose(m.coords["x"], np.arange(X) * 2.0 / X)
    np.testing.assert_allclose(m.coords["y"], np.arange(Y) / Y)
    assert m.periodic == (True, False)
    assert m.domain_lengths == pytest.approx((2.0, (Y - 1) / Y))  # period on x, span of points on y
    assert m.viscosity == pytest.approx(0.002)
    assert m.parameters == pytest.approx({"Reynolds": 100.0, "viscosity": 0.002})
    for i in range(B):
        frames = ds.read(i)
        assert frames.dtype == torch.float32
        np.testing.assert_array_equal(frames.numpy(), expected_frames(src, i))


def test_fields_option_by_field_or_component(tmp_path):
    path = tmp_path / "toy.hdf5"
    src = make_well(path)
    ds = sd.open(path, fields=["velocity", "pressure", "stress_yx"])
    assert ds.metadata.field_names == ("velocity_x", "velocity_y", "pressure", "stress_yx")
    got = ds.read(1).numpy()
    np.testing.assert_array_equal(got[:, 0], src["velocity"][1][..., 0])
    np.testing.assert_array_equal(got[:, 1], src["velocity"][1][..., 1])
    np.testing.assert_array_equal(got[:, 2], src["pressure"][1])
    np.testing.assert_array_equal(got[:, 3], src["stress"][1][..., 1, 0])
    with pytest.raises(DataFormatError, match="unknown field"):
        TheWellReader(path, fields=["density"])


def test_time_slicing_reads_only_the_selected_frames(tmp_path, monkeypatch):
    path = tmp_path / "toy.hdf5"
    src = make_well(path)
    ds = TheWellReader(path, fields=["pressure", "velocity"])
    spy = ReadSpy(monkeypatch)
    got = ds.read(0, slice(1, 3)).numpy()
    np.testing.assert_array_equal(got[:, 0], src["pressure"][0, 1:3])
    np.testing.assert_array_equal(got[:, 2], src["velocity"][0, 1:3, ..., 1])
    assert sum(spy.sizes) == 2 * X * Y * (1 + 2)
    np.testing.assert_array_equal(ds.read(1, slice(None, None, -1)).numpy()[:, 0], src["pressure"][1, ::-1])


def test_sample_varying_time_grid(tmp_path, caplog):
    path = tmp_path / "toy.hdf5"
    make_well(path, time_2d=True, bc_y="PERIODIC")
    with h5py.File(path, "r+") as f:
        f["dimensions/time"][1] = np.arange(T) * 0.5
    with caplog.at_level(logging.WARNING):
        ds = sd.open(path)
    assert "differ between samples" in caplog.text
    np.testing.assert_allclose(ds.metadata.times, np.arange(T) * 0.25)
    np.testing.assert_allclose(ds.times_of(1), np.arange(T) * 0.5)
    assert ds.metadata.periodic == (True, True)


def test_bad_inputs(tmp_path):
    missing = tmp_path / "missing.hdf5"
    make_well(missing, drop=("velocity",))
    with pytest.raises(DataFormatError) as err:
        sd.open(missing)
    assert err.value.key == "t1_fields/velocity" and str(missing) in str(err.value)

    bad = tmp_path / "bad.hdf5"
    make_well(bad, bad_shape=True)
    with pytest.raises(DataFormatError, match="wrong shape") as err:
        sd.open(bad)
    assert err.value.key == "t1_fields/velocity"

    ndim = tmp_path / "ndim.hdf5"
    make_well(ndim)
    with h5py.File(ndim, "r+") as f:
        del f["t0_fields/pressure"]
        flags(f["t0_fields"].create_dataset("pressure", data=np.zeros((B, T, X, Y, 1), np.float32)))
    with pytest.raises(DataFormatError, match="number of dimensions") as err:
        sd.open(ndim)
    assert err.value.key == "t0_fields/pressure"

    no_dims = tmp_path / "no_time.hdf5"
    make_well(no_dims)
    with h5py.File(no_dims, "r+") as f:
        del f["dimensions/time"]
    with pytest.raises(DataFormatError) as err:
        sd.open(no_dims)
    assert err.value.key == "dimensions/time"


def test_nan_raised_when_that_trajectory_is_read(tmp_path):
    path = tmp_path / "nan.hdf5"
    make_well(path)
    with h5py.File(path, "r+") as f:
        f["t2_fields/stress"][1, 2, 3, 4, 1, 0] = np.nan
    ds = sd.open(path)
    ds.read(0)
    ds.read(1, slice(0, 2))
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(1)
    assert err.value.key == "t2_fields/stress" and str(path) in str(err.value)


def test_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "cut.hdf5"
    make_well(path, b=40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert str(path) in str(err.value)
    with pytest.raises(DataFormatError, match="truncated"):
        TheWellReader(path)

    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f.create_group("dimensions")
        f.create_dataset("u", data=np.zeros(3))
    assert not TheWellReader.sniff(other, other.read_bytes()[:1024])
    with pytest.raises(DataFormatError, match="no known layout") as err:
        sd.open(other)
    assert str(other) in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------------
def writer_kwargs(n=3):
    return dict(
        n_trajectories=n,
        times=np.array([0.0, 0.1, 0.2]),
        grid_shape=(X, Y),
        domain_lengths=(1.0, 2.0),
        viscosity=1e-3,
        attributes={
            "recipe": "name: tiny\nseed: 0\n",
            "dataset_name": "tiny_ns",
            "dt": 0.01,
            "forcing": "fno",
        },
    )


def test_writer_round_trip(tmp_path):
    path = tmp_path / "out" / "tiny.hdf5"
    w = distinct((3, 3, X, Y), 0.5)
    u = distinct((3, 3, X, Y, 2), 0.25)
    with TheWellWriter(path, **writer_kwargs()) as writer:
        writer.write(0, w[:2], u[:2])
        writer.write(2, w[2:], u[2:])
    assert path.exists() and not list(path.parent.glob(".*partial"))
    ds = sd.open(path)
    m = ds.metadata
    assert m.format == "the_well" and ds.dataset_name == "tiny_ns"
    assert m.field_names == ("vorticity", "velocity_x", "velocity_y")
    assert (len(ds), m.n_times, m.grid_shape) == (3, 3, (X, Y))
    np.testing.assert_allclose(m.times, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(m.coords["x"], np.arange(X) / X)
    np.testing.assert_allclose(m.coords["y"], np.arange(Y) * 2.0 / Y)
    assert m.periodic == (True, True)
    assert m.domain_lengths == pytest.approx((1.0, 2.0))
    assert m.viscosity == pytest.approx(1e-3)
    assert m.parameters == pytest.approx({"viscosity": 1e-3})
    for i in range(3):
        got = ds.read(i).numpy()
        np.testing.assert_array_equal(got[:, 0], w[i])
        np.testing.assert_array_equal(got[:, 1:], np.moveaxis(u[i], -1, 1))
    ds.close()
    with h5py.File(path, "r") as f:
        assert f.attrs["recipe"] == "name: tiny\nseed: 0\n" and isinstance(f.attrs["recipe"], str)
        assert f.attrs["grid_type"] == "cartesian" and f.attrs["n_spatial_dims"] == 2
        assert f.attrs["n_trajectories"] == 3 and f.attrs["viscosity"] == pytest.approx(1e-3)
        assert list(f.attrs["simulation_parameters"]) == ["viscosity"]
        assert f.attrs["dt"] == pytest.approx(0.01) and f.attrs["forcing"] == "fno"
        assert f["t0_fields/vorticity"].chunks == (1, 1, X, Y)
        assert f["t0_fields/vorticity"].dtype == np.float32
        assert f["t1_fields/velocity"].shape == (3, 3, X, Y, 2)
        assert f["boundary_conditions/x_periodic"].attrs["bc_type"] == "PERIODIC"
        assert list(f["boundary_conditions/y_periodic"].attrs["associated_dims"]) == ["y"]
        assert f["scalars/viscosity"].shape == () and not f["scalars/viscosity"].attrs["sample_varying"]
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y"]
        assert list(f["t2_fields"].attrs["field_names"]) == []


def test_writer_default_name_and_idempotent_close(tmp_path):
    path = tmp_path / "stem_name.hdf5"
    kwargs = writer_kwargs(n=1)
    kwargs["attributes"] = {"recipe": "x: 1\n", "extra": None, "shape": [1, 2]}
    writer = TheWellWriter(path, **kwargs)
    writer.write(0, distinct((1, 3, X, Y)), distinct((1, 3, X, Y, 2)))
    writer._flush_and_close()
    writer._flush_and_close()
    assert writer.close() == path
    ds = TheWellReader(path)
    assert ds.dataset_name == "stem_name"
    ds.close()


def test_writer_exception_leaves_no_file(tmp_path):
    path = tmp_path / "fail.hdf5"
    with pytest.raises(RuntimeError, match="boom"), TheWellWriter(path, **writer_kwargs()) as writer:
        writer.write(0, distinct((1, 3, X, Y)), distinct((1, 3, X, Y, 2)))
        assert writer.tmp_path.exists()
        raise RuntimeError("boom")
    assert not path.exists()
    assert not list(tmp_path.iterdir())

    with (
        pytest.raises(DataFormatError, match="never written"),
        TheWellWriter(path, **writer_kwargs()) as writer,
    ):
        writer.write(0, distinct((1, 3, X, Y)), distinct((1, 3, X, Y, 2)))
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------------------
# split folder
# ---------------------------------------------------------------------------------------------------------
def test_open_split_concatenates_files_lazily(tmp_path):
    root = tmp_path / "toy_flow"
    folder = root / "data" / "train"
    folder.mkdir(parents=True)
    src_a = make_well(folder / "a.hdf5", b=2)
    src_b = make_well(folder / "b.hdf5", b=3)
    (root / "stats.yaml").write_text("mean:\n  pressure: 1.5\n")
    split = open_the_well_split(root, "train", fields=["pressure"])
    assert isinstance(split, TheWellSplit)
    assert len(split) == 5 and split.metadata.n_trajectories == 5
    assert split.metadata.field_names == ("pressure",)
    assert split.stats == {"mean": {"pressure": 1.5}}
    np.testing.assert_array_equal(split[1]["fields"].numpy()[:, 0], src_a["pressure"][1])
    np.testing.assert_array_equal(split.read(2).numpy()[:, 0], src_b["pressure"][0])
    np.testing.assert_array_equal(split.read(-1, slice(0, 1)).numpy()[:, 0], src_b["pressure"][2, :1])
    split.close()
    with pytest.raises(DataFormatError):
        open_the_well_split(root, "valid")


def test_frames_read_from_their_bytes_equal_h5py(tmp_path):
    """Plain frames (one chunk per frame, or contiguous) are read from their bytes; compressed or unwritten
    chunks through h5py; the values are h5py's either way, and a file cut short names the key."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 6, X, Y)).astype(np.float32)
    u = rng.standard_normal((2, 6, X, Y, 2)).astype(np.float32)
    path = tmp_path / "plain.hdf5"
    with TheWellWriter(
        path,
        n_trajectories=2,
        times=np.arange(6) * 0.1,
        grid_shape=(X, Y),
        domain_lengths=(1.0, 1.0),
        viscosity=1e-3,
    ) as writer:
        writer.write(0, w, u)
    with h5py.File(path, "r") as f:  # the writer's layout: one chunk per frame, no filters
        assert FrameBytes.of(f["t0_fields/vorticity"]) is not None
        assert FrameBytes.of(f["t1_fields/velocity"]) is not None
    odd = tmp_path / "odd.hdf5"  # velocity gzip-compressed, vorticity's frame 5 of trajectory 1 never written
    with h5py.File(path, "r") as src, h5py.File(odd, "w") as dst:
        for key in src:
            src.copy(key, dst)
        for k in list(src.attrs):
            dst.attrs[k] = src.attrs[k]
        del dst["t1_fields/velocity"], dst["t0_fields/vorticity"]
        dst.create_dataset("t1_fields/velocity", data=u, chunks=(1, 1, X, Y, 2), compression="gzip")
        vort = dst.create_dataset("t0_fields/vorticity", shape=w.shape, dtype=np.float32, chunks=(1, 1, X, Y))
        vort[0] = w[0]
        vort[1, :5] = w[1, :5]
        assert FrameBytes.of(dst["t1_fields/velocity"]) is None
    expected = np.concatenate([w[:, :, np.newaxis], np.moveaxis(u, -1, 2)], axis=2)  # [B, T, 3, X, Y]
    for name in ("plain.hdf5", "odd.hdf5"):
        ds = TheWellReader(tmp_path / name)
        want = expected.copy()
        if name == "odd.hdf5":
            want[1, 5, 0] = 0.0  # h5py's fill value for the chunk never written
        np.testing.assert_array_equal(ds.read(1, slice(1, 6, 2)).numpy(), want[1, 1:6:2])
        np.testing.assert_array_equal(ds.read(0, slice(None, None, -1)).numpy(), want[0, ::-1])
        np.testing.assert_array_equal(
            TheWellReader(tmp_path / name, fields=["velocity"]).read(1).numpy(), want[1, :, 1:]
        )
        ds.close()
    cut = TheWellReader(path)  # metadata read; then the file loses its last bytes
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(DataFormatError, match="ends inside a frame") as err:
        cut.read(1, slice(5, 6))
    assert str(path) in str(err.value) and err.value.key in ("t0_fields/vorticity", "t1_fields/velocity")
