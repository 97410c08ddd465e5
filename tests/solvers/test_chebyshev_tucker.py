"""Tests of the mesh-free Chebyshev-Tucker format (arXiv 2503.01696)."""

import itertools
import math

import numpy as np
import pytest
import tensorly as tl
import torch

from sciml.errors import ConfigError, SolverError
from sciml.solvers import chebyshev_tucker as ct
from sciml.solvers import newton_kernel as nk
from sciml.solvers.chebyshev_basis import (
    chebyshev_points,
    chebyshev_vandermonde,
    coefficients_from_values,
    l2_gram,
)
from sciml.solvers.tucker_hosvd import rank_from_singular_values

RNG = np.random.default_rng(0)
BOX = [(0.0, 2.0), (-1.0, 3.0), (1.0, 2.0)]


def _points(box, m=200):
    box = np.asarray(box)
    return box[:, 0] + (box[:, 1] - box[:, 0]) * RNG.random((m, len(box)))


def runge(x, y, z):
    return 1.0 / (1.0 + 25.0 * (x**2 + y**2 + z**2))


def test_dct_coefficients_of_single_chebyshev_polynomials():
    n = 7
    t = chebyshev_points(n)
    for k in range(n + 1):
        c = coefficients_from_values(np.cos(k * np.arccos(t)))
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
    full = coefficients_from_values(runge(*np.meshgrid(*[chebyshev_points(60)] * 3, indexing="ij")))
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
    b = ct.chebyshev_tucker(runge, degree=30, ranks=4, refine=True, n_iter=5)
    assert b.ranks == a.ranks == (4, 4, 4)
    assert b.error_estimate <= a.error_estimate * (1 + 1e-9)
    exact = np.linalg.norm(b.coefficients() - ct.chebyshev_tucker(runge, degree=30, ranks=31).coefficients())
    full_norm = np.linalg.norm(ct.chebyshev_tucker(runge, degree=30, ranks=31).coefficients())
    assert exact / full_norm == pytest.approx(b.error_estimate, rel=1e-6)


def test_rank_rule_on_known_singular_values():
    sigma = 10.0 ** -np.arange(8.0)
    norm = float(np.linalg.norm(sigma))
    # tails: sqrt(sum_{j>=r} sigma_j^2) ~ 10^-r; threshold tol * norm / sqrt(3)
    assert rank_from_singular_values(sigma, 1e-3, norm, 3) == 4
    assert rank_from_singular_values(sigma, 0.5, norm, 3) == 1
    assert rank_from_singular_values(sigma, 1e-12, norm, 3) == 8
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
    mats = [np.exp(-widths * (chebyshev_points(n)[:, None] - centers[:, k]) ** 2) for k in range(3)]
    cp = ct.from_cp(mats, box, weights=weights, tol=1e-10)
    full = ct.chebyshev_tucker(f, box=box, degree=n, tol=1e-10)
    pts = _points(box)
    np.testing.assert_allclose(cp(pts), full(pts), atol=1e-8)
    assert max(cp.ranks) <= rank


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
        ({"norm": "h1"}, ConfigError, "norm"),
        ({"refine": "yes"}, ConfigError, "refine"),
        ({"n_iter": 0}, ConfigError, "n_iter"),
        ({"backend": "jax"}, ConfigError, "backend"),
        ({"dtype": "float16"}, ConfigError, "dtype"),
        ({"dtype": np.int64}, ConfigError, "dtype"),
        ({"device": "cuda"}, ConfigError, "CPU only"),
        ({"backend": "pytorch", "device": "nodevice"}, ConfigError, "device"),
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
        nk.newton_potential(np.ones(3), np.zeros((2, 3)))


# ----------------------------------------------------------------------------------------------------------
# L2 truncation


def test_l2_gram_matches_quadrature():
    n = 9
    x, w = np.polynomial.legendre.leggauss(20)
    v = chebyshev_vandermonde(x, n)
    np.testing.assert_allclose(l2_gram(n), v.T @ (w[:, None] * v), atol=1e-14)


def test_l2_norm_truncation_error_estimate_and_grid_error():
    approx = ct.chebyshev_tucker(runge, degree=40, ranks=6, norm="l2")
    assert approx.norm == "l2"
    full = coefficients_from_values(runge(*np.meshgrid(*[chebyshev_points(40)] * 3, indexing="ij")))
    lt = np.linalg.cholesky(l2_gram(40)).T

    def l2(c):
        return np.linalg.norm(np.einsum("ai,bj,ck,ijk->abc", lt, lt, lt, c, optimize=True))

    rel = l2(approx.coefficients() - full) / l2(full)
    assert approx.error_estimate / math.sqrt(3) <= rel <= approx.error_estimate * (1 + 1e-9)
    # at equal ranks the L2 truncation has the smaller L2 error (it is the HOSVD in that norm)
    coef = ct.chebyshev_tucker(runge, degree=40, ranks=6)
    assert rel < l2(coef.coefficients() - full) / l2(full)


