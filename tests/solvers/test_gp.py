"""Tests of the Kronecker GP PDE solver GP-HM (sciml.solvers.gp; Fang et al., ICLR 2024)."""

import math

import numpy as np
import pytest
import torch
from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

from sciml.errors import ConfigError, SciMLError, SolverError
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import PDEProblem
from sciml.solvers.kronecker import kron_logdet, kron_solve, kron_whiten, mode_dot

F64 = torch.float64
PI = math.pi


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/solvers/conftest.py


def _spd(n, gen):
    a = torch.randn(n, n, generator=gen, dtype=F64)
    return a @ a.T + n * torch.eye(n, dtype=F64)


def _dense_kron(mats):
    out = mats[0]
    for m in mats[1:]:
        out = torch.kron(out, m)
    return out


# ---------------------------------------------------------------------------------------------------------
# Kronecker algebra


@pytest.mark.parametrize("shape", [(5, 6), (3, 4, 5)])
def test_kronecker_solve_logdet_and_mode_products_match_dense(shape):
    gen = torch.Generator().manual_seed(1)
    ks = [_spd(n, gen) for n in shape]
    chols = [torch.linalg.cholesky(k) for k in ks]
    u = torch.randn(shape, generator=gen, dtype=F64)
    full = _dense_kron(ks)
    vec = u.reshape(-1)
    torch.testing.assert_close(kron_solve(chols, u).reshape(-1), torch.linalg.solve(full, vec))
    torch.testing.assert_close(kron_logdet(chols), torch.logdet(full))
    torch.testing.assert_close(kron_whiten(chols, u).square().sum(), vec @ torch.linalg.solve(full, vec))
    # mode products = Kronecker matvec, also through linear_operator's Kronecker operator
    mats = [torch.randn(n, n, generator=gen, dtype=F64) for n in shape]
    prod = u
    for mode, m in enumerate(mats):
        prod = mode_dot(prod, m, mode)
    torch.testing.assert_close(prod.reshape(-1), _dense_kron(mats) @ vec)
    kron_op = KroneckerProductLinearOperator(*[DenseLinearOperator(m) for m in mats])
    torch.testing.assert_close(prod.reshape(-1), kron_op.matmul(vec[:, None])[:, 0])
    # a mode product may change the length of the mode (evaluation on another grid)
    rect = torch.randn(7, shape[-1], generator=gen, dtype=F64)
    assert mode_dot(u, rect, len(shape) - 1).shape == (*shape[:-1], 7)


def _capture_problem(box, keys):
    """A problem whose residual records the requested derivatives (for comparisons with dense algebra)."""
    seen = {}

    def residual(d, x):
        for key in keys:
            seen[key] = d[key]
        return d[keys[0]] - 1.0

    problem = PDEProblem(box=box, residual=residual, boundary=lambda x: torch.zeros(len(x), dtype=x.dtype))
    return problem, seen


