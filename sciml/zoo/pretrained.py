"""A trained operator with everything needed to use it: weights, normalization, task and data recipe.

``PretrainedOperator.from_pretrained(name_or_path)`` in the style of Hugging Face models: a name looks the
model up in the zoo (``models/``), a path loads any folder in the same format (see :mod:`sciml.zoo.files`).
``save_pretrained(folder)`` writes that format. The weights are safetensors (no pickle); their SHA-256 is
checked before anything is read, against the folder's ``config.json`` and, for zoo models, the zoo's
``manifest.json``.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import sciml
from sciml.datasets.windows import advance_window
from sciml.errors import ConfigError, DataFormatError
from sciml.models import ModelContext, build_model
from sciml.models.wrappers import Normalized
from sciml.zoo.files import (
    CARD,
    CONFIG,
    FORMAT_VERSION,
    WEIGHTS,
    read_model_config,
    replace_folder,
    sha256_file,
    verify_sha256,
    write_json_atomic,
)

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


class PretrainedOperator(nn.Module):
    """A registry model wrapped with its normalization: physical ``x [B, C_in, *grid]`` -> physical ``y``.

    Attributes:
        config: the parsed ``config.json`` (registry name and arguments, task, recipe, card metrics).
        operator: the :class:`~sciml.models.wrappers.Normalized` module that does the work.
    """

    def __init__(self, model: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        norm = config["normalization"]
        self.operator = Normalized(model, norm["x_mean"], norm["x_std"], norm["y_mean"], norm["y_std"])
        self.config = config

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

    @torch.no_grad()
    def rollout(self, frames: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive prediction from ``frames [B, t_in, C, *grid]``: ``[B, steps * t_out, C, *grid]``.

        Each prediction is appended to the window and the oldest frames drop out (windowed models only).
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
        out = []
        for _ in range(steps):
            pred = self(window)
            out.append(pred.reshape(b, -1, c, *frames.shape[3:]))
            window = advance_window(window, pred)
        return torch.cat(out, dim=1)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, device: str | torch.device = "cpu", verify: bool = True
    ) -> PretrainedOperator:
        """Load a zoo model by name, or any folder in the pretrained format by path.

        The weights' SHA-256 is checked against ``config.json`` (and the zoo manifest for zoo names)
        before they are read; a mismatch raises :class:`~sciml.zoo.files.IntegrityError`.
        """
        from sciml.zoo.hub import resolve

        folder, manifest_entry = resolve(name_or_path)
        config = read_model_config(folder)
        weights = folder / config["weights"].get("file", WEIGHTS)
        if verify:
            if manifest_entry is not None:
                verify_sha256(weights, manifest_entry["sha256"], "the zoo manifest")
                if "config_sha256" in manifest_entry:
                    verify_sha256(folder / CONFIG, manifest_entry["config_sha256"], "the zoo manifest")
            verify_sha256(weights, config["weights"]["sha256"], str(folder / CONFIG))
        try:
            state = load_file(str(weights), device=str(device))
        except (SafetensorError, OSError) as err:
            raise DataFormatError(weights, f"not a readable safetensors file ({err})") from None
        model = build_model(
            config["model"]["name"], config["model"].get("kwargs", {}), _context(config, folder)
        )
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise DataFormatError(
                weights, f"weights do not fit the model described in {folder / CONFIG} ({err})"
            ) from None
        operator = cls(model, config).to(device)
        operator.eval()
        logger.info("loaded %s (%s, %s) from %s", config["name"], config["model"]["name"], device, folder)
        return operator

    def save_pretrained(self, folder: str | Path, card: str | Callable[[dict], str] | None = None) -> Path:
        """Write this model as a pretrained folder (weights, config with checksum, optional card).

        ``card`` is the model card's text, or a function of the final config that renders it. The folder
        is assembled under a temporary name next to ``folder`` and renamed at the end.
        """
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            state = {
                key: value.detach().cpu().contiguous().clone()
                for key, value in self.operator.model.state_dict().items()
                if torch.is_tensor(value)
            }
            save_file(
                state, str(staging / WEIGHTS), metadata={"format": "pt", "sciml_format": str(FORMAT_VERSION)}
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
