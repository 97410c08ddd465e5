"""Pretrained model zoo: trained operators shipped in ``models/``, loadable offline.

Three lines::

    import sciml.zoo
    model = sciml.zoo.load("fno_ns64")          # checks the SHA-256, builds the model, loads the weights
    y = model(x)                                # physical in, physical out

``sciml.zoo.list()`` lists the entries; any folder in the same format loads by path
(``PretrainedOperator.from_pretrained(path)``); ``python -m sciml.zoo export RUN_DIR NAME`` writes one
from a training run, and ``python -m sciml.evaluate zoo:NAME`` reproduces a card's metrics.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sciml.zoo.files import IntegrityError
from sciml.zoo.hub import ZooEntry, zoo_root
from sciml.zoo.hub import list_models as list  # the zoo's public name: sciml.zoo.list()
from sciml.zoo.pretrained import PretrainedOperator


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> PretrainedOperator:
    """A zoo model by name (or a pretrained folder by path), verified, on ``device``, in eval mode."""
    return PretrainedOperator.from_pretrained(name_or_path, device=device)


__all__ = ["IntegrityError", "PretrainedOperator", "ZooEntry", "list", "load", "zoo_root"]