# ----------------------------------------------------------------------------------------------------------
# backends


def test_torch_dct_matches_scipy():
    for shape in [(2, 3), (9, 5), (17, 4, 6)]:
        v = RNG.standard_normal(shape)
        expected = coefficients_from_values(v)
        got = coefficients_from_values(torch.tensor(v))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-13)
    v = RNG.standard_normal((8, 3))
    np.testing.assert_allclose(
        coefficients_from_values(torch.tensor(v), axes=(0,)).numpy(),
        coefficients_from_values(v, axes=(0,)),
        atol=1e-13,
    )


@pytest.mark.parametrize("global_backend", ["numpy", "pytorch"])
@pytest.mark.parametrize("options", [{}, {"norm": "l2"}, {"refine": True, "n_iter": 3}, {"svd": "exact"}])
def test_torch_backend_matches_numpy_in_float64(global_backend, options):
    pts = _points(BOX, 50)
    with tl.backend_context(global_backend):
        a = ct.chebyshev_tucker(runge, box=BOX, degree=24, tol=1e-8, **options)
        b = ct.chebyshev_tucker(runge, box=BOX, degree=24, tol=1e-8, backend="pytorch", **options)
        assert tl.get_backend() == global_backend  # scoped, never set globally
    assert isinstance(a.core, np.ndarray) and a.backend == "numpy"
    assert isinstance(b.core, torch.Tensor) and b.backend == "pytorch" and b.dtype == torch.float64
    assert a.ranks == b.ranks
    scale = np.abs(a.coefficients()).max()
    np.testing.assert_allclose(b.coefficients().numpy(), a.coefficients(), rtol=0, atol=1e-12 * scale)
    values = b(torch.tensor(pts))
    assert isinstance(values, torch.Tensor)
    np.testing.assert_allclose(values.numpy(), a(pts), rtol=0, atol=1e-12)
    np.testing.assert_allclose(b(pts).numpy(), a(pts), rtol=0, atol=1e-12)  # numpy points are converted
    axes = [np.linspace(lo, hi, 5) for lo, hi in BOX]
    grid = b.on_grid(*[torch.tensor(x) for x in axes]).full()
    assert isinstance(grid, torch.Tensor)
    np.testing.assert_allclose(grid.numpy(), a.on_grid(*axes).full(), atol=1e-12)
    np.testing.assert_allclose(b.derivative(1, 2)(pts).numpy(), a.derivative(1, 2)(pts), atol=1e-9)
    assert b.integral() == pytest.approx(a.integral(), rel=1e-12)
    assert b.error_estimate == pytest.approx(a.error_estimate, rel=1e-6, abs=1e-15)


def test_torch_function_receives_tensors_and_autograd_flows():
    seen = []

    def f(x, y, z):
        seen.append(type(x))
        return torch.exp(-(x**2) - 2 * y**2) * torch.cos(z)

    approx = ct.chebyshev_tucker(f, degree=20, tol=1e-10, backend="pytorch")
    assert seen == [torch.Tensor]
    pts = torch.tensor(_points([(-1, 1)] * 3, 20), requires_grad=True)
    out = approx(pts)
    out.sum().backward()
    x, y, z = pts.detach().T
    exact = -2 * x * torch.exp(-(x**2) - 2 * y**2) * torch.cos(z)
    np.testing.assert_allclose(pts.grad[:, 0].numpy(), exact.numpy(), atol=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "pytorch"])
def test_float32(backend):
    pts = _points([(-1, 1)] * 3, 100)
    approx = ct.chebyshev_tucker(runge, degree=40, tol=1e-5, backend=backend, dtype="float32")
    reference = ct.chebyshev_tucker(runge, degree=40, tol=1e-5)
    assert approx.backend == backend and str(approx.dtype).endswith("float32")
    assert approx.ranks == reference.ranks
    values = approx(pts)
    assert str(values.dtype).endswith("float32")
    # the float32 build agrees with the float64 one to single-precision accuracy
    assert np.abs(np.asarray(values, dtype=np.float64) - reference(pts)).max() < 1e-5


