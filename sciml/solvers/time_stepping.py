r"""Implicit-explicit (IMEX) Runge-Kutta steppers, defined once for every equation :math:`u_t = N(u) + Lu`.

An equation (:class:`ImexEquation`) supplies the explicit terms :math:`N(u)` (nonlinear, non-stiff), the
implicit operator :math:`L` (linear, stiff) and its solve :math:`(I - aL)^{-1}`; a stepper is a table of
:class:`Stage` coefficients. The form is a low-storage (2N-storage) Runge-Kutta scheme on :math:`N` with a
Crank-Nicolson sub-step on :math:`L` in every stage (in the spirit of jax-cfd's ``spectral/time_stepping.py``;
Carpenter & Kennedy, NASA TM-109112, 1994). Stage :math:`j` evaluates the explicit terms at a register
``x`` (the state :math:`u` or a predictor) and writes a register ``y``:

.. math::
    h \leftarrow N(x) + A_j h, \qquad
    y \leftarrow (I - \mu_j L)^{-1}\big[(I + \mu_j L)\,u + B_j\,\Delta t\,h\big],
    \qquad \mu_j = c_j\,\Delta t.

Steppers (:data:`STEPPERS`):

* ``"cn-euler"``: forward Euler on :math:`N`, Crank-Nicolson on :math:`L` (first order; the FNO data scheme).
* ``"heun-cn"``: Heun's predictor-corrector on :math:`N` (the predictor is a register), Crank-Nicolson on
  :math:`L` (second order).
* ``"rk4-cn"``: the five-stage fourth-order 2N-storage Runge-Kutta of Carpenter & Kennedy (solution 3) on
  :math:`N` with a Crank-Nicolson sub-step over each stage's time interval (fourth order on :math:`N`,
  second order on :math:`L`).

Adding a stepper is one new entry of :data:`STEPPERS`.

Contract of the equation: :math:`L` and its solve are *diagonal* in the representation of the state (e.g.
Fourier multipliers), so each stage's update is two multipliers, ``y = G_j u + S_j h``, that
:class:`ImexStepper` computes once by applying ``implicit_terms`` and ``implicit_solve`` to the float64
scalar 1 (in float64, then cast to the state's dtype). The same stepper runs in two ways that give the same
numbers to rounding: :meth:`ImexStepper.step` creates every intermediate (autograd can follow it) and
:meth:`ImexStepper.step_` updates the state in place in preallocated work buffers (the fast path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import torch

from sciml.errors import SolverError

__all__ = [
    "PREDICTOR",
    "STATE",
    "STEPPERS",
    "ImexEquation",
    "ImexStepper",
    "Stage",
    "Workspace",
    "as_multiple",
]

STATE = "state"
"""The register holding the solution :math:`u`."""
PREDICTOR = "predictor"
"""A second register, for steppers that evaluate the explicit terms at a predicted state."""


class ImexEquation(Protocol):
    r"""An equation :math:`\partial_t u = N(u) + Lu` as the steppers see it."""

    def explicit_terms(self, state: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`N(u)`. Without ``out``: a new tensor (differentiable). With ``out``: written into ``out``
        (which is returned), possibly through the equation's own work buffers."""
        ...

    def implicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        """:math:`Lu`, elementwise (diagonal) in the representation of the state."""
        ...

    def implicit_solve(self, rhs: torch.Tensor, step: float) -> torch.Tensor:
        """``(I - step L)^-1 rhs``, elementwise."""
        ...


@dataclass(frozen=True)
class Stage:
    """One stage: ``h <- N(reads) + accumulate * h``, then ``writes <- G u + S h`` (module docstring).

    Attributes:
        accumulate: :math:`A_j`, the weight of the previous ``h`` (0: ``h`` restarts from ``N``).
        weight: :math:`B_j`, the explicit increment is ``weight * dt * h``.
        implicit: :math:`c_j`, the Crank-Nicolson sub-step is ``mu_j = implicit * dt``.
        reads: the register the explicit terms are evaluated at (:data:`STATE` or :data:`PREDICTOR`).
        writes: the register that receives the update.
    """

    accumulate: float
    weight: float
    implicit: float
    reads: str = STATE
    writes: str = STATE


# Carpenter & Kennedy (1994), five-stage fourth-order 2N-storage Runge-Kutta, solution 3:
#   h <- dt * F(u) + A_j h ;  u <- u + B_j h ; stage j starts at time C_j dt.
_CK_A = (
    Fraction(0),
    Fraction(-567301805773, 1357537059087),
    Fraction(-2404267990393, 2016746695238),
    Fraction(-3550918686646, 2091501179385),
    Fraction(-1275806237668, 842570457699),
)
_CK_B = (
    Fraction(1432997174477, 9575080441755),
    Fraction(5161836677717, 13612068292357),
    Fraction(1720146321549, 2090206949498),
    Fraction(3134564353537, 4481467310338),
    Fraction(2277821191437, 14882151754819),
)
_CK_C = (
    Fraction(0),
    Fraction(1432997174477, 9575080441755),
    Fraction(2526269341429, 6820363962896),
    Fraction(2006345519317, 3224310063776),
    Fraction(2802321613138, 2924317926251),
    Fraction(1),
)

