"""netCDF reader: files built here with netCDF4 / xarray in the (sample, time, x, y) convention."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr

import sciml.datasets as sd
from sciml.datasets.readers import netcdf as netcdf_reader
from sciml.datasets.readers.netcdf import NetCDFReader
from sciml.errors import DataFormatError

N, T, X, Y = 3, 4, 5, 6  # X != Y to catch transposes
L = 2 * np.pi


def distinct(shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + offset).astype(np.float32)


def fields() -> dict[str, np.ndarray]:
    """u, v, vorticity as (sample, time, x, y)."""
    return {name: distinct((N, T, X, Y), 1000.0 * k + 0.5) for k, name in enumerate(("u", "v", "vorticity"))}


def write_jax_cfd_like(path, data: dict[str, np.ndarray], *, fmt: str = "NETCDF4", periodic="true") -> None:
    """Raw netCDF4: dims (sample, time, x, y); ``vorticity`` is stored (sample, time, y, x)."""
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        for dim, size in (("sample", N), ("time", T), ("x", X), ("y", Y)):
            nc.createDimension(dim, size)
        nc.createVariable("time", "f8", ("time",))[:] = 0.5 * np.arange(T)
        nc.createVariable("x", "f8", ("x",))[:] = (np.arange(X) + 0.5) * L / X
        nc.createVariable("y", "f8", ("y",))[:] = (np.arange(Y) + 0.5) * L / Y
        for name, value in data.items():
            if name == "vorticity":
                nc.createVariable(name, "f4", ("sample", "time", "y", "x"))[:] = value.transpose(0, 1, 3, 2)
            else:
                nc.createVariable(name, "f4", ("sample", "time", "x", "y"))[:] = value
        nc.viscosity = 1e-3
        nc.title = "test flow"
        if periodic is not None:
            nc.periodic = periodic


def stacked(data: dict[str, np.ndarray], i: int, names=("u", "v", "vorticity")) -> np.ndarray:
    return np.stack([data[n][i] for n in names], axis=1)


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_64BIT_OFFSET", "NETCDF3_CLASSIC"])
def test_variables_per_channel(tmp_path, fmt):
    data = fields()
    path = tmp_path / "eval.nc"
    write_jax_cfd_like(path, data, fmt=fmt)
    ds = sd.open(path)
    assert isinstance(ds, NetCDFReader)
    m = ds.metadata
    assert m.format == "netcdf" and len(ds) == N
    assert (m.n_times, m.grid_shape, m.field_names, m.spatial_dims) == (
        T,
        (X, Y),
        ("u", "v", "vorticity"),
        ("x", "y"),
    )
    np.testing.assert_array_equal(m.times, 0.5 * np.arange(T))
    np.testing.assert_allclose(m.coords["y"], (np.arange(Y) + 0.5) * L / Y)
    assert m.periodic == (True, True) and m.domain_lengths == pytest.approx((L, L))
    assert m.viscosity == 1e-3 and m.parameters["title"] == "test flow"
    for i in range(N):
        np.testing.assert_array_equal(ds.read(i).numpy(), stacked(data, i))
    np.testing.assert_array_equal(ds.read(2, slice(1, 4, 2)).numpy(), stacked(data, 2)[1:4:2])
    np.testing.assert_array_equal(ds.read(0, slice(None, None, -1)).numpy(), stacked(data, 0)[::-1])
    ds.close()


def test_lazy_handle_and_options(tmp_path):
    data = fields()
    path = tmp_path / "eval.nc"
    write_jax_cfd_like(path, data, periodic=None)
    ds = sd.open(path, variables=["vorticity", "u"])
    assert ds.metadata.field_names == ("vorticity", "u") and ds.metadata.periodic == (False, False)
    assert ds.metadata.domain_lengths == pytest.approx((L * (X - 1) / X, L * (Y - 1) / Y))  # node span
    handle = ds.handle().dataset
    assert isinstance(handle, xr.Dataset)
    np.testing.assert_array_equal(ds.read(1, 2).numpy(), stacked(data, 1, ("vorticity", "u"))[2:3])
    assert ds.handle().dataset is handle
    assert not getattr(handle["vorticity"].variable, "_in_memory", False)  # nothing loaded in full
    ds = sd.open(path, periodic=True, domain_lengths=1.0, viscosity=2e-3)
    assert ds.metadata.periodic == (True, True) and ds.metadata.domain_lengths == (1.0, 1.0)
    assert ds.metadata.viscosity == 2e-3


def test_aliases_and_ambiguity(tmp_path):
    value = distinct((N, T, Y, X))
    ok = xr.Dataset({"w": (("batch", "t", "y", "x"), value)}, attrs={"periodic": [1, 0]})
    path = tmp_path / "alias.nc"
    ok.to_netcdf(path)
    ds = sd.open(path)
    assert ds.metadata.field_names == ("w",) and ds.metadata.grid_shape == (X, Y)
    assert ds.metadata.periodic == (True, False) and ds.metadata.times is None
    np.testing.assert_array_equal(ds.read(2)[:, 0].numpy(), value[2].transpose(0, 2, 1))

    both = xr.Dataset(
        {"w": (("sample", "time", "x", "y"), distinct((N, T, X, Y))), "s": (("t",), np.arange(2.0))}
    )
    amb = tmp_path / "ambiguous.nc"
    both.to_netcdf(amb)
    with pytest.raises(DataFormatError, match="ambiguous time dim") as err:
        sd.open(amb)
    assert str(amb) in str(err.value)
    ds = sd.open(amb, dims=("sample", "time", "x", "y"))
    assert ds.metadata.field_names == ("w",) and ds.metadata.n_times == T

    static = xr.Dataset({"k": (("sample", "x", "y"), distinct((N, X, Y)))})
    path = tmp_path / "static.nc"
    static.to_netcdf(path)
    ds = sd.open(path)
    assert ds.metadata.n_times == 1
    np.testing.assert_array_equal(ds.read(1)[0, 0].numpy(), distinct((N, X, Y))[1])


def test_one_variable_with_layout(tmp_path):
    value = distinct((N, T, 2, X, Y), 0.25)
    xds = xr.Dataset(
        {"data": (("member", "step", "channel", "lon", "lat"), value)},
        coords={"channel": ["u", "v"], "step": np.arange(T) * 0.1},
    )
    path = tmp_path / "poseidon.nc"
    xds.to_netcdf(path)
    ds = sd.open(path, variable="data", layout="ntcxy")
    m = ds.metadata
    assert (m.field_names, m.grid_shape, m.spatial_dims, len(ds)) == (("u", "v"), (X, Y), ("lon", "lat"), N)
    np.testing.assert_allclose(m.times, np.arange(T) * 0.1)
    np.testing.assert_array_equal(ds.read(1).numpy(), value[1])
    np.testing.assert_array_equal(ds.read(2, slice(1, 3)).numpy(), value[2, 1:3])
    ds = sd.open(path, variable="data", layout="ntcyx", field_names=["a", "b"])
    assert ds.metadata.field_names == ("a", "b") and ds.metadata.grid_shape == (Y, X)
    np.testing.assert_array_equal(ds.read(0).numpy(), value[0].transpose(0, 1, 3, 2))
    with pytest.raises(DataFormatError, match=r"\[key 'data'\].*does not match the layout"):
        sd.open(path, variable="data", layout="ntxy")
    with pytest.raises(DataFormatError, match=r"\[key 'nope'\].*'data'"):
        sd.open(path, variable="nope", layout="ntcxy")
    with pytest.raises(DataFormatError, match="go together"):
        sd.open(path, variable="data")
    with pytest.raises(DataFormatError, match="no spatial dims x, y"):
        sd.open(path)  # no (sample, time, x, y) variables in this file


def test_readers_of_one_file_share_its_handle(tmp_path):
    # netCDF-C/HDF5 segfault when a netCDF-4 file with a string variable is open twice in one process
    # and one handle is closed (HDF5 #5359): readers share one handle per file and process instead.
    value = distinct((N, T, 2, X, Y))
    path = tmp_path / "strings.nc"
    xr.Dataset(
        {"data": (("sample", "time", "channel", "x", "y"), value)}, coords={"channel": ["u", "v"]}
    ).to_netcdf(path)
    first = sd.open(path, variable="data", layout="ntcxy")
    second = sd.open(path, variable="data", layout="ntcxy")
    assert first.handle().dataset is second.handle().dataset
    with pytest.raises(DataFormatError):
        sd.open(path, variable="data", layout="ntxy")  # a failed open releases its hold
    second.close()
    second.close()
    third = sd.open(path, variable="data", layout="ntcyx")
    np.testing.assert_array_equal(first.read(1).numpy(), value[1])
    np.testing.assert_array_equal(third.read(2).numpy(), value[2].transpose(0, 1, 3, 2))
    first.close()
    del third
    import gc

    gc.collect()
    assert not any(key[0].endswith("strings.nc") for key in netcdf_reader._SHARED)
    np.testing.assert_array_equal(sd.open(path, variable="data", layout="ntcxy").read(0).numpy(), value[0])


def test_missing_variable_names_key_and_present_ones(tmp_path):
    path = tmp_path / "eval.nc"
    write_jax_cfd_like(path, fields())
    with pytest.raises(DataFormatError, match=r"\[key 'p'\].*'vorticity'") as err:
        sd.open(path, variables=["u", "p"])
    assert str(path) in str(err.value)
    with pytest.raises(DataFormatError, match=r"\[key 'x'\].*wrong dims"):
        sd.open(path, variables=["u", "x"])
    partial = tmp_path / "partial.nc"
    xr.Dataset({"a": (("sample", "time", "x"), distinct((N, T, X))), "b": (("y",), np.zeros(Y))}).to_netcdf(
        partial
    )
    with pytest.raises(DataFormatError, match=r"no numeric data variable.*'a': \('sample', 'time', 'x'\)"):
        sd.open(partial)


def test_truncated_unknown_and_suffix(tmp_path):
    for fmt in ("NETCDF4", "NETCDF3_64BIT_OFFSET"):
        path = tmp_path / f"cut_{fmt}.nc"
        write_jax_cfd_like(path, fields(), fmt=fmt)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(DataFormatError) as err:
            ds = sd.open(path)
            for i in range(N):
                ds.read(i)
        assert str(path) in str(err.value)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netcdf" * 20)
    with pytest.raises(DataFormatError, match="unknown or unreadable format"):
        sd.open(junk)
    renamed = tmp_path / "netcdf4_file.h5"
    write_jax_cfd_like(renamed, fields())
    assert sd.open(renamed).metadata.format == "netcdf"  # found by its _NCProperties attribute


def test_missing_engine_package_is_named(tmp_path, monkeypatch):
    path = tmp_path / "eval.nc"
    write_jax_cfd_like(path, fields())
    monkeypatch.setattr(netcdf_reader, "_installed", lambda package: False)
    with pytest.raises(DataFormatError, match="h5netcdf or netCDF4") as err:
        sd.open(path)
    assert str(path) in str(err.value)


def test_nan_is_reported_when_that_trajectory_is_read(tmp_path):
    data = fields()
    data["v"][1, 3, 2, 4] = np.nan
    path = tmp_path / "nan.nc"
    write_jax_cfd_like(path, data)
    ds = sd.open(path)
    ds.read(0)
    ds.read(1, slice(0, 3))
    with pytest.raises(DataFormatError, match="non-finite") as err:
        ds.read(1)
    assert str(path) in str(err.value)
