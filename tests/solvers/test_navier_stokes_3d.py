"""The 3D pseudo-spectral Navier-Stokes solver: exact solutions, invariants, budgets, data, the benchmark."""

import json
import math

import pytest
import torch

from sciml.errors import SolverError
from sciml.metrics.turbulence import dissipation, kinetic_energy_3d
from sciml.solvers.navier_stokes_3d import (
    NavierStokes3D,
    abc_flow,
    random_solenoidal_field,
    taylor_green_vortex,
)
from sciml.solvers.time_stepping import STEPPERS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("resolution", [16, 32])
def test_abc_flow_decays_exactly(resolution):
    """curl u = k u, so u x omega = 0: the explicit terms vanish to round-off and the flow decays as
    exp(-nu k^2 t) up to the Crank-Nicolson error of the viscous term, O((nu k^2 dt)^3) per step."""
    k, nu, dt, steps = 2, 0.01, 1e-3, 20
    solver = NavierStokes3D(resolution, nu, dt=dt, stepper="rk4-cn")
    u0 = abc_flow(resolution, wavenumber=k, coefficients=(1.0, 0.7, 0.3))
    equation = solver.equation("cpu", torch.float64)
    explicit = equation.explicit_terms(equation.box.to_spectral(u0))
    assert explicit.abs().max() / resolution**3 < 1e-14
    u = solver.step(u0, steps)
    exact = u0 * math.exp(-nu * k**2 * steps * dt)
    assert (u - exact).abs().max() < 1e-13


def test_abc_flow_decays_in_a_box_of_any_length():
    """On [0, L)^3 the ABC flow of wavenumber 1 (in units 2 pi / L) decays as exp(-nu (2 pi / L)^2 t)."""
    length, n, nu, dt = 3.0, 16, 0.02, 1e-3
    solver = NavierStokes3D(n, nu, domain_length=length, dt=dt)
    x = solver.grid()
    k = 2 * math.pi / length
    u0 = torch.stack(
        [
            torch.sin(k * x[2]) + torch.cos(k * x[1]),
            torch.sin(k * x[0]) + torch.cos(k * x[2]),
            torch.sin(k * x[1]),
        ]
    )
    u0[2] += torch.cos(k * x[0])
    u = solver.step(u0[None], 40)
    assert (u - u0[None] * math.exp(-nu * k**2 * 40 * dt)).abs().max() < 1e-12


def test_taylor_green_nonlinear_term_in_closed_form():
    """At t = 0 the projected u x omega of Taylor-Green is
    -(sin2x cos2z, sin2y cos2z, -(cos2x + cos2y) sin2z) / 8."""
    solver = NavierStokes3D(16, viscosity=0.0, dt=1e-2)
    x, y, z = solver.grid()
    expected = torch.stack(
        [
            -torch.sin(2 * x) * torch.cos(2 * z) / 8,
            -torch.sin(2 * y) * torch.cos(2 * z) / 8,
            (torch.cos(2 * x) + torch.cos(2 * y)) * torch.sin(2 * z) / 8,
        ]
    )
    assert (solver.time_derivative(taylor_green_vortex(16))[0] - expected).abs().max() < 1e-14


def test_taylor_green_early_time():
    """Early in time the flow grows the third component w = t (cos2x + cos2y) sin2z / 8 + O(t^2) (from the
    closed-form nonlinear term): the remainder shrinks fourfold when t halves, and the initial dissipation is
    2 nu <S_ij S_ij> = 0.75 nu exactly."""
    nu = 1 / 1600
    solver = NavierStokes3D(16, nu, dt=1e-3)
    x, y, z = solver.grid()
    pattern = (torch.cos(2 * x) + torch.cos(2 * y)) * torch.sin(2 * z) / 8
    assert dissipation(taylor_green_vortex(16), nu).item() == pytest.approx(0.75 * nu, rel=1e-13)
    w_errors = []
    for t in (0.04, 0.02):
        u = solver.step(taylor_green_vortex(16), round(t / 1e-3))
        w_errors.append((u[0, 2] - t * pattern).abs().max().item())
    assert w_errors[1] < 0.3 * w_errors[0] and w_errors[1] < 0.01 * 0.02 / 4  # 1 % of the leading term


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_divergence_stays_at_round_off(dtype):
    """A forced random solenoidal field stays divergence-free through steps."""
    solver = NavierStokes3D(16, 0.02, forcing="band", injection_rate=0.2, dt=0.02)
    u0 = random_solenoidal_field(2, 16, seed=3, dtype=dtype)
    u = solver.step(u0, 20)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    assert solver.divergence(u0).abs().max() < tolerance
    assert solver.divergence(u).abs().max() < tolerance * u.abs().max()
    assert u.dtype == dtype and torch.isfinite(u).all()


