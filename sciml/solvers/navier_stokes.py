r"""Pseudo-spectral solver of the 2D incompressible Navier-Stokes equations in vorticity form.

On the periodic box :math:`[0, L)^2` the vorticity :math:`\omega = \partial_x v - \partial_y u` obeys

.. math::
    \partial_t \omega + \mathbf{u}\cdot\nabla\omega = \nu \Delta\omega - \alpha\,\omega + f,
    \qquad -\Delta\psi = \omega,\quad u = \partial_y\psi,\quad v = -\partial_x\psi,

with viscosity :math:`\nu`, linear drag :math:`\alpha` and vorticity forcing :math:`f`. Arrays are laid out
``[batch, x, y]`` with grid points :math:`x_i = i L / N`, as in the FNO data (Li et al., "Fourier Neural
Operator for Parametric Partial Differential Equations", ICLR 2021, whose generator this reproduces with
the ``"cn-euler"`` stepper).

:class:`VorticityEquation2D` splits the equation on the spectrum :math:`\hat\omega` for the IMEX steppers of
:mod:`sciml.solvers.time_stepping` (``"cn-euler"``, ``"heun-cn"``, ``"rk4-cn"``): the linear part
:math:`L\hat\omega = -(\nu|k|^2 + \alpha)\hat\omega` implicitly (Crank-Nicolson sub-steps), advection and
forcing explicitly. The advection term is evaluated in Basdevant's form (Basdevant, J. Comput. Phys. 50,
1983): for a divergence-free velocity,

.. math::
    \mathbf{u}\cdot\nabla\omega = (\partial_{xx} - \partial_{yy})(uv) + \partial_{xy}(v^2 - u^2),

which needs two inverse FFTs (u, v) and two forward FFTs (uv, v^2 - u^2) per evaluation instead of the
usual four and one; the product spectra are dealiased by the 2/3 rule (modes with
:math:`|k_x|, |k_y| < N/3` kept), so that for band-limited fields the two forms agree exactly on the
kept modes.

Forcings are the entries of :data:`FORCINGS` (adding one is one entry), a tensor of values on the grid, or
``None``. :meth:`NavierStokes2D.step` runs the fast in-place stepper, or with ``differentiable=True`` the same
stepper out of place, so that autograd can follow it (as Spectral-Refiner needs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sciml.errors import SolverError
from sciml.solvers.time_stepping import STEPPERS, ImexStepper, Workspace, as_multiple

logger = logging.getLogger(__name__)

__all__ = [
    "FORCINGS",
    "Forcing",
    "NavierStokes2D",
    "Trajectory",
    "VorticityEquation2D",
    "central_time_derivative",
    "gaussian_random_field",
]


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


@dataclass(frozen=True)
class Forcing:
    """A named vorticity forcing: its values on the grid, and the box and drag it comes with by default.

    Attributes:
        field: ``(x, y, wavenumber) -> f`` on the grid coordinates (``wavenumber``: the solver's
            ``kolmogorov_wavenumber``).
        domain_length: the default side L of the box.
        drag: the default linear drag.
    """

    field: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
    domain_length: float = 1.0
    drag: float = 0.0


def _fno_forcing(x: torch.Tensor, y: torch.Tensor, wavenumber: int) -> torch.Tensor:
    """``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``, the forcing of the FNO data (unit box)."""
    phase = 2.0 * math.pi * (x + y)
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


def _kolmogorov_forcing(x: torch.Tensor, y: torch.Tensor, wavenumber: int) -> torch.Tensor:
    """``-k cos(k y)``, the curl of the body force ``sin(k y) x_hat`` (2 pi box)."""
    return -wavenumber * torch.cos(wavenumber * y)


FORCINGS: dict[str, Forcing] = {
    "fno": Forcing(_fno_forcing),
    "kolmogorov": Forcing(_kolmogorov_forcing, domain_length=2 * math.pi, drag=0.1),
}
"""Every named forcing."""


@dataclass
class Trajectory:
    """Recorded vorticity ``[batch, n_frames, N, N]`` and the time of each frame ``[n_frames]``."""

    vorticity: torch.Tensor
    times: torch.Tensor


class VorticityEquation2D:
    r"""The vorticity equation on spectra ``w_hat = rfft2(w)``: :math:`\partial_t\hat\omega = N(\hat\omega) +
    L\hat\omega`, an :class:`~sciml.solvers.time_stepping.ImexEquation`.

    :math:`N(\hat\omega) = -\widehat{\mathbf{u}\cdot\nabla\omega} + \hat f` (Basdevant's form, 2/3 dealiased),
    :math:`L = -(\nu|k|^2 + \alpha)` (diagonal). Every multiplier is computed once (in float64, then cast) for
    one grid, device and dtype. States are spectra ``[..., N, N//2+1]`` of the complex dtype matching
    ``dtype``.

    Args:
        resolution: grid points per side N.
        viscosity: :math:`\nu`.
        domain_length: side L of the box.
        drag: :math:`\alpha`.
        forcing: the vorticity forcing ``[N, N]`` on the grid, or ``None``.
        device: where the states live.
        dtype: float32 or float64, the dtype of the physical fields.

    The in-place evaluation (``explicit_terms(..., out=...)``) keeps work buffers, so one instance must not
    be used from two threads.
    """

    def __init__(
        self,
        resolution: int,
        viscosity: float,
        domain_length: float,
        drag: float,
        forcing: torch.Tensor | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        n, m = resolution, resolution // 2 + 1
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        kx_full = _wavenumbers(n, domain_length, device, torch.float64)[:, None].expand(n, m)
        ky_full = _wavenumbers(n, domain_length, device, torch.float64)[:m].abs()[None, :].expand(n, m)
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
        k_int_y = k_int_x[:m].T
        mask = ((3 * k_int_x < n) & (3 * k_int_y < n)).to(torch.float64)
        # (u_hat, v_hat) = (i k_y, -i k_x) psi_hat with psi_hat = w_hat / |k|^2.
        self.velocity = torch.stack([1j * ky_d * inv_k2, -1j * kx_d * inv_k2]).to(complex_dtype)
        # -(u . grad w)_hat = -[(-kx^2 + ky^2) (uv)_hat + (-kx ky) (v^2 - u^2)_hat], dealiased.
        # Multipliers are stored complex: complex x complex products avoid a real->complex copy per call.
        self.advection = torch.stack([(kx_full**2 - ky_full**2) * mask, kx_d * ky_d * mask]).to(complex_dtype)
        self.linear = -(viscosity * k2) - drag
        """The diagonal of L, float64 (applied in the precision of the state)."""
        self.forcing_hat = (
            None if forcing is None else torch.fft.rfft2(forcing.to(device, torch.float64)).to(complex_dtype)
        )
        self.shape = (n, n)
        self.spectrum_shape = (n, m)
        self.dtype = dtype
        self.complex_dtype = complex_dtype
        self.device = device
        # CPU: trajectories per block of the explicit evaluation, ~2 MiB of spectra per block (cache-sized).
        self.block_trajectories = (
            None if device.type != "cpu" else max(1, (2 << 20) // (2 * n * m * (2 * dtype.itemsize)))
        )
        spectral, physical = ((2, n, m), complex_dtype), ((2, n, n), dtype)
        self._workspace = Workspace(
            device,
            {"velocity_hat": spectral, "velocity": physical, "products": physical, "products_hat": spectral},
        )

    def implicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        """``L w_hat`` (in the precision of ``state``)."""
        return state * self.linear.to(state.dtype.to_real())

    def implicit_solve(self, rhs: torch.Tensor, step: float) -> torch.Tensor:
        """``(I - step L)^-1 rhs`` (L is diagonal)."""
        return rhs / (1.0 - step * self.linear.to(rhs.dtype.to_real()))

    def explicit_terms(self, state: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``-(u . grad w)_hat + f_hat`` of spectra ``[..., N, N//2+1]``.

        Without ``out`` every intermediate is a new tensor (differentiable). With ``out``, ``state`` and
        ``out`` are ``[B, N, N//2+1]`` and every intermediate lives in a work buffer; on the CPU the batch is
        processed in blocks of ``block_trajectories`` trajectories so that a block's transforms and products
        stay in cache.
        """
        if out is None:
            return self._explicit(state, None, {})
        block = self.block_trajectories or state.shape[0]
        for start in range(0, state.shape[0], block):
            part = state[start : start + block]
            self._explicit(part, out[start : start + block], self._workspace(part.shape[0]))
        return out

    def _explicit(
        self, w_hat: torch.Tensor, out: torch.Tensor | None, buffers: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Basdevant's form with 2 inverse + 2 forward real FFTs; each result goes into the buffer of its name
        (or a new tensor when ``buffers`` lacks it) and the sum into ``out`` (or a new tensor)."""
        velocity_hat = torch.mul(w_hat.unsqueeze(-3), self.velocity, out=buffers.get("velocity_hat"))
        u, v = torch.fft.irfft2(velocity_hat, s=self.shape, out=buffers.get("velocity")).unbind(-3)
        products = buffers.get("products")
        if products is None:
            products = torch.stack([u * v, torch.addcmul(v * v, u, u, value=-1.0)], dim=-3)
        else:
            torch.mul(u, v, out=products[:, 0])
            torch.mul(v, v, out=products[:, 1]).addcmul_(u, u, value=-1.0)
        uv_hat, squares_hat = torch.fft.rfft2(products, out=buffers.get("products_hat")).unbind(-3)
        if self.forcing_hat is None:
            result = torch.mul(uv_hat, self.advection[0], out=out)
        else:
            result = torch.addcmul(self.forcing_hat, uv_hat, self.advection[0], out=out)
        return torch.addcmul(result, squares_hat, self.advection[1], out=out)


class NavierStokes2D:
    r"""2D incompressible Navier-Stokes in vorticity form on a periodic square, pseudo-spectral.

    Args:
        resolution: grid points per side N (the solve runs on N x N).
        viscosity: kinematic viscosity :math:`\nu`.
        domain_length: side L of the box. Default: the named forcing's (1 for ``"fno"`` and ``None``, 2 pi
            for ``"kolmogorov"``).
        forcing: a name of :data:`FORCINGS` (``"fno"``: :math:`0.1(\sin 2\pi(x+y) + \cos 2\pi(x+y))`, the
            FNO data; ``"kolmogorov"``: the curl :math:`-k\cos(k y)` of the body force
            :math:`\sin(k y)\,\hat{x}`), ``None``, or a tensor ``[N, N]`` of vorticity forcing values on the
            grid.
        drag: linear drag :math:`\alpha`. Default: the named forcing's (0.1 for ``"kolmogorov"``), else 0.
        dt: time step.
        stepper: a name of :data:`sciml.solvers.time_stepping.STEPPERS` (``"cn-euler"``, ``"heun-cn"``,
            ``"rk4-cn"``).
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
            raise SolverError(
                f"NavierStokes2D: unknown stepper {stepper!r}; expected one of {tuple(STEPPERS)}"
            )
        if isinstance(forcing, str) and forcing not in FORCINGS:
            raise SolverError(
                f"NavierStokes2D: unknown forcing {forcing!r}; "
                f"expected one of {tuple(FORCINGS)}, None or a tensor"
            )
        if isinstance(forcing, torch.Tensor) and tuple(forcing.shape) != (resolution, resolution):
            raise SolverError(
                f"NavierStokes2D: forcing tensor has shape {tuple(forcing.shape)}, "
                f"expected {(resolution, resolution)}"
            )
        named = FORCINGS[forcing] if isinstance(forcing, str) else None
        if domain_length is None:
            domain_length = named.domain_length if named is not None else 1.0
        if drag is None:
            drag = named.drag if named is not None else 0.0
        self.resolution = int(resolution)
        self.viscosity = float(viscosity)
        self.domain_length = float(domain_length)
        self.forcing = forcing
        self.drag = float(drag)
        self.dt = float(dt)
        self.stepper = stepper
        self.kolmogorov_wavenumber = int(kolmogorov_wavenumber)
        self._bound: dict[tuple[torch.device, torch.dtype], tuple[VorticityEquation2D, ImexStepper]] = {}

    # ------------------------------------------------------------------ set-up
    def grid(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Grid coordinates ``[2, N, N]`` (x varies along axis 1, y along axis 2), x_i = i L / N."""
        x = torch.arange(self.resolution, device=device, dtype=dtype) * (self.domain_length / self.resolution)
        return torch.stack(torch.meshgrid(x, x, indexing="ij"))

    def forcing_field(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor | None:
        """The vorticity forcing on the grid ``[N, N]``, or ``None`` when unforced."""
        if self.forcing is None:
            return None
        if isinstance(self.forcing, torch.Tensor):
            return self.forcing.to(device=device, dtype=dtype)
        x, y = self.grid(device, dtype)
        return FORCINGS[self.forcing].field(x, y, self.kolmogorov_wavenumber)

    def _equation_and_stepper(
        self, device: torch.device, dtype: torch.dtype
    ) -> tuple[VorticityEquation2D, ImexStepper]:
        key = (device, dtype)
        if key not in self._bound:
            equation = VorticityEquation2D(
                self.resolution,
                self.viscosity,
                self.domain_length,
                self.drag,
                self.forcing_field(device, torch.float64),
                device,
                dtype,
            )
            stepper = ImexStepper(
                STEPPERS[self.stepper],
                equation,
                self.dt,
                equation.spectrum_shape,
                equation.complex_dtype,
                device,
            )
            self._bound[key] = (equation, stepper)
        return self._bound[key]

    def equation(self, device: torch.device | str, dtype: torch.dtype) -> VorticityEquation2D:
        """The equation's precomputed multipliers for fields on ``device`` in ``dtype`` (cached)."""
        return self._equation_and_stepper(torch.device(device), dtype)[0]

    def time_stepper(self, device: torch.device | str, dtype: torch.dtype) -> ImexStepper:
        """The stepper bound to this equation and ``dt`` for fields on ``device`` in ``dtype`` (cached)."""
        return self._equation_and_stepper(torch.device(device), dtype)[1]

    # ------------------------------------------------------------------ physics
    def velocity(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity ``(u, v)`` of a vorticity field ``[..., N, N]`` (u = psi_y, v = -psi_x, -Lap psi = w)."""
        self._check_field(w)
        equation = self.equation(w.device, w.dtype)
        uv = torch.fft.irfft2(torch.fft.rfft2(w).unsqueeze(-3) * equation.velocity, s=equation.shape)
        return uv[..., 0, :, :], uv[..., 1, :, :]

    def time_derivative(self, w: torch.Tensor) -> torch.Tensor:
        r"""The right-hand side :math:`-u\cdot\nabla w + \nu\Delta w - \alpha w + f` of fields ``[..., N, N]``
        on the grid.

        Evaluated exactly as in a step (pseudo-spectral, 2/3 dealiased advection); differentiable.
        """
        self._check_field(w)
        equation = self.equation(w.device, w.dtype)
        w_hat = torch.fft.rfft2(w)
        rhs = equation.explicit_terms(w_hat) + equation.implicit_terms(w_hat)
        return torch.fft.irfft2(rhs, s=equation.shape)

    def residual(self, w: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
        r"""Pointwise residual :math:`\partial_t w + u\cdot\nabla w - \nu\Delta w + \alpha w - f` on the grid.

        ``w`` and its time derivative ``w_t`` are ``[..., N, N]``; the spatial terms are
        :meth:`time_derivative`. This is the quantity whose :math:`H^{-1}` norm Spectral-Refiner minimizes;
        ``w_t`` can come from :func:`central_time_derivative`. Differentiable.
        """
        self._check_field(w)
        if w_t.shape != w.shape:
            raise SolverError(
                f"NavierStokes2D.residual: w_t has shape {tuple(w_t.shape)}, w {tuple(w.shape)}"
            )
        return w_t - self.time_derivative(w)

    def _check_field(self, w: torch.Tensor) -> None:
        n = self.resolution
        if not isinstance(w, torch.Tensor) or w.ndim < 2 or tuple(w.shape[-2:]) != (n, n):
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise SolverError(f"NavierStokes2D: expected a field [..., {n}, {n}], got {shape}")
        if w.dtype not in (torch.float32, torch.float64):
            raise SolverError(f"NavierStokes2D: expected float32 or float64 vorticity, got {w.dtype}")

    # ------------------------------------------------------------------ stepping
    def step(self, w: torch.Tensor, n_steps: int = 1, *, differentiable: bool = False) -> torch.Tensor:
        """Advance a physical vorticity field ``[..., N, N]`` by ``n_steps`` time steps.

        By default the fast path: the spectrum is stepped in place in work buffers (autograd cannot follow
        it). ``differentiable=True`` runs the same stepper out of place, so gradients flow to ``w``; the two
        agree to rounding.
        """
        self._check_field(w)
        stepper = self.time_stepper(w.device, w.dtype)
        shape = (self.resolution, self.resolution)
        if differentiable:
            w_hat = torch.fft.rfft2(w)
            for _ in range(n_steps):
                w_hat = stepper.step(w_hat)
            return torch.fft.irfft2(w_hat, s=shape)
        if w.requires_grad and torch.is_grad_enabled():
            raise SolverError("NavierStokes2D.step: w requires grad; pass differentiable=True to step it")
        w_hat = torch.fft.rfft2(w.reshape(-1, *shape))
        for _ in range(n_steps):
            stepper.step_(w_hat)
        return torch.fft.irfft2(w_hat, s=shape).reshape(w.shape)

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
        steps_per_record = as_multiple(record_every, self.dt, "NavierStokes2D: record_every", "dt")
        n_records = as_multiple(t_final, record_every, "NavierStokes2D: t_final", "record_every")
        stepper = self.time_stepper(w0.device, w0.dtype)
        shape = (self.resolution, self.resolution)
        frames = torch.empty((*w0.shape[:-2], n_records + 1, *shape), dtype=w0.dtype, device=w0.device)
        frames[..., 0, :, :] = w0
        w_hat = torch.fft.rfft2(w0.reshape(-1, *shape))
        for r in range(1, n_records + 1):
            for _ in range(steps_per_record):
                stepper.step_(w_hat)
            frames[..., r, :, :] = torch.fft.irfft2(w_hat, s=shape).reshape(w0.shape)
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
