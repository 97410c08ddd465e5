"""The model registry: every family is built from a config section ``{name: ..., **kwargs}`` plus the
dataset's shape (channels, grid), so a config never hard-codes what the data already say.

Capabilities a model may declare beyond ``forward(x)`` are explicit protocols here
(:class:`SpectralLossModel`), checked with ``isinstance``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from sciml.config import nearest
from sciml.errors import ConfigError


@dataclass(frozen=True)
class ModelContext:
    """What the data tell a model builder: channels in and out and the grid."""

    in_channels: int
    out_channels: int
    grid_shape: tuple[int, ...]
    domain_lengths: tuple[float, ...] = ()
    periodic: tuple[bool, ...] = ()

    @property
    def n_dims(self) -> int:
        """Number of spatial dimensions."""
        return len(self.grid_shape)


@runtime_checkable
class SpectralLossModel(Protocol):
    """A model trainable in its orthonormal transformed domain (``train.loss: spectral``).

    With ``T`` the model's orthonormal (unitary) transform of a field and ``n_last`` the number of points
    of the field's last grid axis, the contract is::

        transformed_loss(forward(x, spectral=True), transform_target(y), n_last) == relative_l2(forward(x), y)

    (per sample and channel, averaged; Parseval), so training on spectra skips the model's final inverse
    transform. ``forward(x, spectral=True)`` returns ``T[forward(x)]``; ``transform_target(y)`` returns
    ``T[y]`` of a physical field.

    T1 (:mod:`sciml.models.t1`) implements it; :class:`~sciml.models.wrappers.Normalized` does exactly when
    the model it wraps does. Multi-grid patching (:mod:`sciml.models.mg_tfno`) does not, whatever its inner
    model: its output is cropped from overlapping patches, so no loss on the patches' spectra equals the
    full-field loss. ``isinstance(model, SpectralLossModel)`` checks that the methods exist (a class-level
    fact), not their signatures.
    """

    def forward(self, x: torch.Tensor, spectral: bool = False) -> torch.Tensor:
        """The physical output, or with ``spectral=True`` its orthonormal spectrum."""
        ...

    def transform_target(self, y: torch.Tensor) -> torch.Tensor:
        """The orthonormal spectrum of a physical field (the target of the spectral loss)."""
        ...

    def transformed_loss(self, pred: torch.Tensor, target: torch.Tensor, n_last: int) -> torch.Tensor:
        """Relative L2 between two spectra, equal to the physical relative L2 of the fields."""
        ...


@runtime_checkable
class ModelDefinedLoss(Protocol):
    """A model that defines its own training loss, which the Trainer then uses instead of ``train.loss``.

    ``training_loss(x, prediction, y)`` gets the batch's (physical) inputs, the prediction ``model(x)`` of the
    trained operator (through every wrapper: normalization, DDP, compile) and the targets, and returns the
    scalar loss; it is for losses that need more than prediction and target, e.g. the residual of an
    operator that the input defines (DCDM: :mod:`sciml.models.dcdm`). :func:`model_defined_loss` finds it on
    a model or on the model a wrapper holds (``Normalized.model``).
    """

    def training_loss(self, x: torch.Tensor, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The scalar training loss of one batch."""
        ...


def model_defined_loss(
    model: nn.Module,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The ``training_loss`` of ``model`` or of the model it wraps (``model.model``), else ``None``."""
    for candidate in (model, getattr(model, "model", None)):
        if isinstance(candidate, ModelDefinedLoss):
            return candidate.training_loss
    return None


Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(context, **kwargs) -> nn.Module`` under ``name``."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder

    return decorator


def available_models() -> list[str]:
    """Names of every registered model family."""
    _load_families()
    return sorted(_REGISTRY)


def model_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments a family accepts, with their defaults (``inspect.Parameter.empty`` if none)."""
    _load_families()
    builder = _get(name)
    params = list(inspect.signature(builder).parameters.values())[1:]
    return {
        p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }


def build_model(name: str, kwargs: Mapping[str, Any] | None, context: ModelContext) -> nn.Module:
    """Build family ``name`` with ``kwargs`` for data described by ``context``.

    Unknown families and unknown arguments raise :class:`ConfigError` naming the nearest valid one; any
    other failure of the family's constructor (a negative width, a wrongly typed argument) becomes one
    :class:`ConfigError` naming the family, the arguments given and what the constructor said.
    """
    _load_families()
    builder = _get(name)
    kwargs = dict(kwargs or {})
    valid = model_arguments(name)
    for key in kwargs:
        if key not in valid:
            raise ConfigError(f"model {name!r}: unknown argument {key!r}; {nearest(key, valid)}")
    try:
        return builder(context, **kwargs)
    except ConfigError:
        raise
    except Exception as err:  # a family's constructor may fail in any way on a bad argument
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        problem = " ".join(str(err).split())[:300] or type(err).__name__
        raise ConfigError(
            f"model {name!r}: cannot be built with {given} for data of {context.in_channels} -> "
            f"{context.out_channels} channels on a {'x'.join(map(str, context.grid_shape))} grid "
            f"({type(err).__name__}: {problem})"
        ) from err


def spectral_layer_types() -> tuple[type, ...]:
    """Layer classes that compute FFTs (kept in float32 under mixed precision)."""
    from neuralop.layers.spectral_convolution import SpectralConv

    return (SpectralConv, *_SPECTRAL_LAYERS)


_SPECTRAL_LAYERS: list[type] = []


def register_spectral_layer(cls: type) -> type:
    """Class decorator for a family's own FFT layer (see :func:`spectral_layer_types`)."""
    _SPECTRAL_LAYERS.append(cls)
    return cls


def _get(name: str) -> Builder:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; {nearest(name, _REGISTRY)}")
    return _REGISTRY[name]


def _load_families() -> None:
    """Import the built-in families (each registers itself)."""
    import sciml.models.dcdm
    import sciml.models.deeponet
    import sciml.models.fno
    import sciml.models.ifactformer
    import sciml.models.ifno
    import sciml.models.lsm
    import sciml.models.mg_tfno
    import sciml.models.st_fno
    import sciml.models.t1  # noqa: F401
