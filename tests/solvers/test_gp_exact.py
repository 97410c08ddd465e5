"""The exact solve of the GP solver (sciml.solvers.gp_exact), the frequency initialisation
(sciml.solvers.gp_spectrum) and the robustness of GPSolver / GPSolution (issue 21)."""

import itertools
import logging
import math
import time

import pytest
import torch

from sciml.errors import ConfigError, SolverError
from sciml.solvers import gp_exact
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import GridDerivatives, PDEProblem

F64 = torch.float64
TWO_PI = 2.0 * math.pi


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/solvers/conftest.py


def _rel(pred, exact):
    return float(torch.linalg.vector_norm(pred - exact) / torch.linalg.vector_norm(exact))


def _sines(box, terms):
    """Poisson problem u_xx (+ u_yy) = f for u = sum_k a_k prod_d sin(2 pi c_k x_d) (cycles per unit
    length)."""

    def exact(x):
        return sum(a * torch.prod(torch.sin(TWO_PI * c * x), dim=-1) for a, c in terms)

    def source(x):
        dims = x.shape[-1]
        return sum(
            -dims * (TWO_PI * c) ** 2 * a * torch.prod(torch.sin(TWO_PI * c * x), dim=-1) for a, c in terms
        )

    names = "xy"[: len(box)]

    def residual(d, x):
        return sum(d[n * 2] for n in names) - source(x)

    return PDEProblem(box=box, residual=residual, boundary=exact), exact


def _dense_optimum(solver, tau_r, tau_b):
    """The minimiser of F(V) = |V|^2/2 + tau_r |R(V)|^2/2 + lambda tau_b |B V - g|^2/2 by a dense solve of the
    normal equations (a linear PDE: R(V) = J V + R(0))."""
    grid, prior = solver.grid, solver.prior
    with torch.no_grad():
        chols = prior.cholesky()
        operator = prior.derivative_operators(chols)
    colloc = ~grid.boundary_mask if not grid.residual_on_boundary else torch.ones_like(grid.boundary_mask)

    def residual(v):
        return solver.problem.residual(GridDerivatives(v, solver.problem.names, operator), grid.points)[
            colloc
        ]

    def boundary(v):
        return GridDerivatives(v, solver.problem.names, operator)["u"][grid.boundary_mask]

    zero = torch.zeros(grid.sizes, dtype=F64)
    n = zero.numel()
    jac_r = torch.autograd.functional.jacobian(residual, zero).reshape(-1, n)
    jac_b = torch.autograd.functional.jacobian(boundary, zero).reshape(-1, n)
    r0 = residual(zero).detach()
    beta = solver.boundary_weight * tau_b
    hessian = torch.eye(n, dtype=F64) + tau_r * jac_r.T @ jac_r + beta * jac_b.T @ jac_b
    rhs = -tau_r * jac_r.T @ r0 + beta * jac_b.T @ grid.boundary_values
    return torch.linalg.solve(hessian, rhs).reshape(grid.sizes)


# ---------------------------------------------------------------------------------------------------------
# the exact solve


@pytest.mark.parametrize(
    "box, sizes, kernel, dense_points",
    [
        ([(0.0, 1.0)], 24, "stm", 2500),
        ([(0.0, 1.0)], 24, "gm", 2500),
        ([(0.0, 1.0), (0.0, 2.0)], (9, 11), "stm", 2500),
        ([(0.0, 1.0), (0.0, 2.0)], (9, 11), "stm", 0),
    ],
)
def test_exact_solve_matches_a_dense_solve_of_the_normal_equations(
    box, sizes, kernel, dense_points, monkeypatch
):
    """One exact solve at tau = 1 (small grids: SVD of the Jacobian; ``dense_points=0`` forces the
    preconditioned CG of large grids) is the minimiser of the dense normal equations."""
    monkeypatch.setattr(gp_exact, "DENSE_POINTS", dense_points)
    problem, _ = _sines(box, [(1.0, 1.0), (0.3, 2.0)])
    solver = GPSolver(problem, sizes, kernel=kernel, jitter=1e-6)
    solver.fit(tau_rounds=1)
    entry = solver.history[0]
    assert entry["phase"] == "exact" and entry["linear"] and entry["cg_converged"]
    expected = _dense_optimum(solver, 1.0, 1.0)
    torch.testing.assert_close(
        solver.latent.detach(), expected, rtol=1e-7, atol=1e-7 * float(expected.abs().max())
    )
    if len(box) == 2:
        ran_cg = entry["cg_iterations"] >= 1
        assert ran_cg == (dense_points == 0)


