r"""Spatiotemporal FNO: trajectory-to-trajectory operator with spectral layers in space and time.

The model of Spectral-Refiner (Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal
Fourier Neural Operator for Turbulent Flows", ICLR 2025) maps the ``t_in`` frames of a trajectory to the
next ``t_out`` frames at once: the frames are a third axis, and every layer is a Fourier layer over
:math:`(t, x, y)`,

.. math::
    v \leftarrow \sigma\big(W v + \mathcal{F}^{-1}_{t,x,y}[R \cdot \mathcal{F}_{t,x,y} v]\big),

with the temporal grid resampled from ``t_in`` to ``t_out`` frames in the last layer (the inverse FFT is
evaluated on the output grid), and the last input frame added back to every output frame (the network
learns the increment). The Fourier layers are neuraloperator's (an FNO over three axes); the name is
``st_fno`` so that it does not clash with neuraloperator's spherical ``SFNO``. The Spectral-Refiner
fine-tuning stage (the last spectral layer re-opened without frequency truncation and fitted at test time
to the :math:`H^{-1}` norm of the Navier-Stokes residual) is :mod:`sciml.finetune.spectral_refiner`; it
reaches the model only through :attr:`SpatiotemporalFNO.last_spectral_layer` and
:meth:`SpatiotemporalFNO.replace_last_spectral_layer`.

Inputs and outputs follow the windowed-data layout of :class:`sciml.datasets.windows.TimeWindowDataset`:
``[B, C * t_in, X, Y]`` with time-major channels (frame 0 all fields, frame 1 all fields, ...).
"""

from __future__ import annotations

import torch
from neuralop.models import FNO
from torch import nn

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model


class SpatiotemporalFNO(nn.Module):
    """``[B, C*t_in, X, Y] -> [B, C*t_out, X, Y]`` through an FNO over (t, x, y) with residual last frame."""

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


@register_model("st_fno")
def build_st_fno(
    context: ModelContext,
    *,
    fields: int = 1,
    modes: int = 12,
    modes_t: int = 3,
    width: int = 20,
    n_layers: int = 3,
) -> nn.Module:
    """Spatiotemporal FNO for windowed data of ``fields`` channels per frame (t_in, t_out from the data)."""
    if context.n_dims != 2:
        raise ConfigError(f"st_fno: 2D fields only, got {context.n_dims} spatial dims")
    if fields < 1 or context.in_channels % fields or context.out_channels % fields:
        raise ConfigError(
            f"st_fno: fields={fields} must divide the input ({context.in_channels}) and output "
            f"({context.out_channels}) channels (C * t_in and C * t_out)"
        )
    return SpatiotemporalFNO(
        fields,
        context.in_channels // fields,
        context.out_channels // fields,
        modes,
        modes_t,
        width,
        n_layers,
    )
