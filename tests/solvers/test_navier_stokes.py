"""The pseudo-spectral Navier-Stokes solver against exact solutions, convergence orders and closed forms."""

import math

import pytest
import torch

from sciml.errors import SolverError
from sciml.solvers.navier_stokes import FORCINGS, Forcing, NavierStokes2D, gaussian_random_field
from sciml.solvers.time_stepping import STEPPERS


def taylor_green(solver: NavierStokes2D, wavenumber: int = 1) -> torch.Tensor:
    """Taylor-Green vorticity 2k cos(kx) cos(ky) on the solver's grid, batch of 1, float64."""
    x, y = solver.grid()
    k = 2 * math.pi * wavenumber / solver.domain_length
    return (2 * k * torch.cos(k * x) * torch.cos(k * y))[None]


@pytest.mark.parametrize("stepper", STEPPERS)
def test_taylor_green_decay_is_exact_after_1000_steps(stepper):
    solver = NavierStokes2D(32, viscosity=1e-3, forcing=None, dt=5e-4, stepper=stepper)
    w0 = taylor_green(solver)
    w = solver.step(w0, 1000)
    k2 = 2 * (2 * math.pi) ** 2
    exact = w0 * math.exp(-1e-3 * k2 * 1000 * 5e-4)
    assert ((w - exact).norm() / exact.norm()).item() <= 1e-10


@pytest.mark.parametrize("stepper", STEPPERS)
def test_single_mode_with_drag_on_a_2pi_box(stepper):
    solver = NavierStokes2D(
        24, viscosity=2e-3, domain_length=2 * math.pi, forcing=None, drag=0.05, dt=1e-3, stepper=stepper
    )
    x, y = solver.grid()
    w0 = torch.sin(3 * x + 2 * y)[None].repeat(2, 1, 1)
    w = solver.simulate(w0, t_final=0.5, record_every=0.25).vorticity
    exact = w0 * math.exp(-(2e-3 * 13 + 0.05) * 0.5)
    assert w.shape == (2, 3, 24, 24)
    assert ((w[:, -1] - exact).norm() / exact.norm()).item() <= 1e-10


@pytest.mark.parametrize("forcing", ["fno", "kolmogorov"])
def test_forced_single_mode_steady_state_stays_steady(forcing):
    # Both named forcings are single Fourier modes, so w = f / (nu |k|^2 + drag) is an exact steady state.
    solver = NavierStokes2D(32, viscosity=1e-2, forcing=forcing, dt=1e-3, stepper="heun-cn")
    f = solver.forcing_field()
    k2 = 2 * (2 * math.pi) ** 2 if forcing == "fno" else 16.0
    assert solver.drag == (0.1 if forcing == "kolmogorov" else 0.0)
    w_steady = (f / (1e-2 * k2 + solver.drag))[None]
    w = solver.step(w_steady, 200)
    assert ((w - w_steady).norm() / w_steady.norm()).item() <= 1e-12


def test_kolmogorov_defaults_and_forcing_closed_form():
    solver = NavierStokes2D(16, viscosity=1e-3, forcing="kolmogorov")
    assert solver.domain_length == pytest.approx(2 * math.pi)
    _, y = solver.grid()
    torch.testing.assert_close(solver.forcing_field(), -4 * torch.cos(4 * y))


def test_a_new_forcing_is_one_entry(monkeypatch):
    def shear(x, y, wavenumber):
        return torch.sin(wavenumber * x)

    monkeypatch.setitem(FORCINGS, "shear", Forcing(shear, domain_length=2 * math.pi, drag=0.05))
    solver = NavierStokes2D(16, viscosity=1e-2, forcing="shear", dt=1e-3, kolmogorov_wavenumber=2)
    assert (solver.domain_length, solver.drag) == (pytest.approx(2 * math.pi), 0.05)
    x, _ = solver.grid()
    torch.testing.assert_close(solver.forcing_field(), torch.sin(2 * x))
    # a single mode: f / (nu |k|^2 + drag) is steady
    w_steady = (solver.forcing_field() / (1e-2 * 4 + 0.05))[None]
    torch.testing.assert_close(solver.step(w_steady, 50), w_steady, rtol=0, atol=1e-12)