@pytest.mark.parametrize("parametrization", ["grid", "whitened"])
@pytest.mark.parametrize("u_on_grid", ["mean", "values"])
def test_objective_and_grid_derivatives_match_dense_computation(parametrization, u_on_grid):
    box = [(0.0, 1.0), (-1.0, 2.0)]
    problem, seen = _capture_problem(box, ["xx", "u", "xy", "y"])
    solver = GPSolver(
        problem,
        (5, 6),
        kernel="stm",
        n_components=3,
        freq_scale=2.0,
        jitter=1e-3,
        parametrization=parametrization,
        u_on_grid=u_on_grid,
        residual_on_boundary=True,
    )
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        solver.latent.copy_(torch.randn(5, 6, generator=gen, dtype=F64))
        solver.log_tau_b.fill_(0.3)
        solver.log_tau_r.fill_(-0.2)
        terms = solver.objective_terms()
        kx, ky = solver.prior.kernels
        xg, yg = solver.grid.axes

        def block(kernel, g, a):
            return kernel.derivative_matrix(g, g, a, 0)

        eye = [torch.eye(5, dtype=F64), torch.eye(6, dtype=F64)]
        kj = [block(kx, xg, 0) + 1e-3 * eye[0], block(ky, yg, 0) + 1e-3 * eye[1]]
        full = torch.kron(kj[0], kj[1])
        latent = solver.latent.reshape(-1)
        if parametrization == "whitened":
            u = torch.kron(torch.linalg.cholesky(kj[0]), torch.linalg.cholesky(kj[1])) @ latent
            quad = latent @ latent
        else:
            u = latent
            quad = u @ torch.linalg.solve(full, u)
        alpha = torch.linalg.solve(full, u)
        torch.testing.assert_close(terms["logdet"], torch.logdet(full))
        torch.testing.assert_close(terms["quad"], quad)
        torch.testing.assert_close(solver.u.reshape(-1), u)

        def deriv(ax, ay):
            if u_on_grid == "values" and ax == 0 and ay == 0:
                return u
            x0 = block(kx, xg, ax) if (ax or u_on_grid == "mean") else kj[0]
            y0 = block(ky, yg, ay) if (ay or u_on_grid == "mean") else kj[1]
            return torch.kron(x0, y0) @ alpha

        expected = {"xx": deriv(2, 0), "u": deriv(0, 0), "xy": deriv(1, 1), "y": deriv(0, 1)}
        for key, value in expected.items():
            torch.testing.assert_close(seen[key].reshape(-1), value, msg=key)
        r_sse = (expected["xx"] - 1.0).square().sum()
        b_sse = expected["u"].reshape(5, 6)[solver.grid.boundary_mask].square().sum()
        objective = (
            -0.5 * torch.logdet(full)
            - 0.5 * quad
            + 200.0 * (0.5 * 18 * 0.3 - 0.5 * math.exp(0.3) * b_sse)
            + 0.5 * 30 * (-0.2)
            - 0.5 * math.exp(-0.2) * r_sse
        )
        torch.testing.assert_close(terms["objective"], objective)
        # the solution object evaluates the same conditional mean anywhere
        sol = solver.solution()
        torch.testing.assert_close(sol.on_grid(solver.grid.axes, "xy").reshape(-1), deriv(1, 1))


# ---------------------------------------------------------------------------------------------------------
# convergence


def _poisson_1d():
    exact = lambda x: torch.sin(2 * x[..., 0])  # noqa: E731
    return PDEProblem(
        box=[(0.0, PI)],
        residual=lambda d, x: d["xx"] + 4.0 * torch.sin(2 * x[..., 0]),
        boundary=exact,
        name="poisson1d",
    ), exact


@pytest.fixture(scope="module")
def poisson_fit():
    problem, exact = _poisson_1d()
    solver = GPSolver(problem, 30, kernel="stm", freq_scale=2.0, jitter=1e-9, residual_on_boundary=True)
    solution = solver.fit(100, lbfgs_iterations=300, log_every=50, progress=False, method="adam")
    return solver, solution, exact


def test_low_frequency_poisson_converges_to_1e_6(poisson_fit):
    solver, solution, exact = poisson_fit
    x = torch.linspace(0.0, PI, 2001, dtype=F64)[:, None]
    err = torch.linalg.vector_norm(solution(x) - exact(x)) / torch.linalg.vector_norm(exact(x))
    assert float(err) <= 1e-6
    # the history holds the training objective; the returned iterate is the best one by that objective
    losses = [h["loss"] for h in solver.history if "loss" in h]
    assert solver.history[-1]["phase"] == "final"
    assert solution.info["best_loss"] <= min(losses)
    assert solver.history[-1]["loss"] == solution.info["best_loss"]
    assert {h["phase"] for h in solver.history} >= {"adam", "lbfgs", "final"}


def test_solution_derivatives_and_evaluation_anywhere(poisson_fit):
    solver, solution, _ = poisson_fit
    x = torch.linspace(0.0, PI, 777, dtype=F64)
    pts = x[:, None]
    scale = lambda v: float(torch.linalg.vector_norm(v))  # noqa: E731
    du = solution(pts, "x")
    ddu = solution(pts, "xx")
    assert scale(du - 2 * torch.cos(2 * x)) / scale(2 * torch.cos(2 * x)) < 1e-5
    assert scale(ddu + 4 * torch.sin(2 * x)) / scale(4 * torch.sin(2 * x)) < 1e-4
    # scattered evaluation == tensor-grid evaluation; at the grid points == the fitted grid values
    torch.testing.assert_close(solution(pts), solution.on_grid([x]), rtol=1e-12, atol=1e-12)
    grid = solver.grid.axes[0]
    torch.testing.assert_close(solution(grid[:, None]), solution.grid_values, rtol=0, atol=1e-10)
    torch.testing.assert_close(solution.latent_values, solution.grid_values, rtol=0, atol=1e-4)
    torch.testing.assert_close(solution(np.asarray(grid)[:, None]), solution(grid[:, None]))


