"""Autoregressive rollout: the one place where a windowed model's predictions are fed back as its input.

A windowed model maps ``t_in`` frames to the next ``t_out`` frames, both time-major
``[B, frames * C, *grid]`` (the layout of :class:`~sciml.datasets.windows.TimeWindowDataset`). A rollout
of ``steps`` applies it ``steps`` times, each time dropping the oldest frames of the window and appending
the prediction (:func:`advance_window`). Every rollout of the package goes through :func:`rollout`: the
Trainer's unrolled and pushforward losses, the run report's and the model zoo's rollout errors
(:func:`sciml.training.report.evaluate_rollouts`) and :meth:`sciml.zoo.PretrainedOperator.rollout`.

Gradient modes:

* ``"all"``: gradients flow through every step (backpropagation through the whole rollout).
* ``"last"``: the first ``steps - 1`` steps run under ``torch.no_grad``, only the last one is
  differentiable: the pushforward trick of Brandstetter et al., "Message Passing Neural PDE Solvers"
  (ICLR 2022).
* ``"none"``: every step under ``torch.no_grad`` (evaluation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from sciml.errors import ConfigError

GRADIENT_MODES = ("all", "last", "none")


def advance_window(window: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """The next input of an autoregressive rollout: ``predicted`` frames come in, the oldest drop out.

    Both are time-major ``[B, frames * C, *grid]``; the result has the width of ``window``.
    """
    return torch.cat([window, predicted], dim=1)[:, -window.shape[1] :]


def rollout(
    model: Callable[[torch.Tensor], torch.Tensor],
    window: torch.Tensor,
    steps: int,
    gradient: str = "all",
) -> torch.Tensor:
    """Roll ``model`` out ``steps`` times from ``window [B, t_in * C, *grid]``.

    Returns the predictions in order, concatenated on the channel axis: ``[B, steps * t_out * C, *grid]``
    (time-major, like the targets of an unrolled training window). ``gradient`` is ``"all"``, ``"last"``
    or ``"none"`` (see the module docstring); with ``"last"`` only the last ``t_out * C`` channels carry
    gradients. The model's train/eval mode is left as it is.
    """
    if gradient not in GRADIENT_MODES:
        raise ConfigError(f"rollout: gradient {gradient!r} is not one of {', '.join(GRADIENT_MODES)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"rollout: steps must be an integer >= 1, got {steps!r}")
    predictions = []
    for step in range(steps):
        with_gradient = gradient == "all" or (gradient == "last" and step == steps - 1)
        with contextlib.nullcontext() if with_gradient else torch.no_grad():
            predictions.append(model(window))
        if step < steps - 1:
            window = advance_window(window, predictions[-1])
    return torch.cat(predictions, dim=1)
