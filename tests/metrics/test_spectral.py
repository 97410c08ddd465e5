"""Radially binned spectra: Parseval, shell location of single modes, truncation; enstrophy, energy."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.metrics import (
    default_n_bins,
    energy_spectrum,
    enstrophy,
    kinetic_energy,
    scalar_spectrum,
    shell_wavenumbers,
    vorticity_spectrum,
)


def grid(nx: int, ny: int, lx: float = 1.0, ly: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(nx, dtype=torch.float64) * (lx / nx)
    y = torch.arange(ny, dtype=torch.float64) * (ly / ny)
    return torch.meshgrid(x, y, indexing="ij")


@pytest.mark.parametrize(("nx", "ny", "lengths"), [(16, 16, None), (15, 20, (2.0, 3.0)), (12, 9, 0.5)])
def test_energy_spectrum_parseval(nx, ny, lengths):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, nx, ny, dtype=torch.float64, generator=g)
    v = torch.randn(2, 3, nx, ny, dtype=torch.float64, generator=g)
    E = energy_spectrum(u, v, lengths=lengths)
    assert E.shape == (2, 3, default_n_bins((nx, ny), lengths))
    assert bool((E >= 0).all())
    torch.testing.assert_close(E.sum(-1), 0.5 * (u**2 + v**2).mean(dim=(-2, -1)), rtol=1e-12, atol=0)
    S = scalar_spectrum(u, lengths=lengths)
    torch.testing.assert_close(S.sum(-1), 0.5 * (u**2).mean(dim=(-2, -1)), rtol=1e-12, atol=0)
    torch.testing.assert_close(E, S + scalar_spectrum(v, lengths=lengths), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("kx", "ky", "shell"), [(3, 4, 5), (1, 1, 1), (2, 1, 2), (2, 2, 3), (0, 7, 7), (5, 0, 5), (8, 8, 11)]
)
def test_single_mode_lands_in_its_shell(kx, ky, shell):
    n = 16
    X, Y = grid(n, n)
    u = torch.cos(2 * math.pi * (kx * X + ky * Y))
    E = energy_spectrum(u, torch.zeros_like(u))
    energy = 0.5 * float((u**2).mean())  # 1/4, or 1/2 for the (8, 8) Nyquist corner
    expected = torch.zeros_like(E)
    expected[shell] = energy
    torch.testing.assert_close(E, expected, rtol=1e-12, atol=1e-14)


def test_anisotropic_box_shells_use_physical_wavenumbers():
    lx, ly = 2.0, 1.0  # kappa_0 = 2 pi / 2 = pi
    X, Y = grid(16, 8, lx, ly)
    u = torch.sin(2 * math.pi * 2 * X / lx)  # kappa = 2 pi -> shell 2
    v = torch.sin(2 * math.pi * 1 * Y / ly)  # kappa = 2 pi -> shell 2
    E = energy_spectrum(u, v, lengths=(lx, ly))
    assert float(E[2]) == pytest.approx(0.5, rel=1e-12)
    assert float(E.sum() - E[2]) == pytest.approx(0.0, abs=1e-14)
    k = shell_wavenumbers(E.shape[-1], (lx, ly))
    assert float(k[2]) == pytest.approx(2 * math.pi)


def test_n_bins_truncates():
    X, Y = grid(16, 16)
    u = torch.sin(2 * math.pi * 2 * X) + torch.cos(2 * math.pi * (3 * X + 4 * Y))
    S = scalar_spectrum(u, n_bins=4)
    assert S.shape == (4,)
    assert float(S[2]) == pytest.approx(0.25, rel=1e-12)
    assert float(S.sum()) == pytest.approx(0.25, rel=1e-12)  # the |k| = 5 mode is beyond the last shell
    with pytest.raises(ConfigError):
        scalar_spectrum(u, n_bins=0)


def test_vorticity_spectrum_and_enstrophy():
    L = 2.0
    X, Y = grid(32, 32, L, L)
    w = 3.0 * torch.sin(2 * math.pi * 4 * X / L) * torch.cos(2 * math.pi * 3 * Y / L)
    Z = vorticity_spectrum(w[None], lengths=L)
    assert Z.shape[0] == 1
    assert float(Z[0, 5]) == pytest.approx(0.5 * 9 / 4, rel=1e-12)
    torch.testing.assert_close(Z, scalar_spectrum(w[None], lengths=L))
    assert float(enstrophy(w, lengths=L)) == pytest.approx(0.5 * 9 / 4 * L * L, rel=1e-12)
    # kinetic energy = |Omega| * sum of the energy spectrum
    u, v = torch.sin(2 * math.pi * Y / L), 0.5 * torch.cos(2 * math.pi * X / L)
    ke = kinetic_energy(u, v, lengths=L)
    assert float(ke) == pytest.approx(float(energy_spectrum(u, v, lengths=L).sum()) * L * L, rel=1e-12)


def test_float32_and_dims():
    g = torch.Generator().manual_seed(3)
    u = torch.randn(2, 24, 24, generator=g)
    S32 = scalar_spectrum(u)
    assert S32.dtype == torch.float32
    torch.testing.assert_close(S32.double(), scalar_spectrum(u.double()), rtol=1e-5, atol=1e-9)
    channels_last = u.permute(1, 2, 0)
    torch.testing.assert_close(scalar_spectrum(channels_last, dims=(0, 1)), S32)
    with pytest.raises(ConfigError):
        energy_spectrum(u, u[:1])
