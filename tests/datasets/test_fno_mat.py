"""FNO .mat reader and writer: v7.3 files built with raw h5py + a MATLAB user block, v5 with scipy."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import scipy.io
import torch

import sciml.datasets as sd
from sciml.datasets.readers.fno_mat import FnoMatReader
from sciml.datasets.writers.fno_mat import FnoMatWriter
from sciml.errors import DataFormatError

N, X, Y, T = 3, 5, 7, 4  # X != Y to catch transposes; u holds T frames after the initial state a


def distinct(shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    """float32 values that differ at every index and are exact in float32."""
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + offset).astype(np.float32)


def fno_arrays(n: int = N) -> dict[str, np.ndarray]:
    """The three FNO variables in MATLAB order: a (N, X, Y), u (N, X, Y, T), t (1, T)."""
    return {
        "a": distinct((n, X, Y), offset=0.5),
        "u": distinct((n, X, Y, T), offset=10_000.25),
        "t": (np.arange(1, T + 1, dtype=np.float64) * 0.25).reshape(1, T),
    }


def write_v73(path, variables: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 + 512-byte user block, axes reversed, MATLAB_class."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            ds = f.create_dataset(name, data=np.transpose(value))  # column-major: every axis reversed
            ds.attrs["MATLAB_class"] = np.bytes_(b"double" if value.dtype == np.float64 else b"single")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def fno_matreader(path, field: str) -> np.ndarray:
    """What FNO's own ``MatReader`` does with a v7.3 file: h5py, then reverse the axes."""
    with h5py.File(path, "r") as f:
        x = f[field][()]
    return np.transpose(x, axes=range(x.ndim - 1, -1, -1))


