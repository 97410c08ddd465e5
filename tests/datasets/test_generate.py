"""The generator: recipe -> solver -> one file in The Well schema or FNO's .mat layout."""

import numpy as np
import pytest
import torch

import sciml.datasets as sd
from sciml.datasets.__main__ import main as datasets_cli
from sciml.datasets.generate import downsample, generate, initial_conditions, make_solver
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError


def tiny_recipe(**changes) -> Recipe:
    data = {
        "name": "tiny",
        "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
        "output": {"t_final": 0.2, "record_every": 0.1, "resolution": 8},
        "n_trajectories": 3,
        "batch_size": 2,
        "dtype": "float64",
    }
    data.update(changes)
    return Recipe.from_mapping(data)


def test_well_file_holds_the_solver_trajectories(tmp_path):
    recipe = tiny_recipe()
    path = generate(recipe, tmp_path / "tiny.hdf5", progress=False, device="cpu")
    assert not list(tmp_path.glob(".*partial"))
    ds = sd.open(path)
    assert ds.metadata.format == "the_well"
    assert len(ds) == 3 and ds.metadata.grid_shape == (8, 8)
    np.testing.assert_allclose(ds.metadata.times, [0.0, 0.1, 0.2])
    assert ds.metadata.viscosity == pytest.approx(1e-3)
    assert ds.metadata.periodic == (True, True)
    # the stored frames are the solver's, subsampled 16 -> 8
    solver = make_solver(recipe)
    w0 = initial_conditions(recipe, range(3), torch.device("cpu"), torch.float64)
    traj = solver.simulate(w0, 0.2, 0.1).vorticity
    names = list(ds.metadata.field_names)
    for i in range(3):
        frames = ds.read(i)
        w = frames[:, names.index("vorticity")]
        torch.testing.assert_close(w.double(), traj[i, :, ::2, ::2], rtol=1e-6, atol=1e-6)
        u, v = solver.velocity(traj[i])
        torch.testing.assert_close(
            frames[:, names.index("velocity_x")].double(), u[:, ::2, ::2], rtol=1e-6, atol=1e-6
        )
        torch.testing.assert_close(
            frames[:, names.index("velocity_y")].double(), v[:, ::2, ::2], rtol=1e-6, atol=1e-6
        )


def test_trajectories_depend_only_on_seed_and_index(tmp_path):
    a = sd.open(generate(tiny_recipe(batch_size=1), tmp_path / "a.hdf5", progress=False, device="cpu"))
    b = sd.open(generate(tiny_recipe(batch_size=3), tmp_path / "b.hdf5", progress=False, device="cpu"))
    c = sd.open(
        generate(tiny_recipe(), tmp_path / "c.hdf5", progress=False, device="cpu", seed=1, n_trajectories=2)
    )
    for i in range(3):
        torch.testing.assert_close(a.read(i), b.read(i), rtol=0, atol=0)
    assert len(c) == 2
    assert not torch.allclose(c.read(0), a.read(0))


def test_mat_output_reads_back_the_same_vorticity(tmp_path):
    recipe = tiny_recipe()
    well = sd.open(generate(recipe, tmp_path / "t.hdf5", progress=False, device="cpu"))
    mat = sd.open(generate(recipe, tmp_path / "t.mat", file_format="mat", progress=False, device="cpu"))
    assert mat.metadata.format == "fno_mat"
    k = list(well.metadata.field_names).index("vorticity")
    for i in range(3):
        torch.testing.assert_close(mat.read(i)[:, 0], well.read(i)[:, k], rtol=0, atol=0)
    np.testing.assert_allclose(mat.metadata.times, well.metadata.times)


def test_interrupted_generation_leaves_no_file(tmp_path, monkeypatch):
    from sciml.solvers import navier_stokes

    calls = {"n": 0}
    original = navier_stokes.NavierStokes2D.simulate

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(navier_stokes.NavierStokes2D, "simulate", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(tiny_recipe(), tmp_path / "x.hdf5", progress=False, device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_spectral_downsampling_keeps_resolved_modes_exactly():
    n, m = 32, 8
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    field = torch.sin(2 * torch.pi * (X + 2 * Y)) + 0.5 * torch.cos(2 * torch.pi * 3 * X)
    small = downsample(field, m, "spectral")
    torch.testing.assert_close(small, field[::4, ::4], rtol=0, atol=1e-12)


def test_cli_generate_and_info(tmp_path, capsys):
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(tiny_recipe().to_yaml())
    out = tmp_path / "r.hdf5"
    assert (
        datasets_cli(["generate", str(recipe_file), "--out", str(out), "--no-progress", "--device", "cpu"])
        == 0
    )
    assert out.exists()
    assert datasets_cli(["info", str(out)]) == 0
    assert '"the_well"' in capsys.readouterr().out
    assert datasets_cli(["info", str(tmp_path / "missing.h5")]) == 2


def test_unusable_device_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="gpu0"):
        generate(tiny_recipe(), tmp_path / "d.hdf5", progress=False, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            generate(tiny_recipe(), tmp_path / "d.hdf5", progress=False, device="cuda")
    assert list(tmp_path.iterdir()) == []
