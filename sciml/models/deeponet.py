r"""DeepONet: the classic branch-trunk operator network.

Lu et al., "Learning nonlinear operators via DeepONet based on the universal approximation theorem of
operators", Nature Machine Intelligence 3, 2021. For an input function u observed at fixed sensors
:math:`x_1, \dots, x_m` and an output location :math:`y`,

.. math::
    G(u)(y) \approx \sum_{k=1}^{p} b_k\big(u(x_1), \dots, u(x_m)\big)\, t_k(y) + b_0,

with the branch net :math:`b` (an MLP on the sensor values) and the trunk net :math:`t` (an MLP on the
coordinates). Here the sensors are an ``s x s`` grid: an input at another resolution is resampled to it
(area-averaged when coarser, bilinear when finer), and the trunk is evaluated at the cell positions of
the output grid, so the model predicts at any resolution. On periodic boxes the trunk sees the periodic
features :math:`(\sin 2\pi y_i/L_i, \cos 2\pi y_i/L_i)` so that its output is periodic too.
Each output channel has its own p branch coefficients and shares the trunk basis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sciml.errors import ConfigError
from sciml.models.grid import grid_coordinates
from sciml.models.registry import ModelContext, register_model

_ACTIVATIONS = {"gelu": nn.GELU, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


def _mlp(sizes: Sequence[int], activation: type[nn.Module], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class DeepONet(nn.Module):
    """Branch on ``sensors x sensors`` samples of the input, trunk on output coordinates (2D grids)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        sensors: int = 16,
        basis: int = 64,
        branch_widths: Sequence[int] = (256, 256),
        trunk_widths: Sequence[int] = (128, 128),
        activation: str = "gelu",
        periodic: bool = True,
        domain_lengths: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"deeponet: activation {activation!r} is not one of {sorted(_ACTIVATIONS)}")
        if sensors < 2 or basis < 1:
            raise ConfigError(f"deeponet: sensors ({sensors}) must be >= 2 and basis ({basis}) >= 1")
        act = _ACTIVATIONS[activation]
        self.sensors, self.basis, self.out_channels = sensors, basis, out_channels
        self.periodic = periodic
        self.register_buffer("lengths", torch.tensor([float(v) for v in domain_lengths]))
        self.branch = _mlp(
            [in_channels * sensors * sensors, *branch_widths, basis * out_channels], act, False
        )
        trunk_in = 4 if periodic else 2
        self.trunk = _mlp([trunk_in, *trunk_widths, basis], act, True)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def coordinates(self, shape: tuple[int, int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """What the trunk is fed, one row per output point ``(i, j)`` (row-major): ``[H*W, 4]`` Fourier
        features ``sin, cos(2 pi i / H), sin, cos(2 pi j / W)`` on a periodic box, else ``[H*W, 2]`` points
        ``(i L_1 / H, j L_2 / W)`` (:func:`sciml.models.grid.grid_coordinates`)."""
        if self.periodic:
            channels = grid_coordinates(shape, "fourier", dtype=dtype, device=device)
        else:
            channels = grid_coordinates(shape, "periodic", self.lengths, dtype=dtype, device=device)
        return channels.movedim(0, -1).reshape(-1, channels.shape[0]).contiguous()  # rows for the Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C_in, H, W] -> [B, C_out, H, W]``."""
        b, _, h, w = x.shape
        s = self.sensors
        if (h, w) == (s, s):
            sensed = x
        elif h >= s and w >= s:
            sensed = F.adaptive_avg_pool2d(x, (s, s))
        else:
            sensed = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        coeff = self.branch(sensed.reshape(b, -1)).reshape(b, self.out_channels, self.basis)
        basis = self.trunk(self.coordinates((h, w), x.device, x.dtype))  # [H*W, p]
        out = torch.einsum("bop,np->bon", coeff, basis) / math.sqrt(self.basis)
        return out.reshape(b, self.out_channels, h, w) + self.bias.reshape(1, -1, 1, 1)


@register_model("deeponet")
def build_deeponet(
    context: ModelContext,
    *,
    sensors: int = 16,
    basis: int = 64,
    branch_widths: Sequence[int] = (256, 256),
    trunk_widths: Sequence[int] = (128, 128),
    activation: str = "gelu",
) -> nn.Module:
    """DeepONet for 2D fields; periodic trunk features when the data are periodic on every axis."""
    if context.n_dims != 2:
        raise ConfigError(f"deeponet: 2D grids only, got {context.n_dims} spatial dims")
    periodic = all(context.periodic) if context.periodic else True  # unknown: assume a periodic box
    return DeepONet(
        context.in_channels,
        context.out_channels,
        sensors=sensors,
        basis=basis,
        branch_widths=tuple(branch_widths),
        trunk_widths=tuple(trunk_widths),
        activation=activation,
        periodic=periodic,
        domain_lengths=context.domain_lengths or (1.0, 1.0),
    )