def trajectory(arrays: dict[str, np.ndarray], i: int) -> np.ndarray:
    """Expected frames ``[T+1, X, Y]`` of trajectory ``i``: a then the u frames."""
    return np.concatenate([arrays["a"][i][None], arrays["u"][i].transpose(2, 0, 1)])


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ---------------------------------------------------------------------------------------------------------
# v7.3
# ---------------------------------------------------------------------------------------------------------
def test_v73_detected_and_values_exact(tmp_path):
    arrays = fno_arrays()
    path = tmp_path / "NavierStokes_V1e-3_N3_T4.mat"
    write_v73(path, arrays)
    ds = sd.open(path, viscosity=1e-3)
    assert isinstance(ds, FnoMatReader)
    m = ds.metadata
    assert m.format == "fno_mat"
    assert (len(ds), m.n_times, m.grid_shape, m.field_names) == (N, T + 1, (X, Y), ("vorticity",))
    assert m.spatial_dims == ("x", "y") and m.periodic == (True, True) and m.domain_lengths == (1.0, 1.0)
    np.testing.assert_array_equal(m.times, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(m.coords["x"], np.arange(X) / X)
    np.testing.assert_array_equal(m.coords["y"], np.arange(Y) / Y)
    assert m.viscosity == 1e-3 and m.parameters["mat_version"] == "7.3"
    assert m.dt == pytest.approx(0.25)
    for i in range(N):
        frames = ds.read(i)
        assert frames.shape == (T + 1, 1, X, Y) and frames.dtype == torch.float32
        np.testing.assert_array_equal(frames[:, 0].numpy(), trajectory(arrays, i))
    assert ds[2]["fields"].shape == (T + 1, 1, X, Y)
    assert sd.open(path).metadata.viscosity is None  # not stored in FNO's files
    ds.close()


def test_v73_reads_only_the_requested_frames(tmp_path, monkeypatch):
    arrays = fno_arrays()
    path = tmp_path / "ns.mat"
    write_v73(path, arrays)
    ds = sd.open(path)
    handle = ds.handle()
    assert isinstance(handle, h5py.File) and handle.id.valid
    reads: list[tuple[str, tuple[int, ...]]] = []
    original = FnoMatReader._read_h5

    def spy(self, dataset, selection):
        out = original(self, dataset, selection)
        reads.append((dataset.name, out.shape))
        return out

    monkeypatch.setattr(FnoMatReader, "_read_h5", spy)
    expected = trajectory(arrays, 1)
    cases = [slice(2, 5), slice(0, 2), slice(None, None, 2), slice(None, None, -1), slice(3, 3), 4, -1]
    for times in cases:
        reads.clear()
        got = ds.read(1, times)[:, 0].numpy()
        want = expected[times] if isinstance(times, slice) else expected[times][None]
        np.testing.assert_array_equal(got, want)
        # only the selected frames of trajectory 1 came from the file
        assert sum(int(np.prod(shape)) for _, shape in reads) == want.size
    assert ds.handle() is handle  # one handle kept open across reads


def test_v73_only_u_and_custom_keys(tmp_path, caplog):
    arrays = fno_arrays()
    only_u = tmp_path / "only_u.mat"
    write_v73(only_u, {"u": arrays["u"], "t": arrays["t"]})
    with caplog.at_level(logging.WARNING, logger="sciml.datasets.readers.fno_mat"):
        ds = sd.open(only_u)
    assert "no initial-state variable" in caplog.text
    assert ds.metadata.n_times == T
    np.testing.assert_array_equal(ds.metadata.times, arrays["t"].reshape(-1))
    np.testing.assert_array_equal(ds.read(2)[:, 0].numpy(), arrays["u"][2].transpose(2, 0, 1))

    renamed = tmp_path / "renamed.mat"
    write_v73(renamed, {"w0": arrays["a"], "w": arrays["u"]})
    ds = sd.open(renamed, input_key="w0", output_key="w", time_key=None)
    assert ds.metadata.times is None and ds.metadata.n_times == T + 1
    np.testing.assert_array_equal(ds.read(0)[:, 0].numpy(), trajectory(arrays, 0))
    ds = sd.open(renamed, input_key=None, output_key="w", time_key=None)
    np.testing.assert_array_equal(ds.read(0, 0)[0, 0].numpy(), arrays["u"][0, :, :, 0])


# ---------------------------------------------------------------------------------------------------------
# v5
# ---------------------------------------------------------------------------------------------------------
def test_v5_detected_and_values_exact(tmp_path):
    arrays = fno_arrays()
    path = tmp_path / "ns_v5.mat"
    scipy.io.savemat(path, arrays)
    assert path.read_bytes().startswith(b"MATLAB 5.0 MAT-file")
    ds = sd.open(path)
    m = ds.metadata
    assert m.format == "fno_mat" and m.parameters["mat_version"] == "5"
    assert (len(ds), m.n_times, m.grid_shape) == (N, T + 1, (X, Y))
    np.testing.assert_array_equal(m.times, [0.0, 0.25, 0.5, 0.75, 1.0])
    for i in range(N):
        np.testing.assert_array_equal(ds.read(i)[:, 0].numpy(), trajectory(arrays, i))
    np.testing.assert_array_equal(ds.read(1, slice(1, 4, 2))[:, 0].numpy(), trajectory(arrays, 1)[1:4:2])


# ---------------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------------
def writer_args(n: int = N, n_t: int = T + 1) -> dict:
    return {
        "n_trajectories": n,
        "times": 1.0 + 0.5 * np.arange(n_t),
        "grid_shape": (X, Y),
        "domain_lengths": (1.0, 1.0),
        "viscosity": 1e-4,
        "attributes": {"recipe": "name: tiny\nviscosity: 1.0e-4\n", "dt": 1e-4, "config": {"a": 1}},
    }


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((N, T + 1, X, Y)).astype(np.float32)
    path = tmp_path / "gen.mat"
    with FnoMatWriter(path, **writer_args()) as writer:
        writer.write(0, w[:2], np.zeros((2, T + 1, X, Y, 2), np.float32))
        writer.write(2, w[2:], np.zeros((1, T + 1, X, Y, 2), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.mat"]
    header = path.read_bytes()[:128]
    assert header.startswith(b"MATLAB 7.3 MAT-file, Platform: ") and b"HDF5 schema 1.00 ." in header
    assert header[116:124] == b"\x00" * 8 and header[124:128] == b"\x00\x02IM"
    with pytest.raises(NotImplementedError):  # scipy recognizes the v7.3 header (and defers to HDF5)
        scipy.io.loadmat(path)
    # FNO's own reader: h5py with every axis reversed
    np.testing.assert_array_equal(fno_matreader(path, "a"), w[:, 0])
    np.testing.assert_array_equal(fno_matreader(path, "u"), w[:, 1:].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(fno_matreader(path, "t"), (1.5 + 0.5 * np.arange(T)).reshape(1, T))
    with h5py.File(path, "r") as f:
        assert f["u"].attrs["MATLAB_class"] == b"single" and f["a"].attrs["MATLAB_class"] == b"single"
        assert f["t"].attrs["MATLAB_class"] == b"double" and f["u"].chunks[-1] == 1
    # sciml's reader: the same frames, times (including t0), viscosity and attributes
    ds = sd.open(path)
    m = ds.metadata
    assert m.format == "fno_mat" and m.viscosity == 1e-4 and m.n_times == T + 1
    np.testing.assert_array_equal(m.times, 1.0 + 0.5 * np.arange(T + 1))
    assert m.parameters["recipe"] == "name: tiny\nviscosity: 1.0e-4\n" and m.parameters["dt"] == 1e-4
    assert m.parameters["config"] == '{"a": 1}'
    for i in range(N):
        np.testing.assert_array_equal(ds.read(i)[:, 0].numpy(), w[i])


def test_writer_exception_or_missing_batches_leave_no_file(tmp_path):
    path = tmp_path / "gen.mat"
    w = np.ones((1, T + 1, X, Y), np.float32)
    with pytest.raises(RuntimeError, match="boom"), FnoMatWriter(path, **writer_args()) as writer:
        writer.write(0, w, np.zeros((*w.shape, 2), np.float32))
        assert writer.tmp_path.exists()
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataFormatError, match="never written"), FnoMatWriter(path, **writer_args()) as writer:
        writer.write(0, w, np.zeros((*w.shape, 2), np.float32))
    assert list(tmp_path.iterdir()) == []
    writer.abort()  # closing twice is harmless
    with pytest.raises(DataFormatError, match="at least one frame"):
        FnoMatWriter(path, **writer_args(n_t=1))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------------------
def test_truncated_files(tmp_path):
    v73 = tmp_path / "cut73.mat"
    write_v73(v73, fno_arrays())
    truncate(v73)
    with pytest.raises(DataFormatError, match="truncated") as err:
        sd.open(v73)
    assert str(v73) in str(err.value)
    v5 = tmp_path / "cut5.mat"
    scipy.io.savemat(v5, fno_arrays())
    truncate(v5)
    with pytest.raises(DataFormatError) as err:
        sd.open(v5)
    assert str(v5) in str(err.value)


def test_missing_keys_name_the_key_and_the_variables_present(tmp_path):
    arrays = fno_arrays()
    path = tmp_path / "no_u.mat"
    write_v73(path, {"a": arrays["a"], "t": arrays["t"]})
    with pytest.raises(DataFormatError) as err:
        sd.open(path)
    message = str(err.value)
    assert str(path) in message and "[key 'u']" in message and "['a', 't']" in message
    full = tmp_path / "full.mat"
    write_v73(full, arrays)
    with pytest.raises(DataFormatError, match=r"\[key 'w0'\].*\['a', 't', 'u'\]"):
        sd.open(full, input_key="w0")
    with pytest.raises(DataFormatError, match=r"\[key 'time'\]"):
        sd.open(full, time_key="time")
    v5 = tmp_path / "no_u_v5.mat"
    scipy.io.savemat(v5, {"a": arrays["a"]})
    with pytest.raises(DataFormatError, match=r"\[key 'u'\]"):
        sd.open(v5)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"u": distinct((N, X, Y))}, "u"),  # wrong ndim
        ({"a": distinct((N, X, Y, 1, 1))}, "a"),  # wrong ndim
        ({"a": distinct((N + 1, X, Y))}, "a"),  # N differs from u
        ({"a": distinct((N, Y, X))}, "a"),  # grid differs (transposed)
        ({"t": np.arange(T + 1, dtype=np.float64).reshape(1, -1)}, "t"),  # one stamp too many
    ],
)
def test_inconsistent_shapes(tmp_path, change, key):
    path = tmp_path / "bad.mat"
    write_v73(path, {**fno_arrays(), **change})
    with pytest.raises(DataFormatError, match=rf"\[key '{key}'\]") as err:
        sd.open(path)
    assert str(path) in str(err.value)
    v5 = tmp_path / "bad_v5.mat"
    scipy.io.savemat(v5, {**fno_arrays(), **change})
    with pytest.raises(DataFormatError, match=rf"\[key '{key}'\]"):
        sd.open(v5)


