"""Radially binned spectra (kinetic energy, enstrophy, any scalar) and integral quantities.

For a field ``f`` on ``N`` periodic grid points with Fourier coefficients ``c_k = FFT(f)_k / N``, the
spectrum in shell ``i`` is

    S(i) = 1/2 * sum_{k in shell i} |c_k|^2,    shell i = {k : i - 1/2 <= |kappa_k| / kappa_0 < i + 1/2},

``kappa_k = (2 pi k_j / L_j)_j`` and ``kappa_0 = 2 pi / max_j L_j`` (on a box of equal sides the shells
are the integer wavenumber magnitudes ``|k|``; shell ``i`` sits at the wavenumber ``i kappa_0``). By
Parseval ``sum_i S(i) = 1/2 mean(f^2)`` when all shells are kept (the default ``n_bins`` reaches the
grid's corner modes); these are shell sums, divide by ``kappa_0`` for a spectral density.
The kinetic-energy spectrum of ``(u, v)`` is ``E = S_u + S_v`` (``sum E = 1/2 mean(u^2 + v^2)``); of the
vorticity ``w``, ``S_w`` is the enstrophy spectrum.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from functools import lru_cache, reduce

import torch

from sciml.errors import ConfigError
from sciml.metrics._common import box_lengths, real_field, spatial_dims, to_trailing
from sciml.metrics._fourier import half_axis_multiplicity, wavenumber_grids


def _sum_of(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of a non-empty iterable of (broadcastable) tensors, left to right (a generator is consumed
    one tensor at a time)."""
    return reduce(operator.add, tensors)


