r"""Pseudo-spectral solver of the 2D incompressible Navier-Stokes equations in vorticity form.

On the periodic box :math:`[0, L)^2` the vorticity :math:`\omega = \partial_x v - \partial_y u` obeys

.. math::
    \partial_t \omega + \mathbf{u}\cdot\nabla\omega = \nu \Delta\omega - \alpha\,\omega + f,
    \qquad -\Delta\psi = \omega,\quad u = \partial_y\psi,\quad v = -\partial_x\psi,

with viscosity :math:`\nu`, linear drag :math:`\alpha` and vorticity forcing :math:`f`. Arrays are laid out
``[batch, x, y]`` with grid points :math:`x_i = i L / N`, as in the FNO data (Li et al., "Fourier Neural
Operator for Parametric Partial Differential Equations", ICLR 2021, whose generator this reproduces with
the ``"cn-euler"`` stepper).

The linear part :math:`L\hat\omega = -(\nu|k|^2 + \alpha)\hat\omega` is treated implicitly
(Crank-Nicolson), the advection explicitly. The advection term is evaluated in Basdevant's form
(Basdevant, J. Comput. Phys. 50, 1983): for a divergence-free velocity,

.. math::
    \mathbf{u}\cdot\nabla\omega = (\partial_{xx} - \partial_{yy})(uv) + \partial_{xy}(v^2 - u^2),

which needs two inverse FFTs (u, v) and two forward FFTs (uv, v^2 - u^2) per evaluation instead of the
usual four and one; the product spectra are dealiased by the 2/3 rule (modes with
:math:`|k_x|, |k_y| < N/3` kept), so that for band-limited fields the two forms agree exactly on the
kept modes.

Steppers (written once against the ``explicit`` / linear interface, in the style of jax-cfd):

* ``"cn-euler"``: Crank-Nicolson diffusion, forward-Euler advection (first order; the FNO scheme).
* ``"heun-cn"``: Heun predictor-corrector on advection with Crank-Nicolson diffusion (second order).
* ``"rk4-cn"``: the low-storage five-stage fourth-order Runge-Kutta of Carpenter & Kennedy (NASA TM-109112,
  1994) on advection, with a Crank-Nicolson sub-step on the linear part in every stage (fourth order on
  the advection, second order on the stiff linear part).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

from sciml.errors import SolverError

logger = logging.getLogger(__name__)

__all__ = ["STEPPERS", "NavierStokes2D", "Trajectory", "central_time_derivative", "gaussian_random_field"]

STEPPERS = ("cn-euler", "heun-cn", "rk4-cn")

# Carpenter & Kennedy (1994), five-stage fourth-order 2N-storage Runge-Kutta, solution 3:
#   h <- dt * F(u) + A_j h ;  u <- u + B_j h ; stage j starts at time c_j dt.
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


def _wavenumbers(n: int, length: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Angular wavenumbers 2 pi k / L of a length-n FFT axis (k = 0, 1, ..., -1)."""
    return torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype) * (2.0 * math.pi / length)