def test_gauss_newton_reaches_the_closed_form_solution_of_a_nonlinear_problem():
    """R(u) = u^2 - f with f = (1 + x^2)^2 and u = 1 + x^2 on the faces: the solution on the grid is
    sqrt(f)."""

    def u_star(x):
        return 1.0 + x[..., 0] ** 2

    problem = PDEProblem(
        box=[(0.0, 1.0)], residual=lambda d, x: d["u"] ** 2 - u_star(x) ** 2, boundary=u_star
    )
    solver = GPSolver(problem, 20, kernel="stm")
    solution = solver.fit()
    entry = solver.history[0]
    assert not entry["linear"] and entry["gauss_newton_steps"] > 1
    # the GP-HM optimum balances the prior against tau_residual ~ 4e8: u matches sqrt(f) to ~3e-5
    torch.testing.assert_close(solution.grid_values, u_star(solver.grid.points), rtol=0, atol=1e-4)


def test_allen_cahn_1d_exact_fit_is_accurate():
    exact = lambda x: torch.sin(2 * x[..., 0])  # noqa: E731

    def residual(d, x):
        u_ex = exact(x)
        return d["xx"] + d["u"] * (d["u"] ** 2 - 1.0) - (-4.0 * u_ex + u_ex * (u_ex**2 - 1.0))

    problem = PDEProblem(box=[(0.0, math.pi)], residual=residual, boundary=exact)
    solution = GPSolver(problem, 30, kernel="gm", jitter=1e-9).fit()
    x = torch.linspace(0.0, math.pi, 1001, dtype=F64)[:, None]
    assert _rel(solution(x), exact(x)) <= 1e-4  # measured 3.1e-5 on 30 points (issue 21's target: 1e-3)


def test_new_default_reaches_1e_3_on_1d_high_frequency_poisson():
    """sin(100 x) on [0, 2 pi] with 400 points (4 points per period): rel. L2 <= 1e-3 in a few seconds."""
    problem, exact = _sines([(0.0, TWO_PI)], [(1.0, 100.0 / TWO_PI)])
    start = time.perf_counter()
    solution = GPSolver(problem, 400).fit()
    seconds = time.perf_counter() - start
    x = torch.linspace(0.0, TWO_PI, 4097, dtype=F64)[:, None]
    assert _rel(solution(x), exact(x)) <= 1e-3
    assert seconds < 30.0  # about 1 s on a quiet CPU thread; loose for shared machines


@pytest.mark.parametrize("kernel", ["stm", "gm"])
def test_new_default_reaches_1e_3_on_the_multiscale_case_where_the_old_default_collapsed(kernel, caplog):
    """Issue 21's multiscale case (a smooth mode plus a 40-cycle one): the old default freq_scale=1 treats the
    PDE as noise (rel. L2 ~ 1, with a warning); frequencies from the spectrum reach <= 1e-3."""
    problem, exact = _sines([(0.0, 1.0)], [(1.0, 1.0), (0.1, 40.0)])
    x = torch.linspace(0.0, 1.0, 4097, dtype=F64)[:, None]
    with caplog.at_level(logging.WARNING, logger="sciml.solvers.gp"):
        old = GPSolver(problem, 400, kernel=kernel, freq_scale=1.0).fit()
    assert _rel(old(x), exact(x)) > 0.5
    assert "residual precision collapsed" in caplog.text and "cycles per unit length" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sciml.solvers.gp"):
        solver = GPSolver(problem, 400, kernel=kernel)
        new = solver.fit()
    assert _rel(new(x), exact(x)) <= 1e-3
    assert "collapsed" not in caplog.text
    assert any(abs(p - 40.0) < 0.1 for p in solver.frequency_bands[0].peaks)


