"""Latent Spectral Models (LSM) on 2-D grids.

Wu, Hu, Luo, Wang, Long, "Solving High-Dimensional PDEs with Latent Spectral Models", ICML 2023.

The model lifts the input with its grid coordinates, ``v = W_0 [u, x, y]`` (width ``d``), runs a U-Net-like
hierarchical encoder (``DoubleConv`` = (3x3 conv, BatchNorm, ReLU) x 2; max-pool down, bilinear up; widths
``d, 2d, 4d, ...`` doubling per level, the deepest level repeating the width before it: ``d,2d,4d,8d,8d``
for 5 levels) and sends every skip connection through a :class:`NeuralSpectralBlock`:

1. patchify the feature map into ``p1 x p2`` patches; each patch is processed on its own;
2. latent encoder, per head: ``T = softmax(T0 K^T) V + T0``, ``T0 in R^{h x M x d/h}`` learned tokens,
   ``K, V`` from one 1x1 convolution of the patch (no query projection, no ``1/sqrt(d)`` scaling);
3. latent spectral operator, per channel ``c``:
   ``T_c <- sum_{k<K} a_{c,k} sin(k pi T_c / K) + b_{c,k} cos(k pi T_c / K) + T_c``;
4. latent decoder, per head: ``x <- softmax(Q T^T) T + x`` with ``Q`` a 1x1 convolution of ``x``;
5. unpatchify.

The head is a 1x1 convolution, then ``fc2(GELU(fc1(.)))`` per point. Grids are zero-padded (bottom/right)
to a multiple of ``patch * 2^(levels-1)`` per axis, so the deepest level still splits into whole patches
(the paper's "padded size = 16 x patch" for 5 levels), and cropped back, so any grid size runs. Unlike the
public code, every tensor is a parameter or buffer (no ``.cuda()``), and the pad/crop amounts are kept per
axis in (H, W) order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciml.errors import ConfigError
from sciml.models.grid import grid_coordinates
from sciml.models.registry import ModelContext, register_model

NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}


class DoubleConv(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) twice, ``in_channels -> mid_channels -> out_channels``.

    ``norm``: ``"batch"`` (BatchNorm, the paper's code) or ``"instance"`` (InstanceNorm without affine
    parameters or running statistics, as the Neural-Solver-Library uses for time-dependent tasks: the
    statistics of each sample alone, so train and eval modes agree).
    """

    def __init__(
        self, in_channels: int, out_channels: int, mid_channels: int | None = None, norm: str = "batch"
    ) -> None:
        mid = mid_channels or out_channels
        layer = NORMS[norm]
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            layer(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            layer(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Bilinear 2x upsampling of the coarse map, concatenation with the skip, then :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2, norm=norm)

    def forward(self, coarse: Tensor, skip: Tensor) -> Tensor:
        """``coarse [B, C1, h, w]``, ``skip [B, C2, 2h, 2w]`` -> ``[B, out, 2h, 2w]``."""
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([skip, up], dim=1))


