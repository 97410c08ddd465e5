"""Classical baselines on the GP solver's problems (sciml.solvers.pde_baselines), checked against closed
forms: second-order finite differences (error ratios, the leading truncation term, the exact discrete
solution of a Laplacian eigenfunction), spectral Chebyshev collocation (off the nodes, through barycentric
interpolation), constant-coefficient non-Poisson PDEs, and one clear sciml error for every problem they
cannot solve."""

import math

import numpy as np
import pytest
import torch

from sciml.errors import ConfigError, SolverError
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import PDEProblem
from sciml.solvers.pde_baselines import (
    BaselineSolution,
    chebyshev_nodes,
    chebyshev_solve,
    finite_difference_solve,
)

F64 = torch.float64
PI = math.pi


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/solvers/conftest.py


def _mesh(axes):
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _nodal_error(solution: BaselineSolution, exact) -> float:
    return float((solution.values - exact(_mesh(solution.nodes))).abs().max())


def _off_node_error(solution: BaselineSolution, exact, points: int) -> float:
    """Max error on a fine grid shifted off the nodes (only the two end points coincide with nodes)."""
    axes = []
    for nodes in solution.nodes:
        lo, hi = float(nodes[0]), float(nodes[-1])
        axis = torch.linspace(lo, hi, points, dtype=F64)
        axis[1:-1] += 0.37 * (hi - lo) / (points - 1)  # inside the box, between the fine grid's points
        gap = (axis[1:-1, None] - nodes[None, :]).abs().min()
        assert float(gap) > 1e-6 * (hi - lo)
        axes.append(axis)
    return float((solution.on_grid(axes) - exact(_mesh(axes))).abs().max())


# -- problems with closed-form solutions ---------------------------------------------------------------------


def _sine_1d(x):
    return torch.sin(3.0 * x[..., 0])


#: u_xx = f with u = sin(3x) on [0, pi] (zero Dirichlet data)
POISSON_1D = PDEProblem(
    box=[(0.0, PI)],
    residual=lambda d, x: d["xx"] + 9.0 * _sine_1d(x),
    boundary=_sine_1d,
    name="poisson-1d",
)


def _sines_2d(x):
    return torch.sin(PI * x[..., 0]) * torch.sin(2.0 * PI * x[..., 1])


#: u_xx + u_yy = f with u = sin(pi x) sin(2 pi y) on [0, 1]^2
POISSON_2D = PDEProblem(
    box=[(0.0, 1.0), (0.0, 1.0)],
    residual=lambda d, x: d["xx"] + d["yy"] + 5.0 * PI**2 * _sines_2d(x),
    boundary=_sines_2d,
    name="poisson-2d",
)


def _helmholtz_exact(x):
    return torch.sin(3.0 * x[..., 0]) + torch.cos(x[..., 0])


#: u_xx + k^2 u = f, k = 2, u = sin(3x) + cos(x) on [0, 2] (non-zero data at both ends; 4 is no eigenvalue
#: of the Dirichlet Laplacian there: (pi m / 2)^2 = 2.47, 9.87, ...)
HELMHOLTZ_1D = PDEProblem(
    box=[(0.0, 2.0)],
    residual=lambda d, x: (
        d["xx"] + 4.0 * d["u"] - (-5.0 * torch.sin(3.0 * x[..., 0]) + 3.0 * torch.cos(x[..., 0]))
    ),
    boundary=_helmholtz_exact,
    name="helmholtz-1d",
)

SPEED = 3.0


def _advection_exact(x):
    return torch.exp(SPEED * x[..., 0]) + 2.0 - x[..., 0]


#: u_xx - c u_x = c with u = exp(c x) + 2 - x on [0, 1]: u(0) = 3, u(1) = e^c + 1
ADVECTION_DIFFUSION_1D = PDEProblem(
    box=[(0.0, 1.0)],
    residual=lambda d, x: d["xx"] - SPEED * d["x"] - SPEED,
    boundary=_advection_exact,
    name="advection-diffusion-1d",
)


def _anisotropic_exact(x):
    return torch.sin(PI * x[..., 0]) * torch.cos(x[..., 1]) + x[..., 0] * x[..., 1]


def _anisotropic_residual(d, x):
    """2 u_xx + 0.5 u_yy + u_x - 3 u = f for u = sin(pi x) cos(y) + x y."""
    s, c = torch.sin(PI * x[..., 0]), torch.cos(x[..., 1])
    u_xx, u_yy = -(PI**2) * s * c, -s * c
    u_x = PI * torch.cos(PI * x[..., 0]) * c + x[..., 1]
    f = 2.0 * u_xx + 0.5 * u_yy + u_x - 3.0 * _anisotropic_exact(x)
    return 2.0 * d["xx"] + 0.5 * d["yy"] + d["x"] - 3.0 * d["u"] - f


