"""Tests of the mesh-free Chebyshev-Tucker format (arXiv 2503.01696)."""

import itertools
import math

import numpy as np
import pytest

from sciml.errors import ConfigError, SolverError
from sciml.solvers import chebyshev_tucker as ct

RNG = np.random.default_rng(0)
BOX = [(0.0, 2.0), (-1.0, 3.0), (1.0, 2.0)]


def _points(box, m=200):
    box = np.asarray(box)
    return box[:, 0] + (box[:, 1] - box[:, 0]) * RNG.random((m, len(box)))


def runge(x, y, z):
    return 1.0 / (1.0 + 25.0 * (x**2 + y**2 + z**2))


def test_dct_coefficients_of_single_chebyshev_polynomials():
    n = 7
    t = ct.chebyshev_points(n)
    for k in range(n + 1):
        c = ct.coefficients_from_values(np.cos(k * np.arccos(t)))
        expected = np.zeros(n + 1)
        expected[k] = 1.0
        np.testing.assert_allclose(c, expected, atol=1e-13)


def test_polynomials_of_the_degree_are_reproduced_exactly():
    def p(x, y, z):
        return x**3 * y - 2 * z**2 + x * y * z + 0.5 * x**4 * z**2

    approx = ct.chebyshev_tucker(p, box=BOX, degree=(4, 2, 3), tol=1e-13)
    pts = _points(BOX)
    np.testing.assert_allclose(approx(pts), p(*pts.T), rtol=0, atol=1e-12 * np.abs(p(*pts.T)).max())
    assert approx.degrees == (4, 2, 3)


def test_two_dimensional_box():
    approx = ct.chebyshev_tucker(
        lambda x, y: np.sin(x) * y + x**2, box=[(-1, 2), (0, 1)], degree=20, tol=1e-12
    )
    pts = _points([(-1, 2), (0, 1)])
    np.testing.assert_allclose(approx(pts), np.sin(pts[:, 0]) * pts[:, 1] + pts[:, 0] ** 2, atol=1e-12)
    assert approx.ranks == (2, 2)


def test_error_decays_with_degree_for_analytic_function():
    pts = _points([(-1, 1)] * 3, 500)
    exact = runge(*pts.T)
    errors = [
        np.abs(ct.chebyshev_tucker(runge, degree=n, tol=1e-12)(pts) - exact).max() for n in (10, 20, 40, 60)
    ]
    assert all(b < 0.5 * a for a, b in itertools.pairwise(errors))
    assert errors[-1] < 1e-4
    # geometric rate ~ rho^-n with the Bernstein ellipse through the pole at i/5: rho = 0.2 + sqrt(1.04)
    rho = 0.2 + math.sqrt(1.04)
    assert errors[-1] < 50 * rho**-60


def test_separable_function_has_rank_one():
    approx = ct.chebyshev_tucker(lambda x, y, z: np.exp(x) * np.cos(2 * y) * (1 + z**2), box=BOX, degree=24)
    assert approx.ranks == (1, 1, 1)
    assert approx.storage == 1 + 3 * 25
    assert approx.compression_ratio == pytest.approx(25**3 / 76)


def test_ranks_far_below_degree_and_error_estimate():
    approx = ct.chebyshev_tucker(runge, degree=60, tol=1e-6)
    assert max(approx.ranks) <= 12 < 61
    assert approx.error_estimate <= 1e-6
    assert len(approx.singular_values) == 3 and approx.singular_values[0].shape == (61,)
    full = ct.coefficients_from_values(runge(*np.meshgrid(*[ct.chebyshev_points(60)] * 3, indexing="ij")))
    rel = np.linalg.norm(approx.coefficients() - full) / np.linalg.norm(full)
    # HOSVD bound: max_k tail_k <= error <= sqrt(sum_k tail_k^2) = error_estimate
    assert approx.error_estimate / math.sqrt(3) <= rel <= approx.error_estimate * (1 + 1e-9)


