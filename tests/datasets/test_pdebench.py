"""PDEBench HDF5 readers: files built here with raw h5py in PDEBench's three 2D layouts."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.readers.pdebench import (
    PDEBenchCFDReader,
    PDEBenchIncompressibleReader,
    PDEBenchSeedsReader,
)
from sciml.errors import DataFormatError

N, T, X, Y = 3, 4, 5, 6  # X != Y everywhere, to catch transposes


def distinct(shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    """float32 values that differ for every index and are exact in float32."""
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + offset).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# file builders (raw h5py, independent of the readers)
# ---------------------------------------------------------------------------------------------------------
def make_cfd(path, n=N, *, attrs=True, skip=(), shapes=None):
    fields = {}
    with h5py.File(path, "w") as f:
        for k, name in enumerate(("density", "pressure", "Vx", "Vy")):
            if name in skip:
                continue
            shape = (shapes or {}).get(name, (n, T, X, Y))
            fields[name] = distinct(shape, offset=0.25 * (k + 1))
            f.create_dataset(name, data=fields[name])
        f.create_dataset("t-coordinate", data=np.arange(T + 1, dtype=np.float32) * 0.05)
        f.create_dataset("x-coordinate", data=((np.arange(X) + 0.5) / X).astype(np.float32))
        f.create_dataset("y-coordinate", data=((np.arange(Y) + 0.5) / Y).astype(np.float32))
        if attrs:
            f.attrs["eta"] = 0.01
            f.attrs["zeta"] = 0.1
            f.attrs["M"] = 0.5
    return fields


CONFIG = "sim_name: ns_sim_2d\nNU: 0.01\nDT: 5.0e-05\nframe_int: 100\ndomain_size: [1, 2]\nseed: 1\n"


def make_incompressible(path, b=2, *, t=None, latest=None):
    velocity = distinct((b, T, X, Y, 2))
    particles = distinct((b, T, X, Y, 1), offset=0.5)
    force = distinct((b, X, Y, 2), offset=0.75)
    if t is None:
        t = np.tile(np.arange(T, dtype=np.float32) * 0.005, (b, 1))
    with h5py.File(path, "w") as f:
        f.attrs["config"] = CONFIG
        f.attrs["latestIndex"] = T - 1 if latest is None else latest
        f.create_dataset("velocity", data=velocity, chunks=(1, 1, X, Y, 2))
        f.create_dataset("particles", data=particles, chunks=(1, 1, X, Y, 1))
        f.create_dataset("force", data=force)
        f.create_dataset("t", data=t)
    return velocity, particles, force


def make_seeds(path, n=N, c=2, data_shape=None):
    data = {}
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            shape = data_shape or (T, X, Y, c)
            data[i] = distinct(shape, offset=1000.0 * i)
            g.create_dataset("data", data=data[i])
            g.create_dataset("grid/x", data=np.linspace(-1 + 1 / X, 1 - 1 / X, X).astype(np.float32))
            g.create_dataset("grid/y", data=np.linspace(-1 + 1 / Y, 1 - 1 / Y, Y).astype(np.float32))
            g.create_dataset("grid/t", data=np.linspace(0, 5, T).astype(np.float32))
    return data


class ReadSpy:
    """Records how many elements each h5py dataset read returns."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        original = h5py.Dataset.__getitem__

        def spy(ds, args, new_dtype=None):
            out = original(ds, args, new_dtype)
            self.sizes.append(int(np.size(out)))
            return out

        monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)