#: different coefficients per dimension on the box [0, 1] x [0, 2], non-zero data on every face
ANISOTROPIC_2D = PDEProblem(
    box=[(0.0, 1.0), (0.0, 2.0)], residual=_anisotropic_residual, boundary=_anisotropic_exact, name="aniso-2d"
)


# -- chebyshev_nodes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 9, 24])
def test_chebyshev_nodes_are_the_closed_form_on_minus_one_one(n):
    nodes = chebyshev_nodes(n, -1.0, 1.0)
    j = np.arange(n)
    closed_form = np.cos(np.pi * j / (n - 1))  # decreasing from 1 to -1; the nodes are increasing
    assert nodes.dtype == F64 and nodes.shape == (n,)
    np.testing.assert_allclose(nodes.numpy(), closed_form[::-1], rtol=0, atol=1e-15)
    assert float(nodes[0]) == -1.0 and float(nodes[-1]) == 1.0
    assert bool((nodes[1:] > nodes[:-1]).all())
    np.testing.assert_allclose(nodes.numpy(), -nodes.numpy()[::-1], rtol=0, atol=1e-15)  # symmetric


def test_chebyshev_nodes_map_affinely_to_lo_hi_with_both_end_points():
    n, lo, hi = 11, 2.0, 5.0
    nodes = chebyshev_nodes(n, lo, hi)
    reference = chebyshev_nodes(n, -1.0, 1.0)
    assert float(nodes[0]) == lo and float(nodes[-1]) == hi
    np.testing.assert_allclose(nodes.numpy(), (lo + (hi - lo) * (reference + 1.0) / 2.0).numpy(), atol=1e-14)
    # clustered at the ends: the first gap is the closed form (hi - lo) (1 - cos(pi / (n - 1))) / 2
    first_gap = (hi - lo) * (1.0 - math.cos(PI / (n - 1))) / 2.0
    assert float(nodes[1] - nodes[0]) == pytest.approx(first_gap, rel=1e-12)
    assert chebyshev_nodes(5, 0.0, 1.0, dtype=torch.float32).dtype == torch.float32


# -- finite differences: second order ------------------------------------------------------------------------


def test_finite_differences_are_second_order_in_1d():
    errors = [_nodal_error(finite_difference_solve(POISSON_1D, m + 1), _sine_1d) for m in (16, 32, 64)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 <= r <= 4.5 for r in ratios), ratios


def test_finite_difference_error_is_the_leading_truncation_term_in_1d():
    # D_h u = u'' + h^2/12 u'''' + O(h^4), so e = U - u solves e'' = -h^2/12 * 81 sin(3x): e = 3/4 h^2 sin(3x)
    intervals = 64
    h = PI / intervals
    solution = finite_difference_solve(POISSON_1D, intervals + 1)
    x = solution.nodes[0]
    error = solution.values - torch.sin(3.0 * x)
    leading = 0.75 * h**2 * torch.sin(3.0 * x)
    assert float((error - leading).abs().max()) < 0.01 * 0.75 * h**2
    # and exactly: sin(3x) is an eigenvector of the discrete Laplacian, eigenvalue -(4/h^2) sin^2(3h/2)
    discrete = torch.sin(3.0 * x) * 9.0 / ((4.0 / h**2) * math.sin(1.5 * h) ** 2)
    assert float((solution.values - discrete).abs().max()) < 1e-12


def test_finite_differences_are_second_order_in_2d():
    errors = [_nodal_error(finite_difference_solve(POISSON_2D, m + 1), _sines_2d) for m in (8, 16, 32)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 <= r <= 4.5 for r in ratios), ratios


def test_finite_difference_error_is_the_leading_truncation_term_in_2d():
    # truncation h^2/12 (u_xxxx + u_yyyy) = 17 pi^4 h^2 / 12 u, Laplacian eigenvalue -5 pi^2:
    # e = 17 pi^2 h^2 / 60 u
    intervals = 32
    h = 1.0 / intervals
    solution = finite_difference_solve(POISSON_2D, intervals + 1)
    exact = _sines_2d(_mesh(solution.nodes))
    leading = 17.0 * PI**2 * h**2 / 60.0
    assert float((solution.values - exact - leading * exact).abs().max()) < 0.01 * leading
    discrete_eigenvalue = (4.0 / h**2) * (math.sin(PI * h / 2.0) ** 2 + math.sin(PI * h) ** 2)
    assert float((solution.values - exact * 5.0 * PI**2 / discrete_eigenvalue).abs().max()) < 1e-12


