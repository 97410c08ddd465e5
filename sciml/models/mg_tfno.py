r"""Multi-grid domain decomposition (MG-TFNO), usable around any model of the registry.

Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs" (TMLR 2024). The
periodic input field ``[B, C, H, W]`` is cut into :math:`P \times P` patches, :math:`P = 2^L` for ``levels``
:math:`L`. Each patch of side :math:`p = H/P` is taken with a neighbourhood of ``pad`` cells on every side
(side :math:`q = p + 2\,\mathrm{pad}`) and given, as extra channels, the coarser levels of the whole field
around it: for :math:`\ell = 1..L`, the window of side :math:`2^\ell q` centred on the patch, reduced by
:math:`2^\ell` to side :math:`q`. The inner model maps these :math:`C (L + 1)` channels on a
:math:`q \times q` grid to the output channels; only the central :math:`p \times p` of each patch's output
is kept, and the patches are stitched back. The inner model thus sees a domain
:math:`(H / q)^2` times smaller than the full field (about 7x for two levels with a quarter-patch pad) while
the coarse levels carry the global context. The inner model is TFNO by default.

Options of the ``mg_tfno`` registry entry (defaults first; the defaults are this module's original
behaviour, which the zoo entry ``models/mg_tfno_ns64`` was trained with):

- ``padding_relative_to``: ``"patch"`` reads ``padding`` as a fraction of the patch side,
  ``pad = max(1, round(padding * p))`` (0 only for ``padding = 0``); ``"field"`` as a fraction of the full
  grid side, ``pad = round(padding * H)`` (neuraloperator's ``padding_fraction``).
- ``coarse``: ``"average"`` average-pools each :math:`2^\ell` block of the window; ``"subsample"`` keeps
  every :math:`2^\ell`-th cell from the window's first one (neuraloperator's ``x[..., ::2**l, ::2**l]``).
- Windows wrap around the periodic box by circular indexing, as often as needed: a context window may be
  wider than the grid (it then repeats the field), for any ``levels`` and ``padding``.
- ``inner_domain_padding``: if set, passed as ``domain_padding`` to the inner model (the registry's
  ``fno`` and ``tfno`` accept it: neuraloperator's zero padding of the non-periodic patch by that fraction
  of its side on every side before the spectral layers); ``None`` leaves ``model_kwargs`` as they are.

**neuraloperator equivalent.** ``neuralop.training.MultigridPatching2D(model, levels=L,
padding_fraction=f)`` produces the same stacked patches (the same order of patches in the batch and of
channels: the patch, then levels 1..L) and the same stitching as ``levels=L, padding=f,
padding_relative_to="field", coarse="subsample", global_position=False``, whenever the patch side is a
multiple of :math:`2^{L+1}` (e.g. 128² with ``L = 1`` or 2, 64² with ``L = 1`` or 2). Elsewhere
neuraloperator's coarse windows sit half a coarse cell off the patch's centre or its reshape fails; ours
stay centred. Its MG-TFNO setting (``config/navier_stokes_config.yaml``, values commented in beside
``levels: 0``) is ``levels: 1, padding: 0.078125`` and the TFNO's ``domain_padding: 0.078125``, that is
``{levels: 1, padding: 0.078125, padding_relative_to: field, coarse: subsample, global_position: false,
inner_domain_padding: 0.078125}`` here (on 128²: two patches per axis of 64² with a 10-cell neighbourhood,
an 84² inner grid, padded by 7 cells per side inside the TFNO; the config's ``domain_padding_mode:
one-sided`` no longer exists in neuraloperator >= 1.0, which always pads symmetrically). The paper's
Navier-Stokes runs add, on 128² data: ``model: tfno, model_kwargs: {modes: 24, width: 64}`` and
``train: {loss: h1, epochs: 500}``.

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
from sciml.models.registry import ModelContext, build_model, model_arguments, register_model

PADDING_REFERENCES = ("patch", "field")
"""What ``padding`` is a fraction of: the patch side (default) or the full grid side (neuraloperator)."""
COARSE_REDUCTIONS = ("average", "subsample")
"""How a coarse-level window is reduced: average pooling (default) or subsampling (neuraloperator)."""


class MultiGridPatching(nn.Module):
    """Wrap ``inner`` (``[N, C*(L+1), q, q] -> [N, C_out, q, q]``) into a full-field periodic operator.

    Deliberately not a :class:`~sciml.models.registry.SpectralLossModel`, even around one (T1): the output
    keeps only the centre of each padded patch, a crop that needs the inverse transform of the patch
    (it is no diagonal operation on spectra), and per-patch errors with overlapping pads weigh the field
    unlike the full-field relative error; no loss on the inner model's spectra equals the full-field
    loss, so ``train.loss: spectral`` is refused for it with a ``ConfigError``.
    """

    def __init__(
        self,
        inner: nn.Module,
        levels: int,
        padding: float,
        global_position: bool = False,
        padding_relative_to: str = "patch",
        coarse: str = "average",
    ) -> None:
        super().__init__()
        if padding_relative_to not in PADDING_REFERENCES:
            raise ConfigError(
                f"mg_tfno: padding_relative_to {padding_relative_to!r} is not one of "
                f"{', '.join(PADDING_REFERENCES)}"
            )
        if coarse not in COARSE_REDUCTIONS:
            raise ConfigError(f"mg_tfno: coarse {coarse!r} is not one of {', '.join(COARSE_REDUCTIONS)}")
        self.inner = inner
        self.levels = levels
        self.padding = padding
        self.global_position = global_position
        self.padding_relative_to = padding_relative_to
        self.coarse = coarse

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
        if self.padding_relative_to == "field":
            return n_patches, side, round(self.padding * size)
        return n_patches, side, max(1, round(self.padding * side)) if self.padding > 0 else 0

    @staticmethod
    def windows(x: torch.Tensor, size: int, side: int, step: int = 1) -> torch.Tensor:
        """Periodic windows of side ``size`` centred on each patch of side ``side``, every ``step``-th
        cell from the window's first: ``[B, C, P, P, size // step, size // step]``.

        Circular indexing: a window wider than the grid wraps around the box as often as it needs.
        """
        h = x.shape[-1]
        starts = torch.arange(0, h, side, device=x.device) - (size - side) // 2
        cells = (starts[:, None] + torch.arange(0, size, step, device=x.device)) % h  # [P, size/step]
        return x[:, :, cells[:, None, :, None], cells[None, :, None, :]]

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
            if self.coarse == "subsample":
                parts.append(self.windows(x, q * scale, side, step=scale))
                continue
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
    padding_relative_to: str = "patch",
    coarse: str = "average",
    inner_domain_padding: float | None = None,
) -> nn.Module:
    """Multi-grid patching (``levels``, neighbourhood ``padding`` as a fraction of the patch side, or with
    ``padding_relative_to="field"`` of the grid side; coarse levels ``"average"``-pooled or
    ``"subsample"``-d) around the registry family ``model`` (TFNO by default) built with ``model_kwargs``
    and, if ``inner_domain_padding`` is set, with that ``domain_padding``. The module docstring gives the
    options that equal neuraloperator's ``MultigridPatching2D`` and the paper's setting."""
    if levels < 1:
        raise ConfigError(f"mg_tfno: levels must be >= 1, got {levels}")
    if not 0 <= padding <= 1:
        raise ConfigError(
            f"mg_tfno: padding must be a fraction of the {padding_relative_to} side in [0, 1], got {padding}"
        )
    if context.n_dims != 2:
        raise ConfigError(f"mg_tfno: 2D grids only, got {context.n_dims} spatial dims")
    if context.periodic and not all(context.periodic):
        raise ConfigError("mg_tfno: the coarse-level windows wrap around the box; the data must be periodic")
    model_kwargs = dict(model_kwargs or {})
    if inner_domain_padding is not None:
        if "domain_padding" not in model_arguments(model):
            raise ConfigError(
                f"mg_tfno: inner_domain_padding={inner_domain_padding} needs an inner model with a "
                f"domain_padding argument (fno, tfno); model {model!r} has none"
            )
        if "domain_padding" in model_kwargs:
            raise ConfigError(
                f"mg_tfno: inner_domain_padding={inner_domain_padding} and model_kwargs.domain_padding="
                f"{model_kwargs['domain_padding']} both set the inner model's domain padding; give one"
            )
        if not inner_domain_padding >= 0:
            raise ConfigError(f"mg_tfno: inner_domain_padding must be >= 0, got {inner_domain_padding}")
        model_kwargs["domain_padding"] = inner_domain_padding
    wrapper = MultiGridPatching(nn.Identity(), levels, padding, global_position, padding_relative_to, coarse)
    _, side, pad = wrapper.geometry(context.grid_shape[-1])
    inner_context = ModelContext(
        in_channels=(context.in_channels + (4 if global_position else 0)) * (levels + 1),
        out_channels=context.out_channels,
        grid_shape=(side + 2 * pad, side + 2 * pad),
        domain_lengths=(),
        periodic=(False, False),
    )
    wrapper.inner = build_model(model, model_kwargs, inner_context)
    return wrapper