STEPPERS: dict[str, tuple[Stage, ...]] = {
    "cn-euler": (Stage(accumulate=0.0, weight=1.0, implicit=0.5),),
    # predictor u* = CN(u) + dt N(u); corrector u <- CN(u) + dt (N(u) + N(u*)) / 2
    "heun-cn": (
        Stage(accumulate=0.0, weight=1.0, implicit=0.5, writes=PREDICTOR),
        Stage(accumulate=1.0, weight=0.5, implicit=0.5, reads=PREDICTOR),
    ),
    # Crank-Nicolson over each stage's interval [C_j, C_{j+1}] dt: mu_j = (C_{j+1} - C_j) dt / 2
    "rk4-cn": tuple(
        Stage(accumulate=float(a), weight=float(b), implicit=float(c1 - c0) / 2)
        for a, b, c0, c1 in zip(_CK_A, _CK_B, _CK_C[:-1], _CK_C[1:], strict=True)
    ),
}
"""Every stepper, by name: its stages."""


def _check_stages(stages: tuple[Stage, ...]) -> None:
    """A SolverError if a stage accumulates into an empty ``h`` or reads a register not yet written."""
    written = {STATE}
    for j, stage in enumerate(stages):
        if stage.reads not in (STATE, PREDICTOR) or stage.writes not in (STATE, PREDICTOR):
            raise SolverError(
                f"time_stepping: stage {j} uses an unknown register ({stage.reads}, {stage.writes})"
            )
        if stage.reads not in written:
            raise SolverError(f"time_stepping: stage {j} reads the {stage.reads} before any stage writes it")
        if j == 0 and stage.accumulate != 0.0:
            raise SolverError("time_stepping: the first stage must have accumulate = 0 (h is still empty)")
        written.add(stage.writes)
    if not stages or stages[-1].writes != STATE:
        raise SolverError("time_stepping: the last stage must write the state")


class Workspace:
    """Named work buffers with a leading batch axis, reallocated only when a larger batch comes.

    Fresh multi-MB tensors at every step cost page faults that were measured to exceed the FFTs themselves on
    the CPU, so the in-place paths keep their intermediates here.
    """

    def __init__(self, device: torch.device, shapes: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        self.device = device
        self.shapes = shapes
        self._held: dict[str, torch.Tensor] = {}

    def __call__(self, batch: int) -> dict[str, torch.Tensor]:
        """Views ``[:batch]`` of every buffer (``[batch, *shape]``)."""
        if not self._held or next(iter(self._held.values())).shape[0] < batch:
            self._held = {
                name: torch.empty((batch, *shape), dtype=dtype, device=self.device)
                for name, (shape, dtype) in self.shapes.items()
            }
        return {name: buffer[:batch] for name, buffer in self._held.items()}


class ImexStepper:
    """A stepper bound to an equation, a time step and a state dtype: the per-stage multipliers, once.

    Args:
        stages: the stepper's table (a value of :data:`STEPPERS`).
        equation: the equation (see :class:`ImexEquation` and the module docstring's contract).
        dt: time step.
        state_shape: shape of one state without the batch axis (for the in-place path's buffers).
        dtype: dtype of the states (the multipliers are cast to it).
        device: where the states live.

    A stepper keeps work buffers for :meth:`step_`, so one instance must not step from two threads.
    """

    def __init__(
        self,
        stages: tuple[Stage, ...],
        equation: ImexEquation,
        dt: float,
        state_shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        _check_stages(stages)
        self.stages = stages
        self.equation = equation
        self.dt = float(dt)
        one = torch.ones((), dtype=torch.float64, device=device)
        self.updates: list[tuple[torch.Tensor, torch.Tensor]] = []
        for stage in stages:
            mu = stage.implicit * self.dt
            gain = equation.implicit_solve(one + mu * equation.implicit_terms(one), mu)
            scale = equation.implicit_solve(one * (stage.weight * self.dt), mu)
            self.updates.append((gain.to(dtype), scale.to(dtype)))
        # f and h: the explicit terms and their accumulation; the predictor only where a stage writes it
        buffers = ["f", "h"] + ([PREDICTOR] if any(s.writes == PREDICTOR for s in stages) else [])
        self._workspace = Workspace(device, {name: (tuple(state_shape), dtype) for name in buffers})

    @property
    def explicit_evaluations(self) -> int:
        """Evaluations of the explicit terms per step."""
        return len(self.stages)

    def step(self, state: torch.Tensor) -> torch.Tensor:
        """One step, out of place: ``state`` is unchanged, every intermediate is new (differentiable)."""
        registers = {STATE: state}
        h = None
        for stage, (gain, scale) in zip(self.stages, self.updates, strict=True):
            f = self.equation.explicit_terms(registers[stage.reads])
            h = f if stage.accumulate == 0.0 else torch.add(f, h, alpha=stage.accumulate)
            registers[stage.writes] = torch.addcmul(registers[STATE] * gain, h, scale)
        return registers[STATE]

    def step_(self, state: torch.Tensor) -> torch.Tensor:
        """One step in place on a batch ``[B, *state_shape]`` (work buffers reused; not differentiable)."""
        buffers = self._workspace(state.shape[0])
        registers = {STATE: state, PREDICTOR: buffers.get(PREDICTOR)}
        f, h = buffers["f"], buffers["h"]
        for stage, (gain, scale) in zip(self.stages, self.updates, strict=True):
            self.equation.explicit_terms(registers[stage.reads], out=f)
            if stage.accumulate != 0.0:
                f.add_(h, alpha=stage.accumulate)
            f, h = h, f
            torch.mul(state, gain, out=registers[stage.writes]).addcmul_(h, scale)
        return state


def as_multiple(value: float, unit: float, name: str, unit_name: str) -> int:
    """``value / unit`` as a positive integer (to a relative 1e-9), or a SolverError naming both."""
    ratio = value / unit
    count = round(ratio) if math.isfinite(ratio) else 0
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise SolverError(f"{name} = {value:g} is not a positive multiple of {unit_name} = {unit:g}")
    return int(count)
