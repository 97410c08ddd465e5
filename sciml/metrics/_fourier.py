"""The spectral core: wavenumber grids, cached Sobolev weights and the weighted sum of ``|FFT(u)|^2``.

With ``N = n_1 ... n_d`` grid points, box lengths ``L_j`` and Fourier coefficients
``c_k = FFT(u)_k / N``, the periodic Sobolev norm is

    ||u||^2_{H^s} = |Omega| * sum_k (alpha + |kappa_k|^2)^s |c_k|^2,   kappa_k = (2 pi k_j / L_j)_j,

summed over the full spectrum. One real FFT (``rfftn``) gives half of it: along the last axis the
columns ``1 .. ceil(n/2) - 1`` stand for themselves and their mirror images (weight 2), the ``0``
column and, for even ``n``, the Nyquist column ``n/2`` only for themselves (weight 1). All constants
(multiplicity, ``|Omega| / N^2``, the Sobolev factor, the cutoff mask) are folded into one weight tensor
built once per (shape, lengths, s, options, device, dtype), so an evaluation is: one ``rfftn``, one
in-place square of its real view and one matrix-vector product with the flattened weights.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from sciml.errors import ConfigError
from sciml.metrics._common import to_trailing


def integer_wavenumbers(n: int, half: bool = False) -> torch.Tensor:
    """Integer wavenumbers of an ``n``-point FFT axis in FFT order (``rfft`` order when ``half``), float64.

    Full axis: ``0, 1, ..., ceil(n/2) - 1, -floor(n/2), ..., -1`` (for even ``n`` the Nyquist index
    ``n/2`` is listed as ``-n/2``; only ``|k|`` matters here). Half axis: ``0, 1, ..., n // 2``.
    """
    if half:
        return torch.arange(n // 2 + 1, dtype=torch.float64)
    return torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)


def half_axis_multiplicity(n: int) -> torch.Tensor:
    """Full-spectrum modes each ``rfft`` column stands for: 1 for ``0`` and Nyquist, else 2."""
    mult = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    mult[0] = 1.0
    if n % 2 == 0:
        mult[-1] = 1.0
    return mult


def wavenumber_grids(sizes: tuple[int, ...]) -> list[torch.Tensor]:
    """Broadcastable integer-wavenumber grids of the ``rfftn`` half-spectrum of a grid of ``sizes``."""
    m = len(sizes)
    grids = []
    for j, n in enumerate(sizes):
        k = integer_wavenumbers(n, half=(j == m - 1))
        shape = [1] * m
        shape[j] = k.numel()
        grids.append(k.reshape(shape))
    return grids


@lru_cache(maxsize=64)
def _weights_float64(
    sizes: tuple[int, ...],
    lengths: tuple[float, ...],
    s: float,
    seminorm: bool,
    cutoff: float | None,
    alpha: float,
) -> torch.Tensor:
    grids = wavenumber_grids(sizes)
    kappa2 = sum((2.0 * math.pi / L * k) ** 2 for k, L in zip(grids, lengths, strict=True))
    if seminorm:
        positive = kappa2 > 0
        w = torch.where(positive, torch.where(positive, kappa2, 1.0) ** s, 0.0)
    else:
        w = (alpha + kappa2) ** s
    if cutoff is not None:
        k2 = sum(k**2 for k in grids)
        w = torch.where(k2 <= cutoff**2, w, 0.0)
    n_points = math.prod(sizes)
    volume = math.prod(lengths)
    w = w * half_axis_multiplicity(sizes[-1]) * (volume / n_points**2)
    if not bool(torch.isfinite(w).all()):
        raise ConfigError(f"Sobolev weights overflow for s={s} on a grid of {sizes} with lengths {lengths}")
    return w


@lru_cache(maxsize=64)
def sobolev_weights(
    sizes: tuple[int, ...],
    lengths: tuple[float, ...],
    s: float,
    seminorm: bool,
    cutoff: float | None,
    alpha: float,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Flattened weights, one per real number of ``view_as_real(rfftn(u))`` (real and imaginary interleaved).

    ``sum(view_as_real(rfftn(u)).reshape(-1)**2 * w) = ||u||^2_{H^s}``; cached per arguments.
    """
    w = _weights_float64(sizes, lengths, s, seminorm, cutoff, alpha)
    w = w.unsqueeze(-1).expand(*w.shape, 2).reshape(-1).to(device=device, dtype=dtype).contiguous()
    if not bool(torch.isfinite(w).all()):
        raise ConfigError(f"Sobolev weights for s={s} on a grid of {sizes} overflow in {dtype}")
    return w


def weighted_sq_sum(spec: torch.Tensor, weights: torch.Tensor, n_spectral_dims: int) -> torch.Tensor:
    """``sum_k w_k |spec_k|^2`` over the last ``n_spectral_dims`` axes of a complex spectrum.

    The spectrum must be a fresh FFT output: without autograd it is squared in place (no temporary).
    """
    lead = spec.shape[: spec.ndim - n_spectral_dims]
    flat = torch.view_as_real(spec).reshape(-1, weights.numel())
    needs_grad = torch.is_grad_enabled() and spec.requires_grad
    sq = flat.square() if needs_grad else flat.square_()
    return torch.mv(sq, weights).reshape(lead)


def check_options(cutoff: float | None, alpha: float) -> tuple[float | None, float]:
    """Validate the cutoff (a non-negative wavenumber magnitude) and the shift ``alpha > 0``."""
    if cutoff is not None:
        cutoff = float(cutoff)
        if not (math.isfinite(cutoff) and cutoff >= 0):
            raise ConfigError(f"cutoff must be a non-negative wavenumber, got {cutoff}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"alpha must be positive and finite, got {alpha} (use seminorm=True for alpha=0)")
    return cutoff, alpha


def spectral_sq_norms(
    u: torch.Tensor,
    s: float,
    lengths: tuple[float, ...],
    dims: tuple[int, ...],
    seminorm: bool = False,
    cutoff: float | None = None,
    alpha: float = 1.0,
) -> torch.Tensor:
    """Squared periodic H^s norms of ``u`` over ``dims``: one value per index of the other axes."""
    m = len(dims)
    u = to_trailing(u, dims)
    sizes = tuple(u.shape[-m:])
    w = sobolev_weights(sizes, lengths, s, seminorm, cutoff, alpha, u.device, u.dtype)
    spec = torch.fft.rfftn(u, dim=tuple(range(-m, 0)))
    return weighted_sq_sum(spec, w, m)


def spectral_pair_sq_norms(
    pred: torch.Tensor,
    target: torch.Tensor,
    s: float,
    lengths: tuple[float, ...],
    dims: tuple[int, ...],
    seminorm: bool = False,
    cutoff: float | None = None,
    alpha: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared periodic H^s norms of ``pred - target`` and of ``target`` (two ``rfftn``, one weight tensor).

    Measured alternatives on CPU (one ``rfftn`` of the stacked pair, or of both fields followed by a
    spectral subtraction) were slower: they add a copy or a complex pass over the spectrum.
    """
    diff = pred - target
    return (
        spectral_sq_norms(diff, s, lengths, dims, seminorm, cutoff, alpha),
        spectral_sq_norms(target, s, lengths, dims, seminorm, cutoff, alpha),
    )