def test_finite_difference_solution_interpolates_linearly_between_nodes():
    solution = finite_difference_solve(POISSON_1D, 9)
    nodes, values = solution.nodes[0], solution.values
    at_nodes = solution.on_grid([nodes])
    midpoints = solution.on_grid([(nodes[1:] + nodes[:-1]) / 2.0])
    torch.testing.assert_close(at_nodes, values, rtol=0, atol=1e-14)
    torch.testing.assert_close(midpoints, (values[1:] + values[:-1]) / 2.0, rtol=0, atol=1e-14)


# -- Chebyshev collocation: spectral -------------------------------------------------------------------------


def test_chebyshev_is_spectral_in_1d_off_the_nodes():
    solution = chebyshev_solve(POISSON_1D, 24)
    assert solution.method == "chebyshev"
    torch.testing.assert_close(solution.nodes[0], chebyshev_nodes(24, 0.0, PI), rtol=0, atol=0)
    assert _off_node_error(solution, _sine_1d, 1001) <= 1e-10
    # exponential, not algebraic, convergence: 8 -> 16 points gains far more than the 2^2 of second order
    coarse = _off_node_error(chebyshev_solve(POISSON_1D, 8), _sine_1d, 1001)
    finer = _off_node_error(chebyshev_solve(POISSON_1D, 16), _sine_1d, 1001)
    assert finer < 1e-4 * coarse


def test_chebyshev_is_spectral_in_2d_off_the_nodes():
    solution = chebyshev_solve(POISSON_2D, 20)
    assert solution.values.shape == (20, 20)
    assert _off_node_error(solution, _sines_2d, 101) <= 1e-10


def test_chebyshev_interpolation_reproduces_the_nodal_values():
    solution = chebyshev_solve(POISSON_2D, (9, 12))
    torch.testing.assert_close(solution.on_grid(solution.nodes), solution.values, rtol=0, atol=1e-14)


# -- constant-coefficient linear PDEs other than Poisson -----------------------------------------------------


@pytest.mark.parametrize(
    "problem, exact",
    [(HELMHOLTZ_1D, _helmholtz_exact), (ADVECTION_DIFFUSION_1D, _advection_exact)],
    ids=["helmholtz", "advection-diffusion"],
)
def test_non_poisson_1d_problems_with_dirichlet_data_on_both_ends(problem, exact):
    spectral = chebyshev_solve(problem, 24)
    assert _off_node_error(spectral, exact, 1001) <= 1e-10
    errors = [_nodal_error(finite_difference_solve(problem, m + 1), exact) for m in (16, 32, 64)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 <= r <= 4.5 for r in ratios), ratios
    coarse = finite_difference_solve(problem, 17)
    lo, hi = problem.box[0]
    boundary = exact(torch.tensor([[lo], [hi]], dtype=F64))
    assert float(boundary.abs().min()) > 0.5  # the data are non-zero at both ends, and imposed exactly
    torch.testing.assert_close(coarse.values[[0, -1]], boundary, rtol=0, atol=1e-14)
    torch.testing.assert_close(spectral.values[[0, -1]], boundary, rtol=0, atol=1e-14)


def test_2d_different_coefficients_per_dimension_on_an_anisotropic_grid():
    spectral = chebyshev_solve(ANISOTROPIC_2D, (17, 25))
    assert spectral.values.shape == (17, 25)
    assert [n.numel() for n in spectral.nodes] == [17, 25]
    assert float(spectral.nodes[1][-1]) == 2.0
    assert _off_node_error(spectral, _anisotropic_exact, 81) <= 1e-10
    errors = [
        _nodal_error(finite_difference_solve(ANISOTROPIC_2D, (m + 1, 2 * m + 1)), _anisotropic_exact)
        for m in (8, 16, 32)
    ]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 <= r <= 4.5 for r in ratios), ratios