def gaussian_random_field(
    batch: int,
    resolution: int,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
    domain_length: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Samples of the periodic Gaussian random field :math:`N(0, \sigma^2(-\Delta + \tau^2)^{-\alpha})`.

    The FNO initial conditions (alpha 2.5, tau 7, :math:`\sigma = \tau^{(2\alpha - 2)/2} = 7^{3/2}`):
    the field has covariance :math:`\sum_k \sigma^2 (|2\pi k/L|^2 + \tau^2)^{-\alpha}\cos(2\pi k\cdot(x-y)/L)`
    over the wavenumbers of the grid, with the mean mode removed. White noise drawn on the CPU from
    ``seed`` is filtered spectrally, so a seed gives the same field on every device.

    Returns:
        Tensor ``[batch, resolution, resolution]``.
    """
    if batch < 1 or resolution < 2:
        raise SolverError(
            f"gaussian_random_field needs batch >= 1 and resolution >= 2, got {batch}, {resolution}"
        )
    if sigma is None:
        sigma = tau ** (0.5 * (2.0 * alpha - 2.0))
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(batch, resolution, resolution, generator=generator, dtype=torch.float64)
    kx = _wavenumbers(resolution, domain_length, torch.device("cpu"), torch.float64)
    ky = kx[: resolution // 2 + 1].abs()
    lam = kx[:, None] ** 2 + ky[None, :] ** 2
    # E|rfft2(noise)_k|^2 = n^2, so the factor n * sqrt_eig gives the covariance above (irfft2: 1/n^2).
    amplitude = resolution * sigma * (lam + tau**2) ** (-alpha / 2.0)
    amplitude[0, 0] = 0.0
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * amplitude, s=(resolution, resolution))
    return field.to(device=device, dtype=dtype)


@dataclass
class Trajectory:
    """Recorded vorticity ``[batch, n_frames, N, N]`` and the time of each frame ``[n_frames]``."""

    vorticity: torch.Tensor
    times: torch.Tensor


class _SpectralOperators:
    """Every multiplier one step needs, precomputed for one (device, dtype, dt)."""

    def __init__(self, solver: NavierStokes2D, device: torch.device, dtype: torch.dtype) -> None:
        n, length = solver.resolution, solver.domain_length
        real = dtype
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        kx_full = _wavenumbers(n, length, device, torch.float64)[:, None].expand(n, n // 2 + 1)
        ky_full = (
            _wavenumbers(n, length, device, torch.float64)[: n // 2 + 1].abs()[None, :].expand(n, n // 2 + 1)
        )
        k2 = kx_full**2 + ky_full**2
        inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        # First derivatives: the Nyquist wavenumbers have no sign, set them to zero.
        nyquist_x = torch.zeros(n, 1, dtype=torch.bool, device=device)
        if n % 2 == 0:
            nyquist_x[n // 2] = True
        kx_d = torch.where(nyquist_x, 0.0, kx_full)
        ky_d = ky_full.clone()
        if n % 2 == 0:
            ky_d[:, -1] = 0.0
        # 2/3 rule: keep integer wavenumbers |k| < N/3 (the same modes as FNO's |k| <= N/3 whenever 3 does
        # not divide N; exactly alias-free for every N).
        k_int_x = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64).abs()[:, None]
        k_int_y = k_int_x[: n // 2 + 1].T
        mask = ((3 * k_int_x < n) & (3 * k_int_y < n)).to(torch.float64)
        self.k2 = k2.to(real)
        self.inv_k2 = inv_k2.to(real)
        # (u_hat, v_hat) = (i k_y, -i k_x) psi_hat with psi_hat = w_hat / |k|^2.
        self.velocity = torch.stack([1j * ky_d * inv_k2, -1j * kx_d * inv_k2]).to(complex_dtype)
        # -(u . grad w)_hat = -[(-kx^2 + ky^2) (uv)_hat + (-kx ky) (v^2 - u^2)_hat], dealiased.
        # Multipliers are stored complex: complex x complex products avoid a real->complex copy per call.
        self.advection = torch.stack([(kx_full**2 - ky_full**2) * mask, kx_d * ky_d * mask]).to(complex_dtype)
        linear = -(solver.viscosity * k2) - solver.drag
        self.linear = linear.to(real)
        # Per stage: (A_j, gain_j, scale_j) with w <- gain_j w + scale_j h, the Crank-Nicolson sub-step
        # (1 - mu_j L) w_new = (1 + mu_j L) w + B_j dt h solved in closed form (L is diagonal).
        self.stages = [
            (
                a,
                ((1.0 + mu * linear) / (1.0 - mu * linear)).to(complex_dtype),
                (b_dt / (1.0 - mu * linear)).to(complex_dtype),
            )
            for a, b_dt, mu in solver.stage_coefficients()
        ]
        forcing = solver.forcing_field(device, torch.float64)
        self.forcing_hat = None if forcing is None else torch.fft.rfft2(forcing).to(complex_dtype)
        self.shape = (n, n)
        self.dtype = dtype
        self.complex_dtype = complex_dtype
        self.device = device
        if solver.stepper == "heun-cn":
            self.half_scale = 0.5 * self.stages[0][2]
        self._workspaces: dict[str, dict[str, torch.Tensor]] = {}
        # CPU: trajectories per block of the explicit evaluation, ~2 MiB of spectra per block (cache-sized).
        self.block_trajectories = (
            None
            if device.type != "cpu"
            else max(1, (2 << 20) // (2 * n * (n // 2 + 1) * (2 * real.itemsize)))
        )

    def _buffers(self, kind: str, batch: int, shapes: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> dict:
        """Views ``[:batch]`` of buffers of one kind, reallocated only when a larger batch comes."""
        held = self._workspaces.get(kind)
        if held is None or next(iter(held.values())).shape[0] < batch:
            held = {
                name: torch.empty(shape, dtype=dtype, device=self.device)
                for name, (shape, dtype) in shapes.items()
            }
            self._workspaces[kind] = held
        return {name: buffer[:batch] for name, buffer in held.items()}

    def workspace(self, batch: int) -> dict[str, torch.Tensor]:
        """Intermediates of one explicit evaluation of ``batch`` trajectories."""
        n, m = self.shape[0], self.shape[0] // 2 + 1
        spectral, physical = ((batch, 2, n, m), self.complex_dtype), ((batch, 2, n, n), self.dtype)
        return self._buffers(
            "block",
            batch,
            {"velocity_hat": spectral, "velocity": physical, "products": physical, "products_hat": spectral},
        )

    def state_workspace(self, batch: int) -> dict[str, torch.Tensor]:
        """Stage buffers of a step of ``batch`` trajectories (explicit terms, accumulator, predictor)."""
        spectral = ((batch, self.shape[0], self.shape[0] // 2 + 1), self.complex_dtype)
        return self._buffers("state", batch, {"f": spectral, "h": spectral, "predictor": spectral})


class NavierStokes2D:
    r"""2D incompressible Navier-Stokes in vorticity form on a periodic square, pseudo-spectral.

    Args:
        resolution: grid points per side N (the solve runs on N x N).
        viscosity: kinematic viscosity :math:`\nu`.
        domain_length: side L of the box. Default: 1 for ``forcing="fno"`` or ``None``, 2 pi for
            ``"kolmogorov"``.
        forcing: ``"fno"`` (:math:`0.1(\sin 2\pi(x+y) + \cos 2\pi(x+y))`, the FNO data), ``"kolmogorov"``
            (the curl :math:`-k\cos(k y)` of the body force :math:`\sin(k y)\,\hat{x}`, k = 4), ``None``,
            or a tensor ``[N, N]`` of vorticity forcing values on the grid.
        drag: linear drag :math:`\alpha`. Default 0.1 for ``"kolmogorov"``, else 0.
        dt: time step.
        stepper: ``"cn-euler"``, ``"heun-cn"`` or ``"rk4-cn"`` (see the module docstring).
        kolmogorov_wavenumber: k of the Kolmogorov forcing.

    Time stepping works on the spectrum ``w_hat = rfft2(w)``; :meth:`step` and :meth:`simulate` take and
    return physical fields ``[batch, N, N]`` in the dtype and on the device of the input. A solver keeps
    work buffers between steps (per device and dtype), so one instance must not step from two threads.
    """

    def __init__(
        self,
        resolution: int,
        viscosity: float,
        domain_length: float | None = None,
        forcing: str | torch.Tensor | None = "fno",
        drag: float | None = None,
        dt: float = 1e-4,
        stepper: str = "cn-euler",
        kolmogorov_wavenumber: int = 4,
    ) -> None:
        if resolution < 4:
            raise SolverError(f"NavierStokes2D: resolution must be >= 4, got {resolution}")
        if not viscosity >= 0 or not math.isfinite(viscosity):
            raise SolverError(f"NavierStokes2D: viscosity must be finite and >= 0, got {viscosity}")
        if not dt > 0 or not math.isfinite(dt):
            raise SolverError(f"NavierStokes2D: dt must be finite and > 0, got {dt}")
        if stepper not in STEPPERS:
            raise SolverError(f"NavierStokes2D: unknown stepper {stepper!r}; expected one of {STEPPERS}")
        is_named = isinstance(forcing, str)
        if is_named and forcing not in ("fno", "kolmogorov"):
            raise SolverError(
                f"NavierStokes2D: unknown forcing {forcing!r}; expected 'fno', 'kolmogorov', None or a tensor"
            )
        if isinstance(forcing, torch.Tensor) and tuple(forcing.shape) != (resolution, resolution):
            raise SolverError(
                f"NavierStokes2D: forcing tensor has shape {tuple(forcing.shape)}, "
                f"expected {(resolution, resolution)}"
            )
        kolmogorov = is_named and forcing == "kolmogorov"
        self.resolution = int(resolution)
        self.viscosity = float(viscosity)
        self.domain_length = float(
            domain_length if domain_length is not None else (2 * math.pi if kolmogorov else 1.0)
        )
        self.forcing = forcing
        self.drag = float(drag if drag is not None else (0.1 if kolmogorov else 0.0))
        self.dt = float(dt)
        self.stepper = stepper
        self.kolmogorov_wavenumber = int(kolmogorov_wavenumber)
        self._operators: dict[tuple[torch.device, torch.dtype], _SpectralOperators] = {}

    # ------------------------------------------------------------------ set-up
    def grid(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Grid coordinates ``[2, N, N]`` (x varies along axis 1, y along axis 2), x_i = i L / N."""
        x = torch.arange(self.resolution, device=device, dtype=dtype) * (self.domain_length / self.resolution)
        return torch.stack(torch.meshgrid(x, x, indexing="ij"))

    def forcing_field(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64):
        """The vorticity forcing on the grid ``[N, N]``, or ``None`` when unforced."""
        if self.forcing is None:
            return None
        if isinstance(self.forcing, torch.Tensor):
            return self.forcing.to(device=device, dtype=dtype)
        x, y = self.grid(device, dtype)
        if self.forcing == "fno":
            phase = 2.0 * math.pi * (x + y)
            return 0.1 * (torch.sin(phase) + torch.cos(phase))
        k = self.kolmogorov_wavenumber
        return -k * torch.cos(k * y)

    def _ops(self, device: torch.device, dtype: torch.dtype) -> _SpectralOperators:
        key = (device, dtype)
        if key not in self._operators:
            self._operators[key] = _SpectralOperators(self, device, dtype)
        return self._operators[key]

    def stage_coefficients(self) -> list[tuple[float, float, float]]:
        """Per stage (A_j, B_j dt, mu_j): 2N-storage weights and the Crank-Nicolson half sub-step mu_j.

        ``"heun-cn"`` has one entry holding the full-step Crank-Nicolson factors (used by both its stages).
        """
        if self.stepper in ("cn-euler", "heun-cn"):
            return [(0.0, self.dt, 0.5 * self.dt)]
        return [
            (float(a), float(b) * self.dt, 0.5 * self.dt * float(c1 - c0))
            for a, b, c0, c1 in zip(_CK_A, _CK_B, _CK_C[:-1], _CK_C[1:], strict=True)
        ]

    # ------------------------------------------------------------------ physics
    def velocity(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity ``(u, v)`` of a vorticity field ``[..., N, N]`` (u = psi_y, v = -psi_x, -Lap psi = w)."""
        self._check_field(w)
        ops = self._ops(w.device, w.dtype)
        uv = torch.fft.irfft2(torch.fft.rfft2(w).unsqueeze(-3) * ops.velocity, s=ops.shape)
        return uv[..., 0, :, :], uv[..., 1, :, :]

    def _explicit(self, w_hat: torch.Tensor, ops: _SpectralOperators, out: torch.Tensor) -> torch.Tensor:
        """Spectrum of the explicit terms, -(u . grad w) + f, dealiased, written into ``out``.

        ``w_hat`` and ``out`` are ``[B, N, N//2+1]``. On the CPU the batch is processed in blocks of
        ``ops.block_trajectories`` trajectories so that a block's transforms and products stay in cache.
        """
        block = ops.block_trajectories or w_hat.shape[0]
        for start in range(0, w_hat.shape[0], block):
            self._explicit_block(w_hat[start : start + block], ops, out[start : start + block])
        return out

    def _explicit_block(self, w_hat: torch.Tensor, ops: _SpectralOperators, out: torch.Tensor) -> None:
        """:meth:`_explicit` on one block (Basdevant's form: 2 inverse + 2 forward real FFTs per field).

        Every intermediate lives in a workspace allocated once per block shape: fresh multi-MB tensors
        each step cost page faults that were measured to exceed the FFTs themselves on the CPU.
        """
        ws = ops.workspace(w_hat.shape[0])
        torch.mul(w_hat.unsqueeze(-3), ops.velocity, out=ws["velocity_hat"])
        uv = torch.fft.irfft2(ws["velocity_hat"], s=ops.shape, out=ws["velocity"])
        u, v = uv[:, 0], uv[:, 1]
        products = ws["products"]
        torch.mul(u, v, out=products[:, 0])
        torch.mul(v, v, out=products[:, 1])
        products[:, 1].addcmul_(u, u, value=-1.0)
        p_hat = torch.fft.rfft2(products, out=ws["products_hat"])
        if ops.forcing_hat is None:
            torch.mul(p_hat[:, 0], ops.advection[0], out=out)
        else:
            torch.addcmul(ops.forcing_hat, p_hat[:, 0], ops.advection[0], out=out)
        out.addcmul_(p_hat[:, 1], ops.advection[1])

    # ------------------------------------------------------------------ stepping
    def _step_spectral(self, w_hat: torch.Tensor, ops: _SpectralOperators) -> torch.Tensor:
        """Advance the spectrum ``[B, N, N//2+1]`` by one step, in place; returns ``w_hat``."""
        state = ops.state_workspace(w_hat.shape[0])
        if self.stepper == "heun-cn":
            ((_, gain, scale),) = ops.stages
            f0 = self._explicit(w_hat, ops, state["f"])
            predictor = torch.mul(w_hat, gain, out=state["predictor"]).addcmul_(f0, scale)
            f1 = self._explicit(predictor, ops, state["h"])
            # trapezoidal corrector: w <- gain w + scale (f0 + f1) / 2
            return w_hat.mul_(gain).addcmul_(f0.add_(f1), ops.half_scale)
        f, h = state["f"], state["h"]
        for k, (a, gain, scale) in enumerate(ops.stages):
            self._explicit(w_hat, ops, f)
            if k > 0 and a != 0.0:
                f.add_(h, alpha=a)  # 2N-storage accumulation h <- F + A_j h
            f, h = h, f
            w_hat.mul_(gain).addcmul_(h, scale)
        return w_hat

    def residual(self, w: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
        r"""Pointwise residual :math:`\partial_t w + u\cdot\nabla w - \nu\Delta w + \alpha w - f` on the grid.

        ``w`` and its time derivative ``w_t`` are ``[..., N, N]``; the spatial terms are evaluated exactly
        as in a step (pseudo-spectral, 2/3 dealiased advection). This is the quantity whose :math:`H^{-1}`
        norm Spectral-Refiner minimizes; ``w_t`` can come from :func:`central_time_derivative`.
        """
        self._check_field(w)
        if w_t.shape != w.shape:
            raise SolverError(
                f"NavierStokes2D.residual: w_t has shape {tuple(w_t.shape)}, w {tuple(w.shape)}"
            )
        ops = self._ops(w.device, w.dtype)
        w_hat = torch.fft.rfft2(w.reshape(-1, *ops.shape))
        rhs = self._explicit(w_hat, ops, torch.empty_like(w_hat)).addcmul_(w_hat, ops.linear)
        return w_t - torch.fft.irfft2(rhs, s=ops.shape).reshape(w.shape)

    def _check_field(self, w: torch.Tensor) -> None:
        n = self.resolution
        if w.ndim < 2 or tuple(w.shape[-2:]) != (n, n):
            raise SolverError(f"NavierStokes2D: expected a field [..., {n}, {n}], got shape {tuple(w.shape)}")
        if w.dtype not in (torch.float32, torch.float64):
            raise SolverError(f"NavierStokes2D: expected float32 or float64 vorticity, got {w.dtype}")

    def step(self, w: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """Advance a physical vorticity field ``[batch, N, N]`` by ``n_steps`` time steps."""
        self._check_field(w)
        ops = self._ops(w.device, w.dtype)
        w_hat = torch.fft.rfft2(w.reshape(-1, *ops.shape))
        for _ in range(n_steps):
            self._step_spectral(w_hat, ops)
        return torch.fft.irfft2(w_hat, s=ops.shape).reshape(w.shape)

    def simulate(
        self,
        w0: torch.Tensor,
        t_final: float,
        record_every: float,
        progress: Callable[[int], None] | None = None,
    ) -> Trajectory:
        """Integrate from ``w0`` (``[batch, N, N]``) to ``t_final``, recording every ``record_every``.

        ``t_final`` and ``record_every`` must be multiples of ``dt``. The returned trajectory holds the
        initial state and every recorded frame: times ``0, record_every, ..., t_final``. ``progress`` is
        called with the number of steps done after each recorded frame (for progress bars). Raises
        :class:`SolverError` if the solution becomes non-finite.
        """
        self._check_field(w0)
        steps_per_record = _as_multiple(record_every, self.dt, "record_every")
        n_records = _as_multiple(t_final, record_every, "t_final (in units of record_every)")
        ops = self._ops(w0.device, w0.dtype)
        frames = torch.empty((*w0.shape[:-2], n_records + 1, *ops.shape), dtype=w0.dtype, device=w0.device)
        frames[..., 0, :, :] = w0
        w_hat = torch.fft.rfft2(w0.reshape(-1, *ops.shape))
        for r in range(1, n_records + 1):
            for _ in range(steps_per_record):
                self._step_spectral(w_hat, ops)
            frames[..., r, :, :] = torch.fft.irfft2(w_hat, s=ops.shape).reshape(w0.shape)
            if not torch.isfinite(frames[..., r, :, :]).all():
                raise SolverError(
                    f"NavierStokes2D: solution became non-finite at t = {r * record_every:g} "
                    f"(dt = {self.dt:g} too large for resolution {self.resolution}?)"
                )
            if progress is not None:
                progress(r * steps_per_record)
        times = torch.arange(n_records + 1, dtype=torch.float64) * (steps_per_record * self.dt)
        return Trajectory(vorticity=frames, times=times)


def central_time_derivative(frames: torch.Tensor, dt: float, time_dim: int = -3) -> torch.Tensor:
    """Second-order central differences ``(w[k+1] - w[k-1]) / (2 dt)`` at the interior frames."""
    n = frames.shape[time_dim]
    if n < 3:
        raise SolverError(f"central_time_derivative needs at least 3 frames, got {n}")
    return (frames.narrow(time_dim, 2, n - 2) - frames.narrow(time_dim, 0, n - 2)) / (2.0 * dt)


def _as_multiple(value: float, unit: float, name: str) -> int:
    """``value / unit`` as an integer, or a SolverError if it is not one (to a relative 1e-9)."""
    ratio = value / unit
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise SolverError(f"NavierStokes2D: {name} = {value:g} is not a positive multiple of {unit:g}")
    return int(count)
