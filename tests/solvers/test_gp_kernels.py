"""Analytic kernel derivatives of the GP-HM kernels (sciml.solvers.gp_kernels) against finite differences."""

import math

import gpytorch
import pytest
import torch

from sciml.errors import ConfigError
from sciml.solvers import gp_kernels as gk

F64 = torch.float64


def _kernels():
    torch.manual_seed(0)
    out = {
        "stm": gk.StudentTMixtureKernel(n_components=4, freq_scale=3.0),
        "gm": gk.GaussianMixtureKernel(n_components=4, freq_scale=3.0),
        "se": gk.SEKernel(lengthscale=0.7, outputscale=1.3),
        "matern": gk.Matern52Kernel(lengthscale=0.4, outputscale=0.8),
    }
    with torch.no_grad():  # move away from the symmetric initialisation
        for k in out.values():
            for p in k.parameters():
                p.add_(0.2 * torch.randn_like(p))
    return out


KERNELS = _kernels()
LAGS = torch.tensor([-0.9, -0.31, -1e-3, 0.0, 1e-3, 0.2, 0.77], dtype=F64)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_profile_derivatives_match_central_differences(name, order):
    kernel = KERNELS[name]
    h = 1e-6
    with torch.no_grad():
        fd = (kernel.profile(LAGS + h, order - 1) - kernel.profile(LAGS - h, order - 1)) / (2 * h)
        exact = kernel.profile(LAGS, order)
        scale = kernel.profile(torch.linspace(-1, 1, 201, dtype=F64), order).abs().max()
    # the 4th derivative of the Matern-type kernels is only Lipschitz at d = 0: first-order FD error there
    tol = 1e-4 if order == 4 and name in ("stm", "matern") else 2e-6
    torch.testing.assert_close(exact, fd, atol=tol * float(scale), rtol=0)


@pytest.mark.parametrize("name", ["stm", "matern"])
def test_matern_derivatives_at_zero_lag(name):
    """Values at d = 0 are the analytic limits (autograd through |d| would give a zero slope there)."""
    kernel = KERNELS[name]
    zero = torch.zeros(1, dtype=F64)
    with torch.no_grad():
        if name == "matern":
            a = math.sqrt(5.0) * math.exp(-kernel.log_lengthscale.item())
            s2 = math.exp(kernel.log_outputscale.item())
            expected = [s2, 0.0, -s2 * a**2 / 3.0, 0.0, s2 * a**4]
        else:
            w = torch.exp(kernel.log_weight)
            a = math.sqrt(5.0) * torch.exp(kernel.log_rate)
            om = 2 * math.pi * kernel.mu
            # Leibniz at 0: k'' = m'' + m c'' , k'''' = m'''' + 6 m'' c'' + m c''''
            m2, m4 = -(a**2) / 3.0, a**4
            expected = [
                float(w.sum()),
                0.0,
                float((w * (m2 - om**2)).sum()),
                0.0,
                float((w * (m4 + 6 * m2 * (-(om**2)) + om**4)).sum()),
            ]
        values = [float(v) for v in kernel.profile_derivatives(zero, 4)]
    assert values == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # one-sided finite difference of the second derivative from the right agrees with the value at 0
    h = 1e-7
    with torch.no_grad():
        fd = (kernel.profile(zero + h, 1) - kernel.profile(zero, 1)) / h
    assert float(fd) == pytest.approx(expected[2], rel=1e-5)
    # the pitfall avoided: differentiating the profile twice with autograd gives a wrong value at 0
    # (torch.abs has zero slope at 0)
    if name == "matern":
        d = torch.zeros((), dtype=F64, requires_grad=True)
        t = a * torch.abs(d)
        m = s2 * (1 + t + t * t / 3) * torch.exp(-t)
        (g1,) = torch.autograd.grad(m, d, create_graph=True)
        (g2,) = torch.autograd.grad(g1, d)
        assert abs(float(g2) - expected[2]) > 0.5 * abs(expected[2])


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 1), (2, 0), (0, 2), (2, 1), (2, 2)])
def test_mixed_derivative_blocks(name, a, b):
    """K^(a,b) = d^a/dx^a d^b/dx'^b k(x, x') against differences in x' of K^(a,b-1) or in x of K^(a-1,b)."""
    kernel = KERNELS[name]
    x1 = torch.tensor([-0.4, 0.0, 0.3, 0.55], dtype=F64)
    x2 = torch.tensor([-0.2, 0.0, 0.31, 0.9], dtype=F64)
    h = 1e-6
    with torch.no_grad():
        exact = kernel.derivative_matrix(x1, x2, a, b)
        if b > 0:
            fd = (
                kernel.derivative_matrix(x1, x2 + h, a, b - 1)
                - kernel.derivative_matrix(x1, x2 - h, a, b - 1)
            ) / (2 * h)
        else:
            fd = (
                kernel.derivative_matrix(x1 + h, x2, a - 1, b)
                - kernel.derivative_matrix(x1 - h, x2, a - 1, b)
            ) / (2 * h)
        scale = exact.abs().max() + 1.0
    tol = 1e-4 if a + b == 4 and name in ("stm", "matern") else 2e-6
    torch.testing.assert_close(exact, fd, atol=tol * float(scale), rtol=0)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_gpytorch_call_and_positive_definiteness(name):
    kernel = KERNELS[name]
    x = torch.linspace(0, 1, 25, dtype=F64)[:, None]
    with torch.no_grad():
        dense = kernel(x, x).to_dense()
        torch.testing.assert_close(dense, kernel.derivative_matrix(x[:, 0], x[:, 0]))
        torch.testing.assert_close(kernel(x, x, diag=True), torch.diagonal(dense))
        assert torch.linalg.eigvalsh(dense).min() > -1e-10 * dense.abs().max()
        # the covariance of (u, u'') observations is PSD as well: [[K, K^(0,2)], [K^(2,0), K^(2,2)]]
        xs = x[::3, 0]
        block = torch.cat(
            [
                torch.cat([kernel.derivative_matrix(xs, xs), kernel.derivative_matrix(xs, xs, 0, 2)], 1),
                torch.cat(
                    [kernel.derivative_matrix(xs, xs, 2, 0), kernel.derivative_matrix(xs, xs, 2, 2)], 1
                ),
            ]
        )
        torch.testing.assert_close(block, block.T)
        assert torch.linalg.eigvalsh(block).min() > -1e-9 * block.abs().max()


