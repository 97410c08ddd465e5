r"""Spatiotemporal FNO: trajectory-to-trajectory operators with spectral layers in space and time.

The model of Spectral-Refiner (Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier
Neural Operator for Turbulent Flows", ICLR 2025) maps the ``t_in`` frames of a trajectory to the next
``t_out`` frames at once: the frames are a third axis. One registry name, ``st_fno``, two architectures:

``architecture: "paper"`` (default, :class:`SpaceTimeFNO`): the paper's SFNO as its public code builds it
(torch-cfd @475c738, ``fno/sfno.py``), for one field (vorticity) :math:`w` on the grid :math:`(x, y, t)`.
With :math:`\mathcal{K}` a spectral convolution over :math:`(x, y, t)`,

.. math::
    (\mathcal{K} v)(x, y, t) = \mathcal{F}^{-1}_{(x, y, t) \to s}\big[R_k\,\hat v_k + \delta\,b_k\big],

where :math:`\hat v = \mathcal{F}_{x,y,t} v` (real FFT over time, unnormalized forward transform), the
modes are :math:`-m \le k_x, k_y < m` and :math:`0 \le k_t < m_t` (zero elsewhere), :math:`b` is an
optional spectral bias, and the inverse transform is evaluated on ``s`` time steps (resampling time);

1. lifting: every one of the ``width`` channels is the input plus one positional feature,
   :math:`v_c = w + P_c` with :math:`P = (x, y, t, e^{\beta t}\sin\pi t, e^{\beta t}\cos 2\pi t,
   e^{\beta t}\sin 3\pi t, \dots)` (:func:`positional_features`), then a one-group GroupNorm and a
   pointwise convolution :math:`Q_0`; then a *spectral lifting in time* that resamples the ``t_in``
   frames to ``latent_steps`` frames,
   :math:`v \leftarrow \sigma\big(v(t_{\text{last}}) + \mathrm{MLP}(\mathcal{K}_T v)\big)`;
2. ``n_layers - 1`` layers :math:`v \leftarrow \sigma\big(\mathrm{MLP}(\mathcal{K}_S v) + W v\big)`
   (``n_layers`` counts the lifting's spectral layer, as the reference's ``num_spectral_layers``);
3. output head (OutConv): a pointwise reduction to one channel :math:`r = Q v`, the last input frame
   appended in front in time, :math:`u = [w(t_{\text{in}}), r]` (``latent_steps + 1`` frames), *zero-padded*
   in front by as many frames (time is not periodic), and a 1->1 spectral convolution with spectral bias
   :math:`\mathcal{K}_{\text{out}}` resampled to ``t_out + 1`` frames (plus the padding); its last ``t_out``
   frames are added to the last input frame: :math:`\hat w(t_{\text{in}} + j) = w(t_{\text{in}}) +
   (\mathcal{K}_{\text{out}} u)_j`.

:math:`\mathcal{K}_{\text{out}}` is linear and acts on the output field itself: it is the layer
Spectral-Refiner re-opens without frequency truncation and fits at test time
(:mod:`sciml.models.spectral_refiner`, :mod:`sciml.finetune.spectral_refiner`). The defaults are the paper's
Navier-Stokes setting (modes 12, modes_t 5, width 20, 4 spectral layers, ReLU, beta 0.01, delta 0.1; about
9.24M real parameters, the reference's count). With the reference's weights copied in, the forward agrees
with torch-cfd's bit for bit in float64 (checked when this was written). Not built: the reference's spatial
padding, random spatial features, and the Helmholtz projection for two-component velocity outputs
(``fields`` must be 1).

``architecture: "fno3d"`` (:class:`SpatiotemporalFNO`): neuraloperator's FNO over :math:`(t, x, y)`, every
layer :math:`v \leftarrow \sigma(W v + \mathcal{F}^{-1}[R\cdot\mathcal{F} v])`, the temporal grid resampled
from ``t_in`` to ``t_out`` frames in the last layer, the last input frame added to every output frame; any
number of fields. Its last spectral layer works on hidden channels and is followed by the nonlinear
projection. This was the only architecture before the paper's was added (the zoo's ``st_fno_ns64``).

Both reach Spectral-Refiner only through ``last_spectral_layer`` and ``replace_last_spectral_layer``. Inputs
and outputs follow the windowed-data layout of :class:`sciml.datasets.windows.TimeWindowDataset`:
``[B, C * t_in, X, Y]`` with time-major channels (frame 0 all fields, frame 1 all fields, ...). The name is
``st_fno`` so that it does not clash with neuraloperator's spherical ``SFNO``.
"""

