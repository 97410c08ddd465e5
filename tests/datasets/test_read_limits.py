"""Files declaring more data than they hold (issue 13, item 5); one-line messages for bad files (item 8).

Every file here is tiny on disk: HDF5 datasets are chunked and no chunk is written (reads return the fill
value), the ``.npy`` file is sparse, the MAT v5 file is zlib-compressed zeros. Before the read limit these
reads allocated what the files declared (a raw ``MemoryError`` for the largest); now each is refused with
a ``DataFormatError`` naming the file, the shape and the limit, before anything is allocated.
"""

from __future__ import annotations

import logging
import struct
import zlib

import h5py
import netCDF4
import numpy as np
import pytest
import scipy.io
import torch

import sciml.datasets as sd
from sciml.config import load_yaml
from sciml.datasets.base import MAX_READ_BYTES_ENV, max_read_bytes
from sciml.errors import ConfigError, DataFormatError
from sciml.train import main as train_main

STR = h5py.string_dtype("utf-8")
SMALL_LIMIT = "1e6"  # bytes; every oversized read below asks for 8 MiB or more


def well_file(path, shape: tuple[int, int, int, int], *, unwritten_x: bool = False) -> None:
    """A The Well-layout file with one scalar field ``p`` of ``shape`` (B, T, X, Y), never written (and
    with ``unwritten_x``, a coordinate ``x`` of X float64 values, never written either)."""
    b, t, nx, ny = shape
    with h5py.File(path, "w") as f:
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = b
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=STR)
        dims.create_dataset("time", data=np.arange(t, dtype=np.float64))
        for name, n in (("x", nx), ("y", ny)):
            if name == "x" and unwritten_x:
                dims.create_dataset(name, shape=(n,), dtype=np.float64, chunks=(min(n, 4096),))
            else:
                dims.create_dataset(name, data=np.arange(n, dtype=np.float32) / n)
        bc = f.create_group("boundary_conditions").create_group("periodic")
        bc.attrs["bc_type"] = "PERIODIC"
        bc.attrs["associated_dims"] = np.array(["x", "y"], dtype=STR)
        fields = f.create_group("t0_fields")
        fields.attrs["field_names"] = np.array(["p"], dtype=STR)
        chunks = (1, 1, min(nx, 256), min(ny, 256))  # no chunk is written: reads give the fill value
        fields.create_dataset("p", shape=shape, dtype=np.float32, chunks=chunks)


def assert_refused(err: pytest.ExceptionInfo, path, shape_text: str) -> None:
    message = str(err.value)
    assert str(path) in message and shape_text in message and "read limit" in message
    assert MAX_READ_BYTES_ENV in message and "\n" not in message


# ---------------------------------------------------------------------------------------------------------
# item 5: reads larger than the limit
# ---------------------------------------------------------------------------------------------------------
def test_the_well_declaring_48_gib_frames_is_refused_not_a_memory_error(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_READ_BYTES_ENV, raising=False)
    path = tmp_path / "bomb.hdf5"
    well_file(path, (10**6, 3, 65536, 65536))
    assert path.stat().st_size < 2**20
    ds = sd.open(path)  # the metadata are small: opening works
    assert ds.metadata.grid_shape == (65536, 65536) and len(ds) == 10**6
    with pytest.raises(DataFormatError) as err:
        ds.read(0)
    assert_refused(err, path, "(3, 1, 65536, 65536)")
    assert "48.0 GiB" in str(err.value)
    ds.close()


def test_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "well.hdf5"
    well_file(path, (2, 3, 1024, 1024))  # 12 MiB a trajectory
    monkeypatch.setenv(MAX_READ_BYTES_ENV, "1e8")
    assert max_read_bytes() == 10**8
    with sd.open(path) as ds:
        assert ds.read(0).shape == (3, 1, 1024, 1024)
        monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
        with pytest.raises(DataFormatError) as err:
            ds.read(0)
        assert_refused(err, path, "(3, 1, 1024, 1024)")
    for bad in ("lots", "-5", "0", "nan"):
        monkeypatch.setenv(MAX_READ_BYTES_ENV, bad)
        with pytest.raises(ConfigError, match=MAX_READ_BYTES_ENV):
            max_read_bytes()