def test_product_over_dimensions_keeps_separate_mixtures():
    """One mixture per dimension (active_dims); gpytorch's ProductKernel gives the separable covariance."""
    kx = gk.StudentTMixtureKernel(3, 2.0, active_dims=0).double()
    ky = gk.GaussianMixtureKernel(5, 4.0, active_dims=1).double()
    assert kx.log_weight.shape == (3,) and ky.log_weight.shape == (5,)
    pts = torch.rand(7, 2, dtype=F64)
    with torch.no_grad():
        prod = gpytorch.kernels.ProductKernel(kx, ky)(pts, pts).to_dense()
        expected = kx.derivative_matrix(pts[:, 0], pts[:, 0]) * ky.derivative_matrix(pts[:, 1], pts[:, 1])
    torch.testing.assert_close(prod, expected)


def test_initialisation_follows_the_paper():
    k = gk.make_kernel("stm", n_components=30, freq_scale=20.0)
    torch.testing.assert_close(k.log_weight, torch.full((30,), -math.log(30.0), dtype=F64))
    torch.testing.assert_close(k.mu, torch.linspace(0, 1, 30, dtype=F64) * 20.0)


def test_bad_kernel_configuration_raises():
    with pytest.raises(ConfigError, match="n_components"):
        gk.StudentTMixtureKernel(n_components=0)
    with pytest.raises(ConfigError, match="freq_scale"):
        gk.GaussianMixtureKernel(freq_scale=-1.0)
    with pytest.raises(ConfigError, match="lengthscale"):
        gk.SEKernel(lengthscale=0.0)
    with pytest.raises(ConfigError, match="unknown kernel"):
        gk.make_kernel("rbf")
    with pytest.raises(ConfigError, match="order"):
        KERNELS["se"].profile(LAGS, 5)
    with pytest.raises(ConfigError, match="one-dimensional"):
        KERNELS["se"](torch.rand(3, 2, dtype=F64), torch.rand(3, 2, dtype=F64)).to_dense()


def test_cosine_derivatives_of_every_order_match_autograd():
    """d^k/dd^k cos(omega d) for k up to 7 (past one period of the sign cycle) against nested autograd."""
    omega = torch.tensor(2.3, dtype=F64)
    d = torch.linspace(-1.0, 1.0, 9, dtype=F64, requires_grad=True)
    closed = gk.cosine_derivatives(d, omega, order=7)
    value = torch.cos(omega * d)
    for k in range(8):
        assert torch.allclose(closed[k], value, atol=1e-10), k
        (value,) = torch.autograd.grad(value.sum(), d, create_graph=True)
