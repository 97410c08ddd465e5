"""Fuzz every reader with damaged files (issue 13): each must open and read, or raise one sciml error.

A small valid file is built for every reader, then damaged: cut at a random point, random bytes flipped
near the start (where headers sit), and for the HDF5 layouts rebuilt with a dataset missing, of the wrong
dtype or shape, declaring a huge shape, or with an attribute removed or garbled. ``sciml.datasets.open``
and reading the first and last sample must then either succeed or raise a ``SciMLError`` that names the
file: never another exception type, a hang, or an allocation beyond the read limit (traced with
``tracemalloc``, which sees NumPy's and Python's allocations).

Bounded and deterministic (``derandomize``): a few dozen examples per reader, well under a minute in all.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sciml.datasets as sd
from sciml.datasets.base import MAX_READ_BYTES_ENV, PairDataset
from sciml.errors import SciMLError

READ_LIMIT = 2**20  # SCIML_MAX_READ_BYTES while fuzzing; every valid file below is a few KiB
PEAK_LIMIT = 16 * READ_LIMIT  # what one open + read may allocate in all (copies, conversions)
SECONDS_PER_EXAMPLE = 20
B, T, X, Y = 2, 3, 4, 5
STR = h5py.string_dtype("utf-8")
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def values(shape: tuple[int, ...], offset: float = 0.0) -> np.ndarray:
    return (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + offset) / 7


# ---------------------------------------------------------------------------------------------------------
# valid HDF5 layouts, described as {dataset path: array} and {object path: {attribute: value}}
# ---------------------------------------------------------------------------------------------------------
Layout = tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]


def strings(*names: str) -> np.ndarray:
    return np.array(names, dtype=STR)


def the_well() -> Layout:
    varying = {"sample_varying": True, "time_varying": True, "dim_varying": np.array([True, True])}
    constant = {"sample_varying": False, "time_varying": False}
    data = {
        "dimensions/time": np.arange(T, dtype=np.float64) * 0.5,
        "dimensions/x": np.arange(X, dtype=np.float64) / X,
        "dimensions/y": np.arange(Y, dtype=np.float64) / Y,
        "boundary_conditions/x_bc/mask": np.zeros(X, dtype=bool),
        "scalars/viscosity": np.array(0.01),
        "t0_fields/pressure": values((B, T, X, Y)),
        "t1_fields/velocity": values((B, T, X, Y, 2), 0.5),
    }
    attrs = {
        "": {
            "dataset_name": "toy",
            "grid_type": "cartesian",
            "n_spatial_dims": 2,
            "n_trajectories": B,
            "simulation_parameters": strings("Reynolds"),
            "Reynolds": 100.0,
        },
        "dimensions": {"spatial_dims": strings("x", "y")},
        "boundary_conditions/x_bc": {"bc_type": "PERIODIC", "associated_dims": strings("x")},
        "scalars": {"field_names": strings("viscosity")},
        "scalars/viscosity": constant,
        "t0_fields": {"field_names": strings("pressure")},
        "t0_fields/pressure": varying,
        "t1_fields": {"field_names": strings("velocity")},
        "t1_fields/velocity": varying,
    }
    return data, attrs


def pdebench_cfd() -> Layout:
    data = {name: values((B, T, X, Y), k) for k, name in enumerate(("density", "pressure", "Vx", "Vy"))}
    data["t-coordinate"] = np.arange(T + 1, dtype=np.float32) * 0.05
    data["x-coordinate"] = (np.arange(X, dtype=np.float32) + 0.5) / X
    data["y-coordinate"] = (np.arange(Y, dtype=np.float32) + 0.5) / Y
    return data, {"": {"eta": 0.01, "zeta": 0.1, "M": 0.5}}


def pdebench_incompressible() -> Layout:
    data = {
        "velocity": values((B, T, X, Y, 2)),
        "particles": values((B, T, X, Y, 1), 0.5),
        "force": values((B, X, Y, 2), 0.25),
        "t": np.tile(np.arange(T, dtype=np.float32) * 0.005, (B, 1)),
    }
    return data, {"": {"config": "NU: 0.01\ndomain_size: [1, 2]\n", "latestIndex": T - 1}}


def pdebench_seeds() -> Layout:
    data: dict[str, np.ndarray] = {}
    for i in range(B):
        data[f"{i:04d}/data"] = values((T, X, Y, 2), 100.0 * i)
        data[f"{i:04d}/grid/x"] = np.linspace(0, 1, X, dtype=np.float32)
        data[f"{i:04d}/grid/y"] = np.linspace(0, 1, Y, dtype=np.float32)
        data[f"{i:04d}/grid/t"] = np.linspace(0, 1, T, dtype=np.float32)
    return data, {}


def fno_mat_v73() -> Layout:
    """MATLAB order reversed by HDF5: u (T, Y, X, N), a (Y, X, N), t (T, 1)."""
    data = {"a": values((Y, X, B)), "u": values((T, Y, X, B), 0.5), "t": np.arange(1.0, T + 1).reshape(T, 1)}
    return data, {name: {"MATLAB_class": np.bytes_(b"single" if name != "t" else b"double")} for name in data}


HDF5_LAYOUTS: dict[str, tuple[Callable[[], Layout], str]] = {
    "the_well": (the_well, ".hdf5"),
    "pdebench_cfd": (pdebench_cfd, ".hdf5"),
    "pdebench_incompressible": (pdebench_incompressible, ".h5"),
    "pdebench_seeds": (pdebench_seeds, ".h5"),
    "fno_mat_v73": (fno_mat_v73, ".mat"),
}
MAT73_TEXT = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
)


def write_hdf5(path: Path, layout: Layout, declared: dict[str, tuple[tuple[int, ...], Any]]) -> None:
    """Write ``layout``; ``declared`` datasets ({path: (shape, dtype)}) are created chunked, never written."""
    data, attrs = layout
    mat = path.suffix == ".mat"
    with h5py.File(path, "w", userblock_size=512 if mat else 0) as f:
        for key, array in data.items():
            f.create_dataset(key, data=array)
        for key, (shape, dtype) in declared.items():
            f.create_dataset(key, shape=shape, dtype=dtype, chunks=tuple(min(n, 64) for n in shape))
        for key, named in attrs.items():
            if key == "" or key in f:
                for name, value in named.items():
                    f[key or "/"].attrs[name] = value
    if mat:
        with open(path, "r+b") as fh:
            fh.write(MAT73_TEXT.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")


# ---------------------------------------------------------------------------------------------------------
# valid files of the other formats
# ---------------------------------------------------------------------------------------------------------
def write_fno_mat_v5(path: Path) -> None:
    u = values((B, X, Y, T)).astype(np.float64)
    scipy.io.savemat(path, {"a": u[..., 0], "u": u, "t": np.arange(1.0, T + 1)[None]}, do_compression=True)


def write_netcdf(path: Path, fmt: str) -> None:
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        for dim, size in (("sample", B), ("time", T), ("x", X), ("y", Y)):
            nc.createDimension(dim, size)
        nc.createVariable("time", "f8", ("time",))[:] = np.arange(T) * 0.5
        nc.createVariable("x", "f8", ("x",))[:] = np.arange(X) / X
        nc.createVariable("y", "f8", ("y",))[:] = np.arange(Y) / Y
        for k, name in enumerate(("u", "v")):
            nc.createVariable(name, "f4", ("sample", "time", "x", "y"))[:] = values((B, T, X, Y), k)
        nc.periodic = "true"
        nc.viscosity = 1e-3


OTHER_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "fno_mat_v5": (write_fno_mat_v5, ".mat"),
    "netcdf4": (lambda p: write_netcdf(p, "NETCDF4"), ".nc"),
    "netcdf_classic": (lambda p: write_netcdf(p, "NETCDF3_64BIT_OFFSET"), ".nc"),
    "npy": (lambda p: np.save(p, values((B, T, X, Y, 2))), ".npy"),
    "neuralop_pt": (lambda p: torch.save({"x": torch.rand(B, X, Y), "y": torch.rand(B, X, Y)}, p), ".pt"),
}


# ---------------------------------------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm when one example runs too long (not an Exception: nothing converts it)."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`Hang` in the body after ``seconds`` (where the platform has ``SIGALRM``)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hang(signum: int, frame: Any) -> None:
        raise Hang(f"open + read took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def open_and_read(path: Path) -> None:
    """Open ``path`` and read its first and last sample: success, or one SciMLError naming the file."""
    tracemalloc.start()
    try:
        with time_limit(SECONDS_PER_EXAMPLE):
            try:
                with sd.open(path) as ds:
                    for i in sorted({0, len(ds) - 1}) if len(ds) else []:
                        sample = ds[i] if isinstance(ds, PairDataset) else {"fields": ds.read(i)}
                        assert all(isinstance(v, torch.Tensor) for v in sample.values())
            except SciMLError as err:
                assert str(path) in str(err), f"the message does not name the file: {err}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= PEAK_LIMIT, f"open + read allocated {peak} bytes (limit {READ_LIMIT})"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    previous = os.environ.get(MAX_READ_BYTES_ENV)
    os.environ[MAX_READ_BYTES_ENV] = str(READ_LIMIT)
    yield tmp_path_factory.mktemp("fuzz")
    if previous is None:
        del os.environ[MAX_READ_BYTES_ENV]
    else:
        os.environ[MAX_READ_BYTES_ENV] = previous


_NAMES = itertools.count()


@contextlib.contextmanager
def fresh_file(folder: Path, suffix: str) -> Iterator[Path]:
    """A new file name per example (readers share handles per path), removed afterwards."""
    path = folder / f"case{next(_NAMES)}{suffix}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def valid_bytes(folder: Path, name: str) -> tuple[bytes, str]:
    """The bytes of the valid file of reader ``name`` and its suffix (checked to read cleanly)."""
    if name in HDF5_LAYOUTS:
        build, suffix = HDF5_LAYOUTS[name]
        path = folder / f"valid_{name}{suffix}"
        write_hdf5(path, build(), {})
    else:
        write, suffix = OTHER_FILES[name]
        path = folder / f"valid_{name}{suffix}"
        write(path)
    with sd.open(path) as ds:
        assert len(ds) == B
        ds[0]
    return path.read_bytes(), suffix


ALL_READERS = sorted([*HDF5_LAYOUTS, *OTHER_FILES])
_VALID: dict[str, tuple[bytes, str]] = {}


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` cut at a random point, or with 1-8 random bytes among the first 4 KiB changed."""
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, min(len(out), 4096) - 1))
        out[position] ^= draw(st.integers(1, 255))
    return bytes(out)


