"""The readers' shared helpers (sciml.datasets.readers._layout): one flag semantics, per-axis options, box
lengths; and The Well and netCDF readers agreeing on the same stored flag values (issue 14)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest

import sciml.datasets as sd
import sciml.datasets.readers as readers_package
from sciml.datasets.readers._layout import box_length, parse_flag, per_axis_flags, per_axis_floats
from sciml.errors import DataFormatError

B, T, X, Y = 2, 3, 4, 5
STR = h5py.string_dtype("utf-8")

# values both HDF5 (The Well) and netCDF attributes can hold, with the flag they mean
STORED_SPELLINGS = [
    ("true", True),
    ("False", False),
    (" YES ", True),
    ("no", False),
    ("T", True),
    ("n", False),
    ("1", True),
    ("0", False),
    ("periodic", True),
    ("WALL", False),
    ("open", False),
    (1, True),
    (0, False),
    (b"yes", True),
    (b"periodic", True),
    (b"false", False),
]


# ---------------------------------------------------------------------------------------------------------
# parse_flag
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *STORED_SPELLINGS,
        (True, True),
        (False, False),
        (np.bool_(True), True),
        (np.int8(0), False),
        (1.0, True),
        (np.float32(0.0), False),
        (np.bytes_(b"Wall"), False),
        (np.str_("none"), False),
        (np.array([1]), True),
        (np.array(["periodic"]), True),
        (np.array([b"no"]), False),
    ],
)
def test_parse_flag_spellings(value, expected):
    assert parse_flag(value, path="f.h5", key="k") is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, 0.5, math.nan, np.array([1, 0]), [True], None])
def test_parse_flag_refuses_what_it_does_not_know(value):
    with pytest.raises(DataFormatError) as err:
        parse_flag(value, path="data/f.h5", key="u.attrs['periodic']")
    message = str(err.value)
    assert message.startswith("data/f.h5 [key \"u.attrs['periodic']\"]")
    if value is not None:
        assert repr(value) in message and "not a recognized true/false value" in message
    else:
        assert "missing" in message


def test_parse_flag_absent_takes_the_callers_default():
    assert parse_flag(None, path="f", key="k", default=True) is True
    assert parse_flag(None, path="f", key="k", default=False) is False
    with pytest.raises(DataFormatError, match="not a recognized"):
        parse_flag("maybe", path="f", key="k", default=False)  # a default covers absence, not garbage


# ---------------------------------------------------------------------------------------------------------
# The Well and netCDF agree
# ---------------------------------------------------------------------------------------------------------
def write_well(path: Path, time_varying, varies: bool) -> None:
    """A Well file whose field ``u`` carries ``time_varying=time_varying``, stored with a time axis when
    ``varies``."""
    with h5py.File(path, "w") as f:
        f.attrs["n_spatial_dims"] = 2
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=STR)
        dims["time"] = 0.1 * np.arange(T)
        dims["x"] = np.arange(X) / X
        dims["y"] = np.arange(Y) / Y
        group = f.create_group("t0_fields")
        group.attrs["field_names"] = np.array(["u"], dtype=STR)
        shape = (B, T, X, Y) if varies else (B, X, Y)
        group["u"] = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        group["u"].attrs["sample_varying"] = True
        group["u"].attrs["time_varying"] = time_varying
        group["u"].attrs["dim_varying"] = np.array([True, True])


def write_netcdf(path: Path, x_periodic) -> None:
    """A netCDF file whose coordinate ``x`` carries ``periodic=x_periodic`` (``y`` says nothing)."""
    with netCDF4.Dataset(path, "w") as nc:
        for dim, size in (("sample", B), ("time", T), ("x", X), ("y", Y)):
            nc.createDimension(dim, size)
        nc.createVariable("x", "f8", ("x",))[:] = np.arange(X) / X
        nc.createVariable("y", "f8", ("y",))[:] = np.arange(Y) / Y
        nc.createVariable("u", "f4", ("sample", "time", "x", "y"))[:] = np.zeros((B, T, X, Y))
        nc["x"].periodic = x_periodic


@pytest.mark.parametrize(("value", "expected"), STORED_SPELLINGS)
def test_the_well_and_netcdf_read_a_stored_flag_alike(tmp_path, value, expected):
    write_well(tmp_path / "well.hdf5", value, expected)
    write_netcdf(tmp_path / "flow.nc", value)
    with sd.open(tmp_path / "well.hdf5") as well, sd.open(tmp_path / "flow.nc") as nc:
        assert well.metadata.format == "the_well" and nc.metadata.format == "netcdf"
        assert well.fields[0].time_varying is expected
        assert nc.metadata.periodic == (expected, False)  # y: no attribute, netCDF's default
        assert tuple(well.read(1).shape) == (T, 1, X, Y)


def test_the_well_and_netcdf_refuse_an_unknown_flag(tmp_path):
    """Before: The Well read "maybe" as False and netCDF fell through to its default; now both refuse it."""
    write_well(tmp_path / "well.hdf5", "maybe", True)
    write_netcdf(tmp_path / "flow.nc", "maybe")
    with pytest.raises(DataFormatError) as well_err:
        sd.open(tmp_path / "well.hdf5")
    with pytest.raises(DataFormatError) as nc_err:
        sd.open(tmp_path / "flow.nc")
    for err, path, key in (
        (well_err, tmp_path / "well.hdf5", "t0_fields/u.attrs['time_varying']"),
        (nc_err, tmp_path / "flow.nc", "x.attrs['periodic']"),
    ):
        message = str(err.value)
        assert message.startswith(str(path)) and key in message and "'maybe'" in message


def test_the_well_refuses_an_unknown_dim_varying_entry(tmp_path):
    path = tmp_path / "well.hdf5"
    write_well(path, True, True)
    with h5py.File(path, "a") as f:
        f["t0_fields/u"].attrs["dim_varying"] = np.array(["true", "sometimes"], dtype=STR)
    with pytest.raises(DataFormatError, match=r"dim_varying.*'sometimes'"):
        sd.open(path)


def test_netcdf_global_periodic_of_the_wrong_length_is_refused(tmp_path):
    path = tmp_path / "flow.nc"
    write_netcdf(path, 1)
    with netCDF4.Dataset(path, "a") as nc:
        del nc["x"].periodic
        nc.periodic = np.array([1, 0, 1], dtype=np.int32)
    with pytest.raises(DataFormatError, match=r"attrs\['periodic'\].*wrong number of values"):
        sd.open(path)
    with netCDF4.Dataset(path, "a") as nc:
        nc.periodic = "wall periodic"  # one word per spatial dim
    with sd.open(path) as ds:
        assert ds.metadata.periodic == (False, True)


# ---------------------------------------------------------------------------------------------------------
# per-axis options
# ---------------------------------------------------------------------------------------------------------
def test_per_axis_broadcasts_and_checks():
    assert per_axis_flags(True, 3, option="periodic", path="f") == (True, True, True)
    assert per_axis_flags("false", 2, option="periodic", path="f") == (False, False)  # not bool("false")
    assert per_axis_flags([1, "wall"], 2, option="periodic", path="f") == (True, False)
    assert per_axis_flags(np.array([True, False]), 2, option="periodic", path="f") == (True, False)
    assert per_axis_floats(2, 2, option="domain_lengths", path="f") == (2.0, 2.0)
    assert per_axis_floats(np.float64(1.5), 1, option="domain_lengths", path="f") == (1.5,)
    assert per_axis_floats((1, "2.5"), 2, option="domain_lengths", path="f") == (1.0, 2.5)
    with pytest.raises(
        DataFormatError, match=r"f: option periodic= has the wrong length; expected 2, found 3"
    ):
        per_axis_flags((True, False, True), 2, option="periodic", path="f")
    with pytest.raises(DataFormatError, match=r"option periodic=.*'maybe'"):
        per_axis_flags("maybe", 2, option="periodic", path="f")
    with pytest.raises(DataFormatError, match=r"f: invalid option domain_lengths=.*'abc'"):
        per_axis_floats("abc", 2, option="domain_lengths", path="f")
    with pytest.raises(DataFormatError, match=r"invalid option domain_lengths="):
        per_axis_floats([1.0, None], 2, option="domain_lengths", path="f")


def write_seeds(path: Path) -> None:
    with h5py.File(path, "w") as f:
        for seed in ("0000", "0001"):
            f[f"{seed}/data"] = np.zeros((T, X, Y, 1), dtype=np.float32)
            f[f"{seed}/grid/x"] = (np.arange(X) + 0.5) / X
            f[f"{seed}/grid/y"] = (np.arange(Y) + 0.5) / Y
            f[f"{seed}/grid/t"] = 0.1 * np.arange(T)


def test_readers_read_periodic_and_domain_length_options_alike(tmp_path):
    """Before: PDEBench's periodic=1 was a raw TypeError, npy's periodic="false" read as True, and
    domain_lengths="abc" a raw ValueError."""
    write_seeds(tmp_path / "2D_diff-react_NA_NA.h5")
    np.save(tmp_path / "flow.npy", np.zeros((B, T, X, Y, 1), dtype=np.float32))
    with sd.open(tmp_path / "2D_diff-react_NA_NA.h5", periodic=1) as seeds:
        assert seeds.metadata.format == "pdebench_seeds" and seeds.metadata.periodic == (True, True)
    with sd.open(tmp_path / "flow.npy", periodic="false") as npy:
        assert npy.metadata.periodic == (False, False)
    with pytest.raises(DataFormatError, match=r"flow\.npy.*invalid option domain_lengths="):
        sd.open(tmp_path / "flow.npy", domain_lengths="abc")
    with pytest.raises(DataFormatError, match=r"NA_NA\.h5.*option periodic=.*'maybe'"):
        sd.open(tmp_path / "2D_diff-react_NA_NA.h5", periodic=(True, "maybe"))


# ---------------------------------------------------------------------------------------------------------
# box length
# ---------------------------------------------------------------------------------------------------------
def test_box_length():
    nodes = np.linspace(0.0, 2.0, 5)  # dx = 0.5, both ends
    assert box_length(nodes, periodic=False) == pytest.approx(2.0)
    assert box_length(nodes, periodic=True) == pytest.approx(2.5)
    centres = (np.arange(4) + 0.5) / 4  # cells of the unit interval
    assert box_length(centres, periodic=False, cell_centred=True) == pytest.approx(1.0)
    assert box_length(centres, periodic=False) == pytest.approx(0.75)
    assert math.isnan(box_length([3.0], periodic=True))


# ---------------------------------------------------------------------------------------------------------
# no reader imports from another reader
# ---------------------------------------------------------------------------------------------------------
def test_no_reader_imports_another_reader():
    folder = Path(readers_package.__file__).parent
    sources = {p.stem: p.read_text() for p in folder.glob("*.py")}
    reader_modules = {name for name, text in sources.items() if "@register_reader" in text}
    assert {"the_well", "netcdf", "pdebench", "numpy_npy", "neuralop_pt", "fno_mat"} <= reader_modules
    for name in reader_modules:
        tree = ast.parse(sources[name])
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sciml.datasets.readers.")
        }
        assert not imported & (reader_modules - {name}), f"{name} imports from {imported & reader_modules}"