from __future__ import annotations

import math

import torch
from neuralop.models import FNO
from torch import nn
from torch.nn import functional

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model, register_spectral_layer

__all__ = [
    "ARCHITECTURES",
    "SpaceTimeFNO",
    "SpaceTimeSpectralConv",
    "SpatiotemporalFNO",
    "build_st_fno",
    "positional_features",
]

ARCHITECTURES = ("paper", "fno3d")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
PE_TIME_STEPS = 100
"""The positional time of input frame ``j`` (1-based) is ``j / PE_TIME_STEPS`` (the reference's scale)."""


class SpatiotemporalFNO(nn.Module):
    """``[B, C*t_in, X, Y] -> [B, C*t_out, X, Y]`` through an FNO over (t, x, y) with residual last frame.

    The ``fno3d`` architecture (see the module docstring).
    """

    architecture = "fno3d"

    def __init__(
        self,
        fields: int,
        t_in: int,
        t_out: int,
        modes: int,
        modes_t: int,
        width: int,
        n_layers: int,
    ) -> None:
        super().__init__()
        if not 1 <= modes_t <= t_in:
            raise ConfigError(f"st_fno: modes_t must be in [1, t_in = {t_in}], got {modes_t}")
        self.fields, self.t_in, self.t_out = fields, t_in, t_out
        self.fno = FNO(
            n_modes=(modes_t, modes, modes),
            in_channels=fields,
            out_channels=fields,
            hidden_channels=width,
            n_layers=n_layers,
        )

    @property
    def last_spectral_layer(self) -> nn.Module:
        """The output-side spectral convolution over ``(t, x, y)`` (the layer Spectral-Refiner re-opens).

        It maps the latent trajectory on the input grid ``(t_in, X, Y)`` (no domain padding) to the output
        grid ``(t_out, X, Y)`` given as ``output_shape``, and is followed by the channel MLP and the
        projection. :meth:`replace_last_spectral_layer` swaps it.
        """
        return self.fno.fno_blocks.convs[-1]

    def replace_last_spectral_layer(self, layer: nn.Module) -> None:
        """Use ``layer`` instead of :attr:`last_spectral_layer`.

        ``layer(v, output_shape=...)`` maps ``[B, width, t_in, X, Y]`` to ``[B, width, *output_shape]``, and
        ``layer.transform(v, output_shape=...)`` resamples the skip connection the same way, as
        neuraloperator's ``SpectralConv`` does.
        """
        self.fno.fno_blocks.convs[-1] = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the next ``t_out`` frames of every field from the last ``t_in``."""
        b, _, h, w = x.shape
        frames = x.reshape(b, self.t_in, self.fields, h, w)
        volume = frames.permute(0, 2, 1, 3, 4)  # [B, C, t_in, X, Y]
        increment = self.fno(volume, output_shape=(self.t_out, h, w))  # [B, C, t_out, X, Y]
        out = increment.permute(0, 2, 1, 3, 4) + frames[:, -1:]  # residual on the last input frame
        return out.reshape(b, self.t_out * self.fields, h, w)


# ------------------------------------------------------------------------------ the paper's architecture
def _mode_bins(size: int, modes: int, axis: str) -> torch.Tensor:
    """FFT bins of the frequencies ``-modes <= k < modes`` on an axis of ``size`` points, in weight order.

    Weight index ``j < modes`` holds frequency ``j``, index ``modes + j`` frequency ``j - modes``.
    """
    if 2 * modes > size:
        raise ConfigError(
            f"st_fno: {modes} modes per sign on the {axis} axis need at least {2 * modes} grid points, "
            f"got {size}"
        )
    return torch.cat([torch.arange(modes), torch.arange(size - modes, size)])


@register_spectral_layer
class SpaceTimeSpectralConv(nn.Module):
    r"""Spectral convolution over ``(x, y, t)`` with time on the real-FFT axis, optionally with spectral bias.

    ``v [B, C_in, X, Y, T] -> F^{-1}[R_k v_k + delta b_k]`` on ``(X, Y, out_steps)`` (module docstring),
    with unnormalized forward and ``1/(X Y S)`` inverse transforms (FFT norm "backward", the reference's). The
    weight ``R`` is ``[C_in, C_out, 2 m_x, 2 m_y, m_t]`` complex (frequencies ``-m <= k < m`` in x and y,
    see :func:`_mode_bins`; ``0 <= k_t < m_t``), the bias ``b`` ``[2 m_x, 2 m_y, m_t]`` complex, shared by
    the output channels. With ``time_padding`` the input is zero-padded in front by its own length
    ``T`` before the transform, the inverse is taken on ``out_steps + T`` steps and the last ``out_steps``
    are returned, so time is not treated as periodic.

    Args:
        in_channels, out_channels: channels.
        modes_x, modes_y: modes per sign on the spatial axes (``2 m`` frequencies each).
        modes_t: real-FFT bins kept in time (at most ``T // 2 + 1`` of the transformed length are used).
        bias: add the spectral bias ``delta * b`` (initialized to zero).
        delta: the scale of the bias.
        time_padding: zero-pad time in front (see above).
        n_sets: ``None`` for one weight; an integer for that many weight and bias sets stacked in a leading
            axis, sample ``b`` of a batch of ``n_sets`` using set ``b`` (one set: any batch).
        dtype: the real dtype of the parameters (the weight and bias are its complex counterpart).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes_x: int,
        modes_y: int,
        modes_t: int,
        *,
        bias: bool = False,
        delta: float = 1.0,
        time_padding: bool = False,
        n_sets: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        for name, value in (("modes_x", modes_x), ("modes_y", modes_y), ("modes_t", modes_t)):
            if value < 1:
                raise ConfigError(f"st_fno: {name} must be >= 1, got {value}")
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        sets = () if n_sets is None else (int(n_sets),)
        mode_shape = (2 * modes_x, 2 * modes_y, modes_t)
        gain = 0.5 / (in_channels * out_channels)  # the reference's scale: real and imaginary U[0, gain)
        real = gain * torch.rand((*sets, in_channels, out_channels, *mode_shape, 2), dtype=dtype)
        self.weight = nn.Parameter(torch.view_as_complex(real).to(complex_dtype))
        self.bias = nn.Parameter(torch.zeros((*sets, *mode_shape), dtype=complex_dtype)) if bias else None
        self.in_channels, self.out_channels = in_channels, out_channels
        self.modes = (modes_x, modes_y, modes_t)
        self.delta = float(delta)
        self.time_padding = bool(time_padding)
        self.n_sets = n_sets

    def forward(self, v: torch.Tensor, out_steps: int | None = None) -> torch.Tensor:
        """``[B, C_in, X, Y, T] -> [B, C_out, X, Y, out_steps]`` (default ``out_steps``: ``T``)."""
        batch, _, nx, ny, steps = v.shape
        out_steps = steps if out_steps is None else int(out_steps)
        pad = steps if self.time_padding else 0
        if pad:
            v = functional.pad(v, (pad, 0))
        spectrum = torch.fft.rfftn(v, dim=(-3, -2, -1))
        bins_t = min(self.modes[2], spectrum.shape[-1])
        bins_x = _mode_bins(nx, self.modes[0], "x").to(v.device)
        bins_y = _mode_bins(ny, self.modes[1], "y").to(v.device)
        block = spectrum.index_select(-3, bins_x).index_select(-2, bins_y)[..., :bins_t]
        weight = self.weight[..., :bins_t].to(spectrum.dtype)
        if self.n_sets is None or self.n_sets == 1:
            mixed = torch.einsum("bixyt,ioxyt->boxyt", block, weight.reshape(weight.shape[-5:]))
        elif batch == self.n_sets:
            mixed = torch.einsum("bixyt,bioxyt->boxyt", block, weight)
        else:
            raise ConfigError(
                f"SpaceTimeSpectralConv: refined per window for a batch of {self.n_sets}, got {batch} windows"
            )
        if self.bias is not None:
            bias = self.bias[..., :bins_t].to(spectrum.dtype)
            bias = bias.reshape(bias.shape[-3:]) if self.n_sets in (None, 1) else bias[:, None]
            mixed = mixed + self.delta * bias
        out = spectrum.new_zeros((batch, self.out_channels, *spectrum.shape[-3:]))
        out[:, :, bins_x[:, None], bins_y[None, :], :bins_t] = mixed
        field = torch.fft.irfftn(out, s=(nx, ny, out_steps + pad), dim=(-3, -2, -1))
        return field[..., pad:] if pad else field

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, modes(x, y, t)={self.modes}, "
            f"bias={self.bias is not None}, delta={self.delta:g}, time_padding={self.time_padding}, "
            f"n_sets={self.n_sets}"
        )


def positional_features(
    width: int, shape: tuple[int, int, int], beta: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    r"""The ``width`` positional channels ``[1, width, X, Y, T]`` added to the input (the reference's).

    Channels: :math:`x` and :math:`y` (``linspace(0, 1)`` over the grid points), the time
    :math:`t_j = j / 100` of input frame :math:`j = 1..T`, then for :math:`k = 1, \dots, width - 3` the
    time features :math:`e^{\beta t}\sin(\pi k t)` (odd :math:`k`) and :math:`e^{\beta t}\cos(\pi k t)`
    (even :math:`k`), constant in space.
    """
    nx, ny, nt = shape
    x = torch.linspace(0.0, 1.0, nx, dtype=dtype, device=device)
    y = torch.linspace(0.0, 1.0, ny, dtype=dtype, device=device)
    t = torch.arange(1, nt + 1, dtype=dtype, device=device) / PE_TIME_STEPS
    channels = [x[:, None, None].expand(nx, ny, nt), y[None, :, None].expand(nx, ny, nt)]
    series = [t]
    for k in range(1, width - 2):
        wave = torch.sin if k % 2 else torch.cos
        series.append(torch.exp(beta * t) * wave(math.pi * k * t))
    channels += [s[None, None, :].expand(nx, ny, nt) for s in series]
    return torch.stack(channels)[None]


def _channel_mlp(width: int, expansion: int, activation: type[nn.Module]) -> nn.Sequential:
    """Pointwise two-layer MLP ``width -> expansion * width -> width`` over the channels of a 3D field."""
    hidden = expansion * width
    return nn.Sequential(nn.Conv3d(width, hidden, 1), activation(), nn.Conv3d(hidden, width, 1))


class SpaceTimeFNO(nn.Module):
    """``[B, t_in, X, Y] -> [B, t_out, X, Y]``: the Spectral-Refiner paper's SFNO (module docstring).

    Args:
        t_in, t_out: input and output frames (from the data).
        modes: modes per sign in x and y of every spectral layer.
        modes_t: real-FFT time bins of every spectral layer.
        width: hidden channels (also the number of positional channels).
        n_layers: spectral layers, the lifting's included (>= 2).
        latent_steps: frames of the hidden trajectory.
        beta: the exponential rate of the positional time features.
        delta: the scale of the output convolution's spectral bias.
        activation: ``relu``, ``gelu``, ``silu`` or ``tanh``.
        channel_expansion: hidden width factor of the channel MLPs.
        lift_activation: the lifting's MLP and activation (else one pointwise convolution, no activation).
        temporal_padding: zero-pad time in the output convolution (else its time axis is periodic).
    """

    architecture = "paper"
    fields = 1

    def __init__(
        self,
        t_in: int,
        t_out: int,
        modes: int = 12,
        modes_t: int = 5,
        width: int = 20,
        n_layers: int = 4,
        latent_steps: int = 10,
        beta: float = 0.01,
        delta: float = 0.1,
        activation: str = "relu",
        channel_expansion: int = 4,
        lift_activation: bool = True,
        temporal_padding: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"st_fno: activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        checks = (
            (width >= 4, f"width must be >= 4 (x, y, t and at least one time feature), got {width}"),
            (
                n_layers >= 2,
                f"n_layers must be >= 2 (the lifting's spectral layer and one more), got {n_layers}",
            ),
            (latent_steps >= 1 and t_in >= 1 and t_out >= 1, "t_in, t_out and latent_steps must be >= 1"),
            (channel_expansion >= 1, f"channel_expansion must be >= 1, got {channel_expansion}"),
            (
                math.isfinite(beta) and math.isfinite(delta),
                f"beta, delta must be finite, got {beta}, {delta}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"st_fno (paper): {message}")
        for steps, name in ((t_in, "t_in"), (latent_steps, "latent_steps")):
            if modes_t > steps // 2 + 1:
                raise ConfigError(
                    f"st_fno (paper): modes_t = {modes_t} real-FFT time bins need "
                    f"{name} >= {2 * modes_t - 2}, got {steps}"
                )
        act = ACTIVATIONS[activation]
        self.t_in, self.t_out, self.latent_steps = t_in, t_out, latent_steps
        self.width, self.beta = width, float(beta)
        self.norm = nn.GroupNorm(1, width, eps=1e-7)
        self.lift = nn.Conv3d(width, width, 1)
        self.lift_conv = SpaceTimeSpectralConv(width, width, modes, modes, modes_t)
        self.lift_mlp = (
            _channel_mlp(width, channel_expansion, act) if lift_activation else nn.Conv3d(width, width, 1)
        )
        self.lift_act = act() if lift_activation else nn.Identity()
        hidden = n_layers - 1
        self.convs = nn.ModuleList(
            SpaceTimeSpectralConv(width, width, modes, modes, modes_t) for _ in range(hidden)
        )
        self.mlps = nn.ModuleList(_channel_mlp(width, channel_expansion, act) for _ in range(hidden))
        self.skips = nn.ModuleList(nn.Conv3d(width, width, 1) for _ in range(hidden))
        self.act = act()
        self.reduction = nn.Conv3d(width, 1, 1)
        self.out_conv = SpaceTimeSpectralConv(
            1, 1, modes, modes, modes_t, bias=True, delta=delta, time_padding=temporal_padding
        )

    @property
    def last_spectral_layer(self) -> nn.Module:
        """The output head's 1->1 spectral convolution (OutConv), the layer Spectral-Refiner re-opens.

        It maps ``[B, 1, X, Y, latent_steps + 1]`` (the last input frame, then the reduced latent
        trajectory) to ``[B, 1, X, Y, out_steps]`` with ``out_steps = t_out + 1``; its last ``t_out`` steps
        are added to the last input frame. :meth:`replace_last_spectral_layer` swaps it.
        """
        return self.out_conv

    def replace_last_spectral_layer(self, layer: nn.Module) -> None:
        """Use ``layer`` (``layer(u, out_steps=...)`` as :class:`SpaceTimeSpectralConv`) as the OutConv."""
        self.out_conv = layer

    @property
    def out_time_length(self) -> int:
        """Time steps the OutConv transforms: ``latent_steps + 1``, doubled by the zero padding."""
        length = self.latent_steps + 1
        return 2 * length if self.out_conv.time_padding else length

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The reduced latent trajectory ``[B, 1, X, Y, latent_steps]`` of inputs ``[B, t_in, X, Y]``."""
        w = x.permute(0, 2, 3, 1).unsqueeze(1)  # [B, 1, X, Y, t_in]
        v = w + positional_features(self.width, tuple(w.shape[-3:]), self.beta, w.dtype, w.device)
        v = self.lift(self.norm(v))
        v = self.lift_act(v[..., -1:] + self.lift_mlp(self.lift_conv(v, out_steps=self.latent_steps)))
        for conv, mlp, skip in zip(self.convs, self.mlps, self.skips, strict=True):
            v = self.act(mlp(conv(v)) + skip(v))
        return self.reduction(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The next ``t_out`` frames from the last ``t_in``: ``[B, t_in, X, Y] -> [B, t_out, X, Y]``."""
        if x.ndim != 4 or x.shape[1] != self.t_in:
            raise ConfigError(f"st_fno (paper): expected inputs [B, {self.t_in}, X, Y], got {tuple(x.shape)}")
        last = x[:, -1:].permute(0, 2, 3, 1).unsqueeze(1)  # [B, 1, X, Y, 1]
        u = torch.cat([last, self.latent(x)], dim=-1)
        increment = self.out_conv(u, out_steps=self.t_out + 1)[..., -self.t_out :]
        return (last + increment)[:, 0].permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------ registry
_PAPER_ONLY = (
    "latent_steps",
    "beta",
    "delta",
    "activation",
    "channel_expansion",
    "lift_activation",
    "temporal_padding",
)


@register_model("st_fno")
def build_st_fno(
    context: ModelContext,
    *,
    architecture: str = "paper",
    fields: int = 1,
    modes: int = 12,
    modes_t: int = 5,
    width: int = 20,
    n_layers: int = 4,
    latent_steps: int | None = None,
    beta: float = 0.01,
    delta: float = 0.1,
    activation: str = "relu",
    channel_expansion: int = 4,
    lift_activation: bool = True,
    temporal_padding: bool = True,
) -> nn.Module:
    """Spatiotemporal FNO for windowed data of ``fields`` channels per frame (t_in, t_out from the data).

    ``architecture``: ``"paper"`` (:class:`SpaceTimeFNO`, one field; ``latent_steps`` defaults to ``t_in``,
    10 in the paper) or ``"fno3d"`` (:class:`SpatiotemporalFNO`, which uses ``fields``, ``modes``,
    ``modes_t`` (time modes in neuraloperator's convention, at most ``t_in``), ``width`` and ``n_layers``;
    the other arguments must keep their defaults). The defaults are the paper's.
    """
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"st_fno: architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if context.n_dims != 2:
        raise ConfigError(f"st_fno: 2D fields only, got {context.n_dims} spatial dims")
    if fields < 1 or context.in_channels % fields or context.out_channels % fields:
        raise ConfigError(
            f"st_fno: fields={fields} must divide the input ({context.in_channels}) and output "
            f"({context.out_channels}) channels (C * t_in and C * t_out)"
        )
    t_in, t_out = context.in_channels // fields, context.out_channels // fields
    paper_kwargs = {
        "latent_steps": latent_steps,
        "beta": beta,
        "delta": delta,
        "activation": activation,
        "channel_expansion": channel_expansion,
        "lift_activation": lift_activation,
        "temporal_padding": temporal_padding,
    }
    if architecture == "fno3d":
        defaults = build_st_fno.__kwdefaults__
        changed = [k for k in _PAPER_ONLY if paper_kwargs[k] != defaults[k]]
        if changed:
            raise ConfigError(f"st_fno: {', '.join(changed)} only apply to architecture 'paper', not 'fno3d'")
        return SpatiotemporalFNO(fields, t_in, t_out, modes, modes_t, width, n_layers)
    if fields != 1:
        raise ConfigError(
            f"st_fno: the paper architecture predicts one field (vorticity), got fields={fields}; "
            "use architecture 'fno3d' for several fields"
        )
    paper_kwargs["latent_steps"] = t_in if latent_steps is None else latent_steps
    return SpaceTimeFNO(t_in, t_out, modes, modes_t, width, n_layers, **paper_kwargs)
