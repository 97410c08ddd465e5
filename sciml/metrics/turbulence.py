r"""Statistics of 3D velocity fields in a periodic cube: spectrum, dissipation, scales, PDFs.

Velocities are ``[..., 3, N, N, N]`` (components, then x, y, z) on :math:`[0, L)^3` with grid points
:math:`x_i = iL/N`; every statistic is per field (over the leading axes). With Fourier coefficients
:math:`\hat u_{\mathbf n} = \mathrm{FFT}(u)_{\mathbf n}/N^3` and wavenumbers
:math:`\mathbf k = 2\pi\mathbf n/L`:

* :func:`energy_spectrum_3d`: :math:`E(k)` summed over shells :math:`|\mathbf n| \in [n - 1/2, n + 1/2)`,
  divided by the shell width :math:`\Delta k = 2\pi/L` so that :math:`\sum_k E(k)\Delta k = \tfrac12
  \langle|\mathbf u|^2\rangle` exactly (Parseval; for :math:`L = 2\pi` the shell sums themselves).
* :func:`dissipation`: :math:`\varepsilon = 2\nu\langle S_{ij}S_{ij}\rangle`, evaluated mode by mode
  (:math:`S_{ij}S_{ij} = \tfrac12(|k|^2|\hat u|^2 + |\mathbf k\cdot\hat{\mathbf u}|^2)`); for a solenoidal
  field it equals :math:`2\nu\sum k^2 E(k)` up to the shell rounding of :math:`k`.
* :func:`rms_velocity` :math:`u' = \sqrt{2E/3}`, :func:`taylor_microscale`
  :math:`\lambda = \sqrt{15\nu u'^2/\varepsilon}`, :func:`taylor_reynolds_number`
  :math:`Re_\lambda = u'\lambda/\nu`, :func:`kolmogorov_scale` :math:`\eta = (\nu^3/\varepsilon)^{1/4}`.
* :func:`velocity_increment_pdf` (longitudinal increments at a separation) and :func:`vorticity_pdf`.
* Long rollouts: :func:`spectrum_log_distance` of a spectrum from a reference one and
  :func:`first_departure`, the first step where energy or spectrum leave the reference (blow-up, drift).
* Channel flow ``[..., 3, nx, ny, nz]`` (walls normal to y): :func:`mean_streamwise_profile`
  :math:`\langle u\rangle(y)` and :func:`reynolds_stress_profiles` (rms velocities and the Reynolds shear
  stress :math:`-\langle u'v'\rangle(y)`).

This module knows nothing of solvers, models or training.
"""

from __future__ import annotations

import math

import torch

from sciml.errors import ConfigError

__all__ = [
    "dissipation",
    "energy_spectrum_3d",
    "first_departure",
    "kinetic_energy_3d",
    "kolmogorov_scale",
    "mean_streamwise_profile",
    "reynolds_stress_profiles",
    "rms_velocity",
    "spectrum_log_distance",
    "taylor_microscale",
    "taylor_reynolds_number",
    "turbulence_statistics",
    "velocity_increment_pdf",
    "vorticity_3d",
    "vorticity_pdf",
]

_AXES = (-3, -2, -1)


def _check(velocity: torch.Tensor, domain_length: float = 2.0 * math.pi) -> int:
    """The grid size N of a velocity ``[..., 3, N, N, N]``, or a ConfigError naming what was found."""
    if not isinstance(velocity, torch.Tensor) or velocity.ndim < 4 or velocity.shape[-4] != 3:
        shape = tuple(velocity.shape) if isinstance(velocity, torch.Tensor) else type(velocity).__name__
        raise ConfigError(f"turbulence metrics: expected a velocity [..., 3, N, N, N], got {shape}")
    n = velocity.shape[-1]
    if velocity.shape[-3:] != (n, n, n) or n < 2:
        raise ConfigError(
            f"turbulence metrics: expected a cubic grid N x N x N, got {tuple(velocity.shape[-3:])}"
        )
    if not velocity.is_floating_point() or velocity.is_complex():
        raise ConfigError(f"turbulence metrics: expected a real floating velocity, got {velocity.dtype}")
    if not (math.isfinite(domain_length) and domain_length > 0):
        raise ConfigError(f"turbulence metrics: domain_length must be finite and > 0, got {domain_length}")
    return n


