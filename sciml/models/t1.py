"""Transform Once (T1): a frequency-domain model that transforms its input once and its output once.

Poli, Massaroli, Berto, Park, Yamashita, Ré, Ermon, "Transform Once: Efficient Operator Learning in
Frequency Domain", NeurIPS 2022. Where an FNO layer pays a forward and an inverse FFT per layer, T1 maps the
(lifted) input to an orthonormal spectral basis ONCE, keeps the lowest ``m x m`` block of coefficients and
learns the whole operator on that block:

    z = T[ P [x, grid] ]                  P: Linear(c_in + 2 -> d), T: orthonormal DCT-II (or rfft2)
    X_0 = z[:, :, :m, :m]                 the low-mode block (high modes dropped: keep_high=False)
    X_{l+1} = X_l + S2 . S1 . act( Wc * X_l )          l = 0 .. L-1
        (Wc * X)[b, o, k1, k2] = sum_i X[b, i, k1, k2] Wc[i, o, k1, k2]      per-mode channel mixing
        (S1 . Y)[b, c, k1, k2] = sum_j S1[j, k1, c] Y[b, c, j, k2]           mode mixing along axis 1
        (S2 . Y)[b, c, k1, k2] = sum_j S2[j, k2, c] Y[b, c, k1, j]           mode mixing along axis 2
    c_hat = W2 sin(W1 X_L)                head per frequency, W1: d x h, W2: h x c_out (no bias)
    y = T^{-1}[ zero-pad(c_hat) ]         the single inverse, at the very end

Because T is unitary, a loss on the coefficients equals the loss on the field: ``spectral_loss`` of
``forward_spectral(x)`` against ``transform_target(y)`` is the relative L2 error of ``forward(x)`` against
``y`` (checked in the tests), so training can skip even the final inverse: ``train.loss: spectral`` in a
run config makes the Trainer compare ``forward(x, spectral=True)`` with ``transform_target(y)`` (the targets
are transformed on the fly, outside the autograd graph).

Two implementation choices that change nothing mathematically:

* The lift is applied in coefficient space: T[P [x, g]] = W T[[x, g]] + b T[1], and T[1] is
  ``sqrt(N1 N2)`` at the (0, 0) mode and zero elsewhere, so only ``c_in + 2`` channels are transformed
  instead of ``d``.
* Only the truncated block is ever needed, so the DCT runs as two small matmuls with the cached ``m x N``
  truncated DCT matrices (O(N^2 m), BLAS), and the inverse as their transposes. The FFT-based full
  transform (:func:`dct2` / :func:`idct2`, Makhoul's reordering + FFT + twiddle) computes the full spectrum
  for the targets and for ``forward_spectral``.

Resolution: the coefficients are rescaled by ``sqrt(N_ref / N)`` (``N_ref`` the grid of the context the
model was built for) so that one continuous field gives the same block at any grid; at ``N_ref`` the
transform is exactly orthonormal, and the output is rescaled back, so the model evaluates zero-shot at other
resolutions (the block must fit the grid: ``m <= N`` for the DCT, ``m <= N1`` and ``m <= N2 // 2 + 1`` for
the rfft, else :class:`ConfigError`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sciml.errors import ConfigError
from sciml.models.grid import grid_coordinates
from sciml.models.registry import ModelContext, register_model, register_spectral_layer

__all__ = [
    "T1",
    "OrthoTransform2d",
    "T1Layer2d",
    "build_t1",
    "dct",
    "dct2",
    "dct_matrix",
    "idct",
    "idct2",
    "spectral_loss",
]

TRANSFORMS = ("dct", "rfft")
INITS = ("vp", "vp-stack", "naive")
_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu, "identity": lambda t: t}


# ----------------------------------------------------------------------------------------------- the DCT
def dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last axis (equal to ``scipy.fft.dct(x, type=2, norm="ortho")``).

    ``X_k = a_k sum_n x_n cos(pi k (2n + 1) / (2N))``, ``a_0 = sqrt(1/N)``, ``a_k = sqrt(2/N)``. Computed with
    one length-N FFT (Makhoul 1980): ``v = [x_0, x_2, ..., x_3, x_1]`` (evens, then odds reversed),
    ``X_k = a_k / 2 * 2 Re(exp(-i pi k / 2N) V_k)``.
    """
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spectrum = torch.fft.fft(v, dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    y = 2 * (spectrum * twiddle).real
    scale = torch.full_like(k, math.sqrt(1 / (2 * n)))
    scale[0] = math.sqrt(1 / (4 * n))
    return y * scale


def idct(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct` (the orthonormal DCT-III) along the last axis, with one inverse FFT.

    With ``y`` the unnormalized DCT-II and ``W_k = exp(-i pi k / 2N)``: ``W_k V_k = (y_k - i y_{N-k}) / 2``
    (``y_N = 0``), so ``V = conj(W) (y - i y_rev) / 2``, ``v = Re ifft(V)``; then evens/odds unshuffled.
    """
    n = x.shape[-1]
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    scale = torch.full_like(k, math.sqrt(1 / (2 * n)))
    scale[0] = math.sqrt(1 / (4 * n))
    y = x / scale
    y_rev = torch.cat([torch.zeros_like(y[..., :1]), y[..., 1:].flip(-1)], dim=-1)
    twiddle = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    v = torch.fft.ifft(torch.complex(y, -y_rev) * twiddle / 2, dim=-1).real
    out = torch.empty_like(v)
    half = (n + 1) // 2
    out[..., ::2] = v[..., :half]
    out[..., 1::2] = v[..., half:].flip(-1)
    return out


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2D DCT-II over the last two axes (separable: :func:`dct` along each)."""
    return dct(dct(x).transpose(-1, -2)).transpose(-1, -2)


def idct2(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2`."""
    return idct(idct(x).transpose(-1, -2)).transpose(-1, -2)


def dct_matrix(
    n: int, m: int | None = None, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The first ``m`` rows of the orthonormal DCT-II matrix, ``D[k, j] = a_k cos(pi k (2j + 1) / 2N)``.

    ``D @ x`` gives the ``m`` lowest coefficients of ``x`` (length ``n``); ``D.T @ c`` the field of those
    coefficients with the rest zero (``D D^T = I_m``).
    """
    m = n if m is None else m
    k = torch.arange(m, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * k * (2 * j + 1) / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix.to(dtype=dtype, device=device)


# ------------------------------------------------------------------------------------ the transform layer
@register_spectral_layer
class OrthoTransform2d(nn.Module):
    """The one orthonormal transform of T1 and its inverse, restricted to the low-mode ``m x m`` block.

    ``kind="dct"``: ``block = D1 x D2^T`` (truncated DCT-II matrices), ``field = D1^T block D2``.
    ``kind="rfft"``: ``rfft2(norm="ortho")``, keeping rows ``0..ceil(m/2)-1`` and ``N1-floor(m/2)..N1-1``
    (positive and negative frequencies) and columns ``0..m-1``; complex coefficients.
    Runs in float32/float64 even under autocast (registered as a spectral layer).
    ``ref_points`` (``N1 N2`` of the reference grid) sets the resolution rescaling ``sqrt(N_ref / N)``.
    """

    def __init__(self, modes: int, kind: str = "dct", ref_points: int | None = None) -> None:
        super().__init__()
        if kind not in TRANSFORMS:
            raise ConfigError(f"t1: transform {kind!r} is not one of {', '.join(TRANSFORMS)}")
        self.modes = int(modes)
        self.kind = kind
        self.ref_points = ref_points
        self._matrices: dict[tuple, torch.Tensor] = {}

    def check_grid(self, shape: tuple[int, int]) -> None:
        """Raise :class:`ConfigError` when the ``m x m`` block does not fit a grid of ``shape``."""
        n1, n2 = shape
        m = self.modes
        limit2 = n2 if self.kind == "dct" else n2 // 2 + 1
        if m > n1 or m > limit2:
            raise ConfigError(
                f"t1: modes={m} do not fit the {n1}x{n2} grid with transform {self.kind!r} "
                f"(need modes <= {min(n1, limit2)}); lower modes or use a finer grid"
            )

    def scale(self, shape: tuple[int, int]) -> float:
        """``sqrt(N_ref / N)``: makes the coefficients of one continuous field resolution independent."""
        return 1.0 if self.ref_points is None else math.sqrt(self.ref_points / (shape[0] * shape[1]))

    def _dct_matrix(self, n: int, x: torch.Tensor) -> torch.Tensor:
        key = (n, x.dtype, x.device)
        if key not in self._matrices:
            self._matrices[key] = dct_matrix(n, self.modes, x.dtype, x.device)
        return self._matrices[key]

    def _rows(self, n1: int, device: torch.device) -> torch.Tensor:
        m = self.modes
        return torch.cat([torch.arange(0, (m + 1) // 2), torch.arange(n1 - m // 2, n1)]).to(device)

    def forward(
        self, x: torch.Tensor, inverse: bool = False, shape: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Analysis ``[B, C, N1, N2] -> [B, C, m, m]`` or, with ``inverse=True``, synthesis onto ``shape``."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            if inverse:
                if shape is None:
                    raise ValueError("the inverse transform needs the output grid shape")
                return self._synthesis(x, shape)
            return self._analysis(x)

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[-2], x.shape[-1])
        self.check_grid(shape)
        s = self.scale(shape)
        if self.kind == "dct":
            d1, d2 = self._dct_matrix(shape[0], x), self._dct_matrix(shape[1], x)
            return torch.matmul(torch.matmul(d1, x), d2.transpose(0, 1)) * s
        z = torch.fft.rfft2(x, norm="ortho")
        return z[..., self._rows(shape[0], x.device), : self.modes] * s

    def _synthesis(self, block: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        self.check_grid(shape)
        s = self.scale(shape)
        if self.kind == "dct":
            d1, d2 = self._dct_matrix(shape[0], block), self._dct_matrix(shape[1], block)
            return torch.matmul(torch.matmul(d1.transpose(0, 1), block), d2) / s
        return torch.fft.irfft2(self.pad(block, shape) / s, s=shape, norm="ortho")

    def pad(self, block: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """The full coefficient array of ``shape`` holding ``block`` at the low modes and zeros elsewhere.

        DCT: ``[..., N1, N2]``; rfft: complex ``[..., N1, N2 // 2 + 1]`` (no resolution rescaling here).
        """
        n1, n2 = shape
        m = self.modes
        if self.kind == "dct":
            return F.pad(block, (0, n2 - m, 0, n1 - m))
        top, bottom = block[..., : (m + 1) // 2, :], block[..., (m + 1) // 2 :, :]
        middle = block.new_zeros((*block.shape[:-2], n1 - m, m))
        rows = torch.cat([top, middle, bottom], dim=-2)
        full = torch.cat([rows, block.new_zeros((*block.shape[:-2], n1, n2 // 2 + 1 - m))], dim=-1)
        # the spectrum of a real field is Hermitian in column 0 (and in the Nyquist column for even N2):
        # c[-k1, 0] = conj(c[k1, 0]); project onto it, as irfft2 implicitly does
        mirror = (-torch.arange(n1, device=block.device)) % n1

        def hermitian(col: torch.Tensor) -> torch.Tensor:
            return (col + col[..., mirror, :].conj()) / 2

        if n2 % 2 == 1 or full.shape[-1] == 1:
            return torch.cat([hermitian(full[..., :1]), full[..., 1:]], dim=-1)
        return torch.cat([hermitian(full[..., :1]), full[..., 1:-1], hermitian(full[..., -1:])], dim=-1)

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """The full orthonormal spectrum of a field ``[..., N1, N2]`` (no truncation, no rescaling)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            return dct2(x) if self.kind == "dct" else torch.fft.rfft2(x, norm="ortho")


# ------------------------------------------------------------------------------------------- the layers
def _complex_weight(shape: tuple[int, ...], std: float) -> nn.Parameter:
    """A complex weight stored as real ``[..., 2]`` (real and imaginary parts each ``N(0, std^2)``)."""
    return nn.Parameter(torch.randn(*shape, 2) * std)


class T1Layer2d(nn.Module):
    """One T1 layer on the coefficient block: ``Y = X + S2 . S1 . act(Wc * X)`` (see the module docstring).

    ``Wc`` is ``[d, d, m, m]`` (a channel-mixing matrix per mode), ``S1``, ``S2`` are ``[m, m, d]`` (a dense
    mode-mixing matrix per channel along each axis). Complex weights (stored as real ``[..., 2]``) for the
    rfft variant, where the activation acts on the real and imaginary parts separately.

    Initialization (``init="vp"``, Poli et al. Sec. 3.2), variance preserving for white unit-variance input
    measured in the physical domain: a unitary T gives coefficients of variance 1; keeping ``m1 m2`` of ``N``
    modes, mixing ``d`` channels with weights of variance ``sigma_c^2`` and mapping back (zero-padded) gives
    a field of variance ``(m1 m2 / N) d sigma_c^2``, so ``sigma_c = g sqrt(N / (d m1 m2))`` keeps it at 1
    (the operator's variance per mode ``sigma_A^2 = N / m^2`` for ``d = 1``); a mode-mixing matrix sums ``m``
    terms, so ``sigma_s = g sqrt(1 / m)`` preserves the variance. ``g = 1`` for the DCT: the branch then maps
    unit-variance white input to a variance near 1/2 (GELU's half). ``g = 1/2`` for the DFT as in the paper;
    with complex weights whose real and imaginary parts are each ``N(0, sigma^2)`` every one of the three
    mixings multiplies the variance by ``2 g^2 = 1/2`` while the half spectrum carries twice the modes, so the
    branch ends near 1/8: still O(1), unlike ``init="naive"`` (the reference's: ``sigma_c = 1 / d^2``, the
    FNO-style ``1 / (c_in c_out)`` scale, and ``sigma_s = sqrt(1 / m)``), whose branch is orders of magnitude
    smaller.
    The derivation assumes white input to each layer: after the first layer the field is band-limited to the
    block, so the branch of every later "vp" layer multiplies the variance by about ``N / (2 m^2)`` and the
    block's variance grows geometrically with depth. The small head keeps the output small at
    initialization, but the sin head of a deep stack then sees huge arguments as soon as its weights move,
    and the stack does not train. ``init="vp-stack"`` applies the truncation factor once: the first layer as
    "vp", every later layer (band-limited input, nothing truncated) with ``sigma_c = g sqrt(1 / d)``, which
    keeps the variance of the block. The measured variances and the training runs are in BENCHMARKS.md (T1).
    """

    def __init__(
        self,
        width: int,
        modes: int,
        complex_weights: bool = False,
        activation: str = "gelu",
        init: str = "vp",
        n_points: int = 1,
        band_limited_input: bool = False,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"t1: activation {activation!r} is not one of {', '.join(_ACTIVATIONS)}")
        if init not in INITS:
            raise ConfigError(f"t1: init {init!r} is not one of {', '.join(INITS)}")
        self.complex_weights = complex_weights
        self.act = _ACTIVATIONS[activation]
        d, m = width, modes
        if init in ("vp", "vp-stack"):
            g = 0.5 if complex_weights else 1.0
            truncation = 1.0 if init == "vp-stack" and band_limited_input else n_points / (m * m)
            sigma_c, sigma_s = g * math.sqrt(truncation / d), g * math.sqrt(1 / m)
        else:  # the reference's "naive": the FNO-style 1/d^2 channel scale, 1/sqrt(m) for the mode mixing
            sigma_c, sigma_s = 1 / (d * d), math.sqrt(1 / m)
        if complex_weights:
            self.wc = _complex_weight((d, d, m, m), sigma_c)
            self.s1 = _complex_weight((m, m, d), sigma_s)
            self.s2 = _complex_weight((m, m, d), sigma_s)
        else:
            self.wc = nn.Parameter(torch.randn(d, d, m, m) * sigma_c)
            self.s1 = nn.Parameter(torch.randn(m, m, d) * sigma_s)
            self.s2 = nn.Parameter(torch.randn(m, m, d) * sigma_s)

    def _w(self, p: torch.Tensor) -> torch.Tensor:
        return torch.view_as_complex(p) if self.complex_weights else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, d, m, m] -> [B, d, m, m]``."""
        y = torch.einsum("bixy,ioxy->boxy", x, self._w(self.wc))
        y = torch.complex(self.act(y.real), self.act(y.imag)) if y.is_complex() else self.act(y)
        y = torch.einsum("bcxy,xkc->bcky", y, self._w(self.s1))
        y = torch.einsum("bcxy,ykc->bcxk", y, self._w(self.s2))
        return y + x


class T1(nn.Module):
    """Transform Once (Poli et al., NeurIPS 2022) for 2D fields; the equations are in the module docstring.

    ``forward(x)``: ``[B, C_in, N1, N2] -> [B, C_out, N1, N2]`` in the physical domain (one inverse at the
    end). ``forward_spectral(x)``: the full orthonormal spectrum of that output (zero above the block), to be
    compared with :meth:`transform_target` of the target by :func:`spectral_loss`. A
    :class:`~sciml.models.registry.SpectralLossModel`: the Trainer's ``loss: spectral`` trains it on spectra.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int = 24,
        width: int = 48,
        n_layers: int = 8,
        transform: str = "dct",
        head_width: int = 128,
        activation: str = "gelu",
        init: str = "vp",
        grid_shape: tuple[int, int] = (64, 64),
        head_init_std: float = 1e-8,
    ) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ConfigError(f"t1: transform {transform!r} is not one of {', '.join(TRANSFORMS)}")
        if not isinstance(modes, int) or modes < 1:
            raise ConfigError(f"t1: modes must be a positive integer, got {modes!r}")
        n_points = int(grid_shape[0] * grid_shape[1])
        self.transform = OrthoTransform2d(modes, transform, ref_points=n_points)
        self.transform.check_grid(tuple(grid_shape))
        complex_weights = transform == "rfft"
        self.lift = nn.Linear(in_channels + 2, width)
        self.layers = nn.ModuleList(
            T1Layer2d(width, modes, complex_weights, activation, init, n_points, band_limited_input=i > 0)
            for i in range(n_layers)
        )
        self.w1 = nn.Parameter(torch.randn(width, head_width) * head_init_std)
        self.w2 = nn.Parameter(torch.randn(head_width, out_channels) * head_init_std)
        self.ref_points = n_points
        self._grids: dict[tuple, torch.Tensor] = {}

    def _grid(self, x: torch.Tensor) -> torch.Tensor:
        """What T1 feeds its lift besides the input: the periodic points ``(i / n1, j / n2)`` of the unit
        box, ``[1, 2, n1, n2]``, rounded as the first ``n`` of the ``n + 1`` vertices of ``[0, 1]`` (the
        numbers the shipped weights were trained on; :func:`sciml.models.grid.grid_coordinates`)."""
        n1, n2 = x.shape[-2:]
        key = (n1, n2, x.dtype, x.device)
        if key not in self._grids:
            vertices = grid_coordinates((n1 + 1, n2 + 1), "vertex", dtype=x.dtype, device=x.device)
            self._grids[key] = vertices[None, :, :-1, :-1].contiguous()
        return self._grids[key]

    def _block(self, x: torch.Tensor) -> torch.Tensor:
        """The output's coefficient block ``[B, C_out, m, m]`` (rescaled to the reference grid)."""
        if x.ndim != 4:
            raise ConfigError(f"t1: expected input [B, C, N1, N2], got shape {tuple(x.shape)}")
        grid = self._grid(x).expand(x.shape[0], -1, -1, -1)
        coeffs = self.transform(torch.cat([x, grid], dim=1))  # [B, c_in + 2, m, m]
        # lift in coefficient space: T[W u + b] = W T[u] + b T[1], T[1] = sqrt(N_ref) at mode (0, 0)
        weight = self.lift.weight.to(coeffs.dtype)
        z = torch.einsum("bixy,oi->boxy", coeffs, weight)
        bias = self.lift.bias[:, None, None] * math.sqrt(self.ref_points)
        z = z + F.pad(bias, (0, z.shape[-1] - 1, 0, z.shape[-2] - 1)).to(z.dtype)
        for layer in self.layers:
            z = layer(z)
        w1, w2 = self.w1.to(z.dtype), self.w2.to(z.dtype)
        h = torch.einsum("bdxy,dh->bhxy", z, w1)
        return torch.einsum("bhxy,ho->boxy", torch.sin(h), w2)

    def forward(self, x: torch.Tensor, spectral: bool = False) -> torch.Tensor:
        """The predicted field ``[B, C_out, N1, N2]``: one transform in, one inverse out.

        ``spectral=True``: the full orthonormal spectrum of that field instead, with no inverse transform
        at all (zero above the block; ``[B, C_out, N1, N2]`` for the DCT, ``[B, C_out, N1, N2 // 2 + 1]``
        complex for the rfft). Going through ``forward`` keeps DDP's gradient hooks in place when the
        Trainer trains in the transformed domain (``train.loss: spectral``).
        """
        shape = (x.shape[-2], x.shape[-1])
        block = self._block(x)
        if spectral:
            return self.transform.pad(block / self.transform.scale(shape), shape)
        return self.transform(block, inverse=True, shape=shape)

    def forward_spectral(self, x: torch.Tensor) -> torch.Tensor:
        """The full orthonormal spectrum of :meth:`forward` (no inverse transform at all)."""
        return self.forward(x, spectral=True)

    def transform_target(self, y: torch.Tensor) -> torch.Tensor:
        """The full orthonormal spectrum of a target field (precompute it once to train spectrally)."""
        return self.transform.full(y)

    def transformed_loss(self, pred: torch.Tensor, target: torch.Tensor, n_last: int) -> torch.Tensor:
        """Relative L2 between two spectra of fields whose last grid axis has ``n_last`` points."""
        return spectral_loss(pred, target, self.transform.kind, n_last)

    def spectral_loss(self, x: torch.Tensor, target_coeffs: torch.Tensor) -> torch.Tensor:
        """Relative L2 loss in the transformed domain, equal to the physical one (:func:`spectral_loss`)."""
        return self.transformed_loss(self.forward(x, spectral=True), target_coeffs, x.shape[-1])


def spectral_loss(
    pred: torch.Tensor, target: torch.Tensor, transform: str = "dct", n_last: int | None = None
) -> torch.Tensor:
    """Relative L2 error computed on orthonormal coefficients, per sample and channel, averaged.

    ``mean_{b,c} ||P - T|| / ||T||``. By Parseval this is the physical ``||p - t||_2 / ||t||_2`` (the mean of
    :func:`sciml.metrics.relative_l2`). For the DCT every coefficient counts once. For the rfft, the half
    spectrum stands for its conjugate mirror too, so columns ``1 .. ceil(N2/2) - 1`` count twice (column 0
    and, for even ``N2`` given as ``n_last``, the Nyquist column once).
    """
    if transform not in TRANSFORMS:
        raise ConfigError(f"spectral_loss: transform {transform!r} is not one of {', '.join(TRANSFORMS)}")
    diff = (pred - target).abs().square()
    ref = target.abs().square()
    if transform == "rfft":
        n_cols = target.shape[-1]
        n_last = 2 * (n_cols - 1) if n_last is None else n_last
        weights = torch.full((n_cols,), 2.0, dtype=diff.dtype, device=diff.device)
        weights[0] = 1.0
        if n_last % 2 == 0:
            weights[-1] = 1.0
        diff, ref = diff * weights, ref * weights
    return (diff.sum(dim=(-2, -1)).sqrt() / ref.sum(dim=(-2, -1)).sqrt()).mean()


@register_model("t1")
def build_t1(
    context: ModelContext,
    *,
    modes: int = 24,
    width: int = 48,
    n_layers: int = 8,
    transform: str = "dct",
    head_width: int = 128,
    activation: str = "gelu",
    init: str = "vp",
    head_init_std: float = 1e-8,
) -> nn.Module:
    """Transform Once (Poli et al., NeurIPS 2022) on 2D data: ``modes x modes`` block of DCT-II (or rfft)
    coefficients, ``n_layers`` T1 layers of ``width`` channels, sin head of ``head_width``; ``init`` "vp"
    (variance preserving, the paper's scale in every layer), "vp-stack" (that scale in the first layer
    only, see :class:`T1Layer2d`) or "naive"; ``head_init_std`` the std of the head weights (the paper's
    1e-8)."""
    if context.n_dims != 2:
        raise ConfigError(f"t1: supports 2D grids only, got {context.n_dims} spatial dims")
    for name, value in (("width", width), ("n_layers", n_layers), ("head_width", head_width)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"t1: {name} must be a positive integer, got {value!r}")
    return T1(
        context.in_channels,
        context.out_channels,
        modes=modes,
        width=width,
        n_layers=n_layers,
        transform=transform,
        head_width=head_width,
        activation=activation,
        init=init,
        grid_shape=tuple(context.grid_shape),
        head_init_std=head_init_std,
    )
