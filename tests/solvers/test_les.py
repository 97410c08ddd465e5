"""Eddy-viscosity closures: closed forms, WALE's pure-shear property, the dynamic coefficient, LES runs."""

import math

import pytest
import torch

from sciml.errors import SolverError
from sciml.metrics.turbulence import dissipation, kinetic_energy_3d
from sciml.solvers.les import (
    WALE,
    DynamicSmagorinsky,
    Smagorinsky,
    dynamic_coefficient,
    make_closure,
    smagorinsky_viscosity,
    strain_rate,
    wale_viscosity,
)
from sciml.solvers.navier_stokes_3d import NavierStokes3D, SpectralBox3D, random_solenoidal_field

pytestmark = pytest.mark.usefixtures("one_thread")


def shear_gradient(rate: float) -> torch.Tensor:
    """The gradient of the linear shear flow u = (rate * y, 0, 0): g[0, 1] = rate."""
    g = torch.zeros(3, 3, dtype=torch.float64)
    g[0, 1] = rate
    return g


def test_smagorinsky_of_a_linear_shear_in_closed_form():
    """u = (gamma y, 0, 0): S_01 = S_10 = gamma / 2, |S| = gamma, nu_t = (C_s Delta)^2 gamma."""
    gamma, delta, c_s = 3.0, 0.1, 0.17
    assert strain_rate(shear_gradient(gamma))[0, 1] == gamma / 2
    assert smagorinsky_viscosity(shear_gradient(gamma), delta, c_s).item() == pytest.approx(
        (c_s * delta) ** 2 * gamma
    )


def test_wale_vanishes_for_pure_shear():
    """g^2 = g g = 0 for pure shear, so S^d = 0 and the WALE viscosity is zero (Nicoud & Ducros' property)."""
    assert wale_viscosity(shear_gradient(3.0), 0.1, 0.5).item() == 0.0
    # and not for a general gradient (the test can fail)
    g = shear_gradient(3.0)
    g[1, 0] = 1.0
    g[2, 2] = 0.5
    assert wale_viscosity(g, 0.1, 0.5).item() > 0


def test_closures_on_a_periodic_shear_flow():
    """u = (sin y, 0, 0) is pure shear at every point: Smagorinsky nu_t = (C_s Delta)^2 |cos y| in closed form
    on the grid, WALE's nu_t = 0 to round-off."""
    n = 16
    box = SpectralBox3D(n, 2 * math.pi, torch.device("cpu"), torch.float64)
    y = (torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)).view(1, n, 1).expand(n, n, n)
    u = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    u[0, 0] = torch.sin(y)
    u_hat = box.to_spectral(u)
    gradient = box.gradient(u_hat)
    smagorinsky = Smagorinsky(0.17).viscosity(u_hat, gradient, box)
    assert torch.allclose(smagorinsky[0], (0.17 * box.spacing) ** 2 * torch.cos(y).abs(), atol=1e-15)
    assert WALE().viscosity(u_hat, gradient, box).abs().max() < 1e-20


def test_dynamic_coefficient_of_a_resolved_field_is_positive_and_finite():
    """A 32^3 field evolved by the Navier-Stokes equations (t = 0.2 from a random k^4 exp(-2 (k / 4)^2) start)
    has built up an energy cascade: C = C_s^2 is positive, finite and of the usual size (C_s between 0.05 and
    0.3). The random start itself (Gaussian, no transfer yet) gives a far smaller C_s."""
    n = 32
    solver = NavierStokes3D(n, 0.005, dt=0.02, stepper="heun-cn")
    box = solver.box("cpu", torch.float64)
    start = random_solenoidal_field(2, n, peak_wavenumber=4.0, seed=0, dtype=torch.float64)
    coefficients = []
    for u in (start, solver.step(start, 10)):
        u_hat = box.to_spectral(u)
        coefficients.append(dynamic_coefficient(u_hat, box.gradient(u_hat), box))
    random_start, evolved = coefficients
    assert evolved.shape == (2,)
    assert torch.isfinite(evolved).all() and (evolved > 0).all()
    assert ((evolved.sqrt() > 0.05) & (evolved.sqrt() < 0.3)).all()
    assert (random_start < 0.5 * evolved).all()