@pytest.mark.parametrize("forcing", ["band", "linear"])
def test_energy_budget(forcing):
    """dE/dt = -eps + P: the centred difference of the energy against the dissipation and the injection."""
    nu, power, dt = 0.02, 0.3, 2e-3
    solver = NavierStokes3D(16, nu, forcing=forcing, injection_rate=power, dt=dt)
    u_before = random_solenoidal_field(1, 16, seed=1, dtype=torch.float64)
    u_mid = solver.step(u_before, 1)
    u_after = solver.step(u_mid, 1)
    rate = (kinetic_energy_3d(u_after) - kinetic_energy_3d(u_before)) / (2 * dt)
    budget = power - dissipation(u_mid, nu)
    assert torch.allclose(rate, budget, rtol=1e-5)
    assert abs(budget.item()) > 0.01  # the test does test something: forcing and dissipation do not cancel


def test_unforced_inviscid_energy_is_conserved():
    """With nu = 0 and no forcing the dealiased rotational form conserves energy (to the stepper's error)."""
    solver = NavierStokes3D(16, 0.0, dt=5e-3)
    u0 = random_solenoidal_field(1, 16, seed=2, dtype=torch.float64)
    u = solver.step(u0, 40)
    assert (u - u0).abs().max() > 1e-2  # the flow moved
    assert abs(kinetic_energy_3d(u) - kinetic_energy_3d(u0)).item() < 1e-9


def test_differentiable_step_matches_in_place_step():
    solver = NavierStokes3D(8, 0.05, forcing="band", dt=0.01, stepper="heun-cn")
    u0 = random_solenoidal_field(2, 8, seed=4, dtype=torch.float64)
    fast = solver.step(u0, 3)
    leaf = u0.clone().requires_grad_(True)
    slow = solver.step(leaf, 3, differentiable=True)
    assert (fast - slow).abs().max() < 1e-13
    slow.pow(2).sum().backward()
    assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().max() > 0


def test_one_stepper_implementation_for_2d_and_3d():
    """The 3D solver runs on the steppers of time_stepping.py (the same table and class as the 2D solver)."""
    for name in STEPPERS:
        solver = NavierStokes3D(8, 0.05, dt=0.01, stepper=name)
        assert solver.time_stepper("cpu", torch.float64).stages is STEPPERS[name]


def test_random_field_is_solenoidal_with_the_given_energy_and_seeded():
    a = random_solenoidal_field(2, 16, energy=0.3, seed=5, dtype=torch.float64)
    b = random_solenoidal_field(2, 16, energy=0.3, seed=5, dtype=torch.float64)
    assert torch.equal(a, b)
    assert torch.allclose(kinetic_energy_3d(a), torch.tensor([0.3, 0.3], dtype=torch.float64))
    assert NavierStokes3D(16, 0.01).divergence(a).abs().max() < 1e-12


def test_simulate_records_frames_and_raises_on_blow_up():
    solver = NavierStokes3D(8, 0.05, dt=0.01)
    trajectory = solver.simulate(random_solenoidal_field(1, 8, seed=0), 0.05, 0.01)
    assert trajectory.velocity.shape == (1, 6, 3, 8, 8, 8) and trajectory.times.shape == (6,)
    unstable = NavierStokes3D(16, 0.0, dt=50.0)
    with pytest.raises(SolverError, match="non-finite"):
        unstable.simulate(random_solenoidal_field(1, 16, energy=50.0, seed=0), 500.0, 50.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution": 2, "viscosity": 0.1}, "resolution"),
        ({"resolution": 8, "viscosity": -1.0}, "viscosity"),
        ({"resolution": 8, "viscosity": 0.1, "forcing": "kolmogorov"}, "forcing"),
        ({"resolution": 8, "viscosity": 0.1, "stepper": "euler"}, "stepper"),
        ({"resolution": 8, "viscosity": 0.1, "dt": 0.0}, "dt"),
        ({"resolution": 8, "viscosity": 0.1, "eddy_viscosity": 0.17}, "eddy_viscosity"),
    ],
)
def test_bad_arguments_raise_solver_error(kwargs, match):
    with pytest.raises(SolverError, match=match):
        NavierStokes3D(**kwargs)


def test_bad_field_raises_solver_error():
    solver = NavierStokes3D(8, 0.1)
    with pytest.raises(SolverError, match=r"\[batch, 3, 8, 8, 8\]"):
        solver.step(torch.zeros(3, 8, 8, 8))


