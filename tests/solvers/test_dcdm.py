"""DCDM's iteration, its fallback, the baselines and the Ritz training data (sciml.solvers.dcdm)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sciml.errors import ConfigError, SolverError
from sciml.operators.poisson import laplacian_matrix, make_scene
from sciml.solvers.dcdm import (
    BASELINES,
    conjugate_gradient,
    dcdm,
    incomplete_cholesky,
    lanczos_ritz_vectors,
    ritz_right_hand_sides,
    solve,
)


def random_spd(n: int, seed: int = 0, condition: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.linspace(1.0, condition, n)) @ q.T


@pytest.fixture(scope="module")
def scene_system():
    A = laplacian_matrix(make_scene("boxes", (24, 24), seed=3))
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    return A, b


def test_exact_inverse_as_the_network_solves_in_one_step():
    A = random_spd(40)
    b = np.random.default_rng(2).standard_normal(40)
    result = dcdm(A, b, lambda r: np.linalg.solve(A, r), tol=1e-10)
    assert result.iterations == 1 and result.converged
    np.testing.assert_allclose(A @ result.x, b, atol=1e-9)


@pytest.mark.parametrize("network", ["identity", "jacobi", "spd"])
def test_a_linear_spd_network_solves_in_at_most_n_steps(network):
    n = 16  # condition 1e4: at CG's rate 1e-8 takes about 900 steps; finite termination takes n
    A = random_spd(n, seed=5, condition=1e4)
    b = np.random.default_rng(3).standard_normal(n)
    M = {"identity": np.eye(n), "jacobi": np.diag(1 / np.diag(A)), "spd": random_spd(n, 9, 10.0)}[network]
    result = dcdm(A, b, lambda r: M @ r, tol=1e-8, max_iterations=10 * n)
    assert result.converged and result.iterations <= n
    assert result.fallbacks == 0


def test_identity_network_is_cg_and_ends_after_as_many_steps_as_distinct_eigenvalues():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    A = (q * np.repeat([1.0, 3.0, 7.0, 20.0, 50.0], 8)) @ q.T  # 5 distinct eigenvalues
    b = rng.standard_normal(40)
    result = dcdm(A, b, lambda r: r, tol=1e-10)
    assert result.converged and result.iterations <= 5
    cg = conjugate_gradient(A, b, tol=1e-10)
    assert cg.iterations == result.iterations
    np.testing.assert_allclose(result.residuals, cg.residuals, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("n_previous", [2, 5])
def test_directions_are_a_orthogonal_to_the_previous_ones(scene_system, n_previous):
    A, b = scene_system

    def nonlinear(r):  # a direction no linear preconditioner gives
        return r + 0.5 * np.tanh(20 * r) + 0.1 * np.roll(r, 3)

    result = dcdm(A, b, nonlinear, tol=1e-8, keep_directions=True, n_previous=n_previous)
    assert result.converged
    p = result.directions
    for k in range(n_previous, len(p)):
        for j in range(k - n_previous, k):
            cosine = (p[k] @ A @ p[j]) / np.sqrt((p[k] @ A @ p[k]) * (p[j] @ A @ p[j]))
            assert abs(cosine) < 1e-8
    true_residual = np.linalg.norm(b - A @ result.x) / np.linalg.norm(b)
    assert true_residual <= 1.01e-8 and result.residuals[-1] <= 1e-8


@pytest.mark.parametrize(
    "bad_direction",
    [
        lambda r: np.zeros_like(r),
        lambda r: np.full_like(r, np.nan),
        # orthogonal to the residual: the exact line search would not move
        lambda r: np.roll(r, 1) - (np.roll(r, 1) @ r) * r,
    ],
    ids=["zero", "nan", "orthogonal"],
)
def test_degenerate_network_directions_fall_back_to_cg(scene_system, bad_direction):
    A, b = scene_system
    result = dcdm(A, b, bad_direction, tol=1e-6)
    cg = conjugate_gradient(A, b, tol=1e-6)
    assert result.converged
    assert result.fallbacks == result.iterations  # every step fell back, so the iteration is CG's
    assert abs(result.iterations - cg.iterations) <= 2  # (up to round-off late in the run)
    np.testing.assert_allclose(result.residuals[:20], cg.residuals[:20], rtol=1e-6)


def test_a_useful_direction_is_not_degenerate(scene_system):
    A, b = scene_system
    jacobi = 1 / A.diagonal()
    assert dcdm(A, b, lambda r: jacobi * r, tol=1e-6).fallbacks == 0


def test_no_descent_direction_at_all_is_a_solver_error():
    A = -np.eye(4)  # not SPD: even the CG direction has p.A p < 0
    with pytest.raises(SolverError, match="no descent direction"):
        dcdm(A, np.ones(4), lambda r: r)


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_reach_the_tolerance_with_their_residual_histories(scene_system, name):
    A, b = scene_system
    result = solve(name, A, b, tol=1e-6)
    assert result.converged and result.residuals[-1] <= 1e-6
    assert len(result.residuals) == result.iterations + 1 and result.residuals[0] == pytest.approx(1.0)
    true_residual = np.linalg.norm(b - A @ result.x) / np.linalg.norm(b)
    assert true_residual == pytest.approx(result.residuals[-1], rel=1e-3, abs=1e-12)
    if name != "cg":
        assert result.iterations < solve("cg", A, b, tol=1e-6).iterations


def test_incomplete_cholesky_equals_a_dense_ic0_on_a_stencil_matrix():
    A = laplacian_matrix(make_scene("spheres", (10, 10), seed=2)).toarray()
    n = A.shape[0]
    L = np.tril(A).astype(float)  # textbook IC(0): Cholesky restricted to the pattern of A
    pattern = L != 0
    for k in range(n):
        L[k, k] = np.sqrt(L[k, k])
        L[k + 1 :, k] /= L[k, k]
        for j in range(k + 1, n):
            L[j:, j] -= np.where(pattern[j:, j], L[j:, k] * L[j, k], 0.0)
    r = np.random.default_rng(0).standard_normal(n)
    expected = np.linalg.solve(L @ L.T, r)
    np.testing.assert_allclose(incomplete_cholesky(sp.csr_matrix(A))(r), expected, rtol=1e-10)


def test_lanczos_ritz_pairs_and_the_weighted_right_hand_sides():
    A = laplacian_matrix(make_scene("blobs", (12, 12), seed=0))
    n = A.shape[0]
    eigenvalues = np.linalg.eigvalsh(A.toarray())
    values, vectors = lanczos_ritz_vectors(A, n, seed=0)  # a full Lanczos run: the exact eigenpairs
    np.testing.assert_allclose(values, eigenvalues, atol=1e-8)
    values, vectors = lanczos_ritz_vectors(A, 20, seed=0)
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(20), atol=1e-10)
    assert eigenvalues[0] - 1e-10 <= values[0] and values[-1] <= eigenvalues[-1] + 1e-10
    rhs = ritz_right_hand_sides(values, vectors, 200, seed=1, theta=2)
    assert rhs.shape == (200, n)
    np.testing.assert_allclose(np.sqrt((rhs**2).mean(axis=1)), 1.0)
    weights = (rhs @ vectors.T) ** 2  # the low half (+ theta) of the spectrum weighs 81 times more
    ratio = weights[:, :12].mean() / weights[:, 12:].mean()
    assert 40 < ratio < 160


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dcdm(np.eye(3), np.ones(3), lambda r: r, tol=2.0), "tol must be in"),
        (lambda: dcdm(np.eye(3), np.ones(4), lambda r: r), "does not fit"),
        (lambda: dcdm(np.eye(3), np.ones(3), lambda r: r, n_previous=0), "n_previous"),
        (lambda: solve("gmres", sp.eye(3), np.ones(3)), "solver 'gmres'"),
        (lambda: lanczos_ritz_vectors(sp.eye(3), 5), "n_vectors"),
    ],
)
def test_bad_inputs_raise_one_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_benchmark_quick_mode_writes_its_record_and_figure(tmp_path, load_script):
    module = load_script("bench_dcdm")
    out = tmp_path / "dcdm.json"
    record = module.main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["summary"] == record["summary"]
    assert out.with_suffix(".png").stat().st_size > 0
    two_d = [e for e in record["summary"] if len(e["shape"]) == 2]
    assert all(e[name]["converged"] for e in record["summary"] for name in BASELINES)
    assert all("dcdm" in e and "dcdm-10" in e for e in two_d)
    assert "--quick" in record["command"] and "| grid |" in module.markdown(record)
