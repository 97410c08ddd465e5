"""The Fourier Neural Operator of neuraloperator, the reference baseline of every comparison.

Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021. Each layer
is v <- act(W v + K v), with K a convolution whose kernel is a learned multiplier on the lowest Fourier
modes: (K v)^ (k) = R(k) v^(k) for |k_i| < modes_i. The layer itself is neuraloperator's ``SpectralConv``;
this module only maps our config onto ``neuralop.models.FNO``.
"""

from __future__ import annotations

from collections.abc import Sequence

from neuralop.models import FNO
from torch import nn

from sciml.models.registry import ModelContext, register_model


@register_model("fno")
def build_fno(
    context: ModelContext,
    *,
    modes: int | Sequence[int] = 12,
    width: int = 32,
    n_layers: int = 4,
    lifting_channel_ratio: float = 2,
    projection_channel_ratio: float = 2,
    positional_embedding: str | None = "grid",
    domain_padding: float | None = None,
    norm: str | None = None,
) -> nn.Module:
    """neuraloperator's FNO with ``modes`` Fourier modes per axis (an int for all axes, or one per axis)."""
    n_modes = tuple(modes) if isinstance(modes, Sequence) else (int(modes),) * context.n_dims
    if len(n_modes) != context.n_dims:
        raise ValueError(f"modes has {len(n_modes)} entries for {context.n_dims} spatial dims")
    return FNO(
        n_modes=n_modes,
        in_channels=context.in_channels,
        out_channels=context.out_channels,
        hidden_channels=width,
        n_layers=n_layers,
        lifting_channel_ratio=lifting_channel_ratio,
        projection_channel_ratio=projection_channel_ratio,
        positional_embedding=positional_embedding,
        domain_padding=domain_padding,
        norm=norm,
    )