def test_gram_and_exact_svd_agree():
    a = ct.chebyshev_tucker(runge, degree=40, ranks=8, svd="gram")
    b = ct.chebyshev_tucker(runge, degree=40, ranks=8, svd="exact")
    pts = _points([(-1, 1)] * 3)
    np.testing.assert_allclose(a(pts), b(pts), atol=1e-12)


def test_hooi_refinement_does_not_increase_error():
    a = ct.chebyshev_tucker(runge, degree=30, ranks=4)
    b = ct.chebyshev_tucker(runge, degree=30, ranks=4, hooi_iters=5)
    assert b.error_estimate <= a.error_estimate * (1 + 1e-9)


def test_rank_rule_on_known_singular_values():
    sigma = 10.0 ** -np.arange(8.0)
    norm = float(np.linalg.norm(sigma))
    # tails: sqrt(sum_{j>=r} sigma_j^2) ~ 10^-r; threshold tol * norm / sqrt(3)
    assert ct.rank_from_singular_values(sigma, 1e-3, norm, 3) == 4
    assert ct.rank_from_singular_values(sigma, 0.5, norm, 3) == 1
    assert ct.rank_from_singular_values(sigma, 1e-12, norm, 3) == 8
    # a tensor with those mode singular values: diagonal core in orthogonal bases
    n = 8
    q = [np.linalg.qr(RNG.standard_normal((n, n)))[0] for _ in range(3)]
    core = np.zeros((n, n, n))
    core[np.arange(n), np.arange(n), np.arange(n)] = sigma
    c = np.einsum("abc,ia,jb,kc->ijk", core, *q)
    approx = ct.from_coefficients(c, [(-1, 1)] * 3, tol=1e-3)  # "auto" takes the fast Gram route here
    assert approx.ranks == (4, 4, 4)
    np.testing.assert_allclose(approx.singular_values[1], sigma, atol=1e-9)
    exact = ct.from_coefficients(c, [(-1, 1)] * 3, tol=1e-3, svd="exact")
    assert exact.ranks == (4, 4, 4)
    np.testing.assert_allclose(exact.singular_values[1], sigma, rtol=1e-8)


def test_grid_evaluation_matches_pointwise():
    approx = ct.chebyshev_tucker(runge, box=BOX, degree=30, tol=1e-8)
    axes = [np.linspace(a, b, m) for (a, b), m in zip(BOX, (7, 5, 6), strict=False)]
    tucker = approx.on_grid(*axes)
    full = tucker.full()
    assert full.shape == (7, 5, 6) and tucker.shape == (7, 5, 6)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(full.reshape(-1), approx(pts), atol=1e-13)
    import tensorly as tl

    with tl.backend_context("numpy"):  # the factors are numpy arrays; the global backend may be pytorch
        np.testing.assert_allclose(tl.tucker_to_tensor(tucker.to_tensorly()), full, atol=1e-13)


def test_derivatives_and_integral_against_closed_forms():
    def f(x, y, z):
        return np.sin(x) * np.exp(y / 2) * z**2

    approx = ct.chebyshev_tucker(f, box=BOX, degree=(30, 30, 4), tol=1e-13)
    pts = _points(BOX)
    x, y, z = pts.T
    np.testing.assert_allclose(approx.derivative(0)(pts), np.cos(x) * np.exp(y / 2) * z**2, atol=1e-10)
    np.testing.assert_allclose(approx.derivative(1, 2)(pts), np.sin(x) * np.exp(y / 2) * z**2 / 4, atol=1e-9)
    np.testing.assert_allclose(approx.derivative(2, 3)(pts), 0.0, atol=1e-10)
    np.testing.assert_allclose(approx.derivative(2)(pts), 2 * z * np.sin(x) * np.exp(y / 2), atol=1e-10)
    exact = (1 - math.cos(2.0)) * 2 * (math.exp(1.5) - math.exp(-0.5)) * (8 - 1) / 3
    assert approx.integral() == pytest.approx(exact, rel=1e-12)


