"""The same trajectories written in every supported layout read back as the same tensors everywhere."""

import h5py
import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.writers.fno_mat import FnoMatWriter
from sciml.datasets.writers.the_well import TheWellWriter

N, T, X, Y = 3, 4, 8, 6  # X != Y so that a transposed axis cannot go unnoticed


@pytest.fixture(scope="module")
def vorticity() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, T, X, Y)).astype(np.float32)


def write_with(writer_cls, path, w):
    with writer_cls(
        path,
        n_trajectories=N,
        times=np.arange(T) * 0.5,
        grid_shape=(X, Y),
        domain_lengths=(1.0, 1.0),
        viscosity=1e-3,
    ) as writer:
        writer.write(0, w, np.stack([w, -w], axis=-1))
    return path


def layouts(tmp_path, w):
    """One file per layout, all holding the vorticity ``w`` [N, T, X, Y]."""
    files = {
        "the_well": (write_with(TheWellWriter, tmp_path / "w.hdf5", w), {"fields": ["vorticity"]}),
        "fno_mat": (write_with(FnoMatWriter, tmp_path / "w.mat", w), {}),
    }
    np.save(tmp_path / "w.npy", w[..., None])  # [n, t, x, y, c]
    files["npy"] = (tmp_path / "w.npy", {"layout": "ntxyc"})
    seeds = tmp_path / "seeds.h5"
    with h5py.File(seeds, "w") as f:
        for i in range(N):
            g = f.create_group(f"{i:04d}")
            g.create_dataset("data", data=w[i][..., None])  # (T, X, Y, C)
            g.create_dataset("grid/x", data=np.arange(X) / X)
            g.create_dataset("grid/y", data=np.arange(Y) / Y)
            g.create_dataset("grid/t", data=np.arange(T) * 0.5)
    files["pdebench_seeds"] = (seeds, {})
    well = sd.open(files["the_well"][0], fields=["vorticity"])
    nc = tmp_path / "w.nc"
    well.to_xarray().to_netcdf(nc)
    files["netcdf"] = (nc, {})
    return files


def test_every_reader_gives_the_same_tensors(tmp_path, vorticity):
    for name, (path, options) in layouts(tmp_path, vorticity).items():
        ds = sd.open(path, **options)
        assert ds.metadata.format == name, name
        assert len(ds) == N and tuple(ds.metadata.grid_shape) == (X, Y), name
        for i in range(N):
            frames = ds.read(i)
            assert frames.shape == (T, 1, X, Y), name
            expected = torch.from_numpy(vorticity[i])
            torch.testing.assert_close(frames[:, 0].float(), expected, rtol=0, atol=0, msg=name)
            torch.testing.assert_close(ds.read(i, slice(1, 3))[:, 0].float(), expected[1:3], rtol=0, atol=0)
