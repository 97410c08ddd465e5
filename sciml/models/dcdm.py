"""The CNN of the deep conjugate direction method (DCDM; Kaneda et al., ICML 2023), 2-D and 3-D.

The network ``f`` maps a right-hand side (a residual) ``b`` on the grid to an approximation of ``A^-1 b`` *up
to a constant*: it is trained without solutions, on the scale-invariant loss

    ``L(b) = || b - A f(b) (f(b).b) / (f(b).A f(b)) ||^2 / ||b||^2``

(the residual left by the best multiple of ``f(b)``, in the A-norm sense), and
:func:`sciml.solvers.dcdm.dcdm` uses it for search directions. Its layers follow the paper and the authors'
TensorFlow code (written anew here in PyTorch), with ``C = channels`` (16 in the paper), every convolution
3 wide with zero ("same") padding, ReLU unless said:

* ``h0 = conv(b)`` (linear), ``a = conv(h0)``, ``c = conv(a)``, ``a = conv(c) + a``, ``c = conv(a)``;
* one level down: ``d = avgpool2(c)``, then ``down_blocks`` residual pairs ``d = conv(conv(d)) + d``;
* back up: ``u = upsample2(d) + c`` (nearest), then ``up_blocks`` residual pairs ``u = conv(conv(u)) + u``;
* ``f = conv1x1(u)`` (linear, the paper's final ``Dense(1)``).

The paper's network sees only ``b``. The sample format of the training data (recipe ``kind: poisson_ritz``)
is ``x = [b, cell codes]`` and ``y = A^-1 b`` on the whole grid (cell codes of
:mod:`sciml.operators.poisson`), so that the model can apply ``A`` itself: ``forward(x)`` returns the best
multiple ``f(b) (f.b) / (f.A f)`` (a prediction of ``y``, so the validation error is that of the network's
direction against the exact solution), and :meth:`DCDM.training_loss` is the loss above. The cell codes only
define ``A``; they are not an input of the network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model
from sciml.operators.poisson import AIR, FLUID, SOLID, apply_laplacian, fluid_index


class _ResidualPair(nn.Module):
    """``h -> relu(conv(relu(conv(h)))) + h``."""

    def __init__(self, conv: type[nn.Module], channels: int) -> None:
        super().__init__()
        self.first = conv(channels, channels, 3, padding=1)
        self.second = conv(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(self.second(F.relu(self.first(h)))) + h


class DCDMNet(nn.Module):
    """The paper's CNN ``b [B, 1, *grid] -> f(b) [B, 1, *grid]`` (see the module docstring).

    Args:
        n_dims: 2 or 3 spatial dimensions.
        channels: feature channels of every convolution (16 in the paper).
        down_blocks: residual pairs at half resolution (3 in the paper).
        up_blocks: residual pairs after the upsampling (2 in the paper's 64^3 network, 3 at 128^3).
    """

    def __init__(self, n_dims: int = 2, channels: int = 16, down_blocks: int = 3, up_blocks: int = 2) -> None:
        super().__init__()
        if n_dims not in (2, 3):
            raise ConfigError(f"dcdm: 2-D or 3-D grids only, got {n_dims} spatial dims")
        if channels < 1 or down_blocks < 0 or up_blocks < 0:
            raise ConfigError(
                f"dcdm: channels >= 1, down_blocks >= 0 and up_blocks >= 0 expected, got {channels}, "
                f"{down_blocks}, {up_blocks}"
            )
        conv: type[nn.Module] = nn.Conv2d if n_dims == 2 else nn.Conv3d
        self.n_dims = n_dims
        self.lift = conv(1, channels, 3, padding=1)
        self.fine_a = conv(channels, channels, 3, padding=1)
        self.fine_b = conv(channels, channels, 3, padding=1)
        self.fine_c = conv(channels, channels, 3, padding=1)
        self.fine_d = conv(channels, channels, 3, padding=1)
        self.coarse = nn.Sequential(*[_ResidualPair(conv, channels) for _ in range(down_blocks)])
        self.up = nn.Sequential(*[_ResidualPair(conv, channels) for _ in range(up_blocks)])
        self.project = conv(channels, 1, 1)

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        """``f(b)`` for ``b`` of shape ``[B, 1, *grid]`` (any grid size; odd sizes are pooled with ceil)."""
        h = self.lift(b)
        a = F.relu(self.fine_a(h))
        c = F.relu(self.fine_b(a))
        a = F.relu(self.fine_c(c)) + a
        c = F.relu(self.fine_d(a))
        pool = F.avg_pool2d if self.n_dims == 2 else F.avg_pool3d
        d = self.coarse(pool(c, 2, ceil_mode=True))
        up = F.interpolate(d, scale_factor=2, mode="nearest")
        for axis, size in enumerate(c.shape[2:]):  # odd sizes: the ceil-pooled grid is one cell too long
            up = up.narrow(2 + axis, 0, size)
        return self.project(self.up(up + c))


class DCDM(nn.Module):
    """DCDM's network on samples ``x = [b, cell codes]`` (see the module docstring).

    ``forward(x)`` is the best multiple of ``f(b)`` in the A-norm, ``training_loss`` the paper's
    scale-invariant loss (the Trainer calls it: :class:`~sciml.models.registry.ModelDefinedLoss`), and
    :meth:`direction` gives :func:`sciml.solvers.dcdm.dcdm` its search directions on a scene.
    """

    def __init__(self, n_dims: int = 2, channels: int = 16, down_blocks: int = 3, up_blocks: int = 2) -> None:
        super().__init__()
        self.net = DCDMNet(n_dims, channels, down_blocks, up_blocks)

    @staticmethod
    def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim not in (4, 5) or x.shape[1] != 2:
            raise ConfigError(f"dcdm: input must be [B, 2 (b, cell codes), *grid], got {tuple(x.shape)}")
        cells = x[:, 1:2]
        if not bool(((cells == SOLID) | (cells == FLUID) | (cells == AIR)).all()):
            raise ConfigError(
                f"dcdm: channel 1 of the input must hold cell codes {SOLID}, {FLUID}, {AIR}; found other "
                "values (was the input normalized? set data.normalize: false)"
            )
        return x[:, :1], cells

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(b) (f.b) / (f.A f)`` on the fluid cells (0 elsewhere), ``[B, 1, *grid]``."""
        b, cells = self._split(x)
        f = self.net(b) * (cells == FLUID).to(b.dtype)
        dims = tuple(range(1, f.ndim))
        f_b = (f * b).sum(dim=dims, keepdim=True)
        f_A_f = (f * apply_laplacian(f, cells)).sum(dim=dims, keepdim=True)
        return f * f_b / f_A_f.clamp_min(torch.finfo(f.dtype).tiny)

    def training_loss(self, x: torch.Tensor, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The paper's loss ``||b - A p||^2 / ||b||^2`` of the prediction ``p = forward(x)``, batch mean.

        Invariant to the scale of ``f`` since ``p`` is; ``y`` (the exact solution) is not used.
        """
        b, cells = self._split(x)
        residual = b - apply_laplacian(prediction.to(b.dtype), cells)
        dims = tuple(range(1, b.ndim))
        return (residual.square().sum(dim=dims) / b.square().sum(dim=dims).clamp_min(1e-30)).mean()

    def direction(self, cells: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The search-direction map of :func:`sciml.solvers.dcdm.dcdm` on a scene: a fluid-cell vector ``r``
        (unit norm) -> ``f`` of ``r`` spread on the grid and scaled to unit RMS (as the training data are),
        read back on the fluid cells (float64)."""
        cells = np.asarray(cells)
        index = fluid_index(cells)
        parameter = next(self.net.parameters(), torch.zeros((), dtype=torch.float64))
        scale = float(np.sqrt(index.size))

        def apply(r: np.ndarray) -> np.ndarray:
            grid = np.zeros(cells.size, dtype=np.float32)
            grid[index] = r * scale
            b = torch.from_numpy(grid.reshape(1, 1, *cells.shape)).to(parameter.device, parameter.dtype)
            with torch.no_grad():
                f = self.net(b).reshape(-1).double().cpu().numpy()
            return f[index]

        return apply


@register_model("dcdm")
def build_dcdm(
    context: ModelContext, *, channels: int = 16, down_blocks: int = 3, up_blocks: int = 2
) -> nn.Module:
    """DCDM's CNN for ``poisson_ritz`` data (2 input channels: b and cell codes; 1 output: the solution)."""
    if context.in_channels != 2 or context.out_channels != 1:
        raise ConfigError(
            f"dcdm: needs data of 2 input channels (b, cell codes) and 1 output (the solution), got "
            f"{context.in_channels} -> {context.out_channels} (use a recipe of kind poisson_ritz)"
        )
    return DCDM(context.n_dims, channels, down_blocks, up_blocks)
