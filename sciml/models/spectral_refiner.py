r"""Spectral-Refiner's model: a trained spatiotemporal FNO with its last spectral layer re-opened.

Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent
Flows" (ICLR 2025). The last spectral convolution of a trained ``st_fno`` (its ``last_spectral_layer``) is
replaced by the same layer *without frequency truncation*:

.. math::
    (\mathcal{K} v)(t, x) = \mathcal{F}^{-1}\big[R_k\,\hat v_k + b_k\big],\qquad
    R_k = \begin{cases} R^{\text{trained}}_k & k \text{ among the trained modes}\\ 0 & \text{otherwise}
    \end{cases}

on (up to) every mode of the grid, optionally with one weight set per input window. Which layer that is
depends on the architecture (:mod:`sciml.models.st_fno`):

* ``paper`` (:class:`~sciml.models.st_fno.SpaceTimeFNO`): the output head's linear 1->1 convolution
  (OutConv), as in the paper; :class:`RefinedSpaceTimeSpectralConv` keeps its zero padding in time and its
  spectral bias :math:`b` (the trained :math:`\delta b` copied on the trained modes, zeros elsewhere, with
  :math:`\delta = 1` from then on, as the reference's fine-tuning layer). Its default modes are every mode
  of the output grid: :math:`X/2` and :math:`Y/2` per sign in space and every real-FFT bin of the
  zero-padded time axis, ``latent_steps + 2``.
* ``fno3d`` (:class:`~sciml.models.st_fno.SpatiotemporalFNO`): neuraloperator's last hidden
  ``width x width`` spectral layer, followed by the channel MLP and the nonlinear projection
  (:class:`RefinedSpectralConv`, per-channel bias).

Contract of :func:`reopen_last_spectral_layer`: the returned copy computes exactly what the trained model
computes (trained modes copied, zeros elsewhere, bias kept) until the new weight or bias change; every other
parameter is frozen; the given model is not modified. Fitting the re-opened layer is a procedure, in
:mod:`sciml.finetune.spectral_refiner`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from neuralop.layers.resample import resample
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from sciml.errors import ConfigError
from sciml.models.st_fno import SpaceTimeFNO, SpaceTimeSpectralConv, SpatiotemporalFNO

__all__ = [
    "RefinedSpaceTimeSpectralConv",
    "RefinedSpectralConv",
    "find_st_fno",
    "full_modes",
    "reopen_last_spectral_layer",
]

StFno = SpatiotemporalFNO | SpaceTimeFNO
"""Either architecture of ``st_fno``."""


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


def _embedding(trained: int, modes: int) -> torch.Tensor:
    """Indices, in a weight of ``modes`` per sign, of the frequencies of a weight of ``trained`` per sign."""
    return torch.cat([torch.arange(trained), torch.arange(2 * modes - trained, 2 * modes)])


class RefinedSpaceTimeSpectralConv(SpaceTimeSpectralConv):
    """The paper architecture's OutConv re-opened: more modes, one weight set per refined window (or one).

    A :class:`~sciml.models.st_fno.SpaceTimeSpectralConv` with the trained layer's channels and time padding,
    ``n_sets`` weight and bias sets, the trained weight on the trained frequencies and zeros elsewhere, and
    the trained spectral bias scaled by its ``delta`` (the new layer's ``delta`` is 1, so the bias parameter
    is the bias the layer adds).

    Args:
        trained: the trained OutConv.
        modes: ``(m_t, m_x, m_y)``: real-FFT time bins and modes per sign in x and y, each at least the
            trained layer's.
        n_sets: independent weight/bias sets (sample ``b`` of a batch of ``n_sets`` uses set ``b``).
        dtype: real dtype of the new parameters (the weight and bias are the matching complex dtype).
    """

    def __init__(
        self,
        trained: SpaceTimeSpectralConv,
        modes: Sequence[int],
        n_sets: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        m_t, m_x, m_y = (int(m) for m in modes)
        old_x, old_y, old_t = trained.modes
        if m_t < old_t or m_x < old_x or m_y < old_y:
            raise ConfigError(
                f"spectral_refiner: modes {tuple(modes)} keep fewer modes than the trained layer "
                f"{(old_t, old_x, old_y)} (m_t, m_x, m_y)"
            )
        super().__init__(
            trained.in_channels,
            trained.out_channels,
            m_x,
            m_y,
            m_t,
            bias=trained.bias is not None,
            delta=1.0,
            time_padding=trained.time_padding,
            n_sets=n_sets,
            dtype=dtype,
        )
        ix = _embedding(old_x, m_x)[:, None]
        iy = _embedding(old_y, m_y)[None, :]
        with torch.no_grad():
            self.weight.zero_()
            self.weight[:, :, :, ix, iy, :old_t] = trained.weight.detach().to(self.weight)
            if self.bias is not None:
                self.bias.zero_()
                self.bias[:, ix, iy, :old_t] = trained.delta * trained.bias.detach().to(self.bias)
        self.trained_modes = (old_t, old_x, old_y)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, trained_modes(t, x, y)={self.trained_modes}"


def find_st_fno(model: nn.Module) -> StFno:
    """The one st_fno model (either architecture) in ``model`` (itself or wrapped), or a ConfigError."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"spectral_refiner: expected an st_fno nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, SpatiotemporalFNO | SpaceTimeFNO)]
    if len(found) != 1:
        raise ConfigError(
            f"spectral_refiner: the model must be (or wrap exactly one) st_fno (SpaceTimeFNO or "
            f"SpatiotemporalFNO); {type(model).__name__} holds {len(found)}"
        )
    return found[0]


