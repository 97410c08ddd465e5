"""3D turbulence statistics: closed forms on single Fourier modes, Parseval, PDFs, bad input."""

import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.metrics.turbulence import (
    dissipation,
    energy_spectrum_3d,
    kinetic_energy_3d,
    kolmogorov_scale,
    rms_velocity,
    taylor_microscale,
    taylor_reynolds_number,
    turbulence_statistics,
    velocity_increment_pdf,
    vorticity_3d,
    vorticity_pdf,
)


def single_mode(n: int, amplitude: float, mode: int, length: float = 2 * math.pi) -> torch.Tensor:
    """u = (0, A cos(2 pi m x / L), 0): solenoidal, one Fourier mode, ``[1, 3, n, n, n]``."""
    x = torch.arange(n, dtype=torch.float64) * (length / n)
    u = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    u[0, 1] = (amplitude * torch.cos(2 * math.pi * mode * x / length)).view(n, 1, 1)
    return u


@pytest.mark.parametrize("length", [2 * math.pi, 4.0])
def test_spectrum_of_a_single_mode_in_closed_form(length):
    """All the energy A^2 / 4 sits in shell m, divided by the shell width 2 pi / L."""
    amplitude, mode = 1.5, 3
    k, spectrum = energy_spectrum_3d(single_mode(16, amplitude, mode, length), length)
    dk = 2 * math.pi / length
    expected = torch.zeros_like(spectrum)
    expected[0, mode] = amplitude**2 / 4 / dk
    assert torch.allclose(spectrum, expected, atol=1e-14)
    assert k[mode].item() == pytest.approx(mode * dk)
    assert k.shape[0] == math.floor(math.sqrt(3) * 8 + 0.5) + 1


def test_shells_are_half_open_around_integers():
    """Mode n = (1, 1, 0) has |n| = sqrt 2 = 1.41 -> shell 1; n = (1, 1, 1) has |n| = 1.73 -> shell 2."""
    n = 8
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    gx, gy, gz = torch.meshgrid(x, x, x, indexing="ij")
    u = torch.zeros(2, 3, n, n, n, dtype=torch.float64)
    u[0, 2] = torch.cos(gx + gy)
    u[1, 0] = torch.cos(gx + gy + gz)
    u[1, 1] = -torch.cos(gx + gy + gz)
    _, spectrum = energy_spectrum_3d(u)
    assert (spectrum[0] > 1e-12).nonzero().flatten().tolist() == [1]
    assert (spectrum[1] > 1e-12).nonzero().flatten().tolist() == [2]


