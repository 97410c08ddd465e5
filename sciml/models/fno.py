"""The Fourier Neural Operator and its tensorized variant (TFNO), both from neuraloperator.

FNO: Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021. Each
layer is v <- act(W v + K v), with K a convolution whose kernel is a learned multiplier on the lowest
Fourier modes: (K v)^(k) = R(k) v^(k) for |k_i| < modes_i.

TFNO: Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs" (TMLR 2024).
The weights R of all layers are one tensor stored in a low-rank factorized form (Tucker by default, or CP,
TT; ``rank`` is the fraction of the dense parameter count kept), which cuts parameters by an order of
magnitude. The spectral convolution itself is neuraloperator's ``SpectralConv``; this module only maps
our config onto ``neuralop.models.FNO`` (TFNO is FNO with a factorization).
"""

from __future__ import annotations

from collections.abc import Sequence

from neuralop.models import FNO
from torch import nn

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model

SKIPS = ("linear", "identity", "soft-gating")
"""neuraloperator's skip connections around a Fourier layer or its channel MLP."""


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
    fno_skip: str = "linear",
    channel_mlp_skip: str = "soft-gating",
    use_channel_mlp: bool = True,
) -> nn.Module:
    """neuraloperator's FNO with ``modes`` Fourier modes per axis (an int for all axes, or one per axis).

    ``fno_skip`` / ``channel_mlp_skip`` (``linear``, ``identity``, ``soft-gating``) and ``use_channel_mlp``
    are neuraloperator's: the MG-TFNO paper's code used soft-gating skips, neuraloperator >= 1.0 defaults
    to a linear one; the original FNO of Li et al. has no channel MLP.
    """
    return _fno(
        context,
        modes,
        width,
        n_layers,
        lifting_channel_ratio,
        projection_channel_ratio,
        positional_embedding,
        domain_padding,
        norm,
        fno_skip=fno_skip,
        channel_mlp_skip=channel_mlp_skip,
        use_channel_mlp=use_channel_mlp,
    )


@register_model("tfno")
def build_tfno(
    context: ModelContext,
    *,
    modes: int | Sequence[int] = 12,
    width: int = 32,
    n_layers: int = 4,
    factorization: str = "tucker",
    rank: float = 0.05,
    lifting_channel_ratio: float = 2,
    projection_channel_ratio: float = 2,
    positional_embedding: str | None = "grid",
    domain_padding: float | None = None,
    norm: str | None = None,
    fno_skip: str = "linear",
    channel_mlp_skip: str = "soft-gating",
    use_channel_mlp: bool = True,
) -> nn.Module:
    """Tensorized FNO: spectral weights factorized (``tucker``, ``cp``, ``tt``, or ``dense``) at ``rank``
    (the skip and channel-MLP options as :func:`build_fno`'s)."""
    if factorization not in ("tucker", "cp", "tt", "dense"):
        raise ConfigError(f"tfno: factorization {factorization!r} is not one of tucker, cp, tt, dense")
    if not 0 < rank <= 1:
        raise ConfigError(f"tfno: rank {rank} must be a fraction in (0, 1] of the dense parameter count")
    return _fno(
        context,
        modes,
        width,
        n_layers,
        lifting_channel_ratio,
        projection_channel_ratio,
        positional_embedding,
        domain_padding,
        norm,
        factorization=None if factorization == "dense" else factorization,
        rank=rank,
        fno_skip=fno_skip,
        channel_mlp_skip=channel_mlp_skip,
        use_channel_mlp=use_channel_mlp,
    )


def _fno(
    context: ModelContext,
    modes: int | Sequence[int],
    width: int,
    n_layers: int,
    lifting_channel_ratio: float,
    projection_channel_ratio: float,
    positional_embedding: str | None,
    domain_padding: float | None,
    norm: str | None,
    fno_skip: str = "linear",
    channel_mlp_skip: str = "soft-gating",
    use_channel_mlp: bool = True,
    **factorization: object,
) -> nn.Module:
    for key, value in (("fno_skip", fno_skip), ("channel_mlp_skip", channel_mlp_skip)):
        if value not in SKIPS:
            raise ConfigError(f"{key} {value!r} is not one of {', '.join(SKIPS)}")
    n_modes = tuple(modes) if isinstance(modes, Sequence) else (int(modes),) * context.n_dims
    if len(n_modes) != context.n_dims:
        raise ConfigError(f"modes has {len(n_modes)} entries for {context.n_dims} spatial dims")
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
        fno_skip=fno_skip,
        channel_mlp_skip=channel_mlp_skip,
        use_channel_mlp=use_channel_mlp,
        **factorization,
    )
