"""Pretrained model zoo: trained operators shipped in ``models/``, loadable offline.

Three lines::

    import sciml.zoo
    model = sciml.zoo.load("fno_ns64")          # checks both SHA-256s, builds the model, loads the weights
    y = model(x)                                # physical in, physical out

A name resolves only inside the zoo (``models/`` or ``$SCIML_ZOO``, see :func:`zoo_root`) and only if its
``manifest.json`` lists it; ``config.json`` and the weights must match the manifest's SHA-256s
(``model.verified`` is True). A folder of the current directory never shadows a zoo name, and a path is
not accepted as a name. A local folder in the same format loads only when asked for explicitly,
``sciml.zoo.load(path=FOLDER)``: it is checked against its own ``config.json`` only, and reported as
unverified (a logged warning; ``model.verified`` is False).

From the Hugging Face Hub: ``sciml.zoo.load("hf://org/name")`` or
``sciml.zoo.from_pretrained("org/name", revision=...)`` (huggingface_hub's cache and ``HF_HUB_OFFLINE``;
every file checked against the repository's ``sciml.json``); ``sciml.zoo.save_pretrained(model, folder,
push_to_hub=True, repo_id="org/name")`` writes and uploads one (see :mod:`sciml.zoo.remote`; needs
``pip install 'sciml[hub]'``).

``sciml.zoo.list()`` lists the entries; ``python -m sciml.zoo export RUN_DIR NAME`` writes one from a
training run, and ``python -m sciml.evaluate zoo:NAME`` reproduces a card's metrics.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sciml.errors import ConfigError
from sciml.zoo.files import IntegrityError
from sciml.zoo.hub import ZooEntry, zoo_root
from sciml.zoo.hub import list_models as list  # the zoo's public name: sciml.zoo.list()
from sciml.zoo.pretrained import PretrainedOperator
from sciml.zoo.remote import HUB_PREFIX, HubError, from_pretrained, save_pretrained


def load(
    name: str | None = None,
    *,
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    revision: str | None = None,
) -> PretrainedOperator:
    """A zoo model by ``name`` (verified against the manifest) or a local folder by ``path=`` (unverified).

    Exactly one of ``name`` and ``path`` is given; the model is on ``device``, in eval mode. See
    :meth:`PretrainedOperator.from_pretrained`. A name ``"hf://org/name"`` (or ``"hf://org/name@REVISION"``,
    or with ``revision=``) loads from the Hugging Face Hub, verified against the repository's hash file
    (:func:`from_pretrained`).
    """
    if isinstance(name, str) and name.startswith(HUB_PREFIX):
        if path is not None:
            raise ConfigError(f"load: pass either a name ({name!r}) or path=, not both")
        return from_pretrained(name, revision, device=device)
    if revision is not None:
        raise ConfigError(f"load: revision= applies to Hub names 'hf://org/name' only, not to {name!r}")
    return PretrainedOperator.from_pretrained(name, path=path, device=device)


__all__ = [
    "HubError",
    "IntegrityError",
    "PretrainedOperator",
    "ZooEntry",
    "from_pretrained",
    "list",
    "load",
    "save_pretrained",
    "zoo_root",
]