def test_2d_exact_fit_reaches_1e_4():
    """24^2 points (a dense solve; the CG path of larger grids is checked against the dense optimum above)."""
    problem, exact = _sines([(0.0, 1.0), (0.0, 1.0)], [(1.0, 1.0), (0.2, 3.0)])
    solver = GPSolver(problem, 24)
    solution = solver.fit()
    assert solver.history[0]["linear"]
    g = torch.linspace(0.0, 1.0, 41, dtype=F64)
    mesh = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1)
    assert _rel(solution.on_grid([g, g]), exact(mesh)) <= 1e-4  # measured 7.8e-5


def test_kernel_rounds_only_keep_rounds_that_raise_the_objective():
    problem, _ = _sines([(0.0, 1.0)], [(1.0, 2.0)])
    solver = GPSolver(problem, 40, kernel="gm")
    solver.fit(kernel_rounds=3)
    phases = [h["phase"] for h in solver.history]
    assert phases[0] == "exact" and phases[-1] == "final"
    assert phases.count("kernel") <= 3 and set(phases[1:-1]) <= {"kernel"}
    losses = [h["loss"] for h in solver.history if h["phase"] != "final"]
    assert all(b < a for a, b in itertools.pairwise(losses))  # each kept round raised the objective
    assert solver.history[-1]["loss"] == pytest.approx(min(losses))


@pytest.mark.parametrize("kernel, bound", [("gm", 1e-4), ("stm", 1e-3)])
def test_exact_fit_is_the_same_in_the_grid_parametrization(kernel, bound):
    """The optimum does not depend on the parametrization (measured: gm 1.3e-5, stm 3.1e-4 on 30 points)."""
    problem, exact = _sines([(0.0, 1.0)], [(1.0, 1.0)])
    x = torch.linspace(0.0, 1.0, 501, dtype=F64)[:, None]
    grid = GPSolver(problem, 30, kernel=kernel, parametrization="grid").fit()
    whitened = GPSolver(problem, 30, kernel=kernel).fit()
    assert _rel(grid(x), exact(x)) <= bound
    torch.testing.assert_close(grid(x), whitened(x), rtol=0, atol=1e-6)