def full_modes(st: StFno, grid: tuple[int, int]) -> tuple[int, int, int]:
    """Every mode ``(m_t, m_x, m_y)`` the re-opened layer of ``st`` can hold on a spatial ``grid``.

    ``paper``: the real-FFT bins of the OutConv's (zero-padded) time axis and ``X // 2``, ``Y // 2`` modes
    per sign. ``fno3d``: ``(t_in, X, Y)`` in neuraloperator's convention.
    """
    if isinstance(st, SpaceTimeFNO):
        return (st.out_time_length // 2 + 1, int(grid[0]) // 2, int(grid[1]) // 2)
    return (st.t_in, int(grid[0]), int(grid[1]))


def _cast_(model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Move every parameter and buffer to ``device``; real ones to ``dtype``, complex ones to its complex."""
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    for tensor in [*model.parameters(), *model.buffers()]:
        target = complex_dtype if tensor.is_complex() else dtype if tensor.is_floating_point() else None
        tensor.data = tensor.data.to(device=device, dtype=target)


def _check_modes(modes: Sequence[int], trained: tuple[int, ...], limits: tuple[int, ...], what: str) -> None:
    """A ConfigError unless ``modes`` are three integers between ``trained`` and ``limits`` (``what``)."""
    if len(modes) != 3 or not all(isinstance(m, int) and not isinstance(m, bool) for m in modes):
        raise ConfigError(f"spectral_refiner: modes must be three integers (m_t, m_x, m_y), got {modes!r}")
    if any(m < t for m, t in zip(modes, trained, strict=True)) or any(
        m > lim for m, lim in zip(modes, limits, strict=True)
    ):
        raise ConfigError(
            f"spectral_refiner: modes {modes} must lie between the trained layer's {trained} and the grid's "
            f"{limits} ({what})"
        )


def _reopened_layer(st: StFno, grid: tuple[int, int], modes: Sequence[int] | None) -> tuple[int, ...]:
    """Check that ``st``'s last layer can be re-opened with ``modes``; return the modes to use."""
    last = st.last_spectral_layer
    limits = full_modes(st, grid)
    modes = limits if modes is None else tuple(modes)
    if isinstance(st, SpaceTimeFNO):
        if isinstance(last, RefinedSpaceTimeSpectralConv) or not isinstance(last, SpaceTimeSpectralConv):
            raise ConfigError(
                f"spectral_refiner: the OutConv is a {type(last).__name__}, not a trained "
                "SpaceTimeSpectralConv (already re-opened?)"
            )
        trained = (last.modes[2], last.modes[0], last.modes[1])
        _check_modes(modes, trained, limits, "m_t real-FFT time bins, m_x and m_y modes per sign")
        return modes
    if not isinstance(last, SpectralConv):
        raise ConfigError(
            f"spectral_refiner: the last spectral layer is a {type(last).__name__}, not a SpectralConv "
            "(already re-opened?)"
        )
    trained = tuple(_dense_weight(last).shape[2:])
    if len(modes) == 3 and all(isinstance(m, int) and not isinstance(m, bool) for m in modes):
        effective = (modes[0], modes[1], modes[2] // 2 + 1)
        if any(m < t for m, t in zip(effective, trained, strict=True)):
            raise ConfigError(
                f"spectral_refiner: modes {modes} keep fewer modes than the trained layer's {trained} (last "
                "axis in real-FFT columns m_y // 2 + 1)"
            )
    _check_modes(modes, (1, 1, 1), limits, "neuraloperator's convention, the grid is (t_in, X, Y)")
    return modes


def reopen_last_spectral_layer(
    model: nn.Module,
    grid: tuple[int, int],
    modes: Sequence[int] | None = None,
    n_sets: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> nn.Module:
    """A frozen copy of an st_fno model (or of a wrapper of one) with the last spectral layer re-opened.

    Every parameter of the copy is frozen except the new layer's weight and bias (trained modes copied,
    zeros elsewhere), so the copy computes what ``model`` computes until those are changed. ``model``
    itself is not modified.

    Args:
        model: an st_fno model of either architecture, or a module wrapping exactly one (e.g.
            ``Normalized``).
        grid: the spatial grid ``(X, Y)`` of the inputs (bounds the modes).
        modes: ``(m_t, m_x, m_y)``; default every mode of the grid (:func:`full_modes`). Each at least the
            trained layer's and at most the grid's. ``paper``: real-FFT bins of the OutConv's padded time
            axis and modes per sign in x and y (the reference's ``(64, 64, 6)`` at 256^2 is ``(6, 64, 64)``
            here). ``fno3d``: neuraloperator's convention (``m_y // 2 + 1`` real-FFT columns).
        n_sets: independent weight sets (one per window for per-window refinement).
        dtype: float32 or float64, for the copy and its new layer.
        device: where the copy lives (default: where ``model`` is).
    """
    st = find_st_fno(model)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"spectral_refiner: dtype must be float32 or float64, got {dtype}")
    if not isinstance(n_sets, int) or isinstance(n_sets, bool) or n_sets < 1:
        raise ConfigError(f"spectral_refiner: n_sets must be an integer >= 1, got {n_sets!r}")
    modes = _reopened_layer(st, grid, modes)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    refined = copy.deepcopy(model)
    for p in refined.parameters():
        p.requires_grad_(False)
    _cast_(refined, device, dtype)
    st_copy = find_st_fno(refined)
    if isinstance(st_copy, SpaceTimeFNO):
        new_layer: nn.Module = RefinedSpaceTimeSpectralConv(st_copy.out_conv, modes, n_sets, dtype)
    else:
        new_layer = RefinedSpectralConv(st_copy.last_spectral_layer, modes, n_sets=n_sets, dtype=dtype)
    st_copy.replace_last_spectral_layer(new_layer.to(device))
    refined.eval()
    return refined