def _modes(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer wavenumbers of an ``rfftn`` spectrum (broadcastable) and the column multiplicity (1 or 2)."""
    m = n // 2 + 1
    integer = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64)
    multiplicity = torch.full((m,), 2.0, dtype=torch.float64, device=device)
    multiplicity[0] = 1.0
    if n % 2 == 0:
        multiplicity[-1] = 1.0
    return integer.view(n, 1, 1), integer.view(1, n, 1), integer[:m].abs().view(1, 1, m), multiplicity


def _coefficients(velocity: torch.Tensor) -> torch.Tensor:
    """Fourier coefficients ``rfftn(u) / N^3`` in complex128."""
    n = velocity.shape[-1]
    return torch.fft.rfftn(velocity.to(torch.float64), dim=_AXES) / float(n) ** 3


def kinetic_energy_3d(velocity: torch.Tensor) -> torch.Tensor:
    """``<|u|^2> / 2`` per field ``[...]`` (float64)."""
    _check(velocity)
    return 0.5 * (velocity.to(torch.float64) ** 2).sum(dim=-4).mean(dim=_AXES)


def energy_spectrum_3d(
    velocity: torch.Tensor, domain_length: float = 2.0 * math.pi
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell energy spectrum: wavenumbers ``k`` ``[K]`` (``2 pi n / L``, n = 0 .. K-1) and ``E`` ``[..., K]``.

    Shell n holds the modes with ``|n_vec|`` in ``[n - 1/2, n + 1/2)``; ``E`` is the shell's energy over the
    shell width ``2 pi / L`` (module docstring), float64. ``K = floor(sqrt(3) N / 2 + 1/2) + 1``.
    """
    n = _check(velocity, domain_length)
    nx, ny, nz, multiplicity = _modes(n, velocity.device)
    c = _coefficients(velocity)
    power = 0.5 * (c.real**2 + c.imag**2).sum(dim=-4) * multiplicity
    shell = torch.floor(torch.sqrt(nx**2 + ny**2 + nz**2) + 0.5).long().expand(power.shape[-3:])
    n_shells = int(shell.max()) + 1
    flat = power.reshape(-1, shell.numel())
    spectrum = torch.zeros(flat.shape[0], n_shells, dtype=torch.float64, device=velocity.device)
    spectrum.index_add_(1, shell.reshape(-1), flat)
    dk = 2.0 * math.pi / domain_length
    k = torch.arange(n_shells, dtype=torch.float64, device=velocity.device) * dk
    return k, spectrum.reshape(*power.shape[:-3], n_shells) / dk


def dissipation(
    velocity: torch.Tensor, viscosity: float, domain_length: float = 2.0 * math.pi
) -> torch.Tensor:
    """``2 nu <S_ij S_ij>`` per field ``[...]`` (float64), spectral derivatives (Nyquist modes dropped)."""
    n = _check(velocity, domain_length)
    nx, ny, nz, multiplicity = _modes(n, velocity.device)
    scale = 2.0 * math.pi / domain_length
    ks = []
    for axis in (nx, ny, nz):
        k = axis * scale
        ks.append(torch.where(axis.abs() == n / 2, 0.0, k) if n % 2 == 0 else k)
    c = _coefficients(velocity)
    k2 = ks[0] ** 2 + ks[1] ** 2 + ks[2] ** 2
    along = ks[0] * c[..., 0, :, :, :] + ks[1] * c[..., 1, :, :, :] + ks[2] * c[..., 2, :, :, :]
    power = (c.real**2 + c.imag**2).sum(dim=-4)
    strain_squared = 0.5 * (k2 * power + along.real**2 + along.imag**2) * multiplicity
    return 2.0 * viscosity * strain_squared.sum(dim=_AXES)


def rms_velocity(velocity: torch.Tensor) -> torch.Tensor:
    """``u' = sqrt(2 E / 3)`` (the rms of one component for isotropic turbulence) per field."""
    return torch.sqrt(2.0 * kinetic_energy_3d(velocity) / 3.0)


def taylor_microscale(
    velocity: torch.Tensor, viscosity: float, domain_length: float = 2.0 * math.pi
) -> torch.Tensor:
    """``lambda = sqrt(15 nu u'^2 / eps)`` per field (``inf`` where ``eps = 0``)."""
    eps = dissipation(velocity, viscosity, domain_length)
    u2 = rms_velocity(velocity) ** 2
    return torch.sqrt(15.0 * viscosity * u2 / eps)


def taylor_reynolds_number(
    velocity: torch.Tensor, viscosity: float, domain_length: float = 2.0 * math.pi
) -> torch.Tensor:
    """``Re_lambda = u' lambda / nu`` per field."""
    if not viscosity > 0:
        raise ConfigError(f"taylor_reynolds_number: viscosity must be > 0, got {viscosity}")
    return rms_velocity(velocity) * taylor_microscale(velocity, viscosity, domain_length) / viscosity


def kolmogorov_scale(
    velocity: torch.Tensor, viscosity: float, domain_length: float = 2.0 * math.pi
) -> torch.Tensor:
    """``eta = (nu^3 / eps)^(1/4)`` per field."""
    return (viscosity**3 / dissipation(velocity, viscosity, domain_length)) ** 0.25


def turbulence_statistics(
    velocity: torch.Tensor, viscosity: float, domain_length: float = 2.0 * math.pi
) -> dict[str, float | list[float]]:
    """Averages over every field given (leading axes): energy, u', dissipation, lambda, Re_lambda, eta,
    ``k_max eta`` (``k_max``: the largest wavenumber the 2/3-dealiased grid keeps,
    ``2 pi / L * floor((N-1)/3)``) and the mean spectrum (``wavenumbers``, ``energy_spectrum``), as plain
    floats (e.g. for a dataset card)."""
    n = _check(velocity, domain_length)
    flat = velocity.reshape(-1, 3, n, n, n)
    energy = kinetic_energy_3d(flat)
    eps = dissipation(flat, viscosity, domain_length)
    u_rms = torch.sqrt(2.0 * energy / 3.0)
    lam = torch.sqrt(15.0 * viscosity * u_rms**2 / eps)
    eta = (viscosity**3 / eps) ** 0.25
    k, spectrum = energy_spectrum_3d(flat, domain_length)
    k_max = 2.0 * math.pi / domain_length * ((n - 1) // 3)
    return {
        "energy": float(energy.mean()),
        "u_rms": float(u_rms.mean()),
        "dissipation": float(eps.mean()),
        "taylor_microscale": float(lam.mean()),
        "re_lambda": float((u_rms * lam / viscosity).mean()),
        "kolmogorov_scale": float(eta.mean()),
        "k_max_eta": float(k_max * eta.mean()),
        "wavenumbers": k.tolist(),
        "energy_spectrum": spectrum.mean(dim=0).tolist(),
    }


def vorticity_3d(velocity: torch.Tensor, domain_length: float = 2.0 * math.pi) -> torch.Tensor:
    """``curl u`` ``[..., 3, N, N, N]`` by spectral derivatives (Nyquist modes dropped)."""
    n = _check(velocity, domain_length)
    nx, ny, nz, _ = _modes(n, velocity.device)
    scale = 2.0 * math.pi / domain_length
    kx, ky, kz = (
        torch.where(a.abs() == n / 2, 0.0, a * scale) if n % 2 == 0 else a * scale for a in (nx, ny, nz)
    )
    c = torch.fft.rfftn(velocity.to(torch.float64), dim=_AXES)
    u, v, w = c.unbind(-4)
    curl = 1j * torch.stack([ky * w - kz * v, kz * u - kx * w, kx * v - ky * u], dim=-4)
    return torch.fft.irfftn(curl, s=(n, n, n), dim=_AXES).to(velocity.dtype)


def _density(samples: torch.Tensor, bins: int, limit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram density of ``samples`` on ``[-limit, limit]`` (``bins`` bins): centres and density."""
    if bins < 2 or not limit > 0:
        raise ConfigError(f"PDF needs bins >= 2 and a limit > 0, got {bins}, {limit}")
    edges = torch.linspace(-limit, limit, bins + 1, dtype=torch.float64)
    counts = torch.histc(samples.to(torch.float64).flatten().cpu(), bins=bins, min=-limit, max=limit)
    width = 2.0 * limit / bins
    density = counts / (samples.numel() * width)
    return 0.5 * (edges[1:] + edges[:-1]), density


def velocity_increment_pdf(
    velocity: torch.Tensor, separation: int, bins: int = 101, limit: float = 8.0, normalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """PDF of longitudinal increments ``u_i(x + r e_i) - u_i(x)`` (i = x, y, z pooled), ``r`` = ``separation``
    grid spacings, periodic. With ``normalize`` the increments are divided by their rms first. Returns bin
    centres and densities ``[bins]`` (the mass outside ``[-limit, limit]`` is left out)."""
    n = _check(velocity)
    if not 0 < separation < n:
        raise ConfigError(
            f"velocity_increment_pdf: separation must be in 1 .. {n - 1} grid points, got {separation}"
        )
    increments = torch.cat(
        [
            (
                torch.roll(velocity[..., i, :, :, :], -separation, dims=-3 + i) - velocity[..., i, :, :, :]
            ).flatten()
            for i in range(3)
        ]
    )
    if normalize:
        increments = increments / increments.to(torch.float64).pow(2).mean().sqrt().clamp_min(1e-300)
    return _density(increments, bins, limit)


def vorticity_pdf(
    velocity: torch.Tensor, domain_length: float = 2.0 * math.pi, bins: int = 101, limit: float = 10.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """PDF of the vorticity components (pooled) divided by their rms: bin centres and densities ``[bins]``."""
    omega = vorticity_3d(velocity, domain_length).to(torch.float64)
    scaled = omega / omega.pow(2).mean().sqrt().clamp_min(1e-300)
    return _density(scaled, bins, limit)


# ------------------------------------------------------------------ long rollouts: drift from the reference
def spectrum_log_distance(
    spectra: torch.Tensor, reference: torch.Tensor, shells: tuple[int, int] | None = None
) -> torch.Tensor:
    r"""Mean over shells of :math:`|\ln(E(k) / E_{ref}(k))|`, per spectrum ``[...]`` (float64).

    ``spectra [..., K]`` and ``reference [K]`` are shell spectra (:func:`energy_spectrum_3d`); ``shells``
    ``(first, last)`` bounds the shells compared (default ``1 .. K - 1``: the mean mode left out). A
    spectrum off by a factor ``a`` at every shell is at distance ``|ln a|``; a non-finite or non-positive
    shell makes the distance ``inf``.
    """
    k = reference.shape[-1]
    if spectra.shape[-1] != k:
        raise ConfigError(f"spectrum_log_distance: {spectra.shape[-1]} shells vs {k} in the reference")
    first, last = shells if shells is not None else (1, k - 1)
    if not 0 <= first <= last < k:
        raise ConfigError(f"spectrum_log_distance: shells {shells} outside 0 .. {k - 1}")
    e = spectra[..., first : last + 1].to(torch.float64)
    ref = reference[first : last + 1].to(torch.float64)
    if not bool((ref > 0).all()):
        raise ConfigError(
            "spectrum_log_distance: the reference spectrum must be positive on the shells compared"
        )
    ratio = torch.log(e.clamp_min(1e-300) / ref).abs()
    ratio = torch.where(torch.isfinite(e) & (e > 0), ratio, torch.full_like(ratio, math.inf))
    return ratio.mean(dim=-1)


def first_departure(
    energy: torch.Tensor,
    spectrum_distance: torch.Tensor,
    reference_energy: float,
    energy_tolerance: float = 0.5,
    spectrum_tolerance: float = math.log(2.0),
    blowup_factor: float = 10.0,
) -> dict[str, int | None]:
    r"""When a sequence of statistics leaves the reference: the first (0-based) step that

    * blows up: a non-finite energy, or :math:`E > \mathrm{blowup\_factor}\, E_{ref}`;
    * drifts: :math:`|E / E_{ref} - 1| > \mathrm{energy\_tolerance}` or a spectrum distance
      (:func:`spectrum_log_distance`) above ``spectrum_tolerance`` (default ``ln 2``: off by a factor 2
      on average over the shells).

    ``energy`` and ``spectrum_distance`` are ``[T]``; returns ``{"blowup": step or None, "drift": step or
    None}`` (a blown-up step has drifted too).
    """
    e = energy.to(torch.float64)
    ratio = e / float(reference_energy)
    blown = ~torch.isfinite(e) | (ratio > blowup_factor)
    drifted = blown | ((ratio - 1.0).abs() > energy_tolerance) | ~(spectrum_distance <= spectrum_tolerance)

    def first(mask: torch.Tensor) -> int | None:
        hits = torch.nonzero(mask).flatten()
        return int(hits[0]) if len(hits) else None

    return {"blowup": first(blown), "drift": first(drifted)}


# ------------------------------------------------------------------ channel flow (walls at y = 0, 2 delta)
def _check_channel(velocity: torch.Tensor) -> None:
    if not isinstance(velocity, torch.Tensor) or velocity.ndim < 4 or velocity.shape[-4] != 3:
        shape = tuple(velocity.shape) if isinstance(velocity, torch.Tensor) else type(velocity).__name__
        raise ConfigError(f"channel metrics: expected a velocity [..., 3, nx, ny, nz], got {shape}")
    if not velocity.is_floating_point() or velocity.is_complex():
        raise ConfigError(f"channel metrics: expected a real floating velocity, got {velocity.dtype}")


def _plane_mean(field: torch.Tensor) -> torch.Tensor:
    """Average of ``[..., nx, ny, nz]`` over x, z and every leading axis: a profile ``[ny]``."""
    ny = field.shape[-2]
    return field.to(torch.float64).transpose(-2, -1).reshape(-1, ny).mean(dim=0)


def mean_streamwise_profile(velocity: torch.Tensor) -> torch.Tensor:
    r"""Mean streamwise velocity :math:`\langle u\rangle(y)` ``[ny]`` of a channel flow
    ``[..., 3, nx, ny, nz]`` (x streamwise, y wall-normal, z spanwise; the layout of IFactFormer-m's
    data, read by :class:`~sciml.datasets.readers.numpy_npy.NpyReader` with ``layout="ntxyzc"``),
    averaged over the homogeneous directions x, z and over every leading axis (samples, time)."""
    _check_channel(velocity)
    return _plane_mean(velocity[..., 0, :, :, :])


def reynolds_stress_profiles(velocity: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Second moments of the fluctuations :math:`u_i' = u_i - \langle u_i\rangle(y)` of a channel flow
    ``[..., 3, nx, ny, nz]``, averaged like :func:`mean_streamwise_profile`: the rms velocities
    ``u_rms, v_rms, w_rms`` (:math:`\langle u_i'^2\rangle^{1/2}`) and the Reynolds shear stress
    ``shear`` :math:`-\langle u'v'\rangle(y)`, each ``[ny]`` (float64)."""
    _check_channel(velocity)
    means = [_plane_mean(velocity[..., i, :, :, :]) for i in range(3)]
    fluct = [velocity[..., i, :, :, :].to(torch.float64) - means[i][:, None] for i in range(3)]
    out = {
        name: _plane_mean(f.square()).sqrt()
        for name, f in zip(("u_rms", "v_rms", "w_rms"), fluct, strict=True)
    }
    out["shear"] = -_plane_mean(fluct[0] * fluct[1])
    return out
