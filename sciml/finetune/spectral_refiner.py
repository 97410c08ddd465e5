r"""Spectral-Refiner: test-time fine-tuning of a trained spatiotemporal FNO by a negative-Sobolev residual.

Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent
Flows" (ICLR 2025). Every parameter of a trained ``st_fno`` (:mod:`sciml.models.st_fno`, either architecture)
is frozen and its last spectral layer re-opened on the full grid
(:func:`sciml.models.spectral_refiner.reopen_last_spectral_layer`: for the paper's architecture the linear
output convolution, OutConv, as in the paper); the new weight and bias are then fitted with Adam, for one
input window (or one set per window of a batch, ``per_sample=True``), to minimize an *a posteriori* error
estimator that needs no ground truth: the :math:`H^{-1}` norm of the Navier-Stokes residual of the predicted
trajectory,

.. math::
    \|r\|_{H^{-1}} = \Big(|\Omega| \sum_k (\alpha + |2\pi k/L|^2)^{-1}\,|\hat r_k|^2\Big)^{1/2},
    \qquad \alpha = 10^{-3/2}

(absolute, :math:`\hat r_k` the Fourier coefficients on the periodic box of side :math:`L`, as in
:func:`sciml.metrics.sobolev_norm`), with :math:`r = \partial_t\omega + u\cdot\nabla\omega - \nu\Delta\omega +
\alpha_d\omega - f` the residual of the equation of
:class:`~sciml.solvers.navier_stokes.NavierStokes2D`. Three residuals are offered:

* ``method="flow"`` (default): the defect of the solver's own time stepping between consecutive frames,
  :math:`r_j = (\omega_{j+1} - \Phi_{\Delta t}(\omega_j))/\Delta t`, where :math:`\Phi_{\Delta t}` advances a
  frame by the frame spacing with the solver (its stepper and ``dt``, run differentiably). To first order
  in the defect, :math:`r_j` is the time average of the pointwise residual over :math:`[t_j, t_{j+1}]`, so
  it has the units and meaning of the paper's, and it vanishes on exact trajectories up to the solver's own
  error; it suits frames stored far apart, where a finite difference is a poor :math:`\partial_t\omega`.
* ``method="central"``: the pointwise residual with central differences
  (:func:`~sciml.solvers.navier_stokes.central_time_derivative`), for data whose frames are close.
* ``method="imex"``: the paper's pointwise residual, as its code computes it (torch-cfd ``fno/finetune.py``):
  at every predicted frame, :math:`\partial_t\omega` is the difference quotient of one implicit-explicit
  Crank-Nicolson step of :math:`\pm\delta` (``dt_probe``, the paper's :math:`10^{-6}`) from that frame, the
  two averaged, and the residual is evaluated at the averaged stepped state
  (:func:`imex_time_derivative`). Note what this measures: the time derivative comes from the equation at
  the frame itself, not from the frames' evolution, so :math:`r = O(\delta^2)` for *any* field (exactly
  :math:`r = \hat F/(1 - a^2) - F(\bar\omega)` with :math:`a = \delta L / 2`, :math:`F` the right-hand
  side, :math:`L` its linear part): it does not see whether the predicted frames follow each other as the
  equation says. Minimizing it favours fields whose :math:`F` has little high-frequency content. It is
  offered to reproduce the paper; only float64 resolves it (in float32 it is rounding noise).

The paper's text uses :math:`H^{-1}`; its code's ``SobolevLoss(norm_order=-1)`` evaluates
:math:`n^2\|r\|_{H^{-1/2}}` (it halves the index, measured against it), which ``sobolev_index=-0.5``
reproduces up to the constant factor.

With ``anchor=True`` (default) the trajectory starts at the last *input* frame, which is data, so the first
transition ties the prediction to the known state (``"imex"`` has no transitions: it uses the predicted
frames only). The per-window estimator is the root mean square over the transitions (or frames),
:math:`(\frac1J\sum_j \|r_j\|^2_{H^{-1}})^{1/2}`.

Contract of :func:`refine`: ``model`` is not modified; in the returned copy only the re-opened layer differs;
each window gets the iterate with the lowest estimator (the first one included), so refinement never raises
the estimator, although a lower :math:`H^{-1}` estimator does not by itself guarantee a lower error (high
frequencies weigh little in it). Default optimization settings, by architecture (:data:`REFINE_DEFAULTS`):

* ``paper``: the paper's (Adam, weight lr :math:`10^{-4}`, bias lr 0.2, 50 iterations, constant learning
  rates); the re-opened OutConv acts linearly on the output field, and its spectral bias is an additive
  source in Fourier space (with the unnormalized FFT, a bias step of 0.2 moves the field by
  :math:`0.4/(XYS)` per mode), which is why a large bias rate is safe there. The residual stays
  ``"flow"`` by default, because ``"imex"`` (the paper's) does not measure temporal consistency (above).
* ``fno3d``: weight and bias lr :math:`10^{-3}` on a cosine decay, 100 iterations: its re-opened layer
  works on hidden channels followed by the nonlinear channel MLP and projection, where the paper's bias
  step is destructive (BENCHMARKS.md, Spectral-Refiner).

Precision: the re-opened layer, the residual and the optimizer run in the dtype of the inputs (float32 or
float64) on their device; the frozen network is cast to it. In float64, neuraloperator's frozen layers
(``fno3d``) still round some intermediate spectra to single precision (it allocates them as ``cfloat``),
which bounds how far the residual can fall below float32 rounding.

Example::

    solver = NavierStokes2D(32, 1e-3, forcing="fno", dt=0.05, stepper="heun-cn")
    result = refine(model, x, solver, frame_dt=1.0)          # x: [B, t_in, 32, 32] physical vorticity
    result.residual_before, result.residual_after, result.outputs
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.metrics import sobolev_norm
from sciml.models.spectral_refiner import StFno, find_st_fno, reopen_last_spectral_layer
from sciml.solvers.navier_stokes import NavierStokes2D, central_time_derivative
from sciml.solvers.time_stepping import as_multiple

logger = logging.getLogger(__name__)

__all__ = [
    "ALPHA",
    "DT_PROBE",
    "METHODS",
    "REFINE_DEFAULTS",
    "RefinementResult",
    "h_minus_1_norm",
    "imex_time_derivative",
    "pde_residual",
    "refine",
    "trajectory_residual",
]

ALPHA = 10.0**-1.5
"""The shift alpha of the H^-1 weight (alpha + 4 pi^2 |k|^2)^-1 (the paper's value)."""

DT_PROBE = 1e-6
"""The IMEX probe step of ``method="imex"`` (the paper's)."""

METHODS = ("flow", "central", "imex")
SCHEDULES = ("cosine", "constant")

REFINE_DEFAULTS: dict[str, dict[str, float | int | str]] = {
    "paper": {"iterations": 50, "lr_weight": 1e-4, "lr_bias": 0.2, "schedule": "constant"},
    "fno3d": {"iterations": 100, "lr_weight": 1e-3, "lr_bias": 1e-3, "schedule": "cosine"},
}
"""The optimization settings :func:`refine` uses by default, per ``st_fno`` architecture (see the module)."""


# ---------------------------------------------------------------------------------------------- residual
def h_minus_1_norm(r: torch.Tensor, length: float = 1.0, alpha: float = ALPHA) -> torch.Tensor:
    r"""Absolute :math:`\|r\|_{H^{-1}} = (|\Omega|\sum_k (\alpha + |2\pi k/L|^2)^{-1}|\hat r_k|^2)^{1/2}`.

    ``r`` is ``[..., N, N]`` on the periodic box of side ``length``; returns ``[...]`` (differentiable).
    """
    return sobolev_norm(r, -1.0, lengths=length, alpha=alpha)


def _check_residual_args(
    frames: torch.Tensor, solver: NavierStokes2D, frame_dt: float, method: str, dt_probe: float = DT_PROBE
) -> int:
    """Validate a residual's arguments; returns the solver steps per frame (0 unless ``"flow"``).

    Raises ConfigError, or SolverError when ``frame_dt`` is not a multiple of the solver's ``dt``.
    """
    if not isinstance(solver, NavierStokes2D):
        raise ConfigError(f"spectral_refiner: solver must be a NavierStokes2D, got {type(solver).__name__}")
    if method not in METHODS:
        raise ConfigError(f"spectral_refiner: unknown residual method {method!r}; expected one of {METHODS}")
    _check_positive("frame_dt", frame_dt)
    _check_positive("dt_probe", dt_probe)
    n = solver.resolution
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or tuple(frames.shape[-2:]) != (n, n):
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ConfigError(f"spectral_refiner: frames must be [B, T, {n}, {n}] (solver grid), got {shape}")
    if frames.dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"spectral_refiner: frames must be float32 or float64, got {frames.dtype}")
    needed = {"flow": 2, "central": 3, "imex": 1}[method]
    if frames.shape[1] < needed:
        raise ConfigError(
            f"spectral_refiner: the {method!r} residual needs at least {needed} frames, got {frames.shape[1]}"
        )
    if method != "flow":
        return 0
    return as_multiple(frame_dt, solver.dt, "spectral_refiner: frame_dt", "the solver's dt")