def test_backend_inference_and_conversion():
    c = coefficients_from_values(runge(*np.meshgrid(*[chebyshev_points(20)] * 3, indexing="ij")))
    from_torch = ct.from_coefficients(torch.tensor(c), [(-1, 1)] * 3, tol=1e-8)
    assert from_torch.backend == "pytorch" and from_torch.device == torch.device("cpu")
    as_numpy = from_torch.to("numpy")
    assert as_numpy.backend == "numpy" and as_numpy.dtype == np.float64
    single = as_numpy.to(dtype="float32")
    assert single.backend == "numpy" and single.dtype == np.float32
    back = as_numpy.to("pytorch", dtype=torch.float32)
    assert back.backend == "pytorch" and back.dtype == torch.float32
    pts = _points([(-1, 1)] * 3, 10)
    np.testing.assert_allclose(from_torch(pts).numpy(), as_numpy(pts), atol=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device_matches_cpu():
    pts = _points([(-1, 1)] * 3, 50)
    cpu = ct.chebyshev_tucker(runge, degree=30, tol=1e-8)
    gpu = ct.chebyshev_tucker(runge, degree=30, tol=1e-8, backend="pytorch", device="cuda")
    assert gpu.core.is_cuda and gpu.ranks == cpu.ranks
    np.testing.assert_allclose(gpu(pts).cpu().numpy(), cpu(pts), atol=1e-12)
    q, pos = RNG.choice([-1.0, 1.0], 5), RNG.uniform(-0.5, 0.5, (5, 3))
    pg = nk.newton_potential(torch.tensor(q, device="cuda"), torch.tensor(pos, device="cuda"), degree=32)
    pc = nk.newton_potential(q, pos, degree=32)
    assert pg.core.is_cuda
    np.testing.assert_allclose(pg(pts).cpu().numpy(), pc(pts), atol=1e-10 * np.abs(pc(pts)).max())


# ----------------------------------------------------------------------------------------------------------
# Newton kernel: sinc quadrature, range separation, multi-particle potential


def test_sinc_quadrature_of_newton_kernel():
    kernel = nk.newton_sinc_quadrature(r_min=1e-3, r_max=4.0, tol=1e-8)
    assert kernel.max_rel_error <= 1e-8
    r = np.exp(RNG.uniform(math.log(1e-3), math.log(4.0), 500))
    assert np.abs(kernel(r) * r - 1).max() <= 1.5e-8
    assert np.all(np.diff(kernel.exponents) > 0) and kernel.exponents[0] == 0.0
    # step close to the classical h = C0 log(M) / M with C0 ~ 2; R grows only like log(1/r_min)
    m = kernel.rank - 1
    assert 1.0 < kernel.step * m / math.log(m) < 4.0
    finer = nk.newton_sinc_quadrature(r_min=1e-5, r_max=4.0, tol=1e-8)
    assert 0 < finer.rank - kernel.rank < 1.5 * math.log(100) / kernel.step
    # the automatic R is the smallest that reaches the tolerance at its optimal step
    assert nk.newton_sinc_quadrature(r_min=1e-3, r_max=4.0, n_terms=kernel.rank - 1).max_rel_error > 1e-8
    fixed = nk.newton_sinc_quadrature(r_min=1e-3, r_max=4.0, n_terms=20, step=0.4)
    assert fixed.rank == 20 and fixed.step == 0.4 and fixed.max_rel_error > 1e-8


def test_range_separation():
    kernel = nk.newton_sinc_quadrature()
    long_part, short_part = kernel.split()
    assert long_part.rank == math.ceil(kernel.rank / 2) - 3 == kernel.default_long_rank()
    assert long_part.rank + short_part.rank == kernel.rank
    r = np.geomspace(0.01, 3, 50)
    np.testing.assert_allclose(long_part(r) + short_part(r), kernel(r), rtol=1e-14)
    # the short-range part is localised, the long-range part is bounded at 0 and equals 1/r far away
    rc = short_part.support_radius(1e-8, r_max=kernel.r_max)
    assert 0 < rc < 1.0
    far = np.linspace(rc, kernel.r_max, 20)
    np.testing.assert_allclose(long_part(far) * far, 1.0, atol=2e-8)
    assert long_part(np.array([0.0]))[0] == pytest.approx(long_part.weights.sum())
    with pytest.raises(ConfigError, match="n_long"):
        kernel.split(kernel.rank + 1)


def _long_range_exact(kernel, n_long, q, pos, pts):
    r = np.linalg.norm(pts[:, None, :] - pos[None], axis=-1)
    return (q * kernel.split(n_long)[0](r)).sum(axis=1)


def test_newton_potential_long_range_part():
    n_particles = 20
    pos = RNG.uniform(-0.6, 0.6, (n_particles, 3))
    q = RNG.choice([-1.0, 1.0], n_particles)
    kernel = nk.newton_sinc_quadrature(r_min=2 / 64)
    approx = nk.newton_potential(q, pos, degree=40, tol=1e-8, kernel=kernel)
    pts = _points([(-1, 1)] * 3, 300)
    exact = _long_range_exact(kernel, None, q, pos, pts)
    assert np.abs(approx(pts) - exact).max() / np.abs(exact).max() < 1e-6
    assert max(approx.ranks) < 30
    # the torch backend is inferred from tensor inputs and gives the same potential
    approx_t = nk.newton_potential(torch.tensor(q), torch.tensor(pos), degree=40, tol=1e-8, kernel=kernel)
    assert approx_t.backend == "pytorch" and approx_t.ranks == approx.ranks
    np.testing.assert_allclose(approx_t(pts).numpy(), approx(pts), atol=1e-11 * np.abs(exact).max())
    # the CP path equals the full path on the same function
    full = ct.chebyshev_tucker(
        lambda x, y, z: _long_range_exact(
            kernel, None, q, pos, np.stack(np.broadcast_arrays(x, y, z), -1).reshape(-1, 3)
        ).reshape(np.broadcast_shapes(x.shape, y.shape, z.shape)),
        degree=40,
        tol=1e-8,
    )
    np.testing.assert_allclose(full(pts), approx(pts), atol=1e-7 * np.abs(exact).max())


def test_newton_potential_ranks_grow_slowly_with_particles():
    kernel = nk.newton_sinc_quadrature(r_min=2 / 64)
    ranks = []
    for n in (1, 10, 100):
        rng = np.random.default_rng(n)
        approx = nk.newton_potential(
            rng.choice([-1.0, 1.0], n), rng.uniform(-0.7, 0.7, (n, 3)), degree=32, tol=1e-6, kernel=kernel
        )
        ranks.append(max(approx.ranks))
    assert ranks[0] < ranks[1] <= ranks[2] < 2 * ranks[1]


def test_newton_bad_inputs():
    with pytest.raises(ConfigError, match="r_min"):
        nk.newton_sinc_quadrature(r_min=2.0, r_max=1.0)
    with pytest.raises(ConfigError, match="n_terms"):
        nk.newton_sinc_quadrature(n_terms=1)
    with pytest.raises(ConfigError, match="step"):
        nk.newton_sinc_quadrature(step=-0.1)
    with pytest.raises(ConfigError, match="GaussianSum"):
        nk.newton_potential(np.ones(2), np.zeros((2, 3)), kernel=[1.0])
    with pytest.raises(SolverError, match="finite"):
        nk.newton_potential(np.array([1.0, np.nan]), np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------------------------
# module layout


def _solver_imports() -> dict[str, list[tuple[str, str]]]:
    """Per module of sciml.solvers: (imported sciml.solvers module, imported name) at run time, including
    imports inside functions (``if TYPE_CHECKING:`` blocks excluded)."""
    import ast
    from pathlib import Path

    import sciml.solvers

    package = Path(sciml.solvers.__file__).parent
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        skipped = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for child in block.body
            for node in ast.walk(child)
        }
        edges = []
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            for alias in node.names:
                if node.module == "sciml.solvers":  # from sciml.solvers import module
                    edges.append((alias.name, ""))
                elif node.module.startswith("sciml.solvers."):
                    edges.append((node.module.removeprefix("sciml.solvers."), alias.name))
        found[path.stem] = edges
    return found


def test_solver_modules_form_no_import_cycle_and_share_no_private_names():
    """The Newton-kernel helpers once imported private checks from chebyshev_tucker, which imported them back
    through a module ``__getattr__``: shared helpers now live in modules both import."""
    imports = _solver_imports()
    private = [
        (mod, target, name) for mod, edges in imports.items() for target, name in edges if name[:1] == "_"
    ]
    assert not private, f"private names imported across modules: {private}"
    graph = {mod: {target for target, _ in edges if target in imports} for mod, edges in imports.items()}
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, f"import cycle: {' -> '.join((*path, mod))}"
        if mod not in done:
            for target in graph[mod]:
                visit(target, (*path, mod))
            done.add(mod)

    for mod in graph:
        visit(mod, ())
    assert not hasattr(ct, "newton_potential")  # no compatibility re-export


def test_benchmark_figure_leaves_the_matplotlib_backend_alone(tmp_path, load_script, monkeypatch):
    import matplotlib

    def forbid(*args, **kwargs):
        pytest.fail(f"matplotlib.use{args} called: a benchmark must not change the caller's backend")

    monkeypatch.setattr(matplotlib, "use", forbid)
    script = load_script("chebyshev_tucker")
    particles = [{"N": 1, "ranks": (2, 2, 2), "cp_rank": 12}, {"N": 10, "ranks": (5, 5, 5), "cp_rank": 120}]
    script._plot(tmp_path / "decay.png", 8, particles)
    assert (tmp_path / "decay.png").stat().st_size > 0
