r"""Spectral-Refiner: test-time fine-tuning of a trained spatiotemporal FNO by a negative-Sobolev residual.

Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent
Flows" (ICLR 2025). After the ordinary training of :class:`~sciml.models.st_fno.SpatiotemporalFNO`, every
parameter is frozen and only the **last spectral convolution** (the output-side Fourier layer of the FNO,
the one that maps the latent trajectory to the ``t_out`` output frames) is re-opened *without frequency
truncation*: its weight

.. math::
    (\mathcal{K} v)(t, x) = \mathcal{F}^{-1}\big[R_k\,\hat v_k\big] + b,\qquad
    R_k = \begin{cases} R^{\text{trained}}_k & k \text{ among the trained modes}\\ 0 & \text{otherwise}
    \end{cases}

is extended to (up to) every mode of the grid, with the trained low modes copied and zeros elsewhere, so
the re-opened network reproduces the trained one exactly before any step. The new weight and the bias
:math:`b` of that layer are then optimized for one input window (or one set per window of a batch,
``per_sample=True``) with Adam to minimize an *a posteriori* error estimator that needs no ground
truth, the :math:`H^{-1}` norm of the Navier-Stokes residual of the predicted trajectory,

.. math::
    \|r\|_{H^{-1}} = \Big(\sum_k (\alpha + 4\pi^2|k|^2)^{-1}\,|\hat r_k|^2\Big)^{1/2},
    \qquad \alpha = 10^{-3/2}

(absolute, :math:`\hat r_k` the Fourier coefficients on the unit box; for a box of side :math:`L` the
weight is :math:`(\alpha + |2\pi k/L|^2)^{-1}` times the area, as in :func:`sciml.metrics.sobolev_norm`),
with :math:`r = \partial_t\omega + u\cdot\nabla\omega - \nu\Delta\omega + \alpha_d\omega - f`.

**Which residual.** The paper evaluates :math:`r` pointwise in time, with :math:`\partial_t\omega` of its
finely sampled output trajectories. Our data (``datasets/ns_quick.yaml``) store frames 1 time unit apart,
and a central difference over such frames is a poor :math:`\partial_t\omega`: on exact trajectories of
``ns_quick`` its :math:`H^{-1}` residual is :math:`7.9\cdot 10^{-5}` (1.3e-3 of the vorticity's
:math:`H^{-1}` norm), i.e. the estimator would be dominated by the time-discretization error of the
estimator itself. The default ``method="flow"`` instead measures the defect of the solver's own time
stepping between consecutive frames,

.. math::
    r_j = \frac{\omega_{j+1} - \Phi_{\Delta t}(\omega_j)}{\Delta t},

where :math:`\Phi_{\Delta t}` advances a frame by the frame spacing :math:`\Delta t` with the
pseudo-spectral solver (:class:`~sciml.solvers.navier_stokes.NavierStokes2D`: its stepper, its ``dt``,
2/3-dealiased advection). To first order in the defect, :math:`r_j` is the time average of the pointwise
residual over :math:`[t_j, t_{j+1}]` (propagated by the linearized flow), so the estimator has the units
and the meaning of the paper's, and it vanishes on exact trajectories up to the solver's own error: on
``ns_quick`` test trajectories (64^2 solve stored at 32^2, re-solved at 32^2 with ``heun-cn``,
``dt = 0.05``) it is :math:`3.9\cdot 10^{-7}` (6e-6 relative), two hundred times below the central
difference. With ``anchor=True`` (default) the trajectory starts at the last *input* frame, which is data,
so the first transition ties the prediction to the known state. ``method="central"`` is the paper's
pointwise residual with :func:`~sciml.solvers.navier_stokes.central_time_derivative`, for data whose frames
are close. The per-window estimator is the root mean square over the transitions (or interior frames),
:math:`(\frac1J\sum_j \|r_j\|^2_{H^{-1}})^{1/2}`.

**Optimizer.** The paper uses Adam with weight lr :math:`10^{-4}`, bias lr :math:`0.2` and 50 iterations.
Its re-opened layer (``OutConv``) acts on the output field, so its bias shifts the output directly. In
neuraloperator's FNO the last spectral convolution works on the hidden channels and is followed by the
(nonlinear) channel MLP and projection, and a bias lr of 0.2 is destructive there: on two ``ns_quick``
test windows of a trained ``configs/st_fno_ns.yaml`` model, 30 such iterations raised the estimator from
5.2e-3 to 2.4e-2 and the relative L2 error from 2.3e-2 to 8.2e-2. The defaults here were chosen on
validation windows of that model: weight and bias lr :math:`10^{-3}` decaying to 0 on a cosine over 100
iterations (estimator 6.7e-3 -> 1.8e-4, relative L2 error 1.43e-2 -> 8.3e-3 on four validation windows;
200 iterations: 8.4e-5 and 4.5e-3). The initial estimator is ~99% the mean mode :math:`k = 0` of the defect
(weight :math:`1/\alpha`), i.e. the network's drift of the mean vorticity, which the exact flow conserves;
it is removed first, then the other modes follow. On 8 test windows (``solvers/bench_spectral_refiner.py``)
the defaults lowered the error on all 8 (mean relative L2 1.50e-2 -> 9.4e-3, estimator 4.7e-3 -> 1.9e-4),
the paper's settings on none (1.50e-2 -> 2.58e-2): a lower :math:`H^{-1}` estimator does not by itself
guarantee a lower error, since high frequencies weigh little in it. Each window keeps the iterate with the
lowest estimator (the first included), so refinement never raises the estimator.

The time stepping here is an autograd-friendly restatement of the solver's step (the solver itself works in
place on work buffers, which autograd cannot follow) that uses the solver's own spectral multipliers, so it
agrees with :meth:`NavierStokes2D.step` to rounding.

Precision: the re-opened layer, the residual and the optimizer run in the dtype of the inputs (float32 or
float64) on their device. In float64, neuraloperator's frozen layers still round some intermediate spectra
to single precision (it allocates them as ``cfloat``), which bounds how far the residual can fall below
float32 rounding; the frozen network is otherwise cast to float64.

Example::

    solver = NavierStokes2D(32, 1e-3, forcing="fno", dt=0.05, stepper="heun-cn")
    result = refine(model, x, solver, frame_dt=1.0)          # x: [B, t_in, 32, 32] physical vorticity
    result.residual_before, result.residual_after, result.outputs
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from neuralop.layers.resample import resample
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from sciml.errors import ConfigError
from sciml.metrics import sobolev_norm
from sciml.models.st_fno import SpatiotemporalFNO
from sciml.solvers.navier_stokes import NavierStokes2D, central_time_derivative

logger = logging.getLogger(__name__)

__all__ = [
    "ALPHA",
    "METHODS",
    "RefinedSpectralConv",
    "RefinementResult",
    "h_minus_1_norm",
    "pde_residual",
    "refine",
    "reopen_last_spectral_layer",
    "trajectory_residual",
]

ALPHA = 10.0**-1.5
"""The shift alpha of the H^-1 weight (alpha + 4 pi^2 |k|^2)^-1 (the paper's value)."""

METHODS = ("flow", "central")


# ---------------------------------------------------------------------------------------------- residual
def h_minus_1_norm(r: torch.Tensor, length: float = 1.0, alpha: float = ALPHA) -> torch.Tensor:
    r"""Absolute :math:`\|r\|_{H^{-1}} = (|\Omega|\sum_k (\alpha + |2\pi k/L|^2)^{-1}|\hat r_k|^2)^{1/2}`.

    ``r`` is ``[..., N, N]`` on the periodic box of side ``length``; returns ``[...]`` (differentiable).
    """
    return sobolev_norm(r, -1.0, lengths=length, alpha=alpha)


class _DifferentiableNavierStokes:
    """The explicit terms, the right-hand side and the time step of a solver, without in-place buffers.

    Uses the solver's own multipliers (velocity, dealiased Basdevant advection, forcing, Crank-Nicolson
    gains per stage), so one step equals :meth:`NavierStokes2D.step` up to rounding, but every operation
    creates its result and autograd can follow it.
    """

    def __init__(self, solver: NavierStokes2D, device: torch.device, dtype: torch.dtype) -> None:
        self.solver = solver
        self.ops = solver._ops(device, dtype)

    def explicit(self, w_hat: torch.Tensor) -> torch.Tensor:
        """Spectrum of ``-(u . grad w) + f`` (2/3 dealiased) of spectra ``[..., N, N//2+1]``."""
        ops = self.ops
        uv = torch.fft.irfft2(w_hat.unsqueeze(-3) * ops.velocity, s=ops.shape)
        u, v = uv[..., 0, :, :], uv[..., 1, :, :]
        products_hat = torch.fft.rfft2(torch.stack([u * v, v * v - u * u], dim=-3))
        out = products_hat[..., 0, :, :] * ops.advection[0] + products_hat[..., 1, :, :] * ops.advection[1]
        return out if ops.forcing_hat is None else out + ops.forcing_hat

    def rhs(self, w: torch.Tensor) -> torch.Tensor:
        """``-(u . grad w) + nu Lap w - drag w + f`` on the grid, for fields ``[..., N, N]``."""
        w_hat = torch.fft.rfft2(w)
        return torch.fft.irfft2(self.explicit(w_hat) + w_hat * self.ops.linear, s=self.ops.shape)

    def step(self, w_hat: torch.Tensor) -> torch.Tensor:
        """One time step of the solver's stepper on spectra ``[..., N, N//2+1]`` (a new tensor)."""
        ops = self.ops
        if self.solver.stepper == "heun-cn":
            ((_, gain, scale),) = ops.stages
            f0 = self.explicit(w_hat)
            f1 = self.explicit(w_hat * gain + f0 * scale)
            return w_hat * gain + (f0 + f1) * (0.5 * scale)
        h = None
        for k, (a, gain, scale) in enumerate(ops.stages):  # cn-euler: one stage; rk4-cn: 2N-storage RK
            f = self.explicit(w_hat)
            if k > 0 and a != 0.0:
                f = f + a * h
            h = f
            w_hat = w_hat * gain + h * scale
        return w_hat

    def advance(self, w: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Fields ``[..., N, N]`` advanced by ``n_steps`` solver steps."""
        w_hat = torch.fft.rfft2(w)
        for _ in range(n_steps):
            w_hat = self.step(w_hat)
        return torch.fft.irfft2(w_hat, s=self.ops.shape)


def _check_residual_args(frames: torch.Tensor, solver: NavierStokes2D, frame_dt: float, method: str) -> None:
    if not isinstance(solver, NavierStokes2D):
        raise ConfigError(f"spectral_refiner: solver must be a NavierStokes2D, got {type(solver).__name__}")
    if method not in METHODS:
        raise ConfigError(f"spectral_refiner: unknown residual method {method!r}; expected one of {METHODS}")
    if not isinstance(frame_dt, int | float) or not math.isfinite(frame_dt) or frame_dt <= 0:
        raise ConfigError(f"spectral_refiner: frame_dt must be a finite number > 0, got {frame_dt!r}")
    n = solver.resolution
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or tuple(frames.shape[-2:]) != (n, n):
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ConfigError(f"spectral_refiner: frames must be [B, T, {n}, {n}] (solver grid), got {shape}")
    if frames.dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"spectral_refiner: frames must be float32 or float64, got {frames.dtype}")
    needed = 2 if method == "flow" else 3
    if frames.shape[1] < needed:
        raise ConfigError(
            f"spectral_refiner: the {method!r} residual needs at least {needed} frames, got {frames.shape[1]}"
        )


def _steps_per_frame(solver: NavierStokes2D, frame_dt: float) -> int:
    """``frame_dt / solver.dt`` as an integer, or a ConfigError."""
    ratio = frame_dt / solver.dt
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise ConfigError(
            f"spectral_refiner: frame_dt = {frame_dt:g} must be a positive multiple of the solver's "
            f"dt = {solver.dt:g}"
        )
    return int(count)


def pde_residual(
    frames: torch.Tensor, solver: NavierStokes2D, frame_dt: float, method: str = "flow"
) -> torch.Tensor:
    r"""Navier-Stokes residual fields of a trajectory of vorticity frames ``[B, T, N, N]`` (differentiable).

    ``"flow"``: :math:`r_j = (\omega_{j+1} - \Phi_{\Delta t}(\omega_j))/\Delta t` for ``j = 0..T-2``, with
    :math:`\Phi_{\Delta t}` the solver advancing by ``frame_dt`` (a multiple of ``solver.dt``); returns
    ``[B, T-1, N, N]``. ``"central"``: :math:`r_j = (\omega_{j+1} - \omega_{j-1})/(2\Delta t) - F(\omega_j)`
    at the interior frames, the pointwise residual of :meth:`NavierStokes2D.residual`; ``[B, T-2, N, N]``.
    """
    _check_residual_args(frames, solver, frame_dt, method)
    ns = _DifferentiableNavierStokes(solver, frames.device, frames.dtype)
    if method == "flow":
        n_steps = _steps_per_frame(solver, frame_dt)
        return (frames[:, 1:] - ns.advance(frames[:, :-1], n_steps)) / frame_dt
    w_t = central_time_derivative(frames, frame_dt, time_dim=1)
    return w_t - ns.rhs(frames[:, 1:-1])


def trajectory_residual(
    frames: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    method: str = "flow",
    alpha: float = ALPHA,
) -> torch.Tensor:
    r"""The a posteriori estimator of trajectories, :math:`(\frac1J\sum_j\|r_j\|^2_{H^{-1}})^{1/2}`.

    Args:
        frames: vorticity ``[B, T, N, N]`` on the solver's grid, consecutive frames ``frame_dt`` apart.
        solver: the equation (viscosity, forcing, drag, box) and, for ``"flow"``, the stepper and its dt.
        frame_dt: time between frames.
        method: ``"flow"`` (one-step defect of the solver) or ``"central"`` (pointwise residual with central
            differences); see :func:`pde_residual` and the module docstring.
        alpha: the shift of the :math:`H^{-1}` weight.

    Returns:
        ``[B]``, absolute (not relative), differentiable.
    """
    if not math.isfinite(alpha) or alpha <= 0:
        raise ConfigError(f"spectral_refiner: alpha must be finite and > 0, got {alpha}")
    r = pde_residual(frames, solver, frame_dt, method)
    norms = h_minus_1_norm(r, solver.domain_length, alpha)  # [B, J]
    return norms.square().mean(dim=1).sqrt()


# ------------------------------------------------------------------------------------- re-opened layer
def _weight_slices(weight_shape: Sequence[int], fft_shape: Sequence[int]) -> tuple[list[slice], list[slice]]:
    """Slices of the weight's mode axes and of the (shifted) spectrum's axes that meet, neuralop's rule.

    Non-last axes are centred (after an ``fftshift`` the zero frequency sits at ``size // 2``; weight index
    ``j`` holds frequency ``j - m // 2``); the last (real-FFT) axis starts at frequency 0. A weight larger
    than the grid is cut around its centre.
    """
    w_slices, x_slices = [], []
    last = len(weight_shape) - 1
    for axis, (m, size) in enumerate(zip(weight_shape, fft_shape, strict=True)):
        start = m - min(size, m)
        if axis < last:
            w_slice = slice(start // 2, -start // 2) if start else slice(None)
            kept = m - start
            center = size // 2
            x_slice = slice(center - kept // 2, center + kept // 2 + kept % 2)
        else:
            w_slice = slice(None, -start) if start else slice(None)
            kept = m - start
            x_slice = slice(None, kept) if kept < size else slice(None)
        w_slices.append(w_slice)
        x_slices.append(x_slice)
    return w_slices, x_slices


class RefinedSpectralConv(nn.Module):
    """The re-opened last spectral convolution: more modes, one weight set per refined window (or one).

    Computes exactly what neuraloperator's dense :class:`SpectralConv` over (t, x, y) computes (real FFT with
    ``norm="forward"``, ``fftshift`` of the non-last axes, centred mode block, contraction over input
    channels, the same shift back, inverse real FFT on ``output_shape``, bias), in the dtype of its input.

    Args:
        trained: the trained layer (its weight is copied into the centre of the new one, zeros elsewhere).
        modes: new numbers of modes ``(m_t, m_x, m_y)`` in neuraloperator's convention (the last axis keeps
            ``m_y // 2 + 1`` real-FFT columns); each at least the trained layer's.
        n_sets: independent weight/bias sets; with ``n_sets > 1`` sample ``b`` of a batch of ``n_sets`` uses
            set ``b`` (per-window refinement).
        dtype: real dtype of the new parameters (the weight is the matching complex dtype).
    """

    def __init__(
        self,
        trained: SpectralConv,
        modes: Sequence[int],
        n_sets: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        old = _dense_weight(trained)  # [C_in, C_out, m_t, m_x, m_y']
        c_in, c_out = old.shape[:2]
        new_shape = (int(modes[0]), int(modes[1]), int(modes[2]) // 2 + 1)
        if any(n < o for n, o in zip(new_shape, old.shape[2:], strict=True)):
            raise ConfigError(
                f"spectral_refiner: modes {tuple(modes)} keep fewer modes {new_shape} than the trained layer "
                f"{tuple(old.shape[2:])}"
            )
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        weight = torch.zeros((n_sets, c_in, c_out, *new_shape), dtype=complex_dtype, device=old.device)
        offsets = [n // 2 - o // 2 for n, o in zip(new_shape[:-1], old.shape[2:-1], strict=True)] + [0]
        block = tuple(slice(o, o + s) for o, s in zip(offsets, old.shape[2:], strict=True))
        weight[(slice(None), slice(None), slice(None), *block)] = old.detach().to(complex_dtype)
        self.weight = nn.Parameter(weight)
        if trained.bias is None:
            self.bias = None
        else:
            bias = trained.bias.detach().to(dtype)
            self.bias = nn.Parameter(bias.unsqueeze(0).repeat(n_sets, *([1] * bias.ndim)).contiguous())
        self.modes = tuple(int(m) for m in modes)
        self.trained_modes = tuple(old.shape[2:])
        self.n_sets = int(n_sets)
        self.resolution_scaling_factor = trained.resolution_scaling_factor

    def transform(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Resample a skip connection to the output grid (as the replaced layer's ``transform``)."""
        in_shape = list(x.shape[2:])
        if self.resolution_scaling_factor is not None and output_shape is None:
            out_shape = [round(s * r) for s, r in zip(in_shape, self.resolution_scaling_factor, strict=True)]
        elif output_shape is not None:
            out_shape = list(output_shape)
        else:
            out_shape = in_shape
        if out_shape == in_shape:
            return x
        return resample(x, 1.0, list(range(2, x.ndim)), output_shape=out_shape)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """``[B, C_in, T, X, Y] -> [B, C_out, *output_shape]`` (default: the input grid)."""
        batch, _, *grid = x.shape
        if self.n_sets > 1 and batch != self.n_sets:
            raise ConfigError(
                f"RefinedSpectralConv: refined per window for a batch of {self.n_sets}, got {batch} windows"
            )
        dims = (-3, -2, -1)
        spectrum = torch.fft.rfftn(x, dim=dims, norm="forward")
        spectrum = torch.fft.fftshift(spectrum, dim=(-3, -2))
        fft_shape = [*grid[:-1], grid[-1] // 2 + 1]
        w_slices, x_slices = _weight_slices(self.weight.shape[3:], fft_shape)
        weight = self.weight[(slice(None), slice(None), slice(None), *w_slices)].to(spectrum.dtype)
        block = spectrum[(slice(None), slice(None), *x_slices)]
        if self.n_sets == 1:
            mixed = torch.einsum("bitxy,iotxy->botxy", block, weight[0])
        else:
            mixed = torch.einsum("bitxy,biotxy->botxy", block, weight)
        out = spectrum.new_zeros((batch, weight.shape[2], *fft_shape))
        out[(slice(None), slice(None), *x_slices)] = mixed
        # neuraloperator maps back with fftshift (not ifftshift); the same is done here so that the
        # re-opened layer reproduces the trained one, also on odd-sized axes.
        out = torch.fft.fftshift(out, dim=(-3, -2))
        if self.resolution_scaling_factor is not None and output_shape is None:
            grid = [round(s * r) for s, r in zip(grid, self.resolution_scaling_factor, strict=True)]
        size = list(output_shape) if output_shape is not None else grid
        y = torch.fft.irfftn(out, s=size, dim=dims, norm="forward")
        if self.bias is None:
            return y
        bias = self.bias[0] if self.n_sets == 1 else self.bias
        return y + bias.to(y.dtype)

    def extra_repr(self) -> str:
        return f"trained_modes={self.trained_modes}, modes={self.modes}, n_sets={self.n_sets}"


def _dense_weight(conv: SpectralConv) -> torch.Tensor:
    """The complex weight ``[C_in, C_out, *modes]`` of a dense, non-separable 3D neuraloperator layer."""
    if conv.separable or conv.complex_data or conv.order != 3 or conv.fno_block_precision != "full":
        raise ConfigError(
            "spectral_refiner: the last spectral layer must be a dense, non-separable, real-data, "
            "full-precision 3D SpectralConv"
        )
    weight = conv.weight
    tensor = weight if isinstance(weight, torch.Tensor) else getattr(weight, "tensor", None)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 5:
        raise ConfigError(
            f"spectral_refiner: the last spectral layer has a {type(weight).__name__} weight; only dense "
            "(unfactorized) weights can be re-opened"
        )
    return tensor


def _find_st_fno(model: nn.Module) -> SpatiotemporalFNO:
    """The one :class:`SpatiotemporalFNO` in ``model`` (itself or wrapped), or a ConfigError."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"spectral_refiner: expected an st_fno nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, SpatiotemporalFNO)]
    if len(found) != 1:
        raise ConfigError(
            f"spectral_refiner: the model must be (or wrap exactly one) st_fno SpatiotemporalFNO; "
            f"{type(model).__name__} holds {len(found)}"
        )
    st = found[0]
    if st.fno.domain_padding is not None:
        raise ConfigError("spectral_refiner: st_fno models with domain padding are not supported")
    return st


def _cast_(model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Move every parameter and buffer to ``device``; real ones to ``dtype``, complex ones to its complex."""
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    for tensor in [*model.parameters(), *model.buffers()]:
        target = complex_dtype if tensor.is_complex() else dtype if tensor.is_floating_point() else None
        tensor.data = tensor.data.to(device=device, dtype=target)


def reopen_last_spectral_layer(
    model: nn.Module,
    grid: tuple[int, int],
    modes: Sequence[int] | None = None,
    n_sets: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> nn.Module:
    """A frozen copy of an st_fno model (or of a wrapper of one) with the last spectral layer re-opened.

    Every parameter of the copy is frozen except the new layer's weight and bias
    (:class:`RefinedSpectralConv`, trained modes copied, zeros elsewhere), so the copy computes what
    ``model`` computes until those are changed. ``model`` itself is not modified.

    Args:
        model: a :class:`SpatiotemporalFNO`, or a module wrapping exactly one (e.g. ``Normalized``).
        grid: the spatial grid ``(X, Y)`` of the inputs (bounds the modes).
        modes: ``(m_t, m_x, m_y)``; default every mode of the grid, ``(t_in, X, Y)``. Each must be at
            least the trained layer's number and at most the grid's.
        n_sets: independent weight sets (one per window for per-window refinement).
        dtype: float32 or float64, for the copy and its new layer.
        device: where the copy lives (default: where ``model`` is).
    """
    st = _find_st_fno(model)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"spectral_refiner: dtype must be float32 or float64, got {dtype}")
    if not isinstance(n_sets, int) or n_sets < 1:
        raise ConfigError(f"spectral_refiner: n_sets must be an integer >= 1, got {n_sets!r}")
    last = st.fno.fno_blocks.convs[-1]
    if not isinstance(last, SpectralConv):
        raise ConfigError(
            f"spectral_refiner: the last spectral layer is a {type(last).__name__}, not a SpectralConv "
            "(already re-opened?)"
        )
    trained = tuple(_dense_weight(last).shape[2:])
    limits = (st.t_in, int(grid[0]), int(grid[1]))
    if modes is None:
        modes = limits
    modes = tuple(modes)
    if len(modes) != 3 or not all(isinstance(m, int) and not isinstance(m, bool) for m in modes):
        raise ConfigError(f"spectral_refiner: modes must be three integers (m_t, m_x, m_y), got {modes!r}")
    effective = (modes[0], modes[1], modes[2] // 2 + 1)
    if any(m < t for m, t in zip(effective, trained, strict=True)) or any(
        m > lim for m, lim in zip(modes, limits, strict=True)
    ):
        raise ConfigError(
            f"spectral_refiner: modes {modes} must lie between the trained layer's {trained} (last axis in "
            f"real-FFT columns m_y // 2 + 1) and the grid (t_in, X, Y) = {limits}"
        )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    refined = copy.deepcopy(model)
    for p in refined.parameters():
        p.requires_grad_(False)
    _cast_(refined, device, dtype)
    st_copy = _find_st_fno(refined)
    new_layer = RefinedSpectralConv(st_copy.fno.fno_blocks.convs[-1], modes, n_sets=n_sets, dtype=dtype)
    st_copy.fno.fno_blocks.convs[-1] = new_layer.to(device)
    refined.eval()
    return refined


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


def _vorticity_trajectory(
    inputs: torch.Tensor, outputs: torch.Tensor, fields: int, field: int, anchor: bool
) -> torch.Tensor:
    """``[B, (1 +) t_out, X, Y]``: the field ``field`` of the (last input and) predicted frames."""
    predicted = outputs[:, field::fields]
    if not anchor:
        return predicted
    return torch.cat([inputs[:, -fields + field].unsqueeze(1), predicted], dim=1)


def _check_positive(name: str, value: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"spectral_refiner: {name} must be a finite number > 0, got {value!r}")


def refine(
    model: nn.Module,
    inputs: torch.Tensor,
    solver: NavierStokes2D,
    frame_dt: float,
    iterations: int = 100,
    lr_weight: float = 1e-3,
    lr_bias: float = 1e-3,
    modes: Sequence[int] | None = None,
    *,
    schedule: str = "cosine",
    method: str = "flow",
    anchor: bool = True,
    per_sample: bool = True,
    field: int = 0,
    alpha: float = ALPHA,
) -> RefinementResult:
    """Spectral-Refiner fine-tuning of a trained st_fno on input windows (test time, no ground truth).

    Re-opens the last spectral layer of a frozen copy of ``model`` (:func:`reopen_last_spectral_layer`) and
    runs Adam on its weight (``lr_weight``) and bias (``lr_bias``) to minimize the :math:`H^{-1}`
    Navier-Stokes residual (:func:`trajectory_residual`) of the predicted frames, preceded by the last input
    frame when ``anchor``. Returns, per window, the iterate with the lowest estimator (the first one
    included, so the estimator never increases).

    Args:
        model: a trained :class:`SpatiotemporalFNO` or a wrapper of one mapping physical input windows to
            physical outputs (e.g. the ``Normalized`` model of a training run); left unchanged.
        inputs: ``[B, C * t_in, N, N]`` windows (time-major channels), float32 or float64, on any device;
            the refinement runs in their dtype and on their device.
        solver: the Navier-Stokes problem of the data at the data's grid ``N`` (viscosity, forcing, drag,
            box); for ``method="flow"`` also the stepper and dt used to advance frames.
        frame_dt: time between consecutive frames (the dataset's frame spacing; a multiple of ``solver.dt``
            for ``"flow"``).
        iterations: Adam steps (0 returns the trained model's predictions).
        lr_weight: learning rate of the spectral weight (the paper: 1e-4; see the module docstring).
        lr_bias: learning rate of the bias of the layer (the paper: 0.2, destructive here).
        schedule: ``"cosine"`` (the learning rates decay to 0 over ``iterations``) or ``"constant"``.
        modes: ``(m_t, m_x, m_y)`` of the re-opened layer; default the full grid.
        method: ``"flow"`` or ``"central"`` (see :func:`pde_residual`).
        anchor: start the trajectory at the last input frame.
        per_sample: one re-opened layer per window (the paper's per-sample fine-tuning, done in one batch;
            the windows do not interact); ``False``: one layer shared by all windows (mean estimator).
        field: which of the model's ``fields`` channels is the vorticity.
        alpha: the shift of the :math:`H^{-1}` weight.
    """
    st = _find_st_fno(model)
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
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ConfigError(f"spectral_refiner: iterations must be an integer >= 0, got {iterations!r}")
    _check_positive("lr_weight", lr_weight)
    _check_positive("lr_bias", lr_bias)
    if not isinstance(field, int) or not 0 <= field < st.fields:
        raise ConfigError(f"spectral_refiner: field must be in [0, {st.fields}), got {field!r}")
    n_frames = st.t_out + (1 if anchor else 0)
    probe = inputs.new_zeros((1, n_frames, *inputs.shape[-2:]))
    _check_residual_args(probe, solver, frame_dt, method)
    if method == "flow":
        _steps_per_frame(solver, frame_dt)
    _check_positive("alpha", alpha)
    if schedule not in ("cosine", "constant"):
        raise ConfigError(f"spectral_refiner: schedule must be 'cosine' or 'constant', got {schedule!r}")

    start = time.perf_counter()
    batch = inputs.shape[0]
    n_sets = batch if per_sample else 1
    refined = reopen_last_spectral_layer(
        model, tuple(inputs.shape[-2:]), modes, n_sets=n_sets, dtype=inputs.dtype, device=inputs.device
    )
    layer = _find_st_fno(refined).fno.fno_blocks.convs[-1]
    params = [{"params": [layer.weight], "lr": lr_weight}]
    if layer.bias is not None:
        params.append({"params": [layer.bias], "lr": lr_bias})
    for group in params:
        for p in group["params"]:
            p.requires_grad_(True)
    optimizer = torch.optim.Adam(params)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iterations, 1))
        if schedule == "cosine"
        else None
    )

    def estimate() -> tuple[torch.Tensor, torch.Tensor]:
        out = refined(inputs)
        frames = _vorticity_trajectory(inputs, out, st.fields, field, anchor)
        return out, trajectory_residual(frames, solver, frame_dt, method, alpha)

    history = []
    best = torch.full((batch,), math.inf, dtype=torch.float64, device=inputs.device)
    best_iteration = torch.zeros(batch, dtype=torch.long, device=inputs.device)
    best_weight, best_bias = layer.weight.detach().clone(), None
    best_bias = None if layer.bias is None else layer.bias.detach().clone()
    outputs = outputs_before = None
    for it in range(iterations + 1):
        out, residual = estimate()
        if it == 0:
            outputs_before = out.detach().clone()
            outputs = outputs_before.clone()
        values = residual.detach().to(torch.float64)
        history.append(values)
        if not torch.isfinite(values).all():
            logger.warning("spectral_refiner: non-finite residual at iteration %d; stopping", it)
            break
        improved = values < best if per_sample else (values.mean() < best.mean()).expand(batch)
        if improved.any():
            best = torch.where(improved, values, best)
            best_iteration[improved] = it
            outputs[improved] = out.detach()[improved]
            sets = improved if per_sample else improved[:1]
            best_weight[sets] = layer.weight.detach()[sets]
            if best_bias is not None:
                best_bias[sets] = layer.bias.detach()[sets]
        if it == iterations:
            break
        loss = residual.sum() if per_sample else residual.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    with torch.no_grad():
        layer.weight.copy_(best_weight)
        if best_bias is not None:
            layer.bias.copy_(best_bias)
    for p in refined.parameters():
        p.requires_grad_(False)
    seconds = time.perf_counter() - start
    history_t = torch.stack(history)
    logger.info(
        "spectral_refiner: %d windows, %d iterations, H^-1 residual %.3e -> %.3e (mean) in %.1f s",
        batch,
        iterations,
        history_t[0].mean().item(),
        best.mean().item(),
        seconds,
    )
    return RefinementResult(
        outputs=outputs,
        outputs_before=outputs_before,
        residual_before=history_t[0],
        residual_after=best,
        history=history_t,
        best_iteration=best_iteration,
        model=refined,
        seconds=seconds,
    )