def test_allen_cahn_1d_converges():
    exact = lambda x: torch.sin(2 * x[..., 0])  # noqa: E731

    def residual(d, x):
        u_ex = exact(x)
        source = -4.0 * u_ex + u_ex * (u_ex**2 - 1.0)
        return d["xx"] + d["u"] * (d["u"] ** 2 - 1.0) - source

    problem = PDEProblem(box=[(0.0, PI)], residual=residual, boundary=exact)
    solver = GPSolver(problem, 30, kernel="gm", freq_scale=2.0, jitter=1e-9, residual_on_boundary=True)
    solution = solver.fit(100, lbfgs_iterations=300, progress=False, method="adam")
    x = torch.linspace(0.0, PI, 1001, dtype=F64)[:, None]
    err = torch.linalg.vector_norm(solution(x) - exact(x)) / torch.linalg.vector_norm(exact(x))
    assert float(err) <= 1e-5


def test_poisson_2d_solution_and_mixed_derivative():
    exact = lambda x: torch.sin(PI * x[..., 0]) * torch.sin(PI * x[..., 1])  # noqa: E731
    problem = PDEProblem(
        box=[(0.0, 1.0), (0.0, 1.0)],
        residual=lambda d, x: d["xx"] + d["yy"] + 2 * PI**2 * exact(x),
        boundary=exact,
    )
    solver = GPSolver(
        problem,
        (12, 13),
        kernel="gm",
        n_components=10,
        freq_scale=1.0,
        jitter=1e-9,
        residual_on_boundary=True,
    )
    solution = solver.fit(100, lbfgs_iterations=200, progress=False, method="adam")
    g = torch.linspace(0.0, 1.0, 41, dtype=F64)
    mesh = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1)
    u_ex = exact(mesh)
    u_xy = PI**2 * torch.cos(PI * mesh[..., 0]) * torch.cos(PI * mesh[..., 1])
    rel = lambda a, b: float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))  # noqa: E731
    assert rel(solution.on_grid([g, g]), u_ex) < 1e-4
    assert rel(solution.on_grid([g, g], "xy"), u_xy) < 1e-3
    torch.testing.assert_close(
        solution(mesh.reshape(-1, 2), "xy"), solution.on_grid([g, g], "xy").reshape(-1)
    )


def test_3d_evaluation_matches_grid_derivatives():
    problem, seen = _capture_problem([(0.0, 1.0), (0.0, 2.0), (-1.0, 1.0)], ["u", "xz", "yy"])
    solver = GPSolver(problem, (4, 5, 6), kernel="matern", jitter=1e-4)
    with torch.no_grad():
        solver.latent.copy_(torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(3), dtype=F64))
        solver.objective_terms()
    solution = solver.solution()
    for key in ("u", "xz", "yy"):
        on_grid = solution.on_grid(solver.grid.axes, key)
        torch.testing.assert_close(on_grid, seen[key].detach(), msg=key)
        scattered = solution(solver.grid.points.reshape(-1, 3), key)
        torch.testing.assert_close(scattered, on_grid.reshape(-1), msg=key)


def test_monitoring_reference_never_changes_the_result():
    problem, exact = _poisson_1d()
    sols = []
    for reference in (None, exact):
        solver = GPSolver(problem, 20, kernel="se", freq_scale=2.0)
        sols.append(solver.fit(30, log_every=10, progress=False, reference=reference, method="adam"))
    torch.testing.assert_close(sols[0].alpha, sols[1].alpha, rtol=0, atol=0)
    assert all("test_rel_l2" in h for h in sols[1].history)
    assert not any("test_rel_l2" in h for h in sols[0].history)


# ---------------------------------------------------------------------------------------------------------
# validation


def _residual(d, x):
    return d["xx"] - 1.0


def _zero(x):
    return torch.zeros(len(x), dtype=x.dtype)


def test_zero_width_or_non_finite_box_raises():
    with pytest.raises(ConfigError, match=r"width 0.0; expected lo < hi"):
        PDEProblem(box=[(0.0, 1.0), (2.0, 2.0)], residual=_residual, boundary=_zero)
    with pytest.raises(ConfigError, match="finite"):
        PDEProblem(box=[(0.0, math.inf)], residual=_residual, boundary=_zero)