def test_grid_tensor_input_spline_path():
    n = 65
    axes = [np.linspace(a, b, n) for a, b in BOX]
    vals = runge(*np.meshgrid(*axes, indexing="ij"))
    approx = ct.from_grid_tensor(vals, BOX, degree=24, tol=1e-8, spline_order=5)
    reference = ct.chebyshev_tucker(runge, box=BOX, degree=24, tol=1e-8)
    pts = _points(BOX)
    assert np.abs(approx(pts) - reference(pts)).max() < 1e-5


def test_cp_path_matches_full_path():
    rank, n = 6, 30
    centers = RNG.uniform(-0.5, 0.5, (rank, 3))
    widths = RNG.uniform(1.0, 3.0, rank)
    weights = RNG.standard_normal(rank)

    def f(x, y, z):
        out = 0.0
        for w, c, a in zip(weights, centers, widths, strict=False):
            out = out + w * np.exp(-a * ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2))
        return out

    box = [(-1, 1)] * 3
    mats = [np.exp(-widths * (ct.chebyshev_points(n)[:, None] - centers[:, k]) ** 2) for k in range(3)]
    cp = ct.from_cp(mats, box, weights=weights, tol=1e-10)
    full = ct.chebyshev_tucker(f, box=box, degree=n, tol=1e-10)
    pts = _points(box)
    np.testing.assert_allclose(cp(pts), full(pts), atol=1e-8)
    assert max(cp.ranks) <= rank


def test_newton_potential_long_range_part():
    n_particles = 20
    pos = RNG.uniform(-0.6, 0.6, (n_particles, 3))
    q = RNG.choice([-1.0, 1.0], n_particles)
    delta = 0.3
    approx = ct.newton_potential(q, pos, delta=delta, degree=32, tol=1e-8)
    pts = _points([(-1, 1)] * 3, 300)
    r = np.linalg.norm(pts[:, None, :] - pos[None], axis=-1)
    exact = (q * ct.long_range_kernel(r, delta)).sum(axis=1)
    assert np.abs(approx(pts) - exact).max() / np.abs(exact).max() < 1e-6
    assert max(approx.ranks) < 20


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tol": 0.0}, ConfigError, "tolerance"),
        ({"tol": 1.5}, ConfigError, "tolerance"),
        ({"box": [(0, 0), (0, 1), (0, 1)]}, ConfigError, "width"),
        ({"box": [(1, 0), (0, 1), (0, 1)]}, ConfigError, "width"),
        ({"degree": 0}, ConfigError, "degree"),
        ({"degree": (3, 3)}, ConfigError, "degree"),
        ({"ranks": 0}, ConfigError, "ranks"),
        ({"svd": "qr"}, ConfigError, "svd"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    args = {"box": [(-1, 1)] * 3, "degree": 4, "tol": 1e-6} | kwargs
    with pytest.raises(error, match=match):
        ct.chebyshev_tucker(runge, **args)


def test_bad_data():
    with pytest.raises(SolverError, match="finite"), np.errstate(divide="ignore"):
        ct.chebyshev_tucker(lambda x, y, z: 1.0 / x, degree=4)  # x = 0 is a Chebyshev point
    approx = ct.chebyshev_tucker(runge, degree=4)
    with pytest.raises(SolverError, match=r"shape \[M, 3\]"):
        approx(np.zeros((5, 2)))
    with pytest.raises(SolverError, match="finite"):
        approx(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(SolverError, match="box"):
        approx(np.array([[0.0, 2.0, 0.0]]))
    with pytest.raises(SolverError, match="finite"):
        ct.from_grid_tensor(np.full((4, 4, 4), np.inf), [(-1, 1)] * 3)
    with pytest.raises(SolverError, match="CP factor 1"):
        ct.from_cp([np.ones((5, 2)), np.ones((5, 3))], [(-1, 1)] * 2)
    with pytest.raises(SolverError, match="positions"):
        ct.newton_potential(np.ones(3), np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="delta"):
        ct.newton_potential(np.ones(2), np.zeros((2, 3)), delta=0.0)
