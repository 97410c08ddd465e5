"""Write a tiny dataset in every format sciml can write, read each file back, and check the frames agree.

The Well HDF5 and FNO .mat (v7.3) come from the generator, netCDF-4 and zarr from the dataset itself
(``to_netcdf``, ``to_zarr``); the .npy and neuraloperator .pt files are written with numpy and torch in the
layouts the readers expect.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import sciml.datasets as sd
from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))

# 3 trajectories of 2D Navier-Stokes (FNO forcing, nu = 1e-3) on a 16 x 16 grid, frames t = 0, 0.5, 1
recipe = Recipe.from_mapping(
    {
        "name": "tiny",
        "solver": {"resolution": 16, "viscosity": 1e-3, "forcing": "fno", "dt": 0.01, "stepper": "heun-cn"},
        "output": {"t_final": 1.0, "record_every": 0.5},
        "n_trajectories": 3,
        "batch_size": 3,
    }
)
well_path = generate(recipe, workdir / "tiny.hdf5", file_format="well", progress=False, device="cpu")
mat_path = generate(recipe, workdir / "tiny.mat", file_format="mat", progress=False, device="cpu")

well = sd.open(well_path)  # the format is detected from the file's content, not its name
print(well.metadata.format, well.metadata.field_names, well.metadata.grid_shape, well.metadata.n_times)
reference = well.read(1)[:, :1]  # trajectory 1, every frame, the vorticity channel: [T, 1, X, Y]

# FNO .mat: vorticity only, the layout of FNO's NavierStokes_V1e-3_N5000_T50.mat
mat = sd.open(mat_path)
assert mat.metadata.format != well.metadata.format
assert torch.equal(mat.read(1), reference)

# netCDF: every dataset writes itself as netCDF-4 (one variable per channel over sample, time, x, y)
well.to_netcdf(workdir / "tiny.nc")  # netCDF-4 through h5netcdf
netcdf = sd.open(workdir / "tiny.nc")
assert torch.equal(netcdf.read(1)[:, :1], reference)
assert (workdir / "tiny.nc").read_bytes()[:4] == b"\x89HDF"  # netCDF-4 is HDF5 underneath

# zarr: the same layout as a store (a folder of chunks, one per frame), read back lazily
well.to_zarr(workdir / "tiny.zarr")
zarr_store = sd.open(workdir / "tiny.zarr")
assert torch.equal(zarr_store.read(1)[:, :1], reference)

# .npy: one array [N, T, X, Y, C] (other axis orders: the reader's layout= option, e.g. "ntcxy")
frames = np.stack([well.read(i).permute(0, 2, 3, 1).numpy() for i in range(len(well))])
np.save(workdir / "tiny.npy", frames)
npy = sd.open(workdir / "tiny.npy", field_names=["vorticity", "velocity_x", "velocity_y"], periodic=True)
assert torch.equal(npy.read(1)[:, :1], reference)

# neuraloperator .pt: input/output pairs {"x": [N, X, Y], "y": [N, X, Y]}, no time axis
pairs = {"x": torch.from_numpy(frames[:, 0, ..., 0]), "y": torch.from_numpy(frames[:, -1, ..., 0])}
torch.save(pairs, workdir / "tiny_pairs.pt")
pt = sd.open(workdir / "tiny_pairs.pt")
sample = pt[1]  # {"x": [1, X, Y], "y": [1, X, Y]}
assert torch.equal(sample["x"], reference[0]) and torch.equal(sample["y"], reference[-1])

for dataset in (well, mat, netcdf, zarr_store, npy, pt):
    print(f"{dataset.metadata.format:>12}: {len(dataset)} samples on {dataset.metadata.grid_shape}")
    dataset.close()
print(f"every format read back the same frames (files in {workdir})")
