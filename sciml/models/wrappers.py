"""Wrappers that make a trained operator self-contained."""

from __future__ import annotations

import torch
from torch import nn

from sciml.errors import ConfigError


class Normalized(nn.Module):
    """``y = denormalize(model(normalize(x)))`` with per-channel mean/std held as buffers.

    The statistics travel with the weights (checkpoints, zoo), so the wrapped model maps physical inputs
    to physical outputs. ``x_mean``/``x_std`` have one entry per input channel, ``y_*`` per output channel.
    """

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
        self._spectra_of_one: dict[tuple, torch.Tensor] = {}  # T[1] per grid, dtype and device
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).reshape(-1))

    def _shape(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (x.ndim - 2))).to(x.dtype)

    @property
    def predicts_in_transform(self) -> bool:
        """Whether the wrapped model can return its output's orthonormal spectrum (T1 can)."""
        return bool(getattr(self.model, "predicts_in_transform", False))

    def forward(self, x: torch.Tensor, spectral: bool = False) -> torch.Tensor:
        """Physical ``x [B, C_in, *grid]`` -> physical ``y [B, C_out, *grid]``.

        ``spectral=True`` (models that :attr:`predicts_in_transform`): the orthonormal spectrum ``T[y]`` of
        the physical output. ``T`` is linear, so ``T[std * out + mean] = std * T[out] + mean * T[1]``.
        """
        z = (x - self._shape(self.x_mean, x)) / self._shape(self.x_std, x)
        if not spectral:
            out = self.model(z)
            return out * self._shape(self.y_std, out) + self._shape(self.y_mean, out)
        if not self.predicts_in_transform:
            raise ConfigError(f"{type(self.model).__name__} has no transformed-domain output (spectral=True)")
        coeffs = self.model(z, spectral=True)
        key = (tuple(x.shape[2:]), x.dtype, x.device)
        if key not in self._spectra_of_one:
            self._spectra_of_one[key] = self.model.transform_target(torch.ones_like(x[:1, :1]))
        spectrum_of_one = self._spectra_of_one[key]
        return coeffs * self._shape(self.y_std, coeffs) + self._shape(self.y_mean, coeffs) * spectrum_of_one

    def transform_target(self, y: torch.Tensor) -> torch.Tensor:
        """The wrapped model's orthonormal spectrum of a physical target field."""
        return self.model.transform_target(y)

    def transformed_loss(self, pred: torch.Tensor, target: torch.Tensor, n_last: int) -> torch.Tensor:
        """The wrapped model's relative L2 loss between two spectra (equal to the physical one)."""
        return self.model.transformed_loss(pred, target, n_last)