def spectral_basis(tokens: Tensor, num_basis: int) -> Tensor:
    """The sin/cos basis of the latent spectral operator.

    ``tokens [..., N]`` -> ``[..., N, 2K]`` holding ``sin(k pi t / K)`` for ``k = 0..K-1`` and then
    ``cos(k pi t / K)`` for ``k = 0..K-1`` (``K = num_basis``).
    """
    freq = torch.arange(num_basis, device=tokens.device, dtype=tokens.dtype) * (math.pi / num_basis)
    angle = tokens.unsqueeze(-1) * freq
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class NeuralSpectralBlock(nn.Module):
    """Patchified neural spectral block (Wu et al. 2023, Sec. 3.2) on ``[B, d, H, W]`` feature maps.

    ``H`` and ``W`` must be multiples of ``patch_size``. With ``h`` heads and ``M`` tokens per head:
    ``T = softmax(T0 K^T) V + T0`` (per patch and head), then per channel
    ``T <- sum_k a_k sin(k pi T/K) + b_k cos(k pi T/K) + T``, then ``x <- softmax(Q T^T) T + x``.
    """

    def __init__(
        self,
        width: int,
        num_basis: int = 12,
        patch_size: tuple[int, int] = (4, 4),
        num_token: int = 4,
        heads: int = 8,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ConfigError(f"lsm: heads={heads} must divide the block width {width}")
        self.width, self.num_basis, self.heads, self.num_token = width, num_basis, heads, num_token
        self.patch_size = (int(patch_size[0]), int(patch_size[1]))
        # a_{c,k} (first K columns, sin) and b_{c,k} (last K columns, cos), initialized (1/d) U(0, 1)
        self.weights = nn.Parameter(torch.rand(width, 2 * num_basis) / width)
        self.latent = nn.Parameter(torch.rand(heads, num_token, width // heads) / width)
        self.encoder_kv = nn.Conv2d(width, 2 * width, kernel_size=1)
        self.decoder_q = nn.Conv2d(width, width, kernel_size=1)

    def _heads(self, x: Tensor) -> Tensor:
        """``[N, C, L]`` -> ``[N, h, L, C/h]`` (channel ``c = head * C/h + j``)."""
        n, c, length = x.shape
        return x.view(n, self.heads, c // self.heads, length).transpose(-1, -2)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Latent tokens of patches ``x [N, d, p1, p2]``: ``T [N, h, M, d/h]`` and the attention weights.

        ``attn = softmax(T0 K^T)`` over the ``p1 p2`` points of the patch, ``T = attn V + T0``.
        """
        n = x.shape[0]
        key, value = self.encoder_kv(x).flatten(2).chunk(2, dim=1)
        key, value = self._heads(key), self._heads(value)
        attn = torch.softmax(torch.einsum("hmc,nhlc->nhml", self.latent, key), dim=-1)
        return torch.einsum("nhml,nhlc->nhmc", attn, value) + self.latent.expand(n, -1, -1, -1), attn

    def transition(self, tokens: Tensor) -> Tensor:
        """Latent spectral operator on ``tokens [N, h, M, d/h]``, per channel ``c`` and token ``m``:
        ``T_{c,m} <- sum_k a_{c,k} sin(k pi T_{c,m}/K) + b_{c,k} cos(k pi T_{c,m}/K) + T_{c,m}``."""
        n, h, m, ch = tokens.shape
        flat = tokens.permute(0, 1, 3, 2).reshape(n, h * ch, m)  # [N, d, M]
        out = torch.einsum("ncmk,ck->ncm", spectral_basis(flat, self.num_basis), self.weights) + flat
        return out.view(n, h, ch, m).permute(0, 1, 3, 2)

    def decode(self, x: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``x [N, d, p1, p2] <- softmax(Q T^T) T + x`` per head; returns it and the attention weights."""
        query = self._heads(self.decoder_q(x).flatten(2))  # [N, h, L, d/h]
        attn = torch.softmax(torch.einsum("nhlc,nhmc->nhlm", query, tokens), dim=-1)
        out = torch.einsum("nhlm,nhmc->nhlc", attn, tokens)  # [N, h, L, d/h]
        out = out.transpose(-1, -2).reshape(x.shape)
        return out + x, attn

    def forward(self, x: Tensor) -> Tensor:
        """``[B, d, H, W] -> [B, d, H, W]``; ``H, W`` multiples of the patch size."""
        b, c, height, width = x.shape
        p1, p2 = self.patch_size
        if height % p1 or width % p2:
            raise ValueError(f"feature map {height}x{width} is not divisible by the patch {p1}x{p2}")
        n1, n2 = height // p1, width // p2
        patches = x.view(b, c, n1, p1, n2, p2).permute(0, 2, 4, 1, 3, 5).reshape(b * n1 * n2, c, p1, p2)
        tokens, _ = self.encode(patches)
        tokens = self.transition(tokens)
        patches, _ = self.decode(patches, tokens)
        return patches.view(b, n1, n2, c, p1, p2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, height, width)


class LSM2d(nn.Module):
    """Latent Spectral Model on 2-D grids: ``[B, c_in, H, W] -> [B, c_out, H, W]`` at any ``H, W``.

    Wu et al., ICML 2023. ``levels`` U-Net levels of widths ``d * 2^i`` (the deepest repeating the one
    before it), a :class:`NeuralSpectralBlock` on every skip connection and on the deepest map.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        patch_size: tuple[int, int] = (4, 4),
        num_token: int = 4,
        num_basis: int = 12,
        heads: int = 8,
        levels: int = 5,
        head_width: int = 128,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.levels = levels
        self.patch_size = (int(patch_size[0]), int(patch_size[1]))
        widths = [width * 2**i for i in range(levels)]
        if levels > 1:
            widths[-1] = widths[-2]  # the bilinear U-Net's deepest level keeps the width before it
        self.widths = widths
        self.lift = nn.Linear(in_channels + 2, width)
        self.inc = DoubleConv(width, width, norm=norm)
        self.down = nn.ModuleList(DoubleConv(widths[i - 1], widths[i], norm=norm) for i in range(1, levels))
        # Up at level i: concat(skip w_i, upsampled w_i) -> w_{i-1} (level 0: d)
        self.up = nn.ModuleList(
            Up(2 * widths[i], widths[max(i - 1, 0)], norm=norm) for i in range(levels - 1)
        )
        self.blocks = nn.ModuleList(
            NeuralSpectralBlock(w, num_basis, self.patch_size, num_token, heads) for w in widths
        )
        self.out_conv = nn.Conv2d(width, width, kernel_size=1)
        self.fc1 = nn.Linear(width, head_width)
        self.fc2 = nn.Linear(head_width, out_channels)

    def padded_shape(self, height: int, width: int) -> tuple[int, int]:
        """The grid after zero padding: multiples of ``patch * 2^(levels-1)`` per axis (H, W order)."""
        m1 = self.patch_size[0] * 2 ** (self.levels - 1)
        m2 = self.patch_size[1] * 2 ** (self.levels - 1)
        return -(-height // m1) * m1, -(-width // m2) * m2

    @staticmethod
    def grid(batch: int, height: int, width: int, like: Tensor) -> Tensor:
        """What LSM lifts with its input: the vertices of ``[0, 1]^2``, both ends included,
        ``(i / (H - 1), j / (W - 1))`` as ``[B, 2, H, W]`` (row coordinate first;
        :func:`sciml.models.grid.grid_coordinates` ``"vertex"``)."""
        coords = grid_coordinates((height, width), "vertex", dtype=like.dtype, device=like.device)
        return coords.expand(batch, -1, -1, -1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, c_in, H, W] -> [B, c_out, H, W]``."""
        b, _, height, width = x.shape
        v = torch.cat([x, self.grid(b, height, width, x)], dim=1)
        v = self.lift(v.movedim(1, -1)).movedim(-1, 1)
        ph, pw = self.padded_shape(height, width)
        if (ph, pw) != (height, width):
            v = F.pad(v, [0, pw - width, 0, ph - height])  # F.pad: last axis (W) first
        feats = [self.inc(v)]
        for down in self.down:
            feats.append(down(F.max_pool2d(feats[-1], 2)))
        v = self.blocks[-1](feats[-1])
        for i in range(self.levels - 2, -1, -1):
            v = self.up[i](v, self.blocks[i](feats[i]))
        v = self.out_conv(v)[..., :height, :width]
        v = self.fc2(F.gelu(self.fc1(v.movedim(1, -1))))
        return v.movedim(-1, 1)


@register_model("lsm")
def build_lsm(
    context: ModelContext,
    *,
    width: int = 64,
    patch_size: int | Sequence[int] = 4,
    num_token: int = 4,
    num_basis: int = 12,
    heads: int = 8,
    levels: int = 5,
    head_width: int = 128,
    norm: str = "batch",
) -> nn.Module:
    """Latent Spectral Model (Wu et al., ICML 2023) for 2-D grids.

    ``width`` d (divisible by ``heads``), ``patch_size`` an int or ``[p1, p2]``, ``num_token`` M latent
    tokens per head, ``num_basis`` K sin/cos basis functions, ``levels`` U-Net levels (grids are padded to a
    multiple of ``patch * 2^(levels-1)``), ``head_width`` the hidden width of the point-wise output head,
    ``norm`` ``"batch"`` (the paper's) or ``"instance"`` (see :class:`DoubleConv`).
    """
    if norm not in NORMS:
        raise ConfigError(f"model 'lsm': norm {norm!r} is not one of {', '.join(NORMS)}")
    if context.n_dims != 2:
        raise ConfigError(f"model 'lsm': supports 2-D grids only, the data have {context.n_dims} dims")
    patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(int(p) for p in patch_size)
    if len(patch) != 2 or min(patch) < 1:
        raise ConfigError(
            f"model 'lsm': patch_size must be a positive int or two of them, got {patch_size!r}"
        )
    sizes = {
        "width": width,
        "num_token": num_token,
        "num_basis": num_basis,
        "heads": heads,
        "levels": levels,
        "head_width": head_width,
    }
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"model 'lsm': {name} must be a positive int, got {value!r}")
    if width % heads:
        raise ConfigError(f"model 'lsm': heads={heads} must divide width={width}")
    return LSM2d(
        context.in_channels,
        context.out_channels,
        width=width,
        patch_size=patch,
        num_token=num_token,
        num_basis=num_basis,
        heads=heads,
        levels=levels,
        head_width=head_width,
        norm=norm,
    )