# ---------------------------------------------------------------------------------------------------------
# 2D compressible CFD
# ---------------------------------------------------------------------------------------------------------
def test_cfd_detected_values_and_metadata(tmp_path):
    path = tmp_path / "2D_CFD_Rand_M0.5_Eta0.01_Zeta0.1_periodic_5_Train.hdf5"
    src = make_cfd(path)
    ds = sd.open(path)
    assert isinstance(ds, PDEBenchCFDReader)
    m = ds.metadata
    assert m.format == "pdebench_cfd"
    assert (len(ds), m.n_times, m.grid_shape) == (N, T, (X, Y))
    assert m.field_names == ("density", "pressure", "velocity_x", "velocity_y")
    np.testing.assert_allclose(m.times, np.arange(T) * 0.05, rtol=1e-6)  # first T of the T+1 stamps
    np.testing.assert_allclose(m.coords["x"], (np.arange(X) + 0.5) / X, rtol=1e-6)
    np.testing.assert_allclose(m.coords["y"], (np.arange(Y) + 0.5) / Y, rtol=1e-6)
    assert m.periodic == (True, True)
    assert m.domain_lengths == pytest.approx((1.0, 1.0))
    assert m.parameters == pytest.approx({"eta": 0.01, "zeta": 0.1, "M": 0.5})
    assert m.viscosity == pytest.approx(0.01)
    for i in range(N):
        expected = np.stack([src[k][i] for k in ("density", "pressure", "Vx", "Vy")], axis=1)
        frames = ds.read(i)
        assert frames.dtype == torch.float32
        np.testing.assert_array_equal(frames.numpy(), expected)
    np.testing.assert_array_equal(ds[1]["fields"].numpy()[:, 2], src["Vx"][1])


def test_cfd_fields_option_parameters_from_name_and_periodic_option(tmp_path):
    path = tmp_path / "2D_CFD_Turb_M1.0_Eta1e-08_Zeta1e-08_trans_5_Train.hdf5"
    src = make_cfd(path, attrs=False)
    ds = sd.open(path, fields=["Vy", "density"])
    assert ds.metadata.field_names == ("velocity_y", "density")
    assert ds.metadata.parameters == pytest.approx({"M": 1.0, "eta": 1e-8, "zeta": 1e-8})
    assert ds.metadata.periodic == (False, False)  # "trans" in the name
    np.testing.assert_array_equal(ds.read(2).numpy(), np.stack([src["Vy"][2], src["density"][2]], axis=1))
    both = PDEBenchCFDReader(path, fields="velocity", periodic=(True, False))
    assert both.metadata.field_names == ("velocity_x", "velocity_y")
    assert both.metadata.periodic == (True, False)
    with pytest.raises(DataFormatError, match="Vz"):
        PDEBenchCFDReader(path, fields=["Vz"])


def test_cfd_time_slicing_reads_only_the_selected_frames(tmp_path, monkeypatch):
    path = tmp_path / "cfd.hdf5"
    src = make_cfd(path)
    ds = sd.open(path)
    spy = ReadSpy(monkeypatch)
    frames = ds.read(1, slice(1, 4, 2))
    expected = np.stack([src[k][1, 1:4:2] for k in ("density", "pressure", "Vx", "Vy")], axis=1)
    np.testing.assert_array_equal(frames.numpy(), expected)
    assert sum(spy.sizes) == 2 * 4 * X * Y
    spy.sizes.clear()
    np.testing.assert_array_equal(ds.read(0, -1).numpy()[0, 0], src["density"][0, -1])
    assert sum(spy.sizes) == 4 * X * Y
    np.testing.assert_array_equal(ds.read(2, slice(None, None, -2)).numpy()[:, 1], src["pressure"][2, ::-2])


def test_cfd_missing_field_wrong_ndim_and_shape(tmp_path):
    missing = tmp_path / "missing.hdf5"
    make_cfd(missing, skip=("Vy",))
    with pytest.raises(DataFormatError, match="Vy") as err:
        sd.open(missing)
    assert err.value.key == "Vy" and str(missing) in str(err.value)

    one_d = tmp_path / "one_d.hdf5"
    make_cfd(one_d, shapes={k: (N, T, X) for k in ("density", "pressure", "Vx", "Vy")})
    with pytest.raises(DataFormatError, match="2D") as err:
        sd.open(one_d)
    assert err.value.key == "density"

    bad_shape = tmp_path / "bad_shape.hdf5"
    make_cfd(bad_shape, shapes={"pressure": (N, T, Y, X)})
    with pytest.raises(DataFormatError) as err:
        sd.open(bad_shape)
    assert err.value.key == "pressure" and str(bad_shape) in str(err.value)