def test_bench_quick_mode(tmp_path):
    """The benchmark's quick mode runs and writes its record and figure."""
    from solvers.bench_navier_stokes_3d import main, markdown

    record = main(["--quick", "--out", str(tmp_path / "ns3d.json")])
    saved = json.loads((tmp_path / "ns3d.json").read_text())
    assert saved["rows"][0]["ratio_step_to_fft_floor"] > 0
    assert saved["taylor_green"]["times"][-1] == pytest.approx(1.0)
    assert (tmp_path / "ns3d.png").stat().st_size > 0
    assert "Taylor-Green" in markdown(record)


def tiny_hit_recipe(**changes):
    from sciml.datasets.recipes import Recipe

    data = {
        "name": "tiny_hit",
        "solver": {"resolution": 16, "viscosity": 0.05, "forcing": "band", "dt": 0.05, "stepper": "heun-cn"},
        "hit": {"injection_rate": 0.1, "peak_wavenumber": 2.0},
        "output": {
            "resolution": 8,
            "downsample": "spectral",
            "warmup": 0.1,
            "t_final": 0.2,
            "record_every": 0.1,
        },
        "n_trajectories": 3,
        "batch_size": 2,
        "dtype": "float64",
    }
    data.update(changes)
    return Recipe.from_mapping(data)


def test_hit_recipe_generates_a_dataset_the_reader_reads_back(tmp_path):
    """The 3D recipe: DNS -> spectral filter -> The Well file; read back by sciml.datasets.open, frames equal
    to the filtered solver trajectory, statistics in the file's attributes."""
    import h5py

    import sciml.datasets as sd
    from sciml.datasets.generate import generate, initial_velocities, make_solver_3d
    from sciml.solvers.navier_stokes_3d import spectral_filter

    recipe = tiny_hit_recipe()
    path = generate(recipe, tmp_path / "hit.hdf5", progress=False, device="cpu")
    assert not list(tmp_path.glob(".*partial"))
    ds = sd.open(path)
    assert ds.metadata.grid_shape == (8, 8, 8) and len(ds) == 3
    assert ds.metadata.periodic == (True, True, True)
    assert ds.metadata.domain_lengths == pytest.approx((2 * math.pi,) * 3)
    assert ds.metadata.times.tolist() == pytest.approx([0.1, 0.2, 0.3])
    names = list(ds.metadata.field_names)
    assert names == ["velocity_x", "velocity_y", "velocity_z", "vorticity_x", "vorticity_y", "vorticity_z"]
    solver = make_solver_3d(recipe)
    u0 = initial_velocities(recipe, range(3), torch.device("cpu"), torch.float64)
    u0 = solver.step(u0, 2)  # the warm-up
    expected = spectral_filter(solver.simulate(u0, 0.2, 0.1).velocity, 8)
    for i in range(3):
        frames = ds.read(i)
        torch.testing.assert_close(frames[:, :3].double(), expected[i], rtol=1e-5, atol=1e-6)
        vorticity = NavierStokes3D(8, 0.05).vorticity(expected[i])
        torch.testing.assert_close(frames[:, 3:].double(), vorticity, rtol=1e-5, atol=1e-5)
    with h5py.File(path) as f:
        statistics = json.loads(f.attrs["statistics"])
    for part in ("dns", "filtered"):
        assert statistics[part]["re_lambda"] > 0 and statistics[part]["dissipation"] > 0
        assert sum(statistics[part]["energy_spectrum"]) == pytest.approx(statistics[part]["energy"], rel=1e-6)
    assert statistics["filtered"]["energy"] < statistics["dns"]["energy"]


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"solver": {"resolution": 16, "viscosity": 0.05, "forcing": "fno"}}, "solver.forcing"),
        ({"output": {"resolution": 8, "t_final": 0.2, "record_every": 0.1}}, "downsample"),
        ({"hit": {"injection_rate": -1.0}}, "injection_rate"),
    ],
)
def test_bad_hit_recipes_raise_config_error(changes, match):
    from sciml.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        tiny_hit_recipe(**changes)


def test_hit_recipe_refuses_the_mat_format_and_the_2d_solver(tmp_path):
    from sciml.datasets.generate import generate, make_solver
    from sciml.errors import ConfigError

    with pytest.raises(ConfigError, match="3D"):
        generate(tiny_hit_recipe(), tmp_path / "hit.mat", file_format="mat", progress=False, device="cpu")
    with pytest.raises(ConfigError, match="make_solver_3d"):
        make_solver(tiny_hit_recipe())


def test_2d_recipes_read_and_hash_as_before():
    """A recipe without the hit section serializes without it (cache keys of 2D data unchanged)."""
    from sciml.datasets.recipes import Recipe

    recipe = Recipe.from_yaml("ns_quick")
    assert recipe.dimensions == 2 and "hit" not in recipe.to_yaml()
    assert Recipe.from_yaml("hit_quick").dimensions == 3