def test_struct_instead_of_array(tmp_path):
    path = tmp_path / "struct.mat"
    write_v73(path, {"a": fno_arrays()["a"]})
    with h5py.File(path, "r+") as f:
        f.create_group("u").create_dataset("data", data=np.zeros(3))
    with pytest.raises(DataFormatError, match=r"\[key 'u'\].*not a real numeric array"):
        sd.open(path)


def test_nan_is_reported_when_that_trajectory_is_read(tmp_path):
    arrays = fno_arrays()
    arrays["u"][1, 2, 3, 1] = np.nan
    for path, save in ((tmp_path / "nan73.mat", write_v73), (tmp_path / "nan5.mat", scipy.io.savemat)):
        save(path, arrays)
        ds = sd.open(path)
        ds.read(0)
        ds.read(1, slice(0, 2))  # a and the first u frame are clean
        with pytest.raises(DataFormatError, match="non-finite") as err:
            ds.read(1)
        assert str(path) in str(err.value)


def test_unknown_format(tmp_path):
    path = tmp_path / "junk.mat"
    path.write_bytes(b"this is not a MAT-file at all" * 10)
    with pytest.raises(DataFormatError, match="unknown or unreadable format") as err:
        sd.open(path)
    assert str(path) in str(err.value)
    with pytest.raises(DataFormatError, match="not a MATLAB"):
        sd.open(path, format="fno_mat")
