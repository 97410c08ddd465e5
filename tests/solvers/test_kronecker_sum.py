"""KroneckerSumSolver (sciml.solvers.kronecker): (sum_d M_d along mode d + c I) X = B vs a dense solve."""

import math

import pytest
import torch

from sciml.solvers.kronecker import KroneckerSumSolver

F64 = torch.float64


def _chebyshev_second_derivative(n: int) -> torch.Tensor:
    """The interior block of the Chebyshev-Gauss-Lobatto second-derivative matrix (Trefethen, Spectral Methods
    in MATLAB, cheb.m): strongly non-normal, the case where an eigen-decomposition loses accuracy."""
    j = torch.arange(n, dtype=F64)
    x = torch.cos(math.pi * j / (n - 1))
    c = torch.ones(n, dtype=F64)
    c[0] = c[-1] = 2.0
    c = c * (-1.0) ** j
    dx = x[:, None] - x[None, :]
    d = (c[:, None] / c[None, :]) / (dx + torch.eye(n, dtype=F64))
    d = d - torch.diag(d.sum(1))
    return (d @ d)[1:-1, 1:-1]


def _dense(matrices, shift):
    """The Kronecker sum as a dense matrix acting on X.reshape(-1) (row-major)."""
    sizes = [m.shape[0] for m in matrices]
    total = shift * torch.eye(math.prod(sizes), dtype=F64)
    for mode, mat in enumerate(matrices):
        factors = [mat if d == mode else torch.eye(n, dtype=F64) for d, n in enumerate(sizes)]
        term = factors[0]
        for f in factors[1:]:
            term = torch.kron(term, f)
        total = total + term
    return total


@pytest.mark.parametrize("sizes", [(7,), (6, 9), (4, 5, 3)])
@pytest.mark.parametrize("transpose", [False, True])
def test_solve_matches_a_dense_solve_for_random_matrices(sizes, transpose):
    gen = torch.Generator().manual_seed(len(sizes))
    matrices = [
        torch.randn(n, n, generator=gen, dtype=F64) + 3.0 * n * torch.eye(n, dtype=F64) for n in sizes
    ]
    rhs = torch.randn(sizes, generator=gen, dtype=F64)
    dense = _dense(matrices, 0.7)
    expected = torch.linalg.solve(dense.T if transpose else dense, rhs.reshape(-1)).reshape(sizes)
    got = KroneckerSumSolver(matrices, 0.7).solve(rhs, transpose=transpose)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10 * float(expected.abs().max()))


@pytest.mark.parametrize("sizes", [(120,), (60, 40)])
def test_non_normal_spectral_matrices_stay_accurate(sizes):
    """Chebyshev Poisson with 120 points in 1-D and 60 x 40 in 2-D: the LU and Bartels-Stewart paths keep the
    residual at round-off relative to the operator's size (an eigen-decomposition of these non-normal
    matrices is what lost 10 digits in the baseline Poisson solves at 400 points)."""
    matrices = [_chebyshev_second_derivative(n + 2) for n in sizes]
    gen = torch.Generator().manual_seed(0)
    rhs = torch.randn(sizes, generator=gen, dtype=F64)
    dense = _dense(matrices, 0.0)
    solution = KroneckerSumSolver(matrices).solve(rhs)
    residual = dense @ solution.reshape(-1) - rhs.reshape(-1)
    scale = float(torch.linalg.matrix_norm(dense)) * float(solution.norm())
    assert float(residual.norm()) <= 1e-13 * scale
