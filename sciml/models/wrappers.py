"""Wrappers that make a trained operator self-contained."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.models.registry import SpectralLossModel


class Normalized(nn.Module):
    """``y = denormalize(model(normalize(x)))`` with per-channel mean/std held as buffers.

    The statistics travel with the weights (checkpoints, zoo), so the wrapped model maps physical inputs
    to physical outputs. ``x_mean``/``x_std`` have one entry per input channel, ``y_*`` per output channel.

    Around a :class:`~sciml.models.registry.SpectralLossModel` (T1) the wrapper is one too: the
    constructor then returns a :class:`SpectralNormalized`, so ``isinstance(wrapper, SpectralLossModel)``
    says what the wrapped model can do, for any model, with no flag to keep in step.
    """

    model: nn.Module
    x_mean: torch.Tensor  # buffers, registered in __init__
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def __new__(cls, model: nn.Module | None = None, *args: Any, **kwargs: Any) -> Normalized:
        # The Protocol is checked on the class, so the class must say whether the contract holds.
        if cls is Normalized and isinstance(model, SpectralLossModel):
            cls = SpectralNormalized
        return super().__new__(cls)

    def __init__(
        self,
        model: nn.Module,
        x_mean: torch.Tensor,
        x_std: torch.Tensor,
        y_mean: torch.Tensor,
        y_std: torch.Tensor,
    ) -> None:
        super().__init__()
        self.model = model
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).reshape(-1))

    def _shape(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (x.ndim - 2))).to(x.dtype)

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Physical input to the wrapped model's normalized input."""
        return (x - self._shape(self.x_mean, x)) / self._shape(self.x_std, x)

    def forward(self, x: torch.Tensor, spectral: bool = False) -> torch.Tensor:
        """Physical ``x [B, C_in, *grid]`` -> physical ``y [B, C_out, *grid]``.

        ``spectral=True`` needs a wrapped :class:`~sciml.models.registry.SpectralLossModel`
        (see :class:`SpectralNormalized`); here it is refused with a :class:`ConfigError`.
        """
        if spectral:
            raise ConfigError(f"{type(self.model).__name__} has no transformed-domain output (spectral=True)")
        out = self.model(self.normalize_input(x))
        return out * self._shape(self.y_std, out) + self._shape(self.y_mean, out)


class SpectralNormalized(Normalized):
    """:class:`Normalized` around a :class:`~sciml.models.registry.SpectralLossModel`, which it forwards.

    ``Normalized(model, ...)`` builds this class when ``model`` is a SpectralLossModel; the spectra are
    those of the physical (denormalized) fields, so the spectral loss equals the physical one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spectra_of_one: dict[tuple, torch.Tensor] = {}  # T[1] per grid, dtype and device

    def forward(self, x: torch.Tensor, spectral: bool = False) -> torch.Tensor:
        """Physical ``x`` -> physical ``y``, or with ``spectral=True`` the orthonormal spectrum ``T[y]``.

        ``T`` is linear, so ``T[std * out + mean] = std * T[out] + mean * T[1]``.
        """
        if not spectral:
            return super().forward(x)
        coeffs = self.model(self.normalize_input(x), spectral=True)
        key = (tuple(x.shape[2:]), x.dtype, x.device)
        if key not in self._spectra_of_one:
            self._spectra_of_one[key] = self.spectral_model.transform_target(torch.ones_like(x[:1, :1]))
        spectrum_of_one = self._spectra_of_one[key]
        return coeffs * self._shape(self.y_std, coeffs) + self._shape(self.y_mean, coeffs) * spectrum_of_one

    @property
    def spectral_model(self) -> SpectralLossModel:
        """The wrapped model, typed by its contract (not a second registered submodule)."""
        return cast(SpectralLossModel, self.model)

    def transform_target(self, y: torch.Tensor) -> torch.Tensor:
        """The wrapped model's orthonormal spectrum of a physical target field."""
        return self.spectral_model.transform_target(y)

    def transformed_loss(self, pred: torch.Tensor, target: torch.Tensor, n_last: int) -> torch.Tensor:
        """The wrapped model's relative L2 loss between two spectra (equal to the physical one)."""
        return self.spectral_model.transformed_loss(pred, target, n_last)
