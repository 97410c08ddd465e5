"""A trained operator with everything needed to use it: weights, normalization, task and data recipe.

``PretrainedOperator.from_pretrained(name)`` in the style of Hugging Face models looks the model up in the
zoo (``models/`` or ``$SCIML_ZOO``) and only there: the name must be in the zoo's ``manifest.json``, and
both ``config.json`` and the weights must match the SHA-256s recorded there (``model.verified`` is True).
A local folder in the same format (see :mod:`sciml.zoo.files`) loads only when asked for explicitly,
``from_pretrained(path=FOLDER)``: its weights are checked against its own ``config.json`` (consistency,
not provenance), and it is reported as unverified (a logged warning, ``model.verified`` is False).
``save_pretrained(folder)`` writes the format. The weights are safetensors (no pickle) and are read only
after these checks.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import sciml
from sciml.errors import ConfigError, DataFormatError
from sciml.models import ModelContext, build_model
from sciml.models.wrappers import Normalized
from sciml.training.rollout import rollout
from sciml.zoo.files import (
    CARD,
    CONFIG,
    FORMAT_VERSION,
    MANIFEST,
    WEIGHTS,
    read_model_config,
    replace_folder,
    sha256_file,
    verify_sha256,
    weights_file,
    write_json_atomic,
)
from sciml.zoo.weights import read_weights, storage_dtype, write_weights

logger = logging.getLogger(__name__)


def parameter_count(model: nn.Module) -> int:
    """Real parameters of a model (a complex weight counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def _context(config: dict[str, Any], path: Path) -> ModelContext:
    c = config["context"]
    try:
        return ModelContext(
            in_channels=int(c["in_channels"]),
            out_channels=int(c["out_channels"]),
            grid_shape=tuple(int(n) for n in c["grid_shape"]),
            domain_lengths=tuple(float(x) for x in c["domain_lengths"]),
            periodic=tuple(bool(p) for p in c.get("periodic", [True] * len(c["grid_shape"]))),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataFormatError(path, f"malformed model context ({err})", key="context") from None


def build_described_model(config: dict[str, Any], path: Path) -> nn.Module:
    """The registry model described by a checked ``config.json`` at ``path`` (untrained)."""
    try:
        return build_model(config["model"]["name"], config["model"].get("kwargs"), _context(config, path))
    except ConfigError as err:
        raise DataFormatError(path, f"cannot build the model it describes ({err})", key="model") from None


def _load_weights(model: nn.Module, state: dict[str, torch.Tensor], weights: Path, config: Path) -> None:
    """Load ``state`` into ``model``, or one :class:`DataFormatError` saying how the two differ."""
    expected = {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)}  # as save_pretrained
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and expected[k].shape != state[k].shape]
    if missing:
        problems.append(f"{len(missing)} tensors missing (e.g. {missing[0]!r})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
    if reshaped:
        k = reshaped[0]
        problems.append(
            f"{len(reshaped)} of another shape (e.g. {k!r}: {list(state[k].shape)} in the file, "
            f"{list(expected[k].shape)} in the model)"
        )
    try:
        if not problems:
            model.load_state_dict(state)
    except RuntimeError as err:
        problems.append(" ".join(str(err).split())[:200])
    if problems:
        details = "; ".join(problems)
        raise DataFormatError(weights, f"weights do not fit the model described in {config}: {details}")


class PretrainedOperator(nn.Module):
    """A registry model wrapped with its normalization: physical ``x [B, C_in, *grid]`` -> physical ``y``.

    Attributes:
        config: the parsed ``config.json`` (registry name and arguments, task, recipe, card metrics).
        operator: the :class:`~sciml.models.wrappers.Normalized` module that does the work.
        verified: True when loaded by zoo name with ``config.json`` and weights matching the zoo manifest;
            False for a local folder (``path=``) or a model built in memory.
    """

    def __init__(self, model: nn.Module, config: dict[str, Any], verified: bool = False) -> None:
        super().__init__()
        norm = config["normalization"]
        self.operator = Normalized(model, norm["x_mean"], norm["x_std"], norm["y_mean"], norm["y_std"])
        self.config = config
        self.verified = verified

    @property
    def name(self) -> str:
        """The model's name (its zoo folder)."""
        return str(self.config["name"])

    @property
    def family(self) -> str:
        """The registry name of the family (``fno``, ``t1``, ...)."""
        return str(self.config["model"]["name"])

    @property
    def task(self) -> dict[str, Any]:
        """How samples are cut from trajectories (mode, input/output frames or t_in/t_out, fields)."""
        return dict(self.config["task"])

    @property
    def metrics(self) -> dict[str, Any]:
        """The test metrics recorded on the model card."""
        return dict(self.config.get("metrics", {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Physical input ``[B, C_in, *grid]`` to physical output ``[B, C_out, *grid]``."""
        return self.operator(x)

    def rollout(self, frames: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive prediction from ``frames [B, t_in, C, *grid]``: ``[B, steps * t_out, C, *grid]``.

        Each prediction is appended to the window and the oldest frames drop out (windowed models only;
        :func:`sciml.training.rollout.rollout`, without gradients).
        """
        task = self.task
        if task["mode"] != "window":
            raise ConfigError(
                f"{self.name}: rollout needs a windowed model, its task mode is {task['mode']!r}"
            )
        b, t_in, c = frames.shape[:3]
        if t_in != task["t_in"]:
            raise ConfigError(f"{self.name}: rollout expects {task['t_in']} input frames, got {t_in}")
        window = frames.reshape(b, t_in * c, *frames.shape[3:])
        predictions = rollout(self, window, steps, gradient="none")
        return predictions.reshape(b, -1, c, *frames.shape[3:])

    @classmethod
    def from_pretrained(
        cls,
        name: str | None = None,
        *,
        path: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> PretrainedOperator:
        """Load a zoo model by ``name``, or a local pretrained folder given explicitly as ``path=``.

        A name resolves only inside the zoo (:func:`~sciml.zoo.hub.zoo_root`) and only if the manifest lists
        it; ``config.json`` and the weights must match the manifest's SHA-256s (``verified`` is True). A
        string that is a path is refused as a name (:class:`ConfigError`). A ``path=`` folder is checked
        for consistency only, its weights against its own ``config.json``, and is reported as unverified
        (a logged warning; ``verified`` is False). Every check runs before the weights are read; a hash
        mismatch raises :class:`~sciml.zoo.files.IntegrityError`, a malformed config a
        :class:`DataFormatError` naming ``config.json`` and the key.
        """
        from sciml.zoo.hub import resolve_name

        if (name is None) == (path is None):
            raise ConfigError(
                "from_pretrained: pass exactly one of a zoo name (from_pretrained('fno_ns64')) or a local "
                "folder (from_pretrained(path=FOLDER))"
            )
        if name is not None:
            folder, entry = resolve_name(name)
            manifest = str(folder.parent / MANIFEST)
            verify_sha256(folder / CONFIG, entry["config_sha256"], manifest)
            config = read_model_config(folder)
            weights = weights_file(folder, config)
            verify_sha256(weights, entry["sha256"], manifest)
        else:
            if not isinstance(path, str | os.PathLike):
                raise ConfigError(f"from_pretrained: path= must be a folder path, got {type(path).__name__}")
            folder = Path(path)
            if not (folder / CONFIG).is_file():
                raise DataFormatError(
                    folder, "not a pretrained-model folder", expected=f"a folder with {CONFIG}"
                )
            config = read_model_config(folder)
            weights = weights_file(folder, config)
        verify_sha256(weights, config["weights"]["sha256"], str(folder / CONFIG))
        state = read_weights(weights, device)
        model = build_described_model(config, folder / CONFIG)
        _load_weights(model, state, weights, folder / CONFIG)
        operator = cls(model, config, verified=name is not None).to(device)
        operator.eval()
        if operator.verified:
            logger.info("loaded %s (%s, %s) from the zoo: %s", name, operator.family, device, folder)
        else:
            logger.warning(
                "%s: loaded from a local folder, UNVERIFIED: its weights match its own %s, but no zoo "
                "manifest vouches for either",
                folder,
                CONFIG,
            )
        return operator

    def save_pretrained(
        self,
        folder: str | Path,
        card: str | Callable[[dict], str] | None = None,
        weights_dtype: str = "float32",
    ) -> Path:
        """Write this model as a pretrained folder (weights, config with checksum, optional card).

        ``card`` is the model card's text, or a function of the final config that renders it. The folder
        is assembled under a temporary name next to ``folder`` and renamed at the end. ``weights_dtype``
        (``float16`` or ``bfloat16``) stores the floating-point tensors in half precision to halve the file,
        complex ones as their real and imaginary parts (:mod:`sciml.zoo.weights`); integer ones are
        unchanged. Loading casts them back to the model's dtype, so the loaded model computes with the
        rounded weights (:func:`~sciml.zoo.weights.round_weights` gives the same model in memory).
        """
        storage = storage_dtype(weights_dtype)  # a bad name fails before any work
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            write_weights(
                self.operator.model,
                staging / WEIGHTS,
                weights_dtype,
                {"format": "pt", "sciml_format": str(FORMAT_VERSION)},
            )
            config = copy.deepcopy(self.config)
            config["format_version"] = FORMAT_VERSION
            config["name"] = folder.name if config.get("name") is None else config["name"]
            config["weights"] = {
                "file": WEIGHTS,
                "sha256": sha256_file(staging / WEIGHTS),
                "bytes": (staging / WEIGHTS).stat().st_size,
                "params": parameter_count(self.operator.model),
            }
            if storage != torch.float32:
                config["weights"]["dtype"] = weights_dtype
            config.setdefault("versions", {})["sciml"] = sciml.__version__
            write_json_atomic(staging / CONFIG, config)
            if card is not None:
                (staging / CARD).write_text(card(config) if callable(card) else card)
            replace_folder(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.config = config
        logger.info("saved %s to %s", config["name"], folder)
        return folder