def test_dynamic_coefficient_is_zero_for_a_field_the_test_filter_keeps():
    """A field entirely below the test-filter cutoff has no resolved stress to sample: L = 0, so C = 0."""
    n = 16
    box = SpectralBox3D(n, 2 * math.pi, torch.device("cpu"), torch.float64)
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    u = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    u[0, 0] = torch.sin(x).view(1, n, 1)  # sin y
    u_hat = box.to_spectral(u)
    assert dynamic_coefficient(u_hat, box.gradient(u_hat), box).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", ["smagorinsky", "dynamic_smagorinsky", "wale"])
def test_les_drains_energy_and_stays_solenoidal(name):
    """Decaying LES at 16^3: every closure removes energy beyond the resolved viscous dissipation, and the
    solution stays divergence-free and finite."""
    nu, dt, steps = 1e-3, 0.01, 10
    u0 = random_solenoidal_field(1, 16, peak_wavenumber=4.0, seed=1, dtype=torch.float64)
    dns = NavierStokes3D(16, nu, dt=dt)
    les = NavierStokes3D(16, nu, dt=dt, eddy_viscosity=make_closure(name))
    u_dns, u_les = dns.step(u0, steps), les.step(u0, steps)
    assert kinetic_energy_3d(u_les) < kinetic_energy_3d(u_dns) - 1e-4
    assert les.divergence(u_les).abs().max() < 1e-12
    assert torch.isfinite(u_les).all()
    assert dissipation(u_les, nu) > 0


def test_les_energy_budget_includes_the_eddy_viscosity():
    """With constant Smagorinsky the energy decays at eps + eps_sgs, eps_sgs = <2 nu_t S_ij S_ij> (the
    dealiasing of the stress removes a little; the budget holds to 2 %)."""
    nu, dt = 1e-3, 1e-3
    n = 16
    closure = Smagorinsky(0.17)
    solver = NavierStokes3D(n, nu, dt=dt, eddy_viscosity=closure)
    u_before = random_solenoidal_field(1, n, peak_wavenumber=3.0, seed=2, dtype=torch.float64)
    u_mid = solver.step(u_before, 1)
    u_after = solver.step(u_mid, 1)
    rate = (kinetic_energy_3d(u_after) - kinetic_energy_3d(u_before)) / (2 * dt)
    box = solver.box("cpu", torch.float64)
    u_hat = box.to_spectral(u_mid)
    gradient = box.gradient(u_hat)
    strain = strain_rate(gradient)
    nu_t = closure.viscosity(u_hat, gradient, box)
    eps_sgs = (2 * nu_t * (strain * strain).sum(dim=(1, 2))).mean()
    assert rate.item() == pytest.approx(-(dissipation(u_mid, nu) + eps_sgs).item(), rel=0.02)


def test_dynamic_closure_keeps_its_last_coefficient():
    closure = DynamicSmagorinsky()
    solver = NavierStokes3D(16, 1e-3, dt=0.01, eddy_viscosity=closure)
    solver.step(random_solenoidal_field(2, 16, peak_wavenumber=5.0, seed=3, dtype=torch.float64), 1)
    assert closure.last_coefficient.shape == (2,) and (closure.last_coefficient >= 0).all()


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: make_closure("vreman"), "unknown LES closure"),
        (lambda: make_closure("wale", c_w=0.5), "bad options"),
        (lambda: Smagorinsky(-0.1), "constant"),
        (lambda: DynamicSmagorinsky(1.0), "test_filter_ratio"),
    ],
)
def test_bad_closures_raise_solver_error(build, match):
    with pytest.raises(SolverError, match=match):
        build()
