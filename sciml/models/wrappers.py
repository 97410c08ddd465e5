"""Wrappers that make a trained operator self-contained."""

from __future__ import annotations

import torch
from torch import nn


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
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).reshape(-1))

    def _shape(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (x.ndim - 2))).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Physical ``x [B, C_in, *grid]`` -> physical ``y [B, C_out, *grid]``."""
        z = (x - self._shape(self.x_mean, x)) / self._shape(self.x_std, x)
        out = self.model(z)
        return out * self._shape(self.y_std, out) + self._shape(self.y_mean, out)