def test_parseval_for_a_random_field():
    """The spectrum sums to the energy computed on the grid (every mode is in exactly one shell)."""
    u = torch.randn(2, 3, 12, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for length in (2 * math.pi, 1.0):
        _, spectrum = energy_spectrum_3d(u, length)
        total = spectrum.sum(-1) * (2 * math.pi / length)
        assert torch.allclose(total, kinetic_energy_3d(u), rtol=1e-12)
        assert torch.allclose(total, 0.5 * (u**2).sum(1).mean((-3, -2, -1)), rtol=1e-12)


def test_dissipation_scales_and_reynolds_number_of_a_single_mode():
    """u = (0, A cos(m x), 0): eps = nu A^2 m^2 / 2 = 2 nu sum k^2 E(k), u' = A / sqrt 6, lambda = sqrt 5 / m,
    Re_lambda = u' lambda / nu, eta = (nu^3 / eps)^(1/4)."""
    amplitude, mode, nu = 2.0, 3, 0.01
    u = single_mode(16, amplitude, mode)
    eps = nu * amplitude**2 * mode**2 / 2
    assert dissipation(u, nu).item() == pytest.approx(eps, rel=1e-12)
    k, spectrum = energy_spectrum_3d(u)
    assert (2 * nu * (k**2 * spectrum).sum()).item() == pytest.approx(eps, rel=1e-12)
    assert rms_velocity(u).item() == pytest.approx(amplitude / math.sqrt(6))
    assert taylor_microscale(u, nu).item() == pytest.approx(math.sqrt(5) / mode)
    re_lambda = amplitude / math.sqrt(6) * math.sqrt(5) / mode / nu
    assert taylor_reynolds_number(u, nu).item() == pytest.approx(re_lambda)
    assert kolmogorov_scale(u, nu).item() == pytest.approx((nu**3 / eps) ** 0.25)
    stats = turbulence_statistics(u, nu)
    assert stats["re_lambda"] == pytest.approx(re_lambda)
    assert stats["energy_spectrum"][mode] == pytest.approx(amplitude**2 / 4)


def test_dissipation_is_two_nu_strain_squared_in_physical_space():
    """For a non-solenoidal field too: the spectral sum equals 2 nu <S_ij S_ij> with finite-difference-free
    spectral gradients on the grid."""
    n, nu = 8, 0.1
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    gx, gy, gz = torch.meshgrid(x, x, x, indexing="ij")
    u = torch.stack([torch.sin(gx) * torch.cos(2 * gy), torch.cos(gz), torch.sin(gx + gz)])[None]
    # the analytic gradient g[i, j] = d u_i / d x_j
    g = torch.zeros(3, 3, n, n, n, dtype=torch.float64)
    g[0, 0] = torch.cos(gx) * torch.cos(2 * gy)
    g[0, 1] = -2 * torch.sin(gx) * torch.sin(2 * gy)
    g[1, 2] = -torch.sin(gz)
    g[2, 0] = torch.cos(gx + gz)
    g[2, 2] = torch.cos(gx + gz)
    s = 0.5 * (g + g.transpose(0, 1))
    assert dissipation(u, nu).item() == pytest.approx((2 * nu * (s * s).sum((0, 1)).mean()).item(), rel=1e-12)


def test_vorticity_of_a_beltrami_flow():
    """ABC flow of wavenumber 2: curl u = 2 u."""
    n = 16
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    gx, gy, gz = torch.meshgrid(x, x, x, indexing="ij")
    u = torch.stack(
        [
            torch.sin(2 * gz) + torch.cos(2 * gy),
            torch.sin(2 * gx) + torch.cos(2 * gz),
            torch.sin(2 * gy) + torch.cos(2 * gx),
        ]
    )[None]
    assert (vorticity_3d(u) - 2 * u).abs().max() < 1e-12


def test_pdfs_are_normalized_and_symmetric():
    u = torch.randn(1, 3, 16, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    centres, density = velocity_increment_pdf(u, separation=2, bins=81, limit=6.0)
    width = centres[1] - centres[0]
    assert (density.sum() * width).item() == pytest.approx(1.0, abs=1e-3)
    # increments of independent Gaussians are Gaussian: the density at 0 is about 1 / sqrt(2 pi)
    assert density[40].item() == pytest.approx(1 / math.sqrt(2 * math.pi), rel=0.1)
    centres, density = vorticity_pdf(u, bins=81, limit=8.0)
    assert (density.sum() * (centres[1] - centres[0])).item() == pytest.approx(1.0, abs=1e-3)


def test_increments_of_a_single_mode():
    """u = (cos x, 0, 0): the longitudinal increments of u_x lie in [-2, 2]; those of u_y, u_z are 0."""
    n = 16
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    u = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    u[0, 0] = torch.cos(x).view(n, 1, 1)
    centres, density = velocity_increment_pdf(u, separation=4, bins=41, limit=4.0, normalize=False)
    # along y and z the increments of u_y, u_z are zero: two thirds of the mass at 0
    width = (centres[1] - centres[0]).item()
    assert density[20].item() * width >= 2 / 3 - 1e-12
    assert density[centres.abs() > 2.0 + width].sum().item() == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: energy_spectrum_3d(torch.zeros(2, 8, 8, 8)), r"\[\.\.\., 3, N, N, N\]"),
        (lambda: energy_spectrum_3d(torch.zeros(3, 8, 8, 4)), "cubic"),
        (lambda: dissipation(torch.zeros(3, 8, 8, 8), 0.1, domain_length=-1.0), "domain_length"),
        (lambda: velocity_increment_pdf(torch.zeros(3, 8, 8, 8), separation=8), "separation"),
        (lambda: taylor_reynolds_number(torch.ones(3, 8, 8, 8), 0.0), "viscosity"),
        (lambda: energy_spectrum_3d(torch.zeros(3, 8, 8, 8, dtype=torch.int64)), "floating"),
    ],
)
def test_bad_input_raises_config_error(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_channel_profiles_and_rollout_drift_in_closed_form():
    """Channel flow u = U(y) + A sin(2 pi x / Lx) g(y), v = B sin(2 pi x / Lx) h(y) + C cos(2 pi z / Lz),
    w = D cos(2 pi x / Lx): <u> = U, u_rms = |A g| / sqrt 2, v_rms^2 = (B h)^2 / 2 + C^2 / 2,
    w_rms = |D| / sqrt 2, -<u'v'> = -A B g h / 2 (exact on a grid holding whole periods). Drift: a spectrum
    twice the reference is at distance ln 2; energies 1, 1.2, 1.7, 20 leave a +-50% band at step 2 and blow
    up (> 10x) at step 3."""
    from sciml.metrics.turbulence import (
        first_departure,
        mean_streamwise_profile,
        reynolds_stress_profiles,
        spectrum_log_distance,
    )

    nx, ny, nz, lx, lz = 8, 7, 6, 4 * math.pi, 4 * math.pi / 3
    x = torch.arange(nx, dtype=torch.float64) * lx / nx
    y = torch.linspace(-1, 1, ny, dtype=torch.float64)
    z = torch.arange(nz, dtype=torch.float64) * lz / nz
    X, Y, Z = torch.meshgrid(x, y, z, indexing="ij")
    a, b, c, d = 0.3, -0.7, 0.2, 0.5
    g, h, big_u = torch.cos(Y), Y**2, 1 - Y**2
    sx = torch.sin(2 * math.pi * X / lx)
    u = big_u + a * sx * g
    v = b * sx * h + c * torch.cos(2 * math.pi * Z / lz)
    w = d * torch.cos(2 * math.pi * X / lx)
    velocity = torch.stack([u, v, w]).expand(2, 3, nx, ny, nz)  # two samples, same field
    torch.testing.assert_close(mean_streamwise_profile(velocity), 1 - y**2)
    stats = reynolds_stress_profiles(velocity)
    torch.testing.assert_close(stats["u_rms"], (a * torch.cos(y)).abs() / math.sqrt(2))
    torch.testing.assert_close(stats["v_rms"], ((b * y**2) ** 2 / 2 + c**2 / 2).sqrt())
    torch.testing.assert_close(stats["w_rms"], torch.full((ny,), abs(d) / math.sqrt(2), dtype=torch.float64))
    torch.testing.assert_close(stats["shear"], -a * b * torch.cos(y) * y**2 / 2)
    with pytest.raises(ConfigError, match="channel metrics"):
        mean_streamwise_profile(torch.zeros(2, nx, ny, nz))

    reference = torch.tensor([1.0, 0.5, 0.25, 0.125])
    spectra = torch.stack([reference, 2 * reference, reference * torch.tensor([1.0, 1.0, 4.0, 0.25])])
    torch.testing.assert_close(
        spectrum_log_distance(spectra, reference),
        torch.tensor([0.0, math.log(2), 2 * math.log(4) / 3], dtype=torch.float64),
    )
    distance = torch.zeros(5)
    departure = first_departure(torch.tensor([1.0, 1.2, 1.7, 20.0, 1.0]), distance, reference_energy=1.0)
    assert departure == {"blowup": 3, "drift": 2}
    assert first_departure(torch.ones(3), torch.tensor([0.1, 0.8, 0.1]), 1.0) == {"blowup": None, "drift": 1}
    assert first_departure(torch.tensor([1.0, math.nan]), torch.zeros(2), 1.0) == {"blowup": 1, "drift": 1}