@pytest.mark.parametrize("reader", ALL_READERS)
@FUZZ
@given(st.data())
def test_damaged_bytes_give_a_sciml_error_or_a_good_read(
    folder: Path, reader: str, data: st.DataObject
) -> None:
    if reader not in _VALID:
        _VALID[reader] = valid_bytes(folder, reader)
    valid, suffix = _VALID[reader]
    with fresh_file(folder, suffix) as path:
        path.write_bytes(data.draw(damaged(valid), label="file"))
        open_and_read(path)


GARBAGE_ATTRIBUTES = [
    None,  # removed
    -1,
    1e300,
    "nonsense",
    np.bytes_(b"\xff\xfe"),
    np.array([], dtype=np.float64),
    np.array([[1, 2], [3, 4]]),
    strings("x", "y", "z", "w"),
]


@st.composite
def restructured(draw: st.DrawFn, layout: Layout) -> tuple[Layout, dict[str, tuple[tuple[int, ...], Any]]]:
    """``layout`` with one dataset missing, retyped, reshaped or declared huge, or one attribute garbled."""
    data, attrs = dict(layout[0]), {key: dict(named) for key, named in layout[1].items()}
    declared: dict[str, tuple[tuple[int, ...], Any]] = {}
    named_attrs = [(key, name) for key, named in attrs.items() for name in named]
    if named_attrs and draw(st.booleans()):
        key, name = draw(st.sampled_from(named_attrs))
        value = draw(st.sampled_from(GARBAGE_ATTRIBUTES))
        if value is None:
            del attrs[key][name]
        else:
            attrs[key][name] = value
        return (data, attrs), declared
    key = draw(st.sampled_from(sorted(data)))
    array = data.pop(key)
    change = draw(st.sampled_from(["missing", "strings", "complex", "one axis less", "longer", "huge"]))
    if change == "strings":
        data[key] = np.full(array.shape, b"x", dtype="S1")
    elif change == "complex":
        data[key] = array.astype(np.complex64)
    elif change == "one axis less":
        data[key] = array[..., 0] if array.ndim else array.reshape(1)
    elif change == "longer":
        data[key] = np.concatenate([array, array]) if array.ndim else np.zeros(3)
    elif change == "huge":
        declared[key] = (tuple(n * 4096 for n in array.shape) or (2**24,), array.dtype)
    return (data, attrs), declared


@pytest.mark.parametrize("layout_name", sorted(HDF5_LAYOUTS))
@FUZZ
@given(st.data())
def test_restructured_hdf5_gives_a_sciml_error_or_a_good_read(
    folder: Path, layout_name: str, data: st.DataObject
) -> None:
    build, suffix = HDF5_LAYOUTS[layout_name]
    layout, declared = data.draw(restructured(build()), label="layout")
    with fresh_file(folder, suffix) as path:
        write_hdf5(path, layout, declared)
        open_and_read(path)