def imex_time_derivative(
    frames: torch.Tensor, solver: NavierStokes2D, dt_probe: float = DT_PROBE
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The paper's pointwise :math:`\partial_t\omega` of fields ``[..., N, N]`` by IMEX steps of +-dt_probe.

    From each field :math:`\hat\omega` (spectrum), one Crank-Nicolson/explicit-Euler step of size :math:`s`,
    :math:`\hat\omega_s = (\hat\omega + s N(\hat\omega) + \tfrac{s}{2} L\hat\omega)/(1 - \tfrac{s}{2} L)`
    (:math:`N`: advection and forcing, :math:`L`: the diagonal linear part, as the solver splits them), has
    the difference quotient :math:`(\hat\omega_s - \hat\omega)/s = F/(1 - sL/2)` with
    :math:`F = N(\hat\omega) + L\hat\omega`. Averaging :math:`s = \pm\delta` (weights 1/2, the paper's):

    .. math::
        \partial_t\hat\omega = \frac{F}{1 - a^2},\qquad
        \bar\omega = \tfrac12(\hat\omega_\delta + \hat\omega_{-\delta})
        = \hat\omega + \frac{\delta a F}{1 - a^2},
        \qquad a = \frac{\delta L}{2},

    evaluated in these closed forms (the same numbers as the steps in exact arithmetic, without the
    cancellation of a difference quotient of step :math:`10^{-6}`), in the dtype of ``frames``;
    differentiable.

    Returns:
        ``(w_bar, w_t)``, both ``[..., N, N]`` on the grid: the averaged stepped state (where the paper
        evaluates the residual) and the time derivative.
    """
    _check_positive("dt_probe", dt_probe)
    n = solver.resolution
    if not isinstance(frames, torch.Tensor) or frames.ndim < 2 or tuple(frames.shape[-2:]) != (n, n):
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ConfigError(f"spectral_refiner: fields must be [..., {n}, {n}] (solver grid), got {shape}")
    equation = solver.equation(frames.device, frames.dtype)
    w_hat = torch.fft.rfft2(frames)
    rhs = equation.explicit_terms(w_hat) + equation.implicit_terms(w_hat)
    a = 0.5 * dt_probe * equation.linear  # float64 multipliers, cast below
    derivative_gain = (1.0 / (1.0 - a.square())).to(frames.dtype)
    state_gain = (dt_probe * a / (1.0 - a.square())).to(frames.dtype)
    w_t = torch.fft.irfft2(rhs * derivative_gain, s=(n, n))
    w_bar = torch.fft.irfft2(w_hat + rhs * state_gain, s=(n, n))
    return w_bar, w_t


def pde_residual(
    frames: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    method: str = "flow",
    dt_probe: float = DT_PROBE,
) -> torch.Tensor:
    r"""Navier-Stokes residual fields of a trajectory of vorticity frames ``[B, T, N, N]`` (differentiable).

    ``"flow"``: :math:`r_j = (\omega_{j+1} - \Phi_{\Delta t}(\omega_j))/\Delta t` for ``j = 0..T-2``, with
    :math:`\Phi_{\Delta t}` the solver advancing by ``frame_dt`` (a multiple of ``solver.dt``); returns
    ``[B, T-1, N, N]``. ``"central"``: :math:`r_j = (\omega_{j+1} - \omega_{j-1})/(2\Delta t) - F(\omega_j)`
    at the interior frames, the pointwise residual of :meth:`NavierStokes2D.residual`; ``[B, T-2, N, N]``.
    ``"imex"``: the paper's :math:`r_j = \partial_t\omega_j - F(\bar\omega_j)` at every frame with
    :math:`(\bar\omega_j, \partial_t\omega_j)` from :func:`imex_time_derivative` (``dt_probe``; ``frame_dt``
    is not used); ``[B, T, N, N]``.
    """
    n_steps = _check_residual_args(frames, solver, frame_dt, method, dt_probe)
    if method == "flow":
        advanced = solver.step(frames[:, :-1], n_steps, differentiable=True)
        return (frames[:, 1:] - advanced) / frame_dt
    if method == "imex":
        return solver.residual(*imex_time_derivative(frames, solver, dt_probe))
    return solver.residual(frames[:, 1:-1], central_time_derivative(frames, frame_dt, time_dim=1))


def trajectory_residual(
    frames: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    method: str = "flow",
    alpha: float = ALPHA,
    dt_probe: float = DT_PROBE,
    sobolev_index: float = -1.0,
) -> torch.Tensor:
    r"""The a posteriori estimator of trajectories, :math:`(\frac1J\sum_j\|r_j\|^2_{H^{-1}})^{1/2}`.

    Args:
        frames: vorticity ``[B, T, N, N]`` on the solver's grid, consecutive frames ``frame_dt`` apart.
        solver: the equation (viscosity, forcing, drag, box) and, for ``"flow"``, the stepper and its dt.
        frame_dt: time between frames.
        method: ``"flow"`` (one-step defect of the solver), ``"central"`` (pointwise residual with central
            differences) or ``"imex"`` (the paper's pointwise residual); see :func:`pde_residual` and the
            module docstring.
        alpha: the shift of the :math:`H^{-1}` weight.
        dt_probe: the IMEX probe step of ``"imex"``.
        sobolev_index: the index of the norm, -1 (the paper's text); the paper's code evaluates -1/2 (its
            ``SobolevLoss(norm_order=-1)`` halves the index).

    Returns:
        ``[B]``, absolute (not relative), differentiable.
    """
    _check_positive("alpha", alpha)
    _check_sobolev_index(sobolev_index)
    r = pde_residual(frames, solver, frame_dt, method, dt_probe)
    norms = sobolev_norm(r, float(sobolev_index), lengths=solver.domain_length, alpha=alpha)  # [B, J]
    return norms.square().mean(dim=1).sqrt()


# ------------------------------------------------------------------------------------------- refinement
@dataclass
class RefinementResult:
    """What :func:`refine` returns.

    Attributes:
        outputs: refined predictions ``[B, C * t_out, X, Y]`` (detached), at each window's best iterate.
        outputs_before: the trained model's predictions of the same windows.
        residual_before: the estimator of each window before refinement ``[B]``.
        residual_after: the estimator of each window's returned prediction ``[B]``.
        history: the estimator of every iterate ``[iterations + 1, B]`` (row 0: before any step).
        best_iteration: the iterate returned for each window ``[B]`` (the lowest estimator seen).
        model: the refined copy of the model (only its last spectral layer differs). With ``per_sample``
            it holds one layer per window and only accepts a batch of these ``B`` windows.
        seconds: wall time of the refinement.
    """

    outputs: torch.Tensor
    outputs_before: torch.Tensor
    residual_before: torch.Tensor
    residual_after: torch.Tensor
    history: torch.Tensor
    best_iteration: torch.Tensor
    model: nn.Module
    seconds: float


@dataclass(frozen=True)
class _Estimator:
    """The estimator of a model's predictions: the residual of the (last input and) predicted frames."""

    solver: NavierStokes2D
    frame_dt: float
    method: str
    alpha: float
    fields: int
    field: int
    anchor: bool
    dt_probe: float = DT_PROBE
    sobolev_index: float = -1.0

    def frames(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """``[B, (1 +) t_out, X, Y]``: the field ``field`` of the (last input and) predicted frames.

        The last input frame is prepended with ``anchor``, except for ``"imex"``, which is pointwise in time.
        """
        predicted = outputs[:, self.field :: self.fields]
        if not self.anchor or self.method == "imex":
            return predicted
        return torch.cat([inputs[:, -self.fields + self.field].unsqueeze(1), predicted], dim=1)

    def __call__(self, model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's outputs ``[B, C * t_out, X, Y]`` and the estimator of each window ``[B]``."""
        outputs = model(inputs)
        frames = self.frames(inputs, outputs)
        residual = trajectory_residual(
            frames, self.solver, self.frame_dt, self.method, self.alpha, self.dt_probe, self.sobolev_index
        )
        return outputs, residual


class _BestIterate:
    """Per window, the iterate with the lowest estimator so far: its value, index, outputs and layer weights.

    With ``per_sample=False`` the layer is shared, so the iterate is judged by the mean over the windows.
    """

    def __init__(self, layer: nn.Module, outputs: torch.Tensor, per_sample: bool) -> None:
        batch = outputs.shape[0]
        self.layer, self.per_sample = layer, per_sample
        self.value = torch.full((batch,), math.inf, dtype=torch.float64, device=outputs.device)
        self.iteration = torch.zeros(batch, dtype=torch.long, device=outputs.device)
        self.outputs_before = outputs.detach().clone()
        self.outputs = self.outputs_before.clone()
        self.weight = layer.weight.detach().clone()
        self.bias = None if layer.bias is None else layer.bias.detach().clone()

    def offer(self, iteration: int, values: torch.Tensor, outputs: torch.Tensor) -> None:
        """Keep the current iterate for every window whose estimator ``values`` ``[B]`` improved."""
        if self.per_sample:
            improved = values < self.value
        else:
            improved = (values.mean() < self.value.mean()).expand(values.shape[0])
        if not improved.any():
            return
        self.value = torch.where(improved, values, self.value)
        self.iteration[improved] = iteration
        self.outputs[improved] = outputs.detach()[improved]
        sets = improved if self.per_sample else improved[:1]
        self.weight[sets] = self.layer.weight.detach()[sets]
        if self.bias is not None:
            self.bias[sets] = self.layer.bias.detach()[sets]

    def restore(self) -> None:
        """Load every window's best weights into the layer."""
        with torch.no_grad():
            self.layer.weight.copy_(self.weight)
            if self.bias is not None:
                self.layer.bias.copy_(self.bias)


def _check_positive(name: str, value: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"spectral_refiner: {name} must be a finite number > 0, got {value!r}")


def _check_inputs(st: StFno, inputs: torch.Tensor, field: int) -> None:
    """Windows ``[B, C * t_in, X, Y]`` in float32 or float64 that the model takes, and a field it predicts."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ConfigError(f"spectral_refiner: inputs must be [B, C * t_in, X, Y], got {shape}")
    if inputs.dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"spectral_refiner: inputs must be float32 or float64, got {inputs.dtype}")
    if inputs.shape[1] != st.fields * st.t_in:
        raise ConfigError(
            f"spectral_refiner: inputs have {inputs.shape[1]} channels, the model takes "
            f"{st.fields} fields x t_in {st.t_in} = {st.fields * st.t_in}"
        )
    if not isinstance(field, int) or not 0 <= field < st.fields:
        raise ConfigError(f"spectral_refiner: field must be in [0, {st.fields}), got {field!r}")


def _check_sobolev_index(value: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value):
        raise ConfigError(f"spectral_refiner: sobolev_index must be a finite number, got {value!r}")


def _check_optimization(iterations: int, lr_weight: float, lr_bias: float, schedule: str) -> None:
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ConfigError(f"spectral_refiner: iterations must be an integer >= 0, got {iterations!r}")
    _check_positive("lr_weight", lr_weight)
    _check_positive("lr_bias", lr_bias)
    if schedule not in SCHEDULES:
        raise ConfigError(f"spectral_refiner: schedule must be one of {SCHEDULES}, got {schedule!r}")


class _Adam:
    """Adam on a re-opened layer's weight and bias (each its learning rate), with a cosine decay or none."""

    def __init__(
        self, layer: nn.Module, lr_weight: float, lr_bias: float, schedule: str, iterations: int
    ) -> None:
        groups = [{"params": [layer.weight], "lr": lr_weight}]
        if layer.bias is not None:
            groups.append({"params": [layer.bias], "lr": lr_bias})
        for group in groups:
            for p in group["params"]:
                p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(groups)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(iterations, 1))
            if schedule == "cosine"
            else None
        )

    def step(self, loss: torch.Tensor) -> None:
        """One descent step on ``loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()


def _descend(
    refined: nn.Module,
    inputs: torch.Tensor,
    estimate: _Estimator,
    optimizer: _Adam,
    iterations: int,
    per_sample: bool,
) -> tuple[list[torch.Tensor], _BestIterate]:
    """Estimate, keep the best iterate, step; ``iterations`` times. Returns the estimator of every iterate
    (``[B]`` each; the run stops at the first non-finite one) and the best iterates."""
    layer = find_st_fno(refined).last_spectral_layer
    history: list[torch.Tensor] = []
    best: _BestIterate | None = None
    for iteration in range(iterations + 1):
        outputs, residual = estimate(refined, inputs)
        values = residual.detach().to(torch.float64)
        history.append(values)
        if best is None:
            best = _BestIterate(layer, outputs, per_sample)
        if not torch.isfinite(values).all():
            logger.warning("spectral_refiner: non-finite residual at iteration %d; stopping", iteration)
            break
        best.offer(iteration, values, outputs)
        if iteration < iterations:
            optimizer.step(residual.sum() if per_sample else residual.mean())
    return history, best


def refine(
    model: nn.Module,
    inputs: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    iterations: int | None = None,
    lr_weight: float | None = None,
    lr_bias: float | None = None,
    modes: Sequence[int] | None = None,
    *,
    schedule: str | None = None,
    method: str = "flow",
    dt_probe: float = DT_PROBE,
    anchor: bool = True,
    per_sample: bool = True,
    field: int = 0,
    alpha: float = ALPHA,
    sobolev_index: float = -1.0,
) -> RefinementResult:
    """Spectral-Refiner fine-tuning of a trained st_fno on input windows (test time, no ground truth).

    Re-opens the last spectral layer of a frozen copy of ``model`` (the OutConv for the paper architecture)
    and runs Adam on its weight (``lr_weight``) and bias (``lr_bias``) to minimize the :math:`H^{-1}`
    Navier-Stokes residual (:func:`trajectory_residual`) of the predicted frames, preceded by the last input
    frame when ``anchor``. Returns, per window, the iterate with the lowest estimator (the first one included,
    so the estimator never increases).

    Args:
        model: a trained st_fno (:class:`~sciml.models.st_fno.SpaceTimeFNO` or
            :class:`~sciml.models.st_fno.SpatiotemporalFNO`) or a wrapper of one mapping physical input
            windows to physical outputs (e.g. the ``Normalized`` model of a training run); left unchanged.
        inputs: ``[B, C * t_in, N, N]`` windows (time-major channels), float32 or float64, on any device;
            the refinement runs in their dtype and on their device.
        solver: the Navier-Stokes problem of the data at the data's grid ``N`` (viscosity, forcing, drag,
            box); for ``method="flow"`` also the stepper and dt used to advance frames.
        frame_dt: time between consecutive frames (the dataset's frame spacing; a multiple of ``solver.dt``
            for ``"flow"``, else a SolverError).
        iterations: Adam steps (0 returns the trained model's predictions). Default: by architecture,
            :data:`REFINE_DEFAULTS` (paper: 50; fno3d: 100).
        lr_weight: learning rate of the spectral weight (paper: 1e-4, the paper's; fno3d: 1e-3).
        lr_bias: learning rate of the bias of the layer (paper: 0.2, the paper's; fno3d: 1e-3).
        modes: ``(m_t, m_x, m_y)`` of the re-opened layer; default the full grid (see
            :func:`~sciml.models.spectral_refiner.reopen_last_spectral_layer` for each architecture's
            convention).
        schedule: ``"cosine"`` (the learning rates decay to 0 over ``iterations``) or ``"constant"``
            (paper: constant, the paper's; fno3d: cosine).
        method: ``"flow"``, ``"central"`` or ``"imex"`` (the paper's; see the module docstring).
        dt_probe: the IMEX probe step of ``"imex"`` (the paper's 1e-6).
        anchor: start the trajectory at the last input frame (not used by ``"imex"``).
        per_sample: one re-opened layer per window (the paper's per-sample fine-tuning, done in one batch;
            the windows do not interact); ``False``: one layer shared by all windows (mean estimator).
        field: which of the model's ``fields`` channels is the vorticity.
        alpha: the shift of the :math:`H^{-1}` weight.
        sobolev_index: the index of the negative Sobolev norm, -1 (the paper's text; its code evaluates -1/2,
            see :func:`trajectory_residual`).
    """
    st = find_st_fno(model)
    _check_inputs(st, inputs, field)
    defaults = REFINE_DEFAULTS[st.architecture]
    iterations = int(defaults["iterations"]) if iterations is None else iterations
    lr_weight = float(defaults["lr_weight"]) if lr_weight is None else lr_weight
    lr_bias = float(defaults["lr_bias"]) if lr_bias is None else lr_bias
    schedule = str(defaults["schedule"]) if schedule is None else schedule
    _check_optimization(iterations, lr_weight, lr_bias, schedule)
    _check_positive("alpha", alpha)
    _check_sobolev_index(sobolev_index)
    probe = inputs.new_zeros((1, st.t_out + (1 if anchor else 0), *inputs.shape[-2:]))
    _check_residual_args(probe, solver, frame_dt, method, dt_probe)
    if method == "imex" and inputs.dtype != torch.float64:
        logger.warning(
            "spectral_refiner: the 'imex' residual is O(dt_probe^2), below float32 rounding: use float64"
        )

    start = time.perf_counter()
    n_sets = inputs.shape[0] if per_sample else 1
    refined = reopen_last_spectral_layer(
        model, tuple(inputs.shape[-2:]), modes, n_sets, inputs.dtype, inputs.device
    )
    layer = find_st_fno(refined).last_spectral_layer
    estimate = _Estimator(solver, frame_dt, method, alpha, st.fields, field, anchor, dt_probe, sobolev_index)
    optimizer = _Adam(layer, lr_weight, lr_bias, schedule, iterations)
    history, best = _descend(refined, inputs, estimate, optimizer, iterations, per_sample)
    best.restore()
    refined.requires_grad_(False)
    seconds = time.perf_counter() - start
    history_t = torch.stack(history)
    logger.info(
        "spectral_refiner: %d windows, %d iterations, H^-1 residual %.3e -> %.3e (mean) in %.1f s",
        inputs.shape[0],
        iterations,
        history_t[0].mean().item(),
        best.value.mean().item(),
        seconds,
    )
    return RefinementResult(
        outputs=best.outputs,
        outputs_before=best.outputs_before,
        residual_before=history_t[0],
        residual_after=best.value,
        history=history_t,
        best_iteration=best.iteration,
        model=refined,
        seconds=seconds,
    )
