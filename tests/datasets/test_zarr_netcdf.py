"""netCDF-4 through h5netcdf and zarr stores (issue 17): sciml's writers, the readers, round trips."""

from __future__ import annotations

import sys

import fsspec
import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.in_memory import ArrayTrajectoryDataset
from sciml.datasets.readers import netcdf as netcdf_reader
from sciml.datasets.writers.the_well import TheWellWriter
from sciml.errors import ConfigError, DataFormatError

B, T, X, Y = 3, 5, 8, 6
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@pytest.fixture
def well(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "flow.hdf5"
    with TheWellWriter(
        path,
        n_trajectories=B,
        times=np.arange(T) * 0.5,
        grid_shape=(X, Y),
        domain_lengths=(2.0, 1.0),
        viscosity=1e-4,
    ) as writer:
        writer.write(0, rng.standard_normal((B, T, X, Y)), rng.standard_normal((B, T, X, Y, 2)))
    return sd.open(path)


def same_trajectories(a, b):
    assert a.metadata.field_names == b.metadata.field_names
    assert a.metadata.grid_shape == b.metadata.grid_shape and len(a) == len(b)
    np.testing.assert_allclose(a.metadata.times, b.metadata.times)
    for d in a.metadata.spatial_dims:
        np.testing.assert_allclose(a.metadata.coords[d], b.metadata.coords[d])
    assert a.metadata.periodic == b.metadata.periodic
    assert a.metadata.domain_lengths == pytest.approx(b.metadata.domain_lengths)
    assert a.metadata.viscosity == pytest.approx(b.metadata.viscosity)
    for i in range(len(a)):
        assert torch.equal(a.read(i), b.read(i))


def test_netcdf_is_written_as_netcdf4_without_the_netcdf4_package(well, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "netCDF4", None)  # the default install: no netCDF C library
    path = well.to_netcdf(tmp_path / "flow.nc")
    assert path.read_bytes()[:8] == HDF5_SIGNATURE  # netCDF-4/HDF5, not classic CDF-2 (b"CDF\x02")
    back = sd.open(path)
    assert back.metadata.format == "netcdf" and back._engine == "h5netcdf"
    same_trajectories(back, well)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_reader_prefers_h5netcdf_for_netcdf4_files(well, tmp_path):
    path = sd.write_netcdf(well, tmp_path / "flow.nc")
    assert netcdf_reader.choose_engine(str(path), path.read_bytes()[:8]) == "h5netcdf"
    assert netcdf_reader.choose_engine(str(path), b"CDF\x02\x00\x00\x00\x00") in ("netcdf4", "scipy")


def test_netcdf_frames_are_chunked_one_frame_each(well, tmp_path):
    import h5py

    path = sd.write_netcdf(well, tmp_path / "flow.nc")
    with h5py.File(path, "r") as f:
        assert f["vorticity"].chunks == (1, 1, X, Y)
        assert f.attrs["field_names"] == "vorticity,velocity_x,velocity_y"


def test_zarr_round_trip_and_replace(well, tmp_path):
    store = well.to_zarr(tmp_path / "flow.zarr")
    assert (store / "zarr.json").is_file()
    back = sd.open(store)
    assert back.metadata.format == "zarr"
    same_trajectories(back, well)
    back.close()
    smaller = ArrayTrajectoryDataset(np.ones((2, T, 1, X, Y), dtype=np.float32), field_names=("p",))
    sd.write_zarr(smaller, store)  # replaces the store whole
    again = sd.open(store)
    assert len(again) == 2 and again.metadata.field_names == ("p",)
    assert torch.equal(again.read(1), torch.ones(T, 1, X, Y))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.hdf5", "flow.zarr"]


def test_zarr_store_at_a_url_is_read_lazily(well, tmp_path):
    store = well.to_zarr(tmp_path / "flow.zarr")
    fs = fsspec.filesystem("memory")
    fs.put(str(store), "/sciml-zarr/flow.zarr", recursive=True)
    try:
        remote = sd.open("memory://sciml-zarr/flow.zarr")
        assert remote.metadata.format == "zarr"
        same_trajectories(remote, well)
    finally:
        fs.rm("/sciml-zarr", recursive=True)


def test_a_failed_write_leaves_nothing(well, tmp_path):
    class Failing:
        metadata = well.metadata

        def __len__(self):
            return len(well)

        def read(self, i, times=slice(None)):
            if i == 2:
                raise DataFormatError("source", "read failed")
            return well.read(i, times)

    for write, name in ((sd.write_netcdf, "x.nc"), (sd.write_zarr, "x.zarr")):
        with pytest.raises(DataFormatError, match="read failed"):
            write(Failing(), tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.hdf5"]


def test_folder_and_engine_errors(well, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(DataFormatError, match="no zarr store"):
        sd.open(folder)
    with pytest.raises(ConfigError, match="engine must be one of"):
        sd.write_netcdf(well, tmp_path / "x.nc", engine="scipy")