def test_basdevant_advection_equals_direct_form_on_band_limited_fields():
    n = 48
    solver = NavierStokes2D(n, viscosity=1e-3, forcing=None)
    w = gaussian_random_field(2, n, dtype=torch.float64, seed=5)
    k = torch.fft.fftfreq(n, 1 / n, dtype=torch.float64) * 2 * math.pi
    kx, ky = k[:, None], k[: n // 2 + 1].abs()[None, :]
    kept = 2 * math.pi * n / 3  # the 2/3 rule: |k| < N/3 in integer wavenumbers
    mask = (kx.abs() < kept) & (ky < kept)
    w_hat = torch.fft.rfft2(w) * mask
    w = torch.fft.irfft2(w_hat, s=(n, n))
    u, v = solver.velocity(w)
    wx = torch.fft.irfft2(1j * kx * w_hat, s=(n, n))
    wy = torch.fft.irfft2(1j * ky * w_hat, s=(n, n))
    direct = -torch.fft.rfft2(u * wx + v * wy) * mask
    equation = solver.equation(w.device, w.dtype)
    in_place = equation.explicit_terms(w_hat, out=torch.empty_like(w_hat))
    out_of_place = equation.explicit_terms(w_hat)
    for ours in (in_place, out_of_place):
        assert ((ours - direct).abs().max() / direct.abs().max()).item() < 1e-12


def test_velocity_closed_form_and_incompressibility():
    solver = NavierStokes2D(32, viscosity=1e-3, forcing=None)
    x, y = solver.grid()
    a = 2 * math.pi
    # psi = sin(a x) sin(2 a y): w = -Lap psi = 5 a^2 psi, u = psi_y, v = -psi_x.
    psi = torch.sin(a * x) * torch.sin(2 * a * y)
    u, v = solver.velocity((5 * a**2 * psi)[None])
    torch.testing.assert_close(u[0], 2 * a * torch.sin(a * x) * torch.cos(2 * a * y), rtol=0, atol=1e-10)
    torch.testing.assert_close(v[0], -a * torch.cos(a * x) * torch.sin(2 * a * y), rtol=0, atol=1e-10)
    w = gaussian_random_field(1, 32, dtype=torch.float64, seed=2)
    u, v = solver.velocity(w)
    k = torch.fft.fftfreq(32, 1 / 32, dtype=torch.float64) * 2 * math.pi
    k[16] = 0.0  # the Nyquist mode has no sign: spectral first derivatives drop it
    kx, ky = k[:, None], k[None, :]
    u_hat, v_hat, w_hat = torch.fft.fft2(u), torch.fft.fft2(v), torch.fft.fft2(w)
    assert torch.fft.ifft2(1j * kx * u_hat + 1j * ky * v_hat).abs().max().item() < 1e-10  # div u = 0
    curl_hat = 1j * kx * v_hat - 1j * ky * u_hat
    resolved = (kx != 0) | (ky != 0)
    resolved[16, :] = False
    resolved[:, 16] = False
    torch.testing.assert_close(curl_hat[0][resolved], w_hat[0][resolved], rtol=0, atol=1e-9)


def _time_error(stepper, dt, reference, w0, t_final, viscosity, forcing):
    solver = NavierStokes2D(32, viscosity=viscosity, forcing=forcing, dt=dt, stepper=stepper)
    w = solver.simulate(w0, t_final, t_final).vorticity[:, -1]
    return ((w - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize(
    ("stepper", "viscosity", "forcing", "order"),
    [
        ("cn-euler", 1e-3, "fno", 1.0),
        ("heun-cn", 1e-3, "fno", 2.0),
        ("rk4-cn", 1e-3, "fno", 2.0),  # Crank-Nicolson sub-steps: second order with diffusion
        ("rk4-cn", 0.0, None, 4.0),  # inviscid: the Carpenter-Kennedy scheme's own fourth order
    ],
)
def test_observed_convergence_order(stepper, viscosity, forcing, order):
    t_final = 0.5
    w0 = gaussian_random_field(2, 32, dtype=torch.float64, seed=3)
    ref_solver = NavierStokes2D(32, viscosity=viscosity, forcing=forcing, dt=t_final / 1024, stepper="rk4-cn")
    reference = ref_solver.simulate(w0, t_final, t_final).vorticity[:, -1]
    e1 = _time_error(stepper, t_final / 16, reference, w0, t_final, viscosity, forcing)
    e2 = _time_error(stepper, t_final / 32, reference, w0, t_final, viscosity, forcing)
    assert abs(math.log2(e1 / e2) - order) <= 0.2


def test_float32_follows_float64_and_batch_is_independent():
    w0 = gaussian_random_field(3, 32, dtype=torch.float64, seed=11)
    solver = NavierStokes2D(32, viscosity=1e-3, dt=1e-3, stepper="heun-cn")
    w64 = solver.step(w0, 50)
    w32 = solver.step(w0.float(), 50)
    assert w32.dtype == torch.float32
    assert ((w32.double() - w64).norm() / w64.norm()).item() < 1e-5
    one = solver.step(w0[1:2], 50)
    torch.testing.assert_close(one[0], w64[1], rtol=0, atol=1e-12)


def test_simulate_records_frames_equal_to_stepping():
    w0 = gaussian_random_field(2, 16, dtype=torch.float64, seed=1)
    solver = NavierStokes2D(16, viscosity=1e-3, dt=1e-2)
    traj = solver.simulate(w0, t_final=0.1, record_every=0.05)
    assert traj.vorticity.shape == (2, 3, 16, 16)
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64))
    torch.testing.assert_close(traj.vorticity[:, 0], w0)
    torch.testing.assert_close(traj.vorticity[:, 2], solver.step(w0, 10), rtol=0, atol=1e-12)


def test_gaussian_random_field_statistics_and_seed():
    n, batch = 32, 400
    a = gaussian_random_field(batch, n, seed=7, dtype=torch.float64)
    b = gaussian_random_field(batch, n, seed=7, dtype=torch.float64)
    c = gaussian_random_field(batch, n, seed=8, dtype=torch.float64)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert a.mean(dim=(1, 2)).abs().max().item() < 1e-12  # the mean mode is removed
    # Pointwise variance = sum over the grid's wavenumbers of sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha).
    k = torch.fft.fftfreq(n, 1 / n, dtype=torch.float64)
    lam = 4 * math.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
    spectrum = 7.0**3 * (lam + 49.0) ** (-2.5)
    spectrum[0, 0] = 0.0
    expected = spectrum.sum().item()
    measured = a.var(dim=0, unbiased=False).mean().item()
    assert measured == pytest.approx(expected, rel=0.05)
    # and the spectrum itself: E|fft2(u)_k|^2 = n^4 sigma^2 lam_k^-alpha
    power = (torch.fft.fft2(a).abs() ** 2).mean(dim=0) / n**4
    low = (k[:, None].abs() <= 2) & (k[None, :].abs() <= 2) & (lam > 0)
    torch.testing.assert_close(power[low], spectrum[low], rtol=0.25, atol=0)


def test_bad_arguments_raise_solver_errors():
    with pytest.raises(SolverError, match="stepper"):
        NavierStokes2D(16, 1e-3, stepper="euler")
    with pytest.raises(SolverError, match="forcing"):
        NavierStokes2D(16, 1e-3, forcing="unknown")
    with pytest.raises(SolverError, match="shape"):
        NavierStokes2D(16, 1e-3, forcing=torch.zeros(8, 8))
    solver = NavierStokes2D(16, 1e-3, dt=1e-2)
    with pytest.raises(SolverError, match=r"\[\.\.\., 16, 16\]"):
        solver.step(torch.zeros(1, 8, 8))
    with pytest.raises(SolverError, match="multiple"):
        solver.simulate(torch.zeros(1, 16, 16), t_final=1.0, record_every=0.015)
    blowup = NavierStokes2D(16, 0.0, forcing=None, dt=10.0)
    with pytest.raises(SolverError, match="non-finite"):
        blowup.simulate(1e3 * gaussian_random_field(1, 16, seed=0), t_final=100.0, record_every=10.0)


def test_residual_vanishes_on_exact_solutions_and_shrinks_with_dt():
    from sciml.solvers.navier_stokes import central_time_derivative

    # Taylor-Green decay: w_t = -2 nu k^2 w exactly
    solver = NavierStokes2D(32, viscosity=1e-3, forcing=None)
    w = taylor_green(solver)
    k2 = 2 * (2 * math.pi) ** 2
    assert solver.residual(w, -1e-3 * k2 * w).abs().max().item() < 1e-10
    # the forced steady state: w_t = 0
    forced = NavierStokes2D(32, viscosity=1e-2, forcing="fno")
    steady = (forced.forcing_field() / (1e-2 * 2 * (2 * math.pi) ** 2))[None]
    assert forced.residual(steady, torch.zeros_like(steady)).abs().max().item() < 1e-12
    # a turbulent-ish trajectory: the residual of central differences falls as dt^2
    w0 = gaussian_random_field(1, 32, dtype=torch.float64, seed=4)
    errors = []
    for dt in (2e-3, 1e-3):
        s = NavierStokes2D(32, viscosity=1e-3, forcing="fno", dt=dt / 16, stepper="rk4-cn")
        frames = s.simulate(w0, 2 * dt, dt).vorticity  # [1, 3, N, N]
        r = s.residual(frames[:, 1], central_time_derivative(frames, dt)[:, 0])
        errors.append(r.norm().item())
    assert 3.0 < errors[0] / errors[1] < 5.0
