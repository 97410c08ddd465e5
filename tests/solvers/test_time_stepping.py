"""IMEX steppers: one table each, two executors (in place, differentiable) that agree; orders, gradients."""

import math

import pytest
import torch

from sciml.errors import SolverError
from sciml.solvers.navier_stokes import NavierStokes2D, gaussian_random_field
from sciml.solvers.time_stepping import PREDICTOR, STEPPERS, ImexStepper, Stage, as_multiple


class Logistic:
    """``u' = -u^2 + lam u``: the explicit term nonlinear, the implicit one linear (an ImexEquation)."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def explicit_terms(self, state: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if out is None:
            return -(state * state)
        return torch.mul(state, state, out=out).neg_()

    def implicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        return self.lam * state

    def implicit_solve(self, rhs: torch.Tensor, step: float) -> torch.Tensor:
        return rhs / (1.0 - step * self.lam)


def logistic_error(stages: tuple[Stage, ...], lam: float, n_steps: int, in_place: bool) -> float:
    """Error at t = 1 from u(0) = 0.8 against the closed form of the Bernoulli equation."""
    stepper = ImexStepper(stages, Logistic(lam), 1.0 / n_steps, (), torch.float64, torch.device("cpu"))
    u = torch.tensor([0.8], dtype=torch.float64)
    for _ in range(n_steps):
        u = stepper.step_(u) if in_place else stepper.step(u)
    growth = math.exp(lam)
    exact = 0.8 / (1 + 0.8) if lam == 0 else lam * 0.8 * growth / (lam + 0.8 * (growth - 1))
    return abs(u.item() - exact)


@pytest.mark.parametrize(
    ("stepper", "lam", "order"),
    [
        ("cn-euler", -2.0, 1.0),
        ("heun-cn", -2.0, 2.0),
        ("rk4-cn", -2.0, 2.0),  # Crank-Nicolson sub-steps on the implicit part
        ("rk4-cn", 0.0, 4.0),  # no implicit part: the Carpenter-Kennedy scheme's own order
    ],
)
@pytest.mark.parametrize("in_place", [True, False])
def test_every_stepper_has_its_order_on_any_equation(stepper, lam, order, in_place):
    errors = [logistic_error(STEPPERS[stepper], lam, n, in_place) for n in (40, 80)]
    assert abs(math.log2(errors[0] / errors[1]) - order) <= 0.1


def test_a_new_stepper_is_one_table():
    # explicit midpoint with Crank-Nicolson: u* = CN_{dt/2}(u) + dt/2 N(u), u <- CN_dt(u) + dt N(u*)
    midpoint = (
        Stage(accumulate=0.0, weight=0.5, implicit=0.25, writes=PREDICTOR),
        Stage(accumulate=0.0, weight=1.0, implicit=0.5, reads=PREDICTOR),
    )
    errors = [logistic_error(midpoint, -2.0, n, in_place=True) for n in (40, 80)]
    assert abs(math.log2(errors[0] / errors[1]) - 2.0) <= 0.1
    assert logistic_error(midpoint, -2.0, 40, in_place=False) == pytest.approx(errors[0], rel=1e-12)


@pytest.mark.parametrize("stepper", STEPPERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_in_place_and_differentiable_steps_agree(stepper, dtype):
    # a batch larger than a block: the in-place path splits it into cache-sized blocks on the CPU
    n = 128
    solver = NavierStokes2D(n, 1e-3, forcing="kolmogorov", dt=1e-3, stepper=stepper)
    batch = solver.equation("cpu", dtype).block_trajectories + 2
    w = gaussian_random_field(batch, n, dtype=dtype, seed=2, domain_length=solver.domain_length)
    fast = solver.step(w, 4)
    differentiable = solver.step(w, 4, differentiable=True)
    tolerance = (1e-13 if dtype == torch.float64 else 1e-5) * fast.abs().max().item()
    torch.testing.assert_close(differentiable, fast, rtol=0, atol=tolerance)
    assert not torch.equal(fast, w)
    # the same on the spectrum, through the stepper itself
    time_stepper = solver.time_stepper(w.device, dtype)
    w_hat = torch.fft.rfft2(w)
    out_of_place = time_stepper.step(w_hat)
    in_place = time_stepper.step_(w_hat.clone())
    torch.testing.assert_close(out_of_place, in_place, rtol=0, atol=tolerance * n * n)


@pytest.mark.parametrize("stepper", STEPPERS)
def test_gradients_flow_through_the_differentiable_step(stepper):
    solver = NavierStokes2D(8, 1e-2, forcing="fno", drag=0.1, dt=2e-2, stepper=stepper)
    w = gaussian_random_field(1, 8, dtype=torch.float64, seed=3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda field: solver.step(field, 2, differentiable=True), (w,))


def test_the_in_place_step_refuses_a_field_that_requires_grad():
    solver = NavierStokes2D(8, 1e-2, dt=1e-2)
    w = gaussian_random_field(1, 8, dtype=torch.float64, seed=3).requires_grad_(True)
    with pytest.raises(SolverError, match="differentiable=True"):
        solver.step(w)
    with torch.no_grad():
        assert solver.step(w).shape == w.shape


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ((Stage(1.0, 1.0, 0.5),), "first stage"),
        ((Stage(0.0, 1.0, 0.5, reads=PREDICTOR),), "reads the predictor"),
        ((Stage(0.0, 1.0, 0.5, writes=PREDICTOR),), "last stage"),
        ((Stage(0.0, 1.0, 0.5, writes="scratch"),), "unknown register"),
        ((), "last stage"),
    ],
)
def test_malformed_tables_are_refused(stages, match):
    with pytest.raises(SolverError, match=match):
        ImexStepper(stages, Logistic(-1.0), 0.1, (), torch.float64, torch.device("cpu"))


def test_as_multiple():
    assert as_multiple(0.5, 0.05, "frame_dt", "dt") == 10
    assert as_multiple(3.0, 1.0, "t_final", "record_every") == 3
    for bad in (0.52, 0.0, -0.5, math.nan, math.inf):
        with pytest.raises(SolverError, match=r"frame_dt = .* is not a positive multiple of dt = 0\.05"):
            as_multiple(bad, 0.05, "frame_dt", "dt")