def test_fit_options_are_checked():
    problem, _ = _sines([(0.0, 1.0)], [(1.0, 1.0)])
    solver = GPSolver(problem, 10)
    for kwargs, match in [
        ({"kernel_rounds": -1}, "kernel_rounds"),
        ({"tau_rounds": 0}, "tau_rounds"),
        ({"rtol": 0.0}, "rtol"),
        ({"max_seconds": 0.0}, "max_seconds"),
        ({"kernel_lr": math.nan}, "kernel_lr"),
        ({"lbfgs_iterations": 5}, "options of method='adam'"),
    ]:
        with pytest.raises(ConfigError, match=match):
            solver.fit(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# frequencies


def test_frequencies_from_the_source_spectrum_in_cycles_per_unit_length():
    problem, _ = _sines([(0.0, TWO_PI)], [(1.0, 100.0 / TWO_PI)])
    solver = GPSolver(problem, 400, kernel="stm")
    band = solver.frequency_bands[0]
    assert abs(band.peaks[0] - 100.0 / TWO_PI) < 0.05
    assert band.top < band.upper <= band.nyquist == pytest.approx(0.5 * 399 / TWO_PI)
    mu = solver.prior.kernels[0].mu.detach()
    assert float((mu - band.peaks[0]).abs().min()) < 1e-12 and float(mu.max()) <= band.upper + 1e-12


def test_frequencies_from_the_boundary_data_when_there_is_no_source():
    """Advection u_y + 8 u_x = 0 with u = sin(2 pi (x - 8 y)): no source term; the boundary data carries 1
    cycle per unit along x and 8 along y."""

    def exact(x):
        return torch.sin(TWO_PI * (x[..., 0] - 8.0 * x[..., 1]))

    problem = PDEProblem(box=[(0.0, 1.0)] * 2, residual=lambda d, x: d["y"] + 8.0 * d["x"], boundary=exact)
    solver = GPSolver(problem, (20, 60), kernel="stm")
    x_band, y_band = solver.frequency_bands
    assert x_band.upper < 3.0
    assert any(abs(p - 8.0) < 0.3 for p in y_band.peaks) and y_band.upper > 8.0


def test_frequencies_are_capped_at_the_nyquist_limit():
    problem, _ = _sines([(0.0, 1.0)], [(1.0, 18.0)])  # 18 cycles on 40 points: close to the limit 19.5
    band = GPSolver(problem, 40, kernel="gm").frequency_bands[0]
    assert band.upper == pytest.approx(band.nyquist)


# ---------------------------------------------------------------------------------------------------------
# robustness


@pytest.mark.parametrize("kernel", ["stm", "se"])
@pytest.mark.parametrize("freq_scale", [0.0, -1.0, math.nan, (1.0, 0.0)])
def test_bad_freq_scale_raises_config_error(kernel, freq_scale):
    problem, _ = _sines([(0.0, 1.0)], [(1.0, 1.0)])
    with pytest.raises(ConfigError, match="freq_scale"):
        GPSolver(problem, 10, kernel=kernel, freq_scale=freq_scale)


def test_float32_cholesky_failure_names_the_dtype():
    problem, _ = _sines([(0.0, 1.0)], [(1.0, 1.0)])
    with pytest.raises(SolverError, match=r"torch\.float32.*use dtype=torch\.float64") as info:
        GPSolver(problem, 200, kernel="stm", dtype=torch.float32)
    assert "increase jitter" not in str(info.value)


@pytest.mark.parametrize("method", ["adam", "exact"])
def test_residual_that_uses_autograd_survives_the_final_no_grad_evaluation(method):
    """A source term computed by autograd inside the residual (a common way to manufacture solutions)."""
    exact = lambda x: torch.sin(3.0 * x[..., 0])  # noqa: E731

    def source(x):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(exact(x).sum(), x, create_graph=True)
        (second,) = torch.autograd.grad(grad.sum(), x)
        return second[..., 0]

    problem = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: d["xx"] - source(x), boundary=exact)
    solver = GPSolver(problem, 16, kernel="stm")
    kwargs = {"iterations": 3} if method == "adam" else {}
    solution = solver.fit(method=method, progress=False, **kwargs)
    assert solver.history[-1]["phase"] == "final" and math.isfinite(solution.info["best_loss"])


def test_solution_refuses_points_outside_the_box():
    problem, _ = _sines([(0.0, 1.0), (-1.0, 1.0)], [(1.0, 1.0)])
    solution = GPSolver(problem, 8, kernel="stm").fit()
    inside = torch.tensor([[0.0, -1.0], [1.0, 1.0], [0.5, 0.0]], dtype=F64)
    assert solution(inside).shape == (3,)
    with pytest.raises(ConfigError, match=r"dimension 1 is 1\.5, outside the box \[-1\.0, 1\.0\]"):
        solution(torch.tensor([[0.5, 1.5]], dtype=F64))
    with pytest.raises(ConfigError, match="outside the box"):
        solution.on_grid([torch.linspace(0.0, 1.2, 5, dtype=F64), torch.zeros(1, dtype=F64)])


def test_max_seconds_also_bounds_the_conjugate_gradients(monkeypatch):
    """A clock that advances one second per reading: with max_seconds=5 the CG of a large grid stops after a
    few iterations instead of running to cg_iterations (a 400^2 solve once ran 197 s on a 10 s budget)."""
    clock = iter(range(10**6))
    monkeypatch.setattr(gp_exact.time, "perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr(gp_exact, "DENSE_POINTS", 0)
    problem, _ = _sines([(0.0, 1.0), (0.0, 1.0)], [(1.0, 1.0), (0.2, 3.0)])
    solver = GPSolver(problem, 16)
    solver.fit(max_seconds=5.0, cg_iterations=1000)
    entry = solver.history[0]
    assert entry["tau_rounds"] == 1 and entry["cg_iterations"] <= 5 and not entry["cg_converged"]
