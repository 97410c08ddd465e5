"""Checkpoints that describe themselves and survive being killed mid-save.

A checkpoint is one ``torch.save`` file holding only tensors and plain containers (loaded back with
``weights_only=True``: no pickle): the model weights saved from the unwrapped module (no DDP ``module.``
or compile ``_orig_mod.`` prefixes), optimizer, scheduler and grad-scaler states, epoch and step, every
RNG state, the best validation metric so far (and the epoch that reached it), the metrics history and
the resolved config. Every file here is written to a unique temporary name (``.<name>.<pid>.<random>.tmp``),
flushed to disk and renamed, so a crash leaves either the previous file or the new one, plus at worst a
temporary file that :func:`remove_stray_temporaries` deletes on the next start.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sciml.atomic import write_atomically
from sciml.errors import SciMLError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class CheckpointError(SciMLError):
    """A checkpoint file is missing, truncated or not one of ours."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def tensor_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unwrapped model's state dict with tensors only.

    Some libraries put Python objects into state dicts (neuraloperator adds its constructor arguments,
    functions included, under ``_metadata``); those cannot be loaded without pickle, and our checkpoints
    carry the constructor arguments in the config instead.
    """
    return {k: v for k, v in unwrap(model).state_dict().items() if torch.is_tensor(v)}


def rng_state() -> dict[str, Any]:
    """Every RNG state (torch CPU and CUDA, numpy, Python) as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def remove_stray_temporaries(folder: str | Path, names: list[str]) -> list[Path]:
    """Delete what killed writes of files ``names`` left in ``folder`` (``.<name>*.tmp``); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    strays = [p for name in names for p in folder.glob(f".{name}*.tmp") if p.is_file()]
    for stray in strays:
        stray.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted write", stray)
    return strays


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (:func:`write_atomically`)."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    return write_atomically(path, lambda fh: torch.save(payload, fh))


def copy_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Copy checkpoint ``source`` to ``target`` byte for byte, atomically (``best.pt`` from ``last.pt``)."""
    with open(source, "rb") as src:
        return write_atomically(target, lambda fh: shutil.copyfileobj(src, fh))


def has_finite_weights(weights: dict[str, torch.Tensor]) -> bool:
    """Whether every floating-point or complex tensor of a state dict is free of NaN and inf."""
    return all(
        bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point() or t.is_complex()
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a clear CheckpointError if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files
        raise CheckpointError(
            f"{path}: not a readable sciml checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a sciml checkpoint of format version {FORMAT_VERSION}")
    return payload