def test_wrong_residual_shape_raises():
    problem = PDEProblem(box=[(0.0, 1.0)] * 2, residual=lambda d, x: d["xx"].reshape(-1), boundary=_zero)
    with pytest.raises(SolverError, match=r"shape \(80,\); expected the grid shape \(8, 10\)"):
        GPSolver(problem, (8, 10))


def test_non_finite_boundary_values_raise():
    def boundary(x):
        out = torch.zeros(len(x), dtype=x.dtype)
        out[3] = math.nan
        return out

    problem = PDEProblem(box=[(0.0, 1.0)] * 2, residual=_residual, boundary=boundary)
    with pytest.raises(SolverError, match="finite values; got nan"):
        GPSolver(problem, 6)
    wrong = PDEProblem(box=[(0.0, 1.0)], residual=_residual, boundary=lambda x: torch.zeros(5))
    with pytest.raises(SolverError, match=r"expected \(2,\)"):
        GPSolver(wrong, 6)


def test_residual_independent_of_u_raises():
    problem = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: torch.sin(x[..., 0]), boundary=_zero)
    with pytest.raises(SolverError, match="does not depend on u"):
        GPSolver(problem, 10)
    # a residual that uses u but with a zero coefficient is caught as well
    problem = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: 0.0 * d["xx"] + x[..., 0], boundary=_zero)
    with pytest.raises(SolverError, match="does not depend on u"):
        GPSolver(problem, 10)


def test_non_finite_residual_and_bad_keys_raise():
    problem = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: d["xx"] / 0.0, boundary=_zero)
    with pytest.raises(SolverError, match="non-finite"):
        GPSolver(problem, 10)
    problem = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: d["yy"], boundary=_zero)
    with pytest.raises(ConfigError, match=r"'y' is not a dimension name"):
        GPSolver(problem, 10)


def test_bad_solver_arguments_raise():
    problem = PDEProblem(box=[(0.0, 1.0)], residual=_residual, boundary=_zero)
    for kwargs, match in [
        ({"grid_sizes": 2}, "grid_sizes"),
        ({"grid_sizes": 8, "kernel": "rbf"}, "unknown kernel"),
        ({"grid_sizes": 8, "jitter": 0.0}, "jitter"),
        ({"grid_sizes": 8, "parametrization": "x"}, "parametrization"),
    ]:
        with pytest.raises(SciMLError, match=match):
            GPSolver(problem, **kwargs)
    solver = GPSolver(problem, 8)
    with pytest.raises(ConfigError, match="iterations"):
        solver.fit(-1, method="adam")
    with pytest.raises(ConfigError, match="keep"):
        solver.fit(1, keep="worst", method="adam")
    with pytest.raises(ConfigError, match="options of method='adam'"):
        solver.fit(10)
    with pytest.raises(ConfigError, match="method"):
        solver.fit(method="newton")


def test_lbfgs_with_kernel_and_keep_last():
    problem, _ = _poisson_1d()
    solver = GPSolver(problem, 16, kernel="gm", n_components=4, freq_scale=2.0)
    solver.fit(20, progress=False, method="adam")
    after_adam = solver.best_loss
    solution = solver.fit(0, lbfgs_iterations=10, lbfgs_kernel=True, progress=False, method="adam")
    assert math.isfinite(solution.info["best_loss"]) and solution.info["best_loss"] <= after_adam
    assert all(p.requires_grad for p in solver.parameters())  # nothing left frozen
    last = solver.fit(5, keep="last", progress=False, method="adam")
    assert last.info["iteration"] == solver.iteration == 35


def test_boundary_lift_interpolates_the_dirichlet_data():
    """The transfinite (Coons) start matches the data on every face and is exact for f(x) + g(y) + c x y."""

    def data(x):
        return x[..., 0] ** 2 + torch.sin(x[..., 1]) + 0.5 * x[..., 0] * x[..., 1]

    problem = PDEProblem(box=[(0.0, 1.0), (-1.0, 2.0)], residual=_residual, boundary=data)
    solver = GPSolver(problem, (7, 9), kernel="se")
    lift = solver.grid.boundary_lift()
    torch.testing.assert_close(lift, data(solver.grid.points))
    # the default start is this lift (through the whitening), the "zeros" start is zero
    torch.testing.assert_close(solver.u, lift)
    assert float(GPSolver(problem, (7, 9), kernel="se", init="zeros").u.abs().max()) == 0.0
