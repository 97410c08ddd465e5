"""The PNGs of a run report: prediction vs truth vs error, spectra, loss curves, rollout error.

Drawn on :class:`matplotlib.figure.Figure` objects, never through ``pyplot``: the caller's matplotlib
backend and figures are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from sciml.bench.record import save_figure


def _save(fig: Figure, path: Path) -> None:
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def plot_example(path: Path, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> None:
    """Input (last channel), truth, prediction and error of one test sample (last output channel).

    A 3-D field is drawn as its middle slice across the last axis.
    """
    x, y, pred = (_plane(t) for t in (x, y, pred))
    panels = [
        ("input", x[0, -1]),
        ("truth", y[0, -1]),
        ("prediction", pred[0, -1]),
        ("error", pred[0, -1] - y[0, -1]),
    ]
    fig = Figure(figsize=(14, 3.4))
    axes = fig.subplots(1, 4)
    vmax = float(y[0, -1].abs().max())
    for ax, (title, field) in zip(axes, panels, strict=True):
        kwargs: dict[str, Any] = {"cmap": "RdBu_r"}
        if title in ("truth", "prediction"):
            kwargs |= {"vmin": -vmax, "vmax": vmax}
        im = ax.imshow(field.T.numpy(), origin="lower", **kwargs)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def _plane(t: torch.Tensor) -> torch.Tensor:
    """``[B, C, *grid]`` cut to its first two spatial axes (middle index of each further one)."""
    while t.ndim > 4:
        t = t.select(-1, t.shape[-1] // 2)
    return t


def plot_spectra(path: Path, predicted: torch.Tensor, truth: torch.Tensor) -> None:
    """Radially binned spectra of prediction and truth (test-set mean), log-log."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    k = torch.arange(len(truth))
    ax.loglog(k[1:], truth[1:], label="truth", color="k")
    ax.loglog(k[1:], predicted[1:], label="prediction", color="C3", linestyle="--")
    ax.set_xlabel("wavenumber |k|")
    ax.set_ylabel("spectrum")
    ax.legend()
    _save(fig, path)


def plot_losses(path: Path, history: list[dict]) -> None:
    """Training loss and validation error per epoch."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train loss")
    if "valid_l2" in history[0]:
        ax.semilogy(epochs, [h["valid_l2"] for h in history], label="valid rel L2")
    ax.set_xlabel("epoch")
    ax.legend()
    _save(fig, path)


def plot_rollout(path: Path, curve: list[float]) -> None:
    """Relative L2 error of each autoregressively predicted frame."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.plot(range(1, len(curve) + 1), curve, marker="o")
    ax.set_xlabel("predicted frame")
    ax.set_ylabel("relative L2 error")
    _save(fig, path)