def test_cfd_nan_raised_when_that_trajectory_is_read(tmp_path):
    path = tmp_path / "nan.hdf5"
    make_cfd(path)
    with h5py.File(path, "r+") as f:
        f["pressure"][2, 3, 1, 4] = np.nan
    ds = sd.open(path)
    ds.read(0)
    ds.read(2, slice(0, 3))
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(2)
    assert err.value.key == "pressure" and str(path) in str(err.value)


def test_truncated_file_is_a_data_format_error(tmp_path):
    path = tmp_path / "cut.hdf5"
    make_cfd(path, n=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert str(path) in str(err.value)
    with pytest.raises(DataFormatError, match="truncated") as err:
        sd.open(path, format="pdebench_cfd")
    assert str(path) in str(err.value)


def test_hdf5_matching_no_layout_is_rejected(tmp_path):
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=np.zeros((2, 3, 4)))
        f.create_group("0000").create_dataset("nodata", data=np.zeros(3))
    header = path.read_bytes()[:1024]
    for reader in (PDEBenchCFDReader, PDEBenchIncompressibleReader, PDEBenchSeedsReader):
        assert not reader.sniff(path, header)
    with pytest.raises(DataFormatError, match="no known layout") as err:
        sd.open(path)
    assert str(path) in str(err.value)


def test_matlab_v73_file_is_not_claimed(tmp_path):
    path = tmp_path / "fake.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        for name in ("density", "pressure", "Vx", "Vy", "velocity", "particles"):
            f.create_dataset(name, data=np.zeros((1, 2, 3, 4)))
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64")
    header = path.read_bytes()[:1024]
    for reader in (PDEBenchCFDReader, PDEBenchIncompressibleReader, PDEBenchSeedsReader):
        assert not reader.sniff(path, header)


# ---------------------------------------------------------------------------------------------------------
# 2D incompressible NS
# ---------------------------------------------------------------------------------------------------------
def test_incompressible_values_forcing_and_metadata(tmp_path, monkeypatch):
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    velocity, particles, force = make_incompressible(path)
    ds = sd.open(path)
    assert isinstance(ds, PDEBenchIncompressibleReader)
    m = ds.metadata
    assert m.format == "pdebench_incompressible"
    assert (len(ds), m.n_times, m.grid_shape) == (2, T, (X, Y))
    assert m.field_names == ("velocity_x", "velocity_y", "particles")
    assert m.periodic == (False, False)
    assert m.viscosity == pytest.approx(0.01)
    assert m.domain_lengths == (1.0, 2.0)
    np.testing.assert_allclose(m.coords["y"], (np.arange(Y) + 0.5) * 2.0 / Y)
    np.testing.assert_allclose(m.times, np.arange(T) * 0.005, rtol=1e-6)
    assert m.parameters["frame_int"] == 100
    for i in range(2):
        expected = np.concatenate([np.moveaxis(velocity[i], -1, 1), np.moveaxis(particles[i], -1, 1)], axis=1)
        np.testing.assert_array_equal(ds.read(i).numpy(), expected)
        np.testing.assert_array_equal(ds.forcing(i).numpy(), np.moveaxis(force[i], -1, 0))
    only = sd.open(path, fields=["particles", "velocity_y"])
    assert only.metadata.field_names == ("particles", "velocity_y")
    spy = ReadSpy(monkeypatch)
    frames = only.read(1, slice(2, 4))
    np.testing.assert_array_equal(frames.numpy()[:, 0], particles[1, 2:4, ..., 0])
    np.testing.assert_array_equal(frames.numpy()[:, 1], velocity[1, 2:4, ..., 1])
    assert sum(spy.sizes) == 2 * X * Y * (2 + 1)  # two frames of velocity (2) and particles (1)


def test_incompressible_sample_varying_times_warn(tmp_path, caplog):
    path = tmp_path / "ns.h5"
    t = np.stack([np.arange(T) * 0.005, np.arange(T) * 0.01]).astype(np.float32)
    make_incompressible(path, t=t)
    with caplog.at_level(logging.WARNING):
        ds = sd.open(path)
    assert "differ between samples" in caplog.text
    np.testing.assert_allclose(ds.metadata.times, t[0])
    np.testing.assert_allclose(ds.times_of(1), t[1])


