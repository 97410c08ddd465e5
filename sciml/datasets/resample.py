"""Spectral (Fourier) resampling of periodic fields: the one resampling used by the generator and evaluation.

A periodic field sampled at ``n`` points per axis is the trigonometric polynomial
``u(x) = sum_k c_k exp(2 pi i k x / L)`` over the ``n`` wavenumbers ``k`` of its DFT. Resampling to ``m``
points evaluates the same polynomial on the new grid, with the wavenumbers the smaller grid can hold:
``|k| < min(n, m) / 2``. Axes are resampled one after the other (the operation is separable).

Nyquist convention (an even ``min(n, m)``): the mode ``k = min(n, m) / 2`` is ambiguous on the smaller grid
(``cos`` is seen, ``sin`` is not), so

- **down** (``m < n``): the Nyquist mode of the small grid is dropped (set to zero) - the result holds only
  the modes that are unambiguous on it, and is real;
- **up** (``m > n``): the Nyquist coefficient of the coarse grid is split equally between ``+n/2`` and
  ``-n/2`` (as ``scipy.signal.resample`` does), so the fine field equals the coarse one at the coarse points
  (interpolation) and stays real.

Consequences, checked in ``tests/datasets/test_resample.py``: a band-limited field (``|k| < n/2``) resampled
up and back down returns itself to round-off; any field resampled up and subsampled at the coarse points
returns itself to round-off; down-sampling keeps every resolved mode exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sciml.errors import ConfigError


def _resample_last_axis(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """Amplitude-normalized spectrum ``[..., n]`` (``fft(norm="forward")``) moved to ``size`` wavenumbers."""
    n = spectrum.shape[-1]
    smaller = min(n, size)
    positive, negative = (smaller + 1) // 2, (smaller - 1) // 2  # k = 0..positive-1 and k = -negative..-1
    out = spectrum.new_zeros((*spectrum.shape[:-1], size))
    out[..., :positive] = spectrum[..., :positive]
    if negative:
        out[..., size - negative :] = spectrum[..., n - negative :]
    if smaller % 2 == 0 and size > n:  # up: split the coarse Nyquist coefficient over +-n/2
        nyquist = spectrum[..., n // 2] / 2
        out[..., n // 2] = nyquist
        out[..., size - n // 2] = nyquist
    return out


def fourier_resample(
    field: torch.Tensor, shape: int | Sequence[int], ndim: int | None = None
) -> torch.Tensor:
    """Resample the last ``ndim`` (periodic) axes of ``field`` to ``shape`` by spectral interpolation.

    Args:
        field: a real tensor ``[..., n_1, ..., n_d]``.
        shape: the new grid: one size per axis, or one ``int`` for every axis.
        ndim: how many trailing axes are spatial (default: ``len(shape)``, or 2 for an ``int`` shape).

    Returns:
        ``[..., m_1, ..., m_d]`` in the dtype of ``field`` (computed in float64). See the module docstring
        for the Nyquist convention.
    """
    if isinstance(shape, int):
        shape = (shape,) * (ndim or 2)
    shape = tuple(int(m) for m in shape)
    ndim = len(shape) if ndim is None else ndim
    if len(shape) != ndim or ndim > field.dim() or any(m < 1 for m in shape):
        raise ConfigError(
            f"fourier_resample: cannot resample the last {ndim} axes of a field of shape "
            f"{tuple(field.shape)} to {shape}; expected one positive size per spatial axis"
        )
    if tuple(field.shape[field.dim() - ndim :]) == shape:
        return field
    result = field.to(torch.float64)
    for offset, size in enumerate(shape):
        axis = field.dim() - ndim + offset
        if result.shape[axis] == size:
            continue
        spectrum = torch.fft.fft(result.movedim(axis, -1), norm="forward")
        moved = torch.fft.ifft(_resample_last_axis(spectrum, size), norm="forward")
        result = moved.real.movedim(-1, axis)  # each axis maps real fields to real fields
    return result.to(field.dtype)
