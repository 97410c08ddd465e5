"""The implicit Fourier neural operator (IFNO): one Fourier layer, its weights shared, iterated.

You, Zhang, Ross, Lee, Yu, "Learning deep implicit Fourier neural operators (IFNOs) with applications to
heterogeneous material modeling", CMAME 2022 (arXiv:2203.08205), built on the FNO of Li et al. (ICLR 2021).

With ``h_0 = P(x)`` a point-wise lift to ``width`` channels and ``L = n_layers``,

    h_{l+1} = h_l + (1 / L) GELU(W h_l + K h_l + c),        (K h)^(k) = R(k) h^(k) for |k_i| < modes_i,

the same ``W``, ``R``, ``c`` at every iteration (an explicit Euler step of ``dh/ds = GELU(W h + K h + c)``
on ``s in [0, 1]``), so depth adds no parameters; the output is a point-wise projection ``Q(h_L)``. The
spectral convolution ``K`` is neuraloperator's ``SpectralConv`` (any number of spatial dims).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import Tensor, nn

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model


class ImplicitFNO(nn.Module):
    """``x [B, C_in, *grid] -> [B, C_out, *grid]`` (module docstring)."""

    def __init__(
        self, in_channels: int, out_channels: int, modes: Sequence[int], width: int = 32, n_layers: int = 10
    ) -> None:
        super().__init__()
        n = len(modes)
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]
        self.n_layers = n_layers
        self.lift = nn.Sequential(conv(in_channels, 2 * width, 1), nn.GELU(), conv(2 * width, width, 1))
        self.spectral = SpectralConv(width, width, tuple(modes), bias=False)
        self.pointwise = conv(width, width, 1)  # W h + c
        self.project = nn.Sequential(conv(width, 2 * width, 1), nn.GELU(), conv(2 * width, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``h <- h + GELU(W h + K h + c) / L``, ``L`` times, between the lift and the projection."""
        h = self.lift(x)
        for _ in range(self.n_layers):
            h = h + torch.nn.functional.gelu(self.pointwise(h) + self.spectral(h)) / self.n_layers
        return self.project(h)


@register_model("ifno")
def build_ifno(
    context: ModelContext, *, modes: int | Sequence[int] = 8, width: int = 32, n_layers: int = 10
) -> nn.Module:
    """Implicit FNO (You et al., CMAME 2022): ``modes`` per axis (an int or one per axis), ``width``
    channels, ``n_layers`` iterations of the one shared Fourier layer."""
    n_modes = tuple(int(m) for m in modes) if isinstance(modes, Sequence) else (int(modes),) * context.n_dims
    if len(n_modes) != context.n_dims or context.n_dims not in (1, 2, 3):
        raise ConfigError(
            f"model 'ifno': modes {tuple(n_modes)} for a {context.n_dims}-D grid (1-D to 3-D, one mode count "
            f"per axis)"
        )
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ConfigError(f"model 'ifno': n_layers must be a positive integer, got {n_layers!r}")
    return ImplicitFNO(context.in_channels, context.out_channels, n_modes, width, n_layers)