def test_laplace_problems_with_zero_source_are_solved():
    """Regression: the check that the residual vanishes compared it with the size of the whole operator
    applied to the solution, which cancels to rounding when the source is zero: every Laplace problem (and
    u_xx - c u_x = 0) was rejected as 'not linear with constant coefficients'."""

    def harmonic(x):
        return torch.exp(x[..., 0]) * torch.sin(x[..., 1])

    laplace = PDEProblem(
        box=[(0.0, 1.0), (0.0, 2.0)], residual=lambda d, x: d["xx"] + d["yy"], boundary=harmonic
    )
    assert _off_node_error(chebyshev_solve(laplace, 20), harmonic, 61) <= 1e-10
    assert _nodal_error(finite_difference_solve(laplace, 33), harmonic) < 1e-4

    def bilinear(x):
        return 3.0 * x[..., 0] - x[..., 1] + x[..., 0] * x[..., 1]

    flat = PDEProblem(
        box=[(-1.0, 1.0), (0.0, 5.0)], residual=lambda d, x: 2 * d["xx"] + 0.5 * d["yy"], boundary=bilinear
    )
    assert _nodal_error(finite_difference_solve(flat, (9, 13)), bilinear) < 1e-12  # exact for a bilinear u
    assert _nodal_error(chebyshev_solve(flat, (9, 13)), bilinear) < 1e-12

    def ramp(x):
        return (torch.exp(SPEED * x[..., 0]) - 1.0) / (math.exp(SPEED) - 1.0)

    homogeneous = PDEProblem(box=[(0.0, 1.0)], residual=lambda d, x: d["xx"] - SPEED * d["x"], boundary=ramp)
    assert _off_node_error(chebyshev_solve(homogeneous, 24), ramp, 501) <= 1e-10


# -- the same problem object as the GP solver ----------------------------------------------------------------


def test_the_gp_solvers_problem_object_runs_unchanged_through_both_baselines():
    problem = PDEProblem(
        box=[(0.0, PI)], residual=lambda d, x: d["xx"] + 9.0 * _sine_1d(x), boundary=_sine_1d, name="shared"
    )
    residual, boundary = problem.residual, problem.boundary
    gp = GPSolver(problem, 30).fit()
    fd = finite_difference_solve(problem, 33)
    spectral = chebyshev_solve(problem, 24)
    assert problem.residual is residual and problem.boundary is boundary
    assert problem.box == [(0.0, PI)] and problem.names == "x"
    axis = torch.linspace(0.0, PI, 257, dtype=F64)
    exact = torch.sin(3.0 * axis)
    assert float((gp.on_grid([axis]) - exact).abs().max()) < 1e-3
    assert float((fd.on_grid([axis]) - exact).abs().max()) < 0.02  # h = pi/32, plus linear interpolation
    assert float((spectral.on_grid([axis]) - exact).abs().max()) < 1e-10
    assert fd.method == "fd2" and spectral.method == "chebyshev"


# -- problems the baselines cannot solve: one clear error ----------------------------------------------------


def _problem_1d(residual, boundary=_sine_1d):
    return PDEProblem(box=[(0.0, 1.0)], residual=residual, boundary=boundary)


@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_a_variable_coefficient_is_rejected(solve):
    problem = _problem_1d(lambda d, x: x[..., 0] * d["xx"] - 1.0)
    with pytest.raises(SolverError, match=r"coefficient of derivative .* varies over the grid"):
        solve(problem, 9)


@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_a_nonlinear_residual_is_rejected(solve):
    problem = _problem_1d(lambda d, x: d["xx"] + d["u"] ** 2 - 1.0)
    with pytest.raises(
        SolverError, match=r"residual does not vanish.*linear PDEs with constant coefficients"
    ):
        solve(problem, 9)


@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_a_mixed_derivative_is_rejected(solve):
    problem = PDEProblem(
        box=[(0.0, 1.0), (0.0, 1.0)],
        residual=lambda d, x: d["xx"] + d["yy"] + d["xy"] - 1.0,
        boundary=lambda x: torch.zeros(len(x), dtype=x.dtype),
    )
    with pytest.raises(SolverError, match="mixed derivative"):
        solve(problem, 7)


def test_finite_differences_reject_a_third_derivative():
    with pytest.raises(SolverError, match="derivative order 3 is not supported"):
        finite_difference_solve(_problem_1d(lambda d, x: d["xxx"] + d["xx"] - 1.0), 9)


@pytest.mark.parametrize("sizes", [2, -1, True, (9, 9), [], "abc", 3.0, None, {"x": 9}])
@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_bad_sizes_raise_config_error(solve, sizes):
    """Regression for 3.0, None, a dict: a raw TypeError ('not iterable') before."""
    with pytest.raises(ConfigError, match="sizes must be an int or 1 ints, each >= 3"):
        solve(POISSON_1D, sizes)


@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_not_a_pde_problem_raises_config_error(solve):
    with pytest.raises(ConfigError, match="problem must be a PDEProblem, got dict"):
        solve({"box": [(0, 1)]}, 9)


