r"""Multi-grid domain decomposition (MG-TFNO), usable around any model of the registry.

Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs" (TMLR 2024). The
periodic input field ``[B, C, H, W]`` is cut into :math:`P \times P` patches, :math:`P = 2^L` for ``levels``
:math:`L`. Each patch of side :math:`p = H/P` is taken with a neighbourhood of ``pad`` cells on every side
(side :math:`q = p + 2\,\mathrm{pad}`) and given, as extra channels, the coarser levels of the whole field
around it: for :math:`\ell = 1..L`, the window of side :math:`2^\ell q` centred on the patch, average-pooled
by :math:`2^\ell` to side :math:`q`. The inner model maps these :math:`C (L + 1)` channels on a
:math:`q \times q` grid to the output channels; only the central :math:`p \times p` of each patch's output
is kept, and the patches are stitched back. The inner model thus sees a domain
:math:`(H / q)^2` times smaller than the full field (about 7x for two levels with a quarter-patch pad) while
the coarse levels carry the global context. The inner model is TFNO by default.

A patch model alone cannot know where its patch lies, and flows driven by a fixed forcing depend on the
absolute position. With ``global_position`` (default) the periodic features
:math:`(\sin 2\pi x, \cos 2\pi x, \sin 2\pi y, \cos 2\pi y)` of the whole box are appended to the input
channels before the split.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sciml.errors import ConfigError
from sciml.models.grid import grid_coordinates
from sciml.models.registry import ModelContext, build_model, register_model


class MultiGridPatching(nn.Module):
    """Wrap ``inner`` (``[N, C*(L+1), q, q] -> [N, C_out, q, q]``) into a full-field periodic operator."""

    def __init__(self, inner: nn.Module, levels: int, padding: float, global_position: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.levels = levels
        self.padding = padding
        self.global_position = global_position

    @staticmethod
    def position_channels(x: torch.Tensor) -> torch.Tensor:
        """What ``global_position`` appends to the input before the split: the Fourier features
        ``sin, cos(2 pi i / H), sin, cos(2 pi j / W)`` of the whole box, ``[B, 4, H, W]``
        (:func:`sciml.models.grid.grid_coordinates` ``"fourier"``)."""
        b, _, h, w = x.shape
        features = grid_coordinates((h, w), "fourier", dtype=x.dtype, device=x.device)
        return features.unsqueeze(0).expand(b, -1, -1, -1)

    def geometry(self, size: int) -> tuple[int, int, int]:
        """``(patches per axis P, patch side p, neighbourhood pad)`` for a grid side ``size``."""
        n_patches = 2**self.levels
        if size % n_patches:
            raise ConfigError(
                f"mg_tfno: grid side {size} is not divisible by the {n_patches} patches per axis"
            )
        side = size // n_patches
        return n_patches, side, max(1, round(self.padding * side)) if self.padding > 0 else 0

    @staticmethod
    def windows(x: torch.Tensor, size: int, side: int) -> torch.Tensor:
        """Periodic windows of side ``size`` centred on each patch: ``[B, C, P, P, size, size]``."""
        before = (size - side) // 2
        after = size - side - before
        h = x.shape[-1]
        if max(before, after) > h:
            raise ConfigError(f"mg_tfno: a context window of {size} cells is too large for a {h}-cell grid")
        padded = F.pad(x, (before, after, before, after), mode="circular")
        return padded.unfold(2, size, side).unfold(3, size, side)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """Inner-model inputs ``[B*P*P, C*(L+1), q, q]`` of a field ``[B, C, H, W]``."""
        b, c, h, w = x.shape
        if h != w:
            raise ConfigError(f"mg_tfno: square grids only, got {h} x {w}")
        n_patches, side, pad = self.geometry(h)
        q = side + 2 * pad
        parts = [self.windows(x, q, side)]
        for level in range(1, self.levels + 1):
            scale = 2**level
            context = self.windows(x, q * scale, side)  # [B, C, P, P, q*s, q*s]
            flat = context.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, q * scale, q * scale)
            pooled = F.avg_pool2d(flat, scale).reshape(b, n_patches, n_patches, c, q, q)
            parts.append(pooled.permute(0, 3, 1, 2, 4, 5))
        stacked = torch.cat(parts, dim=1)  # [B, C*(L+1), P, P, q, q]
        return stacked.permute(0, 2, 3, 1, 4, 5).reshape(b * n_patches * n_patches, -1, q, q)

    def stitch(self, patches: torch.Tensor, batch: int, size: int) -> torch.Tensor:
        """Keep the centre of each patch output ``[B*P*P, C_out, q, q]`` and tile: ``[B, C_out, H, W]``."""
        n_patches, side, pad = self.geometry(size)
        centre = patches[..., pad : pad + side, pad : pad + side]
        c_out = centre.shape[1]
        tiles = centre.reshape(batch, n_patches, n_patches, c_out, side, side)
        return tiles.permute(0, 3, 1, 4, 2, 5).reshape(batch, c_out, size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C, H, H] -> [B, C_out, H, H]`` through the inner model on every patch."""
        batch, size = x.shape[0], x.shape[-1]
        if self.global_position:
            x = torch.cat([x, self.position_channels(x)], dim=1)
        return self.stitch(self.inner(self.split(x)), batch, size)


@register_model("mg_tfno")
def build_mg_tfno(
    context: ModelContext,
    *,
    levels: int = 2,
    padding: float = 0.25,
    model: str = "tfno",
    model_kwargs: dict[str, Any] | None = None,
    global_position: bool = True,
) -> nn.Module:
    """Multi-grid patching (``levels``, neighbourhood ``padding`` as a fraction of the patch side) around
    the registry family ``model`` (TFNO by default) built with ``model_kwargs``."""
    if levels < 1:
        raise ConfigError(f"mg_tfno: levels must be >= 1, got {levels}")
    if not 0 <= padding <= 1:
        raise ConfigError(f"mg_tfno: padding must be a fraction of the patch side in [0, 1], got {padding}")
    if context.n_dims != 2:
        raise ConfigError(f"mg_tfno: 2D grids only, got {context.n_dims} spatial dims")
    if context.periodic and not all(context.periodic):
        raise ConfigError("mg_tfno: the coarse-level windows wrap around the box; the data must be periodic")
    wrapper = MultiGridPatching(nn.Identity(), levels, padding, global_position)
    _, side, pad = wrapper.geometry(context.grid_shape[-1])
    inner_context = ModelContext(
        in_channels=(context.in_channels + (4 if global_position else 0)) * (levels + 1),
        out_channels=context.out_channels,
        grid_shape=(side + 2 * pad, side + 2 * pad),
        domain_lengths=(),
        periodic=(False, False),
    )
    wrapper.inner = build_model(model, model_kwargs or {}, inner_context)
    return wrapper
