r"""Initial mixture frequencies of the GP solver from the spectrum of the problem's data.

Frequencies are in **cycles per unit length** (the ``mu`` of :mod:`sciml.solvers.gp_kernels`: a component
:math:`\cos(2\pi\mu d)`; ``sin(100 x)`` has :math:`\mu = 100 / 2\pi \approx 15.9`). The grid resolves
frequencies up to its Nyquist limit :math:`1 / (2h)`, :math:`h` the spacing.

For each dimension :math:`d` the spectrum is measured on the collocation grid along that dimension, from two
signals:

* the source term: the residual at :math:`u \equiv 0` (for :math:`u_{xx} = f` it is :math:`-f`), which
  weights each frequency of the solution by the symbol of the operator and so shows high frequencies clearly;
* the boundary data, through its transfinite interpolation into the grid (in D >= 2 its lines along
  :math:`d` carry the Dirichlet data of the faces; the data of an advection problem is all in there).

Each 1-D line of a signal along :math:`d` is detrended (the line through its end values is removed, so that
the
periodic extension has no jump), multiplied by a 4-term Blackman-Harris window (its sidelobes stay below the
levels used here, its main lobe reaches 4 bins either side) and zero-padded 8 times; the power is averaged
over
the lines and the amplitude normalised to its maximum; the two signals are combined by their maximum.
From that amplitude spectrum :math:`A(f)`:

* ``peaks``: up to ``Q // 3`` local maxima with :math:`A \ge 10^{-2}`, at least three frequency bins apart;
* ``top``: the highest frequency with :math:`A \ge 10^{-3}`, less the half-width of the window's main lobe
  at that level (3.66 bins of :math:`1/(nh)`; otherwise a short line, e.g. 24 points, would see a 3-cycle
  mode as reaching 6.6 cycles), and not below the highest peak;
* the band covered by the prior: :math:`[0, \min(1.25\,\mathrm{top} + 1/\ell, f_\mathrm{Nyquist})]`,
  :math:`\ell` the side of the box.

The mixture (:func:`initialise_mixture`) puts one component on each peak with the spectral width of the box
(:math:`1/\ell`, the resolution of a finite interval) and spreads the others uniformly over the band, each as
wide as their spacing (the paper's rule for ``linspace(0, 1, Q) * freq_scale``). The prior deliberately leaves
the frequencies above the band empty: covering the whole Nyquist range lets unresolved frequencies alias into
the solution (rel. L2 1e-2 to 1e-1 instead of 1e-4 on the 1-D cases of ``solvers/gp_hm.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciml.solvers.gp_kernels import SQRT5, GaussianMixtureKernel, StationaryKernel1D, StudentTMixtureKernel

logger = logging.getLogger(__name__)

__all__ = ["FrequencyBand", "initialise_mixture", "measure_bands"]

PEAK_LEVEL = 1e-2
TOP_LEVEL = 1e-3
BAND_FACTOR = 1.25
PADDING = 8
#: half-width of the window's main lobe at ``TOP_LEVEL`` of its peak, in bins of 1 / (n h) (measured: 3.66)
LOBE_BINS = 3.66
#: 4-term Blackman-Harris window (sidelobes below -92 dB, so below the 1e-3 level of ``top``)
BLACKMAN_HARRIS = (0.35875, -0.48829, 0.14128, -0.01168)


@dataclass(frozen=True)
class FrequencyBand:
    """What the spectrum of one dimension says (cycles per unit length).

    ``peaks``: dominant frequencies, strongest first; ``top``: highest significant frequency (0 when the data
    has no variation along this dimension); ``upper``: upper end of the band the prior covers; ``nyquist``:
    :math:`1/(2h)`; ``resolution``: :math:`1/\\ell` with :math:`\\ell` the side of the box.
    """

    peaks: tuple[float, ...]
    top: float
    upper: float
    nyquist: float
    resolution: float


def _line_spectrum(signal: Tensor, mode: int, spacing: float) -> tuple[Tensor, Tensor] | None:
    """Frequencies and mean power of the detrended, windowed lines of ``signal`` along ``mode``; ``None``
    when the lines are linear (nothing left after detrending) or the signal is zero or not finite."""
    lines = torch.movedim(signal, mode, -1).reshape(-1, signal.shape[mode])
    n = lines.shape[-1]
    scale = float(lines.abs().max()) if lines.numel() else 0.0
    if not math.isfinite(scale) or scale == 0.0:
        return None
    ramp = torch.linspace(0.0, 1.0, n, dtype=lines.dtype, device=lines.device)
    lines = lines - (lines[:, :1] * (1.0 - ramp) + lines[:, -1:] * ramp)
    if float(lines.abs().max()) <= 1e-10 * scale:
        return None
    phase = 2.0 * math.pi * torch.arange(n, dtype=lines.dtype, device=lines.device) / (n - 1)
    window = sum(a * torch.cos(k * phase) for k, a in enumerate(BLACKMAN_HARRIS))
    power = torch.fft.rfft(lines * window, n=PADDING * n).abs().square().mean(0)
    freqs = torch.fft.rfftfreq(PADDING * n, d=spacing, dtype=lines.dtype, device=lines.device)
    return freqs, power


def _peaks(freqs: Tensor, amplitude: Tensor, separation: float, count: int) -> tuple[float, ...]:
    inner = amplitude[1:-1]
    is_peak = (inner > amplitude[:-2]) & (inner >= amplitude[2:]) & (inner >= PEAK_LEVEL)
    index = torch.nonzero(is_peak).reshape(-1) + 1
    index = index[torch.argsort(amplitude[index], descending=True)]
    chosen: list[float] = []
    for f in freqs[index].tolist():
        if all(abs(f - g) > separation for g in chosen):
            chosen.append(f)
        if len(chosen) == count:
            break
    return tuple(chosen)


def measure_bands(
    signals: Sequence[Tensor], spacings: Sequence[float], box: Sequence[tuple[float, float]], n_peaks: int
) -> list[FrequencyBand]:
    """One :class:`FrequencyBand` per dimension from grid-shaped ``signals`` (the residual at u = 0 and the
    boundary lift; all-zero signals are ignored), see the module docstring."""
    bands = []
    for mode, (h, (lo, hi)) in enumerate(zip(spacings, box, strict=True)):
        nyquist, resolution = 0.5 / h, 1.0 / (hi - lo)
        amplitude: Tensor | None = None
        freqs: Tensor | None = None
        for signal in signals:
            spectrum = _line_spectrum(signal.detach(), mode, h)
            if spectrum is None:
                continue
            freqs, power = spectrum
            amp = torch.sqrt(power / power.max())
            amplitude = amp if amplitude is None else torch.maximum(amplitude, amp)
        if amplitude is None or freqs is None:
            bands.append(FrequencyBand((), 0.0, min(resolution, nyquist), nyquist, resolution))
            continue
        n = signals[0].shape[mode]
        peaks = _peaks(freqs, amplitude, 3.0 / (n * h), n_peaks)
        # the window's main lobe smears every line LOBE_BINS bins of 1 / (n h) upwards at the TOP_LEVEL
        raw_top = float(freqs[amplitude >= TOP_LEVEL].max())
        top = max(raw_top - LOBE_BINS / (n * h), max(peaks, default=0.0), 0.0)
        upper = min(BAND_FACTOR * top + resolution, nyquist)
        bands.append(FrequencyBand(peaks, top, upper, nyquist, resolution))
    return bands


def initialise_mixture(kernel: StationaryKernel1D, band: FrequencyBand) -> None:
    """Set the frequencies (and widths) of a StM / GM mixture from ``band``; other kernels are left alone.

    Peaks get one component each, of width ``band.resolution``; the remaining components are spread
    uniformly over ``[0, band.upper]``, each as wide as the spacing. Weights are reset to ``1/Q``.
    """
    if not isinstance(kernel, (StudentTMixtureKernel, GaussianMixtureKernel)):
        return
    q = kernel.n_components
    peaks = list(band.peaks[: max(q - 2, 0)]) if q > 2 else []
    spread = q - len(peaks)
    uniform = torch.linspace(0.0, band.upper, spread, dtype=torch.float64)
    spacing = band.upper / max(spread - 1, 1)
    mu = torch.cat([torch.tensor(peaks, dtype=torch.float64), uniform])
    width = torch.tensor([band.resolution] * len(peaks) + [spacing] * spread, dtype=torch.float64)
    with torch.no_grad():
        kernel.mu.copy_(mu.to(kernel.mu))
        kernel.log_weight.fill_(-math.log(q))
        if isinstance(kernel, StudentTMixtureKernel):  # spectral half-width sqrt(5) r / (2 pi) = width
            kernel.log_rate.copy_(torch.log(2.0 * math.pi * width / SQRT5).to(kernel.log_rate))
        else:  # Gaussian bump of standard deviation = width: e^l = 2 pi^2 width^2
            kernel.log_ls.copy_(torch.log(2.0 * math.pi**2 * width**2).to(kernel.log_ls))
    logger.debug("mixture initialised: peaks %s, band [0, %.4g] cycles per unit length", peaks, band.upper)