@lru_cache(maxsize=32)
def _shells_float64(sizes: tuple[int, ...], lengths: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell index (int64) and weight ``multiplicity / (2 N^2)`` (float64) of each half-spectrum mode."""
    grids = wavenumber_grids(sizes)
    longest = max(lengths)
    ratio2 = _sum_of([(k * (longest / L)) ** 2 for k, L in zip(grids, lengths, strict=True)])
    shell = torch.floor(torch.sqrt(ratio2) + 0.5).to(torch.int64)
    weight = half_axis_multiplicity(sizes[-1]) / (2.0 * math.prod(sizes) ** 2)
    return shell.expand(ratio2.shape).reshape(-1), weight.expand(ratio2.shape).reshape(-1)


@lru_cache(maxsize=32)
def _shells(
    sizes: tuple[int, ...],
    lengths: tuple[float, ...],
    n_bins: int | None,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    shell, weight = _shells_float64(sizes, lengths)
    n = int(shell.max()) + 1 if n_bins is None else n_bins
    outside = shell >= n
    weight = torch.where(outside, 0.0, weight)  # modes past the last shell add zeros to it
    shell = torch.where(outside, n - 1, shell)
    return shell.to(device), weight.to(device=device, dtype=dtype), n


def default_n_bins(sizes: Sequence[int], lengths: float | Sequence[float] | None = None) -> int:
    """Number of shells that holds every mode of a grid of ``sizes`` (the default ``n_bins``)."""
    sizes_t = tuple(int(n) for n in sizes)
    return int(_shells_float64(sizes_t, box_lengths(lengths, len(sizes_t)))[0].max()) + 1


def shell_wavenumbers(
    n_bins: int, lengths: float | Sequence[float] | None = None, ndim: int = 2
) -> torch.Tensor:
    """Physical wavenumber ``i * 2 pi / max(L)`` of each shell ``i`` (float64)."""
    return torch.arange(n_bins, dtype=torch.float64) * (2.0 * math.pi / max(box_lengths(lengths, ndim)))


def _binned(
    fields: Sequence[torch.Tensor],
    lengths: float | Sequence[float] | None,
    n_bins: int | None,
    dims: int | Sequence[int] | None,
) -> torch.Tensor:
    first = real_field(fields[0])
    fields = [first] + [real_field(f) for f in fields[1:]]
    for f in fields[1:]:
        if f.shape != first.shape:
            raise ConfigError(
                f"spectrum components differ in shape: {tuple(first.shape)} vs {tuple(f.shape)}"
            )
    dtype = fields[0].dtype
    for f in fields[1:]:
        dtype = torch.promote_types(dtype, f.dtype)
    if n_bins is not None and (not isinstance(n_bins, int) or n_bins < 1):
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}")
    dims_t = spatial_dims(first.ndim, dims)
    m = len(dims_t)
    lengths_t = box_lengths(lengths, m)
    moved = [to_trailing(f.to(dtype), dims_t) for f in fields]
    sizes = tuple(moved[0].shape[-m:])
    lead = moved[0].shape[:-m]
    shell, weight, n = _shells(sizes, lengths_t, n_bins, first.device, dtype)
    spectra = (torch.view_as_real(torch.fft.rfftn(f, dim=tuple(range(-m, 0)))) for f in moved)
    power = _sum_of(spec.square().sum(-1).reshape(*lead, -1) for spec in spectra)  # one spectrum at a time
    out = torch.zeros((*lead, n), dtype=dtype, device=first.device)
    return out.index_add_(-1, shell, power * weight)


def scalar_spectrum(
    w: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    n_bins: int | None = None,
    dims: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Radially binned spectrum ``S(i) = 1/2 sum_{k in shell i} |c_k|^2`` of a scalar field, batched.

    ``sum_i S(i) = 1/2 mean(w^2)`` over all shells (the default ``n_bins`` keeps every mode; a smaller
    ``n_bins`` drops the modes beyond). Periodic data only (the FFT of a walled field sees the jump).

    Args:
        w: real field ``[..., *grid]``.
        lengths: box lengths (set the shell width ``2 pi / max(L)``; default 1.0).
        n_bins: number of shells ``0 .. n_bins - 1``.
        dims: spatial axes (default: the last two).

    Returns:
        ``[..., n_bins]``: the non-spatial axes, then the shells.
    """
    return _binned([w], lengths, n_bins, dims)


def vorticity_spectrum(
    w: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    n_bins: int | None = None,
    dims: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Enstrophy spectrum ``Z(i) = 1/2 sum_{k in shell i} |w_k|^2`` of vorticity; ``sum Z = 1/2 mean w^2``."""
    return _binned([w], lengths, n_bins, dims)


def energy_spectrum(
    u: torch.Tensor,
    v: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    n_bins: int | None = None,
    dims: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Kinetic energy spectrum ``E(i) = 1/2 sum_{k in shell i} (|u_k|^2 + |v_k|^2)``, batched.

    Normalized so that ``sum_i E(i) = 1/2 mean(u^2 + v^2)`` (Parseval) when every shell is kept.
    For a third velocity component add its :func:`scalar_spectrum` (same shells).

    Returns:
        ``[..., n_bins]``.
    """
    return _binned([u, v], lengths, n_bins, dims)


def _box_mean_square(fields: Sequence[torch.Tensor], lengths, dims) -> torch.Tensor:
    first = real_field(fields[0])
    dims_t = spatial_dims(first.ndim, dims)
    volume = math.prod(box_lengths(lengths, len(dims_t)))
    return 0.5 * volume * _sum_of([real_field(f).square().mean(dim=dims_t) for f in fields])


def enstrophy(
    w: torch.Tensor, lengths: float | Sequence[float] | None = None, dims: int | Sequence[int] | None = None
) -> torch.Tensor:
    """Enstrophy ``1/2 int_Omega w^2 dx = 1/2 mean(w^2) |Omega|`` per non-spatial index."""
    return _box_mean_square([w], lengths, dims)


def kinetic_energy(
    u: torch.Tensor,
    v: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Kinetic energy ``1/2 int_Omega (u^2 + v^2) dx`` per non-spatial index."""
    return _box_mean_square([u, v], lengths, dims)
