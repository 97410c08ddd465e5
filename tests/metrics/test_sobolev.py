"""Sobolev norms and errors: closed forms of single modes, orthogonality, options, non-periodic variant."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from sciml.errors import ConfigError, SciMLError
from sciml.metrics import (
    metadata_options,
    relative_h1,
    relative_h_minus_1,
    relative_l2,
    sobolev_error,
    sobolev_error_for,
    sobolev_norm,
    sobolev_norm_nonperiodic,
)
from sciml.metrics._fourier import sobolev_weights

S_VALUES = [-1.0, -0.5, 0.0, 1.0, 2.0]
TOL = 1e-10


def periodic_grid(nx: int, ny: int, lx: float = 1.0, ly: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(nx, dtype=torch.float64) * (lx / nx)
    y = torch.arange(ny, dtype=torch.float64) * (ly / ny)
    return torch.meshgrid(x, y, indexing="ij")


def vertex_grid(nx: int, ny: int, lx: float = 1.0, ly: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(0.0, lx, nx, dtype=torch.float64)
    y = torch.linspace(0.0, ly, ny, dtype=torch.float64)
    return torch.meshgrid(x, y, indexing="ij")


def h_weight(s: float, *kappas: float) -> float:
    return (1.0 + sum(k * k for k in kappas)) ** s


def rel_close(a: torch.Tensor | float, b: float, tol: float = TOL) -> bool:
    a = float(a)
    return abs(a - b) <= tol * max(abs(b), 1e-300)


# ----------------------------------------------------------------------------------------------------------
# Periodic closed forms
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s", S_VALUES)
@pytest.mark.parametrize(
    ("nx", "ny", "lx", "ly", "a", "b"),
    [
        (16, 16, 1.0, 1.0, 3, 2),
        (15, 12, 2.0, 0.5, 7, 1),  # odd n with its highest mode, non-unit lengths
        (20, 9, math.pi, 3.0, 4, 4),  # odd n on the last (rfft) axis
    ],
)
def test_single_mode_products(s, nx, ny, lx, ly, a, b):
    X, Y = periodic_grid(nx, ny, lx, ly)
    ka, kb = 2 * math.pi * a / lx, 2 * math.pi * b / ly
    volume = lx * ly
    for fx in (torch.sin, torch.cos):
        for fy in (torch.sin, torch.cos):
            u = fx(ka * X) * fy(kb * Y)
            got = sobolev_norm(u, s, lengths=(lx, ly), squared=True)
            assert rel_close(got, h_weight(s, ka, kb) * volume / 4), (fx, fy)
    # one-axis modes: mean square 1/2
    for u, k in ((torch.sin(ka * X), ka), (torch.cos(kb * Y), kb)):
        assert rel_close(sobolev_norm(u, s, lengths=(lx, ly), squared=True), h_weight(s, k) * volume / 2)
    # the unsquared norm is the square root
    u = torch.sin(ka * X)
    assert rel_close(sobolev_norm(u, s, lengths=(lx, ly)), math.sqrt(h_weight(s, ka) * volume / 2))


@pytest.mark.parametrize("s", S_VALUES)
def test_nyquist_modes(s):
    nx, ny, lx, ly = 12, 10, 1.5, 2.0
    X, Y = periodic_grid(nx, ny, lx, ly)
    kx_nyq, ky_nyq = math.pi * nx / lx, math.pi * ny / ly
    volume = lx * ly
    # cos at the Nyquist index is (-1)^i on the grid: mean square 1, coefficient 1 (no mirror mode)
    cos_x = torch.cos(kx_nyq * X)
    assert rel_close(sobolev_norm(cos_x, s, lengths=(lx, ly), squared=True), h_weight(s, kx_nyq) * volume)
    cos_y = torch.cos(ky_nyq * Y)  # Nyquist column of the rfft axis: counted once
    assert rel_close(sobolev_norm(cos_y, s, lengths=(lx, ly), squared=True), h_weight(s, ky_nyq) * volume)
    both = torch.cos(kx_nyq * X) * torch.cos(ky_nyq * Y)
    got = sobolev_norm(both, s, lengths=(lx, ly), squared=True)
    assert rel_close(got, h_weight(s, kx_nyq, ky_nyq) * volume)
    # Nyquist times an ordinary mode: mean square 1/2
    mixed = torch.cos(kx_nyq * X) * torch.sin(2 * math.pi * 3 * Y / ly)
    got = sobolev_norm(mixed, s, lengths=(lx, ly), squared=True)
    assert rel_close(got, h_weight(s, kx_nyq, 2 * math.pi * 3 / ly) * volume / 2)
    # sin at the Nyquist index vanishes on the grid
    assert float(sobolev_norm(torch.sin(kx_nyq * X), s, lengths=(lx, ly), squared=True)) < 1e-20


@pytest.mark.parametrize("s", S_VALUES)
def test_sum_of_modes_is_orthogonal(s):
    nx, ny, lx, ly = 24, 18, 2.0, 3.0
    X, Y = periodic_grid(nx, ny, lx, ly)
    two_pi = 2 * math.pi
    volume = lx * ly
    terms = [  # (amplitude, field, squared norm of the unit-amplitude field)
        (0.7, torch.ones_like(X), h_weight(s) * volume),
        (1.3, torch.sin(two_pi * 2 * X / lx), h_weight(s, two_pi * 2 / lx) * volume / 2),
        (-0.4, torch.cos(two_pi * 5 * Y / ly), h_weight(s, two_pi * 5 / ly) * volume / 2),
        (
            2.1,
            torch.sin(two_pi * 3 * X / lx) * torch.sin(two_pi * 4 * Y / ly),
            h_weight(s, two_pi * 3 / lx, two_pi * 4 / ly) * volume / 4,
        ),
        (
            0.9,
            torch.cos(two_pi * (X / lx - 2 * Y / ly)),
            h_weight(s, two_pi / lx, two_pi * 2 / ly) * volume / 2,
        ),
        (0.3, torch.cos(math.pi * nx * X / lx), h_weight(s, math.pi * nx / lx) * volume),
    ]
    u = sum(a * f for a, f, _ in terms)
    expected = sum(a * a * q for a, _, q in terms)
    assert rel_close(sobolev_norm(u, s, lengths=(lx, ly), squared=True), expected)


def test_l2_is_mean_square_times_volume():
    u = torch.randn(3, 2, 17, 22, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = sobolev_norm(u, 0, lengths=(2.0, 0.5), squared=True)
    assert got.shape == (3, 2)
    torch.testing.assert_close(got, u.square().mean(dim=(-2, -1)) * 1.0, rtol=1e-12, atol=0)


@pytest.mark.parametrize("s", S_VALUES)
def test_seminorm(s):
    n, L = 16, 2.0
    X, Y = periodic_grid(n, n, L, L)
    k1, k2 = 2 * math.pi * 1 / L, 2 * math.pi * 3 / L
    u = 5.0 + torch.sin(k1 * X) + 2.0 * torch.cos(k2 * X) * torch.sin(k1 * Y)
    got = sobolev_norm(u, s, lengths=L, seminorm=True, squared=True)
    expected = k1 ** (2 * s) * L * L / 2 + 4.0 * (k2 * k2 + k1 * k1) ** s * L * L / 4
    assert rel_close(got, expected)


def test_alpha_shift():
    n, L = 16, 1.0
    X, _ = periodic_grid(n, n, L, L)
    k = 2 * math.pi * 2
    u = torch.sin(k * X)
    alpha = 10**-1.5
    got = sobolev_norm(u, -1, alpha=alpha, squared=True)
    assert rel_close(got, (alpha + k * k) ** -1 / 2)


def test_cutoff_keeps_modes_up_to_the_magnitude():
    n = 32
    X, Y = periodic_grid(n, n)
    two_pi = 2 * math.pi
    low = torch.sin(two_pi * 2 * X)  # |k| = 2
    edge = torch.cos(two_pi * (3 * X + 4 * Y))  # |k| = 5
    high = torch.sin(two_pi * 9 * Y)  # |k| = 9
    u = low + edge + high
    for s in (-1.0, 0.0, 1.0):
        q_low = h_weight(s, two_pi * 2) / 2
        q_edge = h_weight(s, two_pi * 3, two_pi * 4) / 2
        q_high = h_weight(s, two_pi * 9) / 2
        assert rel_close(sobolev_norm(u, s, cutoff=5, squared=True), q_low + q_edge)
        assert rel_close(sobolev_norm(u, s, cutoff=4.99, squared=True), q_low)
        assert rel_close(sobolev_norm(u, s, cutoff=9, squared=True), q_low + q_edge + q_high)
        assert rel_close(sobolev_norm(u, s, cutoff=0.5, squared=True) + 1.0, 1.0)


def test_one_and_three_dims():
    n, L = 12, 3.0
    x = torch.arange(n, dtype=torch.float64) * L / n
    k = 2 * math.pi * 2 / L
    u1 = torch.stack([torch.sin(k * x), 2 * torch.cos(k * x)])  # [2, n]
    got = sobolev_norm(u1, 1, lengths=L, dims=-1, squared=True)
    torch.testing.assert_close(got, torch.tensor([1.0, 4.0], dtype=torch.float64) * (1 + k * k) * L / 2)
    X, Y, Z = torch.meshgrid(x, x[:9] * 12 / 9, x[:10] * 12 / 10, indexing="ij")  # 12 x 9 x 10 on L^3
    u3 = torch.sin(k * X) * torch.cos(2 * math.pi * Y / L) * torch.sin(2 * math.pi * 3 * Z / L)
    got = sobolev_norm(u3, -0.5, lengths=L, dims=(0, 1, 2), squared=True)
    kk = (k, 2 * math.pi / L, 2 * math.pi * 3 / L)
    assert rel_close(got, h_weight(-0.5, *kk) * L**3 / 8)


def test_batched_shapes_and_non_trailing_dims():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(4, 3, 10, 14, dtype=torch.float64, generator=g)
    ref = sobolev_norm(u, 1, lengths=(1.0, 2.0))
    assert ref.shape == (4, 3)
    for b in range(4):
        for c in range(3):
            assert rel_close(sobolev_norm(u[b, c], 1, lengths=(1.0, 2.0)), float(ref[b, c]), 1e-12)
    channels_last = u.permute(0, 2, 3, 1)  # [B, X, Y, C]
    got = sobolev_norm(channels_last, 1, lengths=(1.0, 2.0), dims=(1, 2))
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)


def test_float32_matches_float64():
    g = torch.Generator().manual_seed(2)
    u = torch.randn(2, 2, 64, 64, dtype=torch.float64, generator=g)
    for s in S_VALUES:
        ref = sobolev_norm(u, s)
        got = sobolev_norm(u.float(), s)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), ref, rtol=2e-5, atol=0)


def test_weights_are_cached():
    u = torch.randn(2, 20, 24, dtype=torch.float64)
    sobolev_norm(u, 1.5, lengths=(1.0, 2.0))
    before = sobolev_weights.cache_info()
    sobolev_norm(u, 1.5, lengths=(1.0, 2.0))
    after = sobolev_weights.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_scratch_buffers_across_modes_and_threads():
    """CPU scratch buffers: reused across calls, valid in and out of inference mode and in threads."""
    import threading

    from sciml.metrics import _fourier

    _fourier.release_scratch()
    g = torch.Generator().manual_seed(5)
    t = torch.randn(2, 3, 16, 12, generator=g)
    p = t + 0.1 * torch.randn(2, 3, 16, 12, generator=g)
    ref = sobolev_error(p.double(), t.double(), 1).float()
    _fourier.release_scratch()
    with torch.inference_mode():
        first = sobolev_error(p, t, 1)
    second = sobolev_error(p, t, 1)  # buffers made in inference mode are written outside it
    with torch.no_grad():
        third = sobolev_error(p, t, 1)
    for got in (first, second, third):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=0)
    assert len(_fourier._scratch.buffers) == 1  # the difference
    results = {}

    def worker(i: int) -> None:
        results[i] = sobolev_error(p * (1 + i), t * (1 + i), 1)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i in range(3):
        torch.testing.assert_close(results[i], ref, rtol=1e-5, atol=0)
    _fourier.release_scratch()


def test_relative_and_absolute_errors():
    n, L = 16, 2.0
    X, Y = periodic_grid(n, n, L, L)
    k = 2 * math.pi * 3 / L
    target = torch.sin(k * X) * torch.cos(2 * math.pi * Y / L)
    target = torch.stack([target, 2.0 * target + 1.0])[None]  # [1, 2, n, n]
    pred = 1.1 * target
    for s in S_VALUES:
        err = sobolev_error(pred, target, s, lengths=L)
        assert err.shape == (1, 2)
        torch.testing.assert_close(err, torch.full_like(err, 0.1), rtol=1e-12, atol=0)
        absolute = sobolev_error(pred, target, s, relative=False, lengths=L)
        torch.testing.assert_close(absolute, 0.1 * sobolev_norm(target, s, lengths=L), rtol=1e-12, atol=0)
        sq = sobolev_error(pred, target, s, lengths=L, squared=True)
        torch.testing.assert_close(sq, torch.full_like(sq, 0.01), rtol=1e-12, atol=0)
    torch.testing.assert_close(relative_l2(pred, target), sobolev_error(pred, target, 0))
    torch.testing.assert_close(relative_h1(pred, target, L), sobolev_error(pred, target, 1, lengths=L))
    torch.testing.assert_close(
        relative_h_minus_1(pred, target, L), sobolev_error(pred, target, -1, lengths=L)
    )


def test_error_of_distinct_modes_weights_scales():
    """pred = target + a high mode: the H1 error sees it more than L2, H^-1 less."""
    n = 32
    X, _ = periodic_grid(n, n)
    two_pi = 2 * math.pi
    target = torch.sin(two_pi * X)
    pred = target + 0.1 * torch.sin(two_pi * 8 * X)
    for s in S_VALUES:
        expected = 0.1 * math.sqrt(h_weight(s, two_pi * 8) / h_weight(s, two_pi))
        assert rel_close(sobolev_error(pred, target, s), expected)


@pytest.mark.parametrize("periodic", [True, False])
def test_nan_prediction_is_never_a_small_error(periodic):
    target = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    pred = target.clone()
    pred[0, 0, 3, 3] = float("nan")
    for s in (-1.0, 0.0, 1.0):
        err = sobolev_error(pred, target, s, periodic=periodic)
        assert bool(torch.isnan(err[0, 0])) and float(err[1, 0]) == 0.0
    p = pred.clone().requires_grad_()
    assert bool(torch.isnan(sobolev_error(p, target, 1.0, periodic=periodic)[0, 0]))


def test_mixed_dtypes_promote():
    t = torch.randn(2, 8, 8, dtype=torch.float64)
    p = (t + 0.1).float()
    assert sobolev_error(p, t, 0).dtype == torch.float64


def test_bad_arguments():
    u = torch.randn(2, 8, 8)
    with pytest.raises(ConfigError):
        sobolev_norm(torch.randn(8, 8, dtype=torch.complex64), 0)
    with pytest.raises(ConfigError):
        sobolev_error(u, u[:1], 0)
    with pytest.raises(ConfigError):
        sobolev_norm(u, 0, lengths=(1.0, -1.0))
    with pytest.raises(ConfigError):
        sobolev_norm(u, 0, lengths=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError):
        sobolev_norm(u, 0, cutoff=-1)
    with pytest.raises(ConfigError):
        sobolev_norm(u, -1, alpha=0.0)
    with pytest.raises(ConfigError):
        sobolev_norm(u, float("nan"))
    with pytest.raises(ConfigError):
        sobolev_norm(u, 0, dims=(1, 1))
    with pytest.raises(SciMLError):
        sobolev_norm(u, 1, periodic=False, cutoff=3)
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        sobolev_norm(u, 0, dims=(5,))


# ----------------------------------------------------------------------------------------------------------
# Non-periodic variant
# ----------------------------------------------------------------------------------------------------------
def trapezoid_2d(f: torch.Tensor, lx: float, ly: float) -> float:
    a = f.numpy()
    x = np.linspace(0.0, lx, a.shape[0])
    y = np.linspace(0.0, ly, a.shape[1])
    return float(np.trapezoid(np.trapezoid(a, y, axis=1), x))


def test_nonperiodic_l2_is_the_trapezoid_rule():
    nx, ny, lx, ly = 17, 11, 2.0, 3.0
    X, _ = vertex_grid(nx, ny, lx, ly)
    h = lx / (nx - 1)
    got = sobolev_norm(X, 0, lengths=(lx, ly), periodic=False, squared=True)
    # trapezoid rule for x^2 on [0, lx]: lx^3/3 + lx h^2/6 (exact error term), times ly
    assert rel_close(got, (lx**3 / 3 + lx * h * h / 6) * ly)


def test_nonperiodic_cell_grid_is_the_midpoint_rule():
    nx, ny, lx, ly = 16, 8, 2.0, 1.0
    h = lx / nx
    x = (torch.arange(nx, dtype=torch.float64) + 0.5) * h
    u = x[:, None].expand(nx, ny)
    got = sobolev_norm(u, 0, lengths=(lx, ly), periodic=False, grid="cell", squared=True)
    assert rel_close(got, (lx**3 / 3 - lx * h * h / 12) * ly)
    # H1 of x: the one-sided wall differences are exact for linear fields
    got = sobolev_norm(u, 1, lengths=(lx, ly), periodic=False, grid="cell", squared=True)
    assert rel_close(got, (lx**3 / 3 - lx * h * h / 12) * ly + lx * ly)


def test_nonperiodic_h1_h2_exact_on_quadratics():
    nx, ny, lx, ly = 13, 9, 1.5, 2.5
    X, Y = vertex_grid(nx, ny, lx, ly)
    u = X**2 + X * Y - Y**2 + 0.5 * X - 1.0
    ux, uy = 2 * X + Y + 0.5, X - 2 * Y
    uxx, uxy, uyy = 2.0 + 0 * X, 1.0 + 0 * X, -2.0 + 0 * X
    l2 = trapezoid_2d(u**2, lx, ly)
    grad = trapezoid_2d(ux**2 + uy**2, lx, ly)
    hess = trapezoid_2d(uxx**2 + 2 * uxy**2 + uyy**2, lx, ly)
    kw = {"lengths": (lx, ly), "periodic": False, "squared": True}
    assert rel_close(sobolev_norm(u, 0, **kw), l2)
    assert rel_close(sobolev_norm(u, 1, **kw), l2 + grad)
    assert rel_close(sobolev_norm(u, 1, seminorm=True, **kw), grad)
    # (1 + |xi|^2)^2 = 1 + 2|xi|^2 + |xi|^4: multinomial weights, consistent with the spectral H2
    assert rel_close(sobolev_norm(u, 2, **kw), l2 + 2 * grad + hess)
    assert rel_close(sobolev_norm(u, 2, seminorm=True, **kw), hess)
    assert rel_close(sobolev_norm_nonperiodic(u, 2, squared=True, lengths=(lx, ly)), l2 + 2 * grad + hess)


def test_nonperiodic_second_derivative_exact_on_cubics():
    n, L = 11, 2.0
    x = torch.linspace(0.0, L, n, dtype=torch.float64)
    u = x**3 - 2 * x**2
    got = sobolev_norm(u, 2, lengths=L, dims=-1, periodic=False, seminorm=True, squared=True)
    expected = float(np.trapezoid(((6 * x - 4) ** 2).numpy(), x.numpy()))
    assert rel_close(got, expected)


def test_nonperiodic_agrees_with_spectral_on_smooth_periodic_fields():
    """For a smooth periodic field the finite-difference H1/H2 converge to the Fourier values."""
    n = 257
    X, Y = vertex_grid(n, n)
    u = torch.sin(2 * math.pi * X) * torch.sin(2 * math.pi * Y)
    k2 = 8 * math.pi**2
    for s in (1, 2):
        got = float(sobolev_norm(u, s, periodic=False, squared=True))
        assert abs(got - (1 + k2) ** s / 4) < 2e-3 * (1 + k2) ** s / 4


def test_periodic_formula_is_not_used_for_walls():
    n = 65
    X, _ = vertex_grid(n, n)
    h = 1.0 / (n - 1)
    walls = float(sobolev_norm(X, 1, periodic=False, squared=True))
    assert rel_close(walls, 1 / 3 + h * h / 6 + 1.0)
    periodic = float(sobolev_norm(X, 1, squared=True))
    assert periodic > 10 * walls  # the periodic extension of x jumps at the wall


@dataclass
class Meta:
    periodic: tuple[bool, ...]
    domain_lengths: tuple[float, ...]
    spatial_dims: tuple[str, ...] = ("x", "y")
    coords: dict = field(default_factory=dict)


def test_dispatch_from_metadata():
    n = 33
    X, Y = vertex_grid(n, n)
    target = (X + Y**2)[None, None]
    pred = target + 0.1 * (X * Y)[None, None]
    walls = Meta(periodic=(False, False), domain_lengths=(1.0, 1.0))
    got = sobolev_error_for(pred, target, 1, walls)
    expected = sobolev_error(pred, target, 1, periodic=False)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    # the absolute H1 norm of the target tells the formulas apart: 1/3 + 1/3 + 1/5 + 1 + 4/3 up to O(h^2)
    norm = sobolev_error_for(0 * target, target, 1, walls, relative=False, squared=True)
    assert abs(float(norm) - (1 / 3 + 1 / 3 + 1 / 5 + 1 + 4 / 3)) < 5e-3
    spectral = float(sobolev_error(0 * target, target, 1, relative=False, squared=True))
    assert spectral > 10 * float(norm)
    # mixed periodicity also avoids the spectral formula
    mixed = Meta(periodic=(False, True), domain_lengths=(1.0, 1.0))
    got_mixed = sobolev_error_for(pred, target, 1, mixed)
    torch.testing.assert_close(got_mixed, sobolev_error(pred, target, 1, periodic=(False, True)))
    norm_mixed = sobolev_error_for(0 * target, target, 1, mixed, relative=False, squared=True)
    assert spectral > 2 * float(norm_mixed) and float(norm_mixed) > 2 * float(norm)
    # all periodic: the spectral formula on the metadata's lengths
    P, Q = periodic_grid(16, 16, 2.0, 4.0)
    t = torch.sin(math.pi * P)[None]
    p = 1.1 * t + 0.01 * torch.cos(math.pi * Q)[None]
    per = Meta(periodic=(True, True), domain_lengths=(2.0, 4.0))
    for s in (-1, 0, 1):
        torch.testing.assert_close(
            sobolev_error_for(p, t, s, per), sobolev_error(p, t, s, lengths=(2.0, 4.0)), rtol=1e-12, atol=0
        )


def test_metadata_grid_inference():
    cells = {"x": (np.arange(8) + 0.5) / 8 * 2.0, "y": np.linspace(0.0, 1.0, 5)}
    meta = Meta(periodic=(False, False), domain_lengths=(2.0, 1.0), coords=cells)
    opts = metadata_options(meta, 4)
    assert opts["grid"] == ("cell", "vertex")
    assert opts["dims"] == (2, 3) and opts["lengths"] == (2.0, 1.0)
    with pytest.raises(ConfigError):
        metadata_options(Meta(periodic=(), domain_lengths=()), 4)
    with pytest.raises(ConfigError):
        metadata_options(Meta(periodic=(True, True), domain_lengths=(1.0,)), 4)
    with pytest.raises(ConfigError):
        metadata_options(object(), 4)


def test_windowed_negative_s_for_walls():
    """Fractional/negative s on walled axes: the periodic formula of the tapered field (an approximation)."""
    n = 64
    h = 1.0 / n
    x = (torch.arange(n, dtype=torch.float64) + 0.5) * h
    X, Y = torch.meshgrid(x, x, indexing="ij")
    bump = torch.exp(-((X - 0.5) ** 2 + (Y - 0.5) ** 2) / 0.005)  # negligible near the walls
    for s in (-1.0, -0.5, 0.5):
        got = sobolev_norm(bump, s, periodic=False, grid="cell", squared=True)
        torch.testing.assert_close(got, sobolev_norm(bump, s, squared=True), rtol=1e-6, atol=0)
    # a linear field: finite, and not the periodic value (which sees the jump at the wall)
    X, _ = vertex_grid(n, n)
    windowed = float(sobolev_norm(X, 0.5, periodic=False, squared=True))
    assert math.isfinite(windowed) and windowed < 0.6 * float(sobolev_norm(X, 0.5, squared=True))
    with pytest.raises(ConfigError):
        sobolev_norm(X, -1, periodic=False, taper=0.0)