@pytest.mark.parametrize(
    "residual, message",
    [
        (lambda d, x: -torch.ones_like(x[..., 0]), "does not depend on u"),  # was a raw RuntimeError of grad
        (lambda d, x: d["xx"].detach() - 1.0, "does not depend on u"),
        (lambda d, x: d["xx"] - x[..., 5], "problem.residual failed on the grid: index 5"),  # raw IndexError
        (lambda d, x: d["xx"][1:], r"grid shape \(9,\), got \(8,\)"),
        (
            lambda d, x: d["xx"] - 1.0 / x[..., 0].sin() * 0.0 - torch.log(x[..., 0] - 0.5),
            "not finite at u = 0",
        ),
    ],
    ids=["constant", "detached", "raises", "shape", "non-finite"],
)
def test_a_broken_residual_raises_solver_error(residual, message):
    with pytest.raises(SolverError, match=message):
        finite_difference_solve(_problem_1d(residual), 9)


@pytest.mark.parametrize(
    "boundary, message",
    [
        (
            lambda x: torch.zeros(5, dtype=x.dtype),
            r"returned shape \(5,\); expected \(2,\)",
        ),  # raw RuntimeError
        (lambda x: x[:, 3], "problem.boundary failed on the 2 boundary points"),  # raw IndexError
        (lambda x: x[:, 0] * float("nan"), "problem.boundary returned non-finite values"),
    ],
    ids=["shape", "raises", "nan"],
)
@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_broken_boundary_data_raise_solver_error(solve, boundary, message):
    with pytest.raises(SolverError, match=message):
        solve(_problem_1d(lambda d, x: d["xx"] - 1.0, boundary), 9)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_a_residual_whose_u_terms_all_vanish_is_a_singular_operator(solve, dims):
    """Regression: a raw torch LinAlgError from the LU factorisation in 1-D before."""
    problem = PDEProblem(
        box=[(0.0, 1.0)] * dims,
        residual=lambda d, x: 0.0 * d["u"] - 1.0,
        boundary=lambda x: torch.zeros(len(x), dtype=x.dtype),
    )
    with pytest.raises(SolverError, match="discretised operator is singular"):
        solve(problem, 5)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_helmholtz_at_an_eigenvalue_of_the_grid_laplacian_is_singular(dims):
    """Regression: with the residual check scaled by the terms one by one, a backward-stable solve of a
    singular system passes it; the solve's condition bound (1-D, 2-D) and the eigenvalue sums that the 3-D
    solver would raise to its floor (a bounded approximation, not a solve) now say 'singular'."""
    n = 9
    h = PI / (n - 1)
    k2 = dims * (4.0 / h**2) * math.sin(h / 2.0) ** 2  # the smallest eigenvalue of -D_h on (0, pi)^dims
    problem = PDEProblem(
        box=[(0.0, PI)] * dims,
        residual=lambda d, x: sum(d[name * 2] for name in "xyz"[:dims]) + k2 * d["u"] - 1.0,
        boundary=lambda x: torch.zeros(len(x), dtype=x.dtype),
    )
    with pytest.raises(SolverError, match="singular"):
        finite_difference_solve(problem, n)
    assert finite_difference_solve(problem, n + 2).values.abs().max() < 1e3  # off resonance: solved


# -- BaselineSolution.on_grid --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "axes, message",
    [
        ([torch.tensor([4.0])], r"axis 0 leaves the box"),
        ([torch.tensor([0.5]), torch.tensor([0.5])], "needs a sequence of 1 axes"),
        (None, "needs a sequence of 1 axes"),  # raw TypeError before
        ("x", "needs a sequence of 1 axes"),
        (["a"], "axis 0 must be numbers"),  # raw TypeError before
        ([torch.tensor([float("nan")])], "non-finite coordinates"),  # raw IndexError before
    ],
    ids=["outside", "two-axes", "none", "string", "not-numbers", "nan"],
)
@pytest.mark.parametrize("solve", [finite_difference_solve, chebyshev_solve])
def test_on_grid_rejects_bad_axes_with_config_error(solve, axes, message):
    solution = solve(POISSON_1D, 9)
    with pytest.raises(ConfigError, match=message):
        solution.on_grid(axes)


def test_on_grid_accepts_numpy_axes():
    solution = chebyshev_solve(POISSON_2D, 12)
    axes = [np.linspace(0.0, 1.0, 5), np.linspace(0.0, 1.0, 7)]
    out = solution.on_grid(axes)
    assert out.shape == (5, 7)
    torch.testing.assert_close(out, solution.on_grid([torch.as_tensor(a) for a in axes]))