def test_incompressible_unfinished_run_exposes_written_frames(tmp_path, caplog):
    path = tmp_path / "ns.h5"
    make_incompressible(path, latest=1)
    with caplog.at_level(logging.WARNING):
        ds = sd.open(path)
    assert ds.metadata.n_times == 2 and "latestIndex" in caplog.text
    assert ds.read(0).shape == (2, 3, X, Y)


def test_incompressible_bad_inputs(tmp_path):
    path = tmp_path / "ns.h5"
    make_incompressible(path)
    with h5py.File(path, "r+") as f:
        del f["t"]
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert err.value.key == "t"

    path = tmp_path / "ns_nan.h5"
    make_incompressible(path)
    with h5py.File(path, "r+") as f:
        f["particles"][1, 0, 0, 0, 0] = np.inf
        f["force"][0, 1, 1, 0] = np.nan
    ds = sd.open(path)
    ds.read(0)
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(1)
    assert err.value.key == "particles"
    with pytest.raises(DataFormatError) as err:
        ds.forcing(0)
    assert err.value.key == "force"

    path = tmp_path / "ns_ndim.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=np.zeros((2, T, X, Y), np.float32))
        f.create_dataset("particles", data=np.zeros((2, T, X, Y, 1), np.float32))
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert err.value.key == "velocity" and str(path) in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# per-seed layout
# ---------------------------------------------------------------------------------------------------------
def test_seeds_values_and_metadata(tmp_path, monkeypatch):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = make_seeds(path)
    ds = sd.open(path)
    assert isinstance(ds, PDEBenchSeedsReader)
    m = ds.metadata
    assert m.format == "pdebench_seeds"
    assert (len(ds), m.n_times, m.grid_shape) == (N, T, (X, Y))
    assert m.field_names == ("u", "v") and m.periodic == (False, False)
    np.testing.assert_allclose(m.times, np.linspace(0, 5, T), rtol=1e-6)
    assert m.domain_lengths == pytest.approx((2.0, 2.0))
    for i in range(N):
        np.testing.assert_array_equal(ds.read(i).numpy(), np.moveaxis(data[i], -1, 1))
    named = sd.open(path, field_names=["a", "b"], fields=["b"], periodic=True)
    assert named.metadata.field_names == ("b",) and named.metadata.periodic == (True, True)
    spy = ReadSpy(monkeypatch)
    np.testing.assert_array_equal(named.read(2, slice(1, 3)).numpy()[:, 0], data[2][1:3, ..., 1])
    assert max(spy.sizes) == 2 * X * Y * 2  # two frames (both channels stored interleaved)


def test_seeds_bad_inputs(tmp_path):
    path = tmp_path / "1d.h5"
    make_seeds(path, data_shape=(T, X, 1))
    with pytest.raises(DataFormatError, match="2D") as err:
        sd.open(path)
    assert err.value.key == "0000/data"

    path = tmp_path / "ragged.h5"
    make_seeds(path)
    with h5py.File(path, "r+") as f:
        del f["0001/data"]
        f["0001"].create_dataset("data", data=np.zeros((T, Y, X, 2), np.float32))
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert err.value.key == "0001/data"

    path = tmp_path / "nogrid.h5"
    make_seeds(path)
    with h5py.File(path, "r+") as f:
        del f["0000/grid"]
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert err.value.key == "0000/grid"

    path = tmp_path / "nan.h5"
    make_seeds(path)
    with h5py.File(path, "r+") as f:
        f["0002/data"][3, 0, 0, 1] = np.nan
    ds = sd.open(path)
    ds.read(1)
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(2)
    assert err.value.key == "0002/data"
    with pytest.raises(DataFormatError):
        PDEBenchSeedsReader(path, field_names=["only_one"])


def test_readers_survive_pickling(tmp_path):
    import pickle

    path = tmp_path / "cfd.hdf5"
    src = make_cfd(path)
    ds = sd.open(path)
    ds.read(0)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.read(1).numpy()[:, 0], src["density"][1])
    clone.close()
    ds.close()