def test_the_well_coordinate_declaring_too_many_points_is_refused_at_open(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    path = tmp_path / "coords.hdf5"
    well_file(path, (2, 3, 2**20, 4), unwritten_x=True)
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert_refused(err, path, f"({2**20},)")
    assert "dimensions/x" in str(err.value)


def test_pdebench_layouts_refuse_oversized_frames(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    cfd = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    with h5py.File(cfd, "w") as f:
        for name in ("density", "pressure", "Vx", "Vy"):
            f.create_dataset(name, shape=(2, 3, 1024, 1024), dtype=np.float32, chunks=(1, 1, 256, 256))
        f.create_dataset("x-coordinate", data=np.arange(1024, dtype=np.float32))
        f.create_dataset("y-coordinate", data=np.arange(1024, dtype=np.float32))
    seeds = tmp_path / "2D_diff-react_NA_NA.h5"
    with h5py.File(seeds, "w") as f:
        g = f.create_group("0000")
        g.create_dataset("data", shape=(3, 1024, 1024, 2), dtype=np.float32, chunks=(1, 256, 256, 2))
        g.create_dataset("grid/x", data=np.arange(1024, dtype=np.float32))
        g.create_dataset("grid/y", data=np.arange(1024, dtype=np.float32))
    for path, shape in ((cfd, "(3, 4, 1024, 1024)"), (seeds, "(3, 2, 1024, 1024)")):
        with sd.open(path) as ds, pytest.raises(DataFormatError) as err:
            ds.read(0)
        assert_refused(err, path, shape)


def test_netcdf_refuses_oversized_frames_and_coordinates(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    frames = tmp_path / "frames.nc"
    with netCDF4.Dataset(frames, "w") as nc:
        for dim, size in (("sample", 2), ("time", 3), ("x", 1024), ("y", 1024)):
            nc.createDimension(dim, size)
        nc.createVariable("u", "f4", ("sample", "time", "x", "y"), chunksizes=(1, 1, 256, 256))
    with sd.open(frames) as ds, pytest.raises(DataFormatError) as err:
        ds.read(0)
    assert_refused(err, frames, "(3, 1, 1024, 1024)")

    coords = tmp_path / "coords.nc"  # xarray would load the whole coordinate x when opening
    with netCDF4.Dataset(coords, "w") as nc:
        for dim, size in (("sample", 2), ("time", 3), ("x", 2**20), ("y", 4)):
            nc.createDimension(dim, size)
        nc.createVariable("x", "f8", ("x",), chunksizes=(4096,))
        nc.createVariable("u", "f4", ("sample", "time", "x", "y"), chunksizes=(1, 1, 4096, 4))
    with pytest.raises(DataFormatError) as err:
        sd.open(coords)
    assert_refused(err, coords, f"({2**20},)")


def test_sparse_npy_declaring_large_frames_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    path = tmp_path / "sparse.npy"
    shape = (2, 3, 1024, 1024, 1)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float32))
    header["shape"] = shape
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.truncate(fh.tell() + int(np.prod(shape)) * 4)  # a hole: no data written
    with sd.open(path) as ds, pytest.raises(DataFormatError) as err:
        ds.read(1)
    assert_refused(err, path, "(3, 1, 1024, 1024)")


def write_v73_header(path) -> None:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def test_mat_v73_refuses_oversized_frames(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    path = tmp_path / "ns.mat"
    with h5py.File(path, "w", userblock_size=512) as f:  # MATLAB order reversed: u (T, Y, X, N)
        f.create_dataset("u", shape=(3, 1024, 1024, 2), dtype=np.float32, chunks=(1, 256, 256, 1))
    write_v73_header(path)
    with sd.open(path) as ds, pytest.raises(DataFormatError) as err:
        ds.read(0)
    assert_refused(err, path, "(3, 1, 1024, 1024)")


def test_mat_v5_declaring_more_than_the_limit_is_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    path = tmp_path / "bomb_v5.mat"
    scipy.io.savemat(path, {"u": np.zeros((2, 64, 64, 256))}, do_compression=True)  # 16 MiB of doubles
    assert path.stat().st_size < 100_000
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    assert_refused(err, path, "(2, 64, 64, 256)")
    assert "[key 'u']" in str(err.value)


def mat_v5_element(mdtype: int, data: bytes) -> bytes:
    """A MAT v5 data element: 8-byte tag (type, byte count), the data, padding to 8 bytes."""
    return struct.pack("<II", mdtype, len(data)) + data + bytes(-len(data) % 8)


def test_mat_v5_inflating_beyond_its_headers_is_refused(tmp_path, monkeypatch):
    """A compressed ``u`` whose dims declare 96 doubles but whose data element inflates to 8 MiB."""
    mi_int8, mi_int32, mi_uint32, mi_double, mi_matrix, mi_compressed, mx_double = 1, 5, 6, 9, 14, 15, 6
    dims = (2, 4, 4, 3)
    matrix = (
        mat_v5_element(mi_uint32, struct.pack("<II", mx_double, 0))  # array flags: class double
        + mat_v5_element(mi_int32, struct.pack("<4i", *dims))
        + mat_v5_element(mi_int8, b"u")
        + mat_v5_element(mi_double, bytes(8 * 2**20))  # the real part: far more than 96 values
    )
    packed = zlib.compress(struct.pack("<II", mi_matrix, len(matrix)) + matrix, 9)
    header = b"MATLAB 5.0 MAT-file, written by hand".ljust(116, b" ") + bytes(8) + b"\x00\x01IM"
    path = tmp_path / "liar_v5.mat"
    path.write_bytes(header + struct.pack("<II", mi_compressed, len(packed)) + packed)
    assert path.stat().st_size < 100_000
    assert scipy.io.whosmat(path) == [("u", dims, "double")]  # the headers declare 768 bytes
    monkeypatch.setenv(MAX_READ_BYTES_ENV, SMALL_LIMIT)
    with pytest.raises(DataFormatError, match="inflates to more than the read limit") as err:
        sd.open(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_neuralop_pt_refuses_oversized_samples(tmp_path, monkeypatch):
    path = tmp_path / "pairs.pt"
    torch.save({"x": torch.zeros(2, 256, 256), "y": torch.zeros(2, 256, 256)}, path)  # 256 KiB a sample
    monkeypatch.setenv(MAX_READ_BYTES_ENV, "1e5")
    with sd.open(path) as ds, pytest.raises(DataFormatError) as err:
        ds[0]
    assert_refused(err, path, "(1, 256, 256)")


def test_train_reports_an_oversized_read_as_one_error(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(MAX_READ_BYTES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "bomb.hdf5"
    well_file(data, (4, 3, 65536, 65536))  # 16 GiB a frame
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: {{path: {data}, mode: initial_to_final, batch_size: 2}}\n"
        "model: {name: fno, modes: 4, width: 4, n_layers: 1}\n"
        "train: {epochs: 1, device: cpu, progress: false}\n"
    )
    with caplog.at_level(logging.ERROR, logger="sciml.train"):
        code = train_main([str(config), "--run-dir", str(tmp_path / "run")])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(data) in errors[0] and "read limit" in errors[0] and "65536, 65536)" in errors[0]


# ---------------------------------------------------------------------------------------------------------
# item 8: one-line messages
# ---------------------------------------------------------------------------------------------------------
def test_object_npy_says_it_holds_python_objects(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError) as err:
        sd.open(path, layout="nx")
    message = str(err.value)
    assert message.startswith(f"{path}: holds Python objects") and "dtype object" in message
    assert "memory-map" not in message and "truncated" not in message


class NotATensor:
    """Pickled into a ``.pt`` file, refused by torch.load(weights_only=True)."""


def test_pickled_pt_message_is_one_short_line(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"x": torch.zeros(2, 3, 3), "y": NotATensor()}, path)
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    message = str(err.value)
    assert "\n" not in message and len(message) - len(str(path)) < 200
    assert message.startswith(f"{path}: holds pickled Python objects")
    assert message.endswith(f"found the global {__name__}.NotATensor")  # ends on the whole name


def test_malformed_yaml_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  path: x.h5\nmodel: [fno, 4\ntrain: {epochs: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: not valid YAML (line 4, column 6:")
    assert "expected ',' or ']'" in message and "line 3, column 8" in message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ConfigError, match=r"binary\.yaml: cannot read the config file"):
        load_yaml(binary)
