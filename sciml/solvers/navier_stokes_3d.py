r"""Pseudo-spectral solver of the 3D incompressible Navier-Stokes equations in velocity form.

On the periodic box :math:`[0, L)^3` the velocity :math:`\mathbf{u}` obeys

.. math::
    \partial_t\mathbf{u} = \mathbb{P}\big[\mathbf{u}\times\boldsymbol{\omega}
    + \nabla\cdot(2\nu_t \mathsf{S}) + \mathbf{f}\big] + \nu\Delta\mathbf{u},
    \qquad \boldsymbol{\omega} = \nabla\times\mathbf{u},\quad \nabla\cdot\mathbf{u} = 0,

where :math:`\mathbb{P} = I - \mathbf{k}\mathbf{k}^T/|\mathbf{k}|^2` is the Leray projection (it removes the
gradient :math:`\nabla(p + |\mathbf{u}|^2/2)`), :math:`\nu_t` an optional eddy viscosity
(:mod:`sciml.solvers.les`) and :math:`\mathbf{f}` an optional forcing. Arrays are ``[batch, 3, x, y, z]``
with grid points :math:`x_i = i L / N`.

:class:`VelocityEquation3D` splits the equation on the spectrum ``u_hat = rfftn(u)`` for the IMEX steppers of
:mod:`sciml.solvers.time_stepping` (the same steppers, and the same code, as the 2D solver): the viscous term
:math:`L = -\nu|k|^2` implicitly (Crank-Nicolson sub-steps), the rest explicitly.

Nonlinear term: the rotational form :math:`\mathbf{u}\times\boldsymbol{\omega}`. Per explicit evaluation it
costs 6 inverse real FFTs (three velocity and three vorticity components) and 3 forward ones (the three
components of the cross product), 9 in all, against 3 + 6 for the divergence form
:math:`\nabla\cdot(\mathbf{u}\mathbf{u})` (same count, twice the product storage) and 3 + 9 + 3 for the
convective or skew-symmetric forms. The rotational form's known weakness, larger aliasing errors, does not
apply here: the products are dealiased by the 2/3 rule (modes with :math:`|k_x|, |k_y|, |k_z| < N/3` kept),
so for a field within that band the kept modes of :math:`\mathbf{u}\times\boldsymbol{\omega}` are exact, the
rotational and divergence forms agree after the projection, and the discrete nonlinear term conserves
energy exactly (:math:`\mathbf{u}\cdot(\mathbf{u}\times\boldsymbol{\omega}) = 0` pointwise).

Forcing (:data:`FORCINGS`) holds the energy by injecting a prescribed power :math:`P`:
:math:`\hat{\mathbf{f}} = \frac{P}{2E_f}\hat{\mathbf{u}}` on the forced modes, :math:`E_f` their kinetic
energy, so that :math:`\langle\mathbf{u}\cdot\mathbf{f}\rangle = P` exactly. ``"linear"`` forces every mode
(Lundgren's linear forcing, Lundgren 2003, with the coefficient set for a constant power as in Carroll &
Blanquart, Phys. Fluids 25, 2013); ``"band"`` forces only :math:`|k| \le k_f` in units of
:math:`2\pi/L` (large-scale, band-limited forcing, as in Alvelius, Phys. Fluids 11, 1999, but deterministic).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from sciml.errors import SolverError
from sciml.solvers.time_stepping import STEPPERS, ImexStepper, Workspace, as_multiple

logger = logging.getLogger(__name__)

__all__ = [
    "FORCINGS",
    "EddyViscosity",
    "NavierStokes3D",
    "SpectralBox3D",
    "Trajectory3D",
    "VelocityEquation3D",
    "abc_flow",
    "random_solenoidal_field",
    "spectral_filter",
    "taylor_green_vortex",
]

FORCINGS = ("linear", "band")
"""The forcings: constant-power linear forcing of every mode, or of the modes ``|k| <= k_f`` only."""

_AXES = (-3, -2, -1)


class SpectralBox3D:
    """Wavenumbers, dealiasing mask and spectral operators of a periodic cube ``[0, L)^3``, ``N^3`` points.

    Spectra are ``rfftn`` over the last three axes: ``[..., N, N, N//2+1]``. Multipliers are built in
    float64 and cast once to ``dtype``'s precision.

    Attributes:
        kx, ky, kz: angular wavenumbers ``2 pi k / L`` broadcastable to a spectrum (Nyquist set to zero:
            it has no sign, so first derivatives drop it).
        k2: ``|k|^2`` of the full wavenumbers (Nyquist included), ``[N, N, N//2+1]``, float64.
        mask: the 2/3-rule mask (``|k_i| < N/3`` in integer units), ``[N, N, N//2+1]``, real dtype.
        multiplicity: how often each ``rfftn`` column stands in the full spectrum (1 or 2).
    """

    def __init__(
        self, resolution: int, domain_length: float, device: torch.device, dtype: torch.dtype
    ) -> None:
        n, m = resolution, resolution // 2 + 1
        self.resolution = n
        self.domain_length = float(domain_length)
        self.device = device
        self.dtype = dtype
        self.complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.shape = (n, n, n)
        self.spectrum_shape = (n, n, m)
        self.spacing = self.domain_length / n
        integer = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64)
        integer_z = integer[:m].abs()
        scale = 2.0 * math.pi / self.domain_length
        full = (integer.view(n, 1, 1), integer.view(1, n, 1), integer_z.view(1, 1, m))
        self.k2 = ((full[0] ** 2 + full[1] ** 2 + full[2] ** 2) * scale**2).expand(n, n, m).contiguous()
        derivative = []
        for axis_values in full:
            k = axis_values * scale
            if n % 2 == 0:
                k = torch.where(axis_values.abs() == n // 2, 0.0, k)
            derivative.append(k.to(dtype))
        self.kx, self.ky, self.kz = derivative
        keep = [(3 * axis_values.abs() < n) for axis_values in full]
        self.mask_axes = [k.to(dtype) for k in keep]
        self.mask = (keep[0] & keep[1] & keep[2]).to(dtype)
        inv_k2 = torch.where(self.k2 > 0, 1.0 / torch.where(self.k2 > 0, self.k2, 1.0), 0.0)
        self.inv_k2 = inv_k2.to(dtype)
        self.masked_inv_k2 = (inv_k2 * self.mask.double()).to(dtype)
        multiplicity = torch.full((m,), 2.0, dtype=torch.float64, device=device)
        multiplicity[0] = 1.0
        if n % 2 == 0:
            multiplicity[-1] = 1.0
        self.multiplicity = multiplicity.to(dtype)
        self.integer_magnitude = (full[0] ** 2 + full[1] ** 2 + full[2] ** 2).sqrt().expand(n, n, m)

    @property
    def k(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(kx, ky, kz)`` (first-derivative wavenumbers)."""
        return self.kx, self.ky, self.kz

    def to_spectral(self, field: torch.Tensor) -> torch.Tensor:
        """``rfftn`` over the last three axes."""
        return torch.fft.rfftn(field, dim=_AXES)

    def to_physical(self, spectrum: torch.Tensor) -> torch.Tensor:
        """``irfftn`` over the last three axes, onto the ``N^3`` grid."""
        return torch.fft.irfftn(spectrum, s=self.shape, dim=_AXES)

    def curl(self, velocity_hat: torch.Tensor) -> torch.Tensor:
        """Spectrum of the vorticity ``i k x u_hat`` of velocity spectra ``[..., 3, N, N, N//2+1]``."""
        u, v, w = velocity_hat.unbind(-4)
        kx, ky, kz = self.k
        return 1j * torch.stack([ky * w - kz * v, kz * u - kx * w, kx * v - ky * u], dim=-4)

    def gradient(self, velocity_hat: torch.Tensor) -> torch.Tensor:
        """Velocity gradient on the grid ``[..., 3, 3, N, N, N]``: entry ``[i, j]`` is ``d u_i / d x_j``."""
        k = torch.stack(torch.broadcast_tensors(*self.k), dim=0).to(self.complex_dtype)
        return self.to_physical(1j * velocity_hat.unsqueeze(-4) * k)

    def divergence(self, velocity_hat: torch.Tensor) -> torch.Tensor:
        """Spectrum of ``div u`` of velocity spectra ``[..., 3, N, N, N//2+1]``."""
        u, v, w = velocity_hat.unbind(-4)
        return 1j * (self.kx * u + self.ky * v + self.kz * w)

    def project(self, vector_hat: torch.Tensor) -> torch.Tensor:
        """The Leray projection ``(I - k k^T / |k|^2) f_hat`` (the mean mode is kept)."""
        u, v, w = vector_hat.unbind(-4)
        kx, ky, kz = self.k
        along = (kx * u + ky * v + kz * w) * self.inv_k2
        return torch.stack([u - kx * along, v - ky * along, w - kz * along], dim=-4)

    def energy(self, velocity_hat: torch.Tensor) -> torch.Tensor:
        """Kinetic energy ``<|u|^2> / 2`` per field of velocity spectra ``[..., 3, N, N, N//2+1]``."""
        power = (velocity_hat.real**2 + velocity_hat.imag**2) * self.multiplicity
        return 0.5 * power.sum(dim=(-4, -3, -2, -1)) / float(self.resolution) ** 6


class EddyViscosity(Protocol):
    """An eddy-viscosity closure, as the solver calls it (see :mod:`sciml.solvers.les`)."""

    def viscosity(
        self, velocity_hat: torch.Tensor, gradient: torch.Tensor, box: SpectralBox3D
    ) -> torch.Tensor:
        """Eddy viscosity ``[B, N, N, N]`` of velocity spectra ``[B, 3, N, N, N//2+1]`` whose gradient on the
        grid is ``[B, 3, 3, N, N, N]``."""
        ...


class VelocityEquation3D:
    r"""The velocity equation on spectra ``u_hat = rfftn(u)``, an
    :class:`~sciml.solvers.time_stepping.ImexEquation`.

    :math:`N(\hat u) = \mathbb{P}\,\mathrm{dealias}[\widehat{u\times\omega} + \widehat{\nabla\cdot(2\nu_t S)}]
    + \hat f`, :math:`L = -\nu|k|^2` (diagonal). States are ``[B, 3, N, N, N//2+1]`` of the complex dtype
    matching ``dtype``.

    Args:
        resolution: grid points per side N.
        viscosity: :math:`\nu`.
        domain_length: side L of the cube.
        forcing: ``None``, ``"linear"`` or ``"band"`` (module docstring).
        injection_rate: the power :math:`P` the forcing injects.
        forcing_wavenumber: :math:`k_f` of the band forcing, in units of :math:`2\pi/L`.
        eddy_viscosity: an :class:`EddyViscosity` closure or ``None``.
        device: where the states live.
        dtype: float32 or float64, the dtype of the physical fields.

    The in-place evaluation keeps work buffers, so one instance must not be used from two threads.
    """

    def __init__(
        self,
        resolution: int,
        viscosity: float,
        domain_length: float,
        forcing: str | None,
        injection_rate: float,
        forcing_wavenumber: float,
        eddy_viscosity: EddyViscosity | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.box = box = SpectralBox3D(resolution, domain_length, device, dtype)
        self.linear = -viscosity * box.k2
        """The diagonal of L, float64 (applied in the precision of the state)."""
        self.forcing = forcing
        self.injection_rate = float(injection_rate)
        self.forced_modes: torch.Tensor | None = None
        self.forced_index: torch.Tensor | None = None
        if forcing == "band":
            band = (box.integer_magnitude <= forcing_wavenumber) & (box.k2 > 0)
            self.forced_modes = band.to(dtype)
            # the few forced modes, as flat indices into a spectrum (the forcing touches only these)
            self.forced_index = band.reshape(-1).nonzero().flatten()
            self.forced_weights = box.multiplicity.expand(box.spectrum_shape).reshape(-1)[self.forced_index]
        elif forcing == "linear":
            self.forced_modes = (box.k2 > 0).to(dtype)
        # i k as complex multipliers (the curl is then one product and one fused multiply-add per component)
        self.ik = [(1j * k).to(box.complex_dtype) for k in box.k]
        # z columns that the 2/3 rule keeps: the projection runs on these only, the rest of its output is 0
        self.kept_z = int(box.mask_axes[2].sum())
        self.eddy_viscosity = eddy_viscosity
        self.state_shape = (3, *box.spectrum_shape)
        self.complex_dtype = box.complex_dtype
        spectral = box.spectrum_shape
        self._workspace = Workspace(
            device,
            {
                "vorticity_hat": ((3, *spectral), box.complex_dtype),
                "velocity": ((3, *box.shape), dtype),
                "vorticity": ((3, *box.shape), dtype),
                "cross": ((3, *box.shape), dtype),
                "cross_hat": ((3, *spectral), box.complex_dtype),
                "along": (spectral, box.complex_dtype),
            },
        )

    def implicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        """``L u_hat`` (in the precision of ``state``)."""
        return state * self.linear.to(state.dtype.to_real())

    def implicit_solve(self, rhs: torch.Tensor, step: float) -> torch.Tensor:
        """``(I - step L)^-1 rhs`` (L is diagonal)."""
        return rhs / (1.0 - step * self.linear.to(rhs.dtype.to_real()))

    def explicit_terms(self, state: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The explicit terms of spectra ``[B, 3, N, N, N//2+1]``.

        Without ``out`` every intermediate is a new tensor (differentiable); with ``out`` the transforms and
        products live in work buffers. Both give the same numbers to rounding.
        """
        if out is None:
            box = self.box
            fields = box.to_physical(torch.cat([state, box.curl(state)], dim=-4))
            u, w = fields[:, :3], fields[:, 3:]
            cross_hat = box.to_spectral(torch.linalg.cross(u, w, dim=1))
            if self.eddy_viscosity is not None:
                cross_hat = cross_hat + self._stress_divergence(state)
            result = box.project(cross_hat * box.mask)
        else:
            result = self._explicit_in_place(state, out)
        if self.forcing is not None:
            result = self._add_forcing(state, result, in_place=out is not None)
        return result

    def _explicit_in_place(self, state: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The rotational form with 6 inverse and 3 forward FFTs, every intermediate in a work buffer."""
        box = self.box
        buffers = self._workspace(state.shape[0])
        vorticity_hat = buffers["vorticity_hat"]
        kx, ky, kz = box.k
        ikx, iky, ikz = self.ik
        u, v, w = state.unbind(1)
        # vorticity i k x u_hat
        for component, (ika, a, ikb, b) in enumerate(((iky, w, ikz, v), (ikz, u, ikx, w), (ikx, v, iky, u))):
            torch.mul(a, ika, out=vorticity_hat[:, component]).addcmul_(b, ikb, value=-1.0)
        velocity = torch.fft.irfftn(state, s=box.shape, dim=_AXES, out=buffers["velocity"])
        vorticity = torch.fft.irfftn(vorticity_hat, s=box.shape, dim=_AXES, out=buffers["vorticity"])
        cross = buffers["cross"]
        (ux, uy, uz), (wx, wy, wz) = velocity.unbind(1), vorticity.unbind(1)
        for component, (a, b, c, d) in enumerate(((uy, wz, uz, wy), (uz, wx, ux, wz), (ux, wy, uy, wx))):
            torch.mul(a, b, out=cross[:, component]).addcmul_(c, d, value=-1.0)
        cross_hat = torch.fft.rfftn(cross, dim=_AXES, out=buffers["cross_hat"])
        if self.eddy_viscosity is not None:
            cross_hat.add_(self._stress_divergence(state))
        # dealias and project on the kept z columns: out_i = m c_i - k_i (k . c) m / |k|^2; 0 elsewhere
        z = self.kept_z
        along = buffers["along"][..., :z]
        cx, cy, cz = cross_hat[..., :z].unbind(1)
        kz_kept, mask, masked_inv_k2 = kz[..., :z], box.mask[..., :z], box.masked_inv_k2[..., :z]
        torch.mul(cx, kx, out=along)
        along.addcmul_(cy, ky).addcmul_(cz, kz_kept).mul_(masked_inv_k2)
        for component, (c, k) in enumerate(((cx, kx), (cy, ky), (cz, kz_kept))):
            torch.mul(c, mask, out=out[:, component, ..., :z]).addcmul_(along, k, value=-1.0)
        out[..., z:].zero_()
        return out

    def _stress_divergence(self, state: torch.Tensor) -> torch.Tensor:
        """Spectrum of ``div(2 nu_t S)`` ``[B, 3, N, N, N//2+1]`` (before dealiasing and projection)."""
        box, closure = self.box, self.eddy_viscosity
        if closure is None:
            raise SolverError("VelocityEquation3D: no eddy viscosity to evaluate")
        gradient = box.gradient(state)
        strain = 0.5 * (gradient + gradient.transpose(1, 2))
        nu_t = closure.viscosity(state, gradient, box)
        stress_hat = box.to_spectral(2.0 * nu_t[:, None, None] * strain)
        kx, ky, kz = box.k
        return 1j * (stress_hat[:, :, 0] * kx + stress_hat[:, :, 1] * ky + stress_hat[:, :, 2] * kz)

    def _add_forcing(self, state: torch.Tensor, result: torch.Tensor, in_place: bool) -> torch.Tensor:
        """``result + P / (2 E_f) u_hat`` on the forced modes (``E_f`` per field; nothing where it is 0)."""
        box = self.box
        if self.forced_index is not None and in_place:
            # band forcing: gather the few forced modes, scale them, add them back
            modes = state.reshape(*state.shape[:2], -1)[:, :, self.forced_index]
            power = (modes.real**2 + modes.imag**2) * self.forced_weights
            forced_energy = 0.5 * power.sum(dim=(1, 2)) / float(box.resolution) ** 6
            coefficient = torch.where(
                forced_energy > 0, self.injection_rate / (2.0 * forced_energy.clamp_min(1e-300)), 0.0
            )
            flat = result.view(*result.shape[:2], -1)
            flat.index_add_(2, self.forced_index, modes * coefficient.view(-1, 1, 1))
            return result
        forced = self.forced_modes
        if forced is None:
            return result
        power = (state.real**2 + state.imag**2) * (box.multiplicity * forced)
        forced_energy = 0.5 * power.sum(dim=(-4, -3, -2, -1)) / float(box.resolution) ** 6
        coefficient = torch.where(
            forced_energy > 0, self.injection_rate / (2.0 * forced_energy.clamp_min(1e-300)), 0.0
        )
        increment = state * (coefficient.view(-1, 1, 1, 1, 1) * forced)
        if in_place:
            return result.add_(increment)
        return result + increment


@dataclass
class Trajectory3D:
    """Recorded velocity ``[batch, n_frames, 3, N, N, N]`` and the time of each frame ``[n_frames]``."""

    velocity: torch.Tensor
    times: torch.Tensor


class NavierStokes3D:
    r"""3D incompressible Navier-Stokes in velocity form on a periodic cube, pseudo-spectral.

    Args:
        resolution: grid points per side N (the solve runs on N^3).
        viscosity: kinematic viscosity :math:`\nu`.
        domain_length: side L of the cube (default 2 pi).
        forcing: ``None``, ``"linear"`` or ``"band"`` (constant-power forcing, module docstring).
        injection_rate: the power :math:`P` the forcing injects (energy per unit mass and time).
        forcing_wavenumber: :math:`k_f` of ``"band"`` (modes with :math:`|k| \le k_f`, units of
            :math:`2\pi/L`).
        dt: time step.
        stepper: a name of :data:`sciml.solvers.time_stepping.STEPPERS`.
        eddy_viscosity: an LES closure (:mod:`sciml.solvers.les`) or ``None`` (DNS).

    :meth:`step` and :meth:`simulate` take and return velocity fields ``[batch, 3, N, N, N]`` in the dtype
    and on the device of the input. A solver keeps work buffers between steps (per device and dtype), so
    one instance must not step from two threads.
    """

    def __init__(
        self,
        resolution: int,
        viscosity: float,
        domain_length: float = 2.0 * math.pi,
        forcing: str | None = None,
        injection_rate: float = 0.1,
        forcing_wavenumber: float = 2.0,
        dt: float = 1e-2,
        stepper: str = "rk4-cn",
        eddy_viscosity: EddyViscosity | None = None,
    ) -> None:
        if resolution < 4:
            raise SolverError(f"NavierStokes3D: resolution must be >= 4, got {resolution}")
        for name, value in (("viscosity", viscosity), ("injection_rate", injection_rate)):
            if not math.isfinite(value) or value < 0:
                raise SolverError(f"NavierStokes3D: {name} must be finite and >= 0, got {value}")
        for name, value in (
            ("dt", dt),
            ("domain_length", domain_length),
            ("forcing_wavenumber", forcing_wavenumber),
        ):
            if not math.isfinite(value) or value <= 0:
                raise SolverError(f"NavierStokes3D: {name} must be finite and > 0, got {value}")
        if stepper not in STEPPERS:
            raise SolverError(
                f"NavierStokes3D: unknown stepper {stepper!r}; expected one of {tuple(STEPPERS)}"
            )
        if forcing is not None and forcing not in FORCINGS:
            raise SolverError(
                f"NavierStokes3D: unknown forcing {forcing!r}; expected one of {FORCINGS} or None"
            )
        if eddy_viscosity is not None and not callable(getattr(eddy_viscosity, "viscosity", None)):
            raise SolverError(
                f"NavierStokes3D: eddy_viscosity {type(eddy_viscosity).__name__} has no viscosity() method; "
                "expected a closure of sciml.solvers.les"
            )
        self.resolution = int(resolution)
        self.viscosity = float(viscosity)
        self.domain_length = float(domain_length)
        self.forcing = forcing
        self.injection_rate = float(injection_rate)
        self.forcing_wavenumber = float(forcing_wavenumber)
        self.dt = float(dt)
        self.stepper = stepper
        self.eddy_viscosity = eddy_viscosity
        self._bound: dict[tuple[torch.device, torch.dtype], tuple[VelocityEquation3D, ImexStepper]] = {}

    # ------------------------------------------------------------------ set-up
    def grid(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Grid coordinates ``[3, N, N, N]`` (x along axis 1, y along 2, z along 3), x_i = i L / N."""
        x = torch.arange(self.resolution, device=device, dtype=dtype) * (self.domain_length / self.resolution)
        return torch.stack(torch.meshgrid(x, x, x, indexing="ij"))

    def _equation_and_stepper(
        self, device: torch.device, dtype: torch.dtype
    ) -> tuple[VelocityEquation3D, ImexStepper]:
        key = (device, dtype)
        if key not in self._bound:
            equation = VelocityEquation3D(
                self.resolution,
                self.viscosity,
                self.domain_length,
                self.forcing,
                self.injection_rate,
                self.forcing_wavenumber,
                self.eddy_viscosity,
                device,
                dtype,
            )
            stepper = ImexStepper(
                STEPPERS[self.stepper],
                equation,
                self.dt,
                equation.state_shape,
                equation.complex_dtype,
                device,
            )
            self._bound[key] = (equation, stepper)
        return self._bound[key]

    def equation(self, device: torch.device | str, dtype: torch.dtype) -> VelocityEquation3D:
        """The equation's precomputed multipliers for fields on ``device`` in ``dtype`` (cached)."""
        return self._equation_and_stepper(torch.device(device), dtype)[0]

    def time_stepper(self, device: torch.device | str, dtype: torch.dtype) -> ImexStepper:
        """The stepper bound to this equation and ``dt`` for fields on ``device`` in ``dtype`` (cached)."""
        return self._equation_and_stepper(torch.device(device), dtype)[1]

    def box(self, device: torch.device | str, dtype: torch.dtype) -> SpectralBox3D:
        """The spectral operators of this grid on ``device`` in ``dtype`` (cached)."""
        return self.equation(device, dtype).box

    # ------------------------------------------------------------------ physics
    def _check_field(self, u: torch.Tensor) -> None:
        n = self.resolution
        if not isinstance(u, torch.Tensor) or u.ndim != 5 or tuple(u.shape[1:]) != (3, n, n, n):
            shape = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
            raise SolverError(f"NavierStokes3D: expected a velocity [batch, 3, {n}, {n}, {n}], got {shape}")
        if u.dtype not in (torch.float32, torch.float64):
            raise SolverError(f"NavierStokes3D: expected float32 or float64 velocity, got {u.dtype}")

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The divergence-free part of a velocity ``[batch, 3, N, N, N]`` (Leray projection, mean kept)."""
        self._check_field(u)
        box = self.box(u.device, u.dtype)
        return box.to_physical(box.project(box.to_spectral(u)))

    def vorticity(self, u: torch.Tensor) -> torch.Tensor:
        """Vorticity ``curl u`` ``[batch, 3, N, N, N]`` (spectral derivatives)."""
        self._check_field(u)
        box = self.box(u.device, u.dtype)
        return box.to_physical(box.curl(box.to_spectral(u)))

    def divergence(self, u: torch.Tensor) -> torch.Tensor:
        """``div u`` ``[batch, N, N, N]`` (spectral derivatives)."""
        self._check_field(u)
        box = self.box(u.device, u.dtype)
        return box.to_physical(box.divergence(box.to_spectral(u)))

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """The right-hand side ``du/dt`` of fields ``[batch, 3, N, N, N]`` as a step evaluates it."""
        self._check_field(u)
        equation = self.equation(u.device, u.dtype)
        u_hat = equation.box.to_spectral(u)
        return equation.box.to_physical(equation.explicit_terms(u_hat) + equation.implicit_terms(u_hat))

    # ------------------------------------------------------------------ stepping
    def step(self, u: torch.Tensor, n_steps: int = 1, *, differentiable: bool = False) -> torch.Tensor:
        """Advance a velocity ``[batch, 3, N, N, N]`` by ``n_steps`` time steps (in-place fast path, or out
        of place with ``differentiable=True``; the two agree to rounding)."""
        self._check_field(u)
        equation, stepper = self._equation_and_stepper(u.device, u.dtype)
        u_hat = equation.box.to_spectral(u)
        if differentiable:
            for _ in range(n_steps):
                u_hat = stepper.step(u_hat)
        else:
            if u.requires_grad and torch.is_grad_enabled():
                raise SolverError("NavierStokes3D.step: u requires grad; pass differentiable=True to step it")
            u_hat = u_hat.contiguous()
            for _ in range(n_steps):
                stepper.step_(u_hat)
        return equation.box.to_physical(u_hat)

    def simulate(
        self,
        u0: torch.Tensor,
        t_final: float,
        record_every: float,
        progress: Callable[[int], None] | None = None,
        observe: Callable[[float, torch.Tensor], None] | None = None,
    ) -> Trajectory3D:
        """Integrate from ``u0`` (``[batch, 3, N, N, N]``) to ``t_final``, recording every ``record_every``.

        ``t_final`` and ``record_every`` must be multiples of ``dt``. The trajectory holds the initial state
        and every recorded frame (times ``0, record_every, ..., t_final``). ``progress`` gets the number of
        steps done after each recorded frame; ``observe(t, u_hat)`` gets the spectrum at every recorded time
        (e.g. for statistics) without a copy. Raises :class:`SolverError` if the solution becomes non-finite.
        """
        self._check_field(u0)
        steps_per_record = as_multiple(record_every, self.dt, "NavierStokes3D: record_every", "dt")
        n_records = as_multiple(t_final, record_every, "NavierStokes3D: t_final", "record_every")
        equation, stepper = self._equation_and_stepper(u0.device, u0.dtype)
        box = equation.box
        frames = torch.empty((u0.shape[0], n_records + 1, *u0.shape[1:]), dtype=u0.dtype, device=u0.device)
        frames[:, 0] = u0
        u_hat = box.to_spectral(u0).contiguous()
        if observe is not None:
            observe(0.0, u_hat)
        for r in range(1, n_records + 1):
            for _ in range(steps_per_record):
                stepper.step_(u_hat)
            frames[:, r] = box.to_physical(u_hat)
            if not torch.isfinite(frames[:, r]).all():
                raise SolverError(
                    f"NavierStokes3D: solution became non-finite at t = {r * record_every:g} "
                    f"(dt = {self.dt:g} too large for resolution {self.resolution}?)"
                )
            if observe is not None:
                observe(r * steps_per_record * self.dt, u_hat)
            if progress is not None:
                progress(r * steps_per_record)
        times = torch.arange(n_records + 1, dtype=torch.float64) * (steps_per_record * self.dt)
        return Trajectory3D(velocity=frames, times=times)


# ---------------------------------------------------------------------------------------------------------
# Initial fields
# ---------------------------------------------------------------------------------------------------------


def _coordinates(
    resolution: int, domain_length: float, dtype: torch.dtype, device: torch.device | str | None
):
    x = torch.arange(resolution, dtype=torch.float64, device=device) * (domain_length / resolution)
    return torch.meshgrid(x, x, x, indexing="ij")


def taylor_green_vortex(
    resolution: int,
    velocity_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""The Taylor-Green vortex on :math:`[0, 2\pi)^3`: :math:`u = V\sin x\cos y\cos z`,
    :math:`v = -V\cos x\sin y\cos z`, :math:`w = 0`; returns ``[1, 3, N, N, N]``."""
    x, y, z = _coordinates(resolution, 2.0 * math.pi, dtype, device)
    u = velocity_scale * torch.sin(x) * torch.cos(y) * torch.cos(z)
    v = -velocity_scale * torch.cos(x) * torch.sin(y) * torch.cos(z)
    return torch.stack([u, v, torch.zeros_like(u)])[None].to(dtype)


def abc_flow(
    resolution: int,
    wavenumber: int = 1,
    coefficients: tuple[float, float, float] = (1.0, 1.0, 1.0),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""The Arnold-Beltrami-Childress flow on :math:`[0, 2\pi)^3` (``curl u = k u``): with :math:`(A, B, C)`,
    :math:`u = A\sin kz + C\cos ky`, :math:`v = B\sin kx + A\cos kz`, :math:`w = C\sin ky + B\cos kx`;
    returns ``[1, 3, N, N, N]``. Since :math:`u\times\omega = 0` it decays as :math:`e^{-\nu k^2 t}`."""
    a, b, c = coefficients
    x, y, z = _coordinates(resolution, 2.0 * math.pi, dtype, device)
    k = float(wavenumber)
    u = a * torch.sin(k * z) + c * torch.cos(k * y)
    v = b * torch.sin(k * x) + a * torch.cos(k * z)
    w = c * torch.sin(k * y) + b * torch.cos(k * x)
    return torch.stack([u, v, w])[None].to(dtype)


def random_solenoidal_field(
    batch: int,
    resolution: int,
    peak_wavenumber: float = 3.0,
    energy: float = 0.5,
    domain_length: float = 2.0 * math.pi,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Random divergence-free velocities ``[batch, 3, N, N, N]`` with the spectrum
    :math:`E(k) \propto k^4 e^{-2(k/k_p)^2}` and kinetic energy ``energy`` (per field).

    White noise drawn on the CPU from ``seed`` is projected onto divergence-free fields, shaped to the
    spectrum (amplitude :math:`\sqrt{E(k)/(4\pi k^2)}` per mode, :math:`k` in units of :math:`2\pi/L`),
    restricted to the 2/3-dealiased band, and scaled to the energy. A seed gives the same field on every
    device.
    """
    if batch < 1 or resolution < 4 or not peak_wavenumber > 0 or not energy >= 0:
        raise SolverError(
            "random_solenoidal_field needs batch >= 1, resolution >= 4, peak_wavenumber > 0 and energy >= 0, "
            f"got {batch}, {resolution}, {peak_wavenumber}, {energy}"
        )
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(
        batch, 3, resolution, resolution, resolution, generator=generator, dtype=torch.float64
    )
    box = SpectralBox3D(resolution, domain_length, torch.device("cpu"), torch.float64)
    k = box.integer_magnitude
    spectrum = k**4 * torch.exp(-2.0 * (k / peak_wavenumber) ** 2)
    amplitude = (
        torch.where(k > 0, (spectrum / (4.0 * math.pi * k.clamp_min(1.0) ** 2)).sqrt(), 0.0) * box.mask
    )
    u_hat = box.project(box.to_spectral(noise) * amplitude)
    current = box.energy(u_hat)
    u_hat = u_hat * torch.where(current > 0, (energy / current.clamp_min(1e-300)).sqrt(), 0.0).view(
        -1, 1, 1, 1, 1
    )
    return box.to_physical(u_hat).to(device=device, dtype=dtype)


def spectral_filter(field: torch.Tensor, resolution: int) -> torch.Tensor:
    """Sharp spectral filter of fields ``[..., N, N, N]`` onto a coarser ``resolution^3`` grid.

    Keeps the modes with ``|k_i| < resolution / 3`` in integer units (the coarse grid's 2/3-dealiased band,
    so that a filtered field is one the coarse solver represents exactly, dealiasing included) and samples
    the result on the coarse grid (``x_i = i L / resolution``). ``resolution`` must be at most N.
    """
    n = field.shape[-1]
    if field.ndim < 3 or tuple(field.shape[-3:]) != (n, n, n) or not 2 <= resolution <= n:
        raise SolverError(
            f"spectral_filter: expected fields [..., N, N, N] and 2 <= resolution <= N, "
            f"got {tuple(field.shape)} and {resolution}"
        )
    spectrum = torch.fft.rfftn(field, dim=_AXES)
    coarse = torch.fft.fftfreq(resolution, d=1.0 / resolution, device=field.device).round().long()
    index = coarse % n
    m = resolution // 2 + 1
    spectrum = spectrum.index_select(-3, index).index_select(-2, index)[..., :m]
    keep = (3 * coarse.abs() < resolution).to(field.dtype)
    mask = keep.view(-1, 1, 1) * keep.view(1, -1, 1) * keep[:m].view(1, 1, -1)
    scale = (resolution / n) ** 3
    return torch.fft.irfftn(spectrum * (mask * scale), s=(resolution,) * 3, dim=_AXES)
