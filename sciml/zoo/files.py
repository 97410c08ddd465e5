"""The on-disk format of a pretrained model: one folder with weights, config and card, checksummed.

A pretrained model is a folder::

    NAME/
      model.safetensors   the registry model's weights (tensors only, no pickle; complex weights allowed)
      config.json         registry name and arguments, model context, normalization, data task, dataset
                          recipe and evaluation seed, card metrics, SHA-256 of the weights, versions
      README.md           the model card

The zoo (``models/`` at the top of the repository) holds such folders and ``manifest.json``, the SHA-256
of every weight and config file. Everything is written to a temporary name and renamed, so an interrupted
export never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sciml.errors import DataFormatError

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("format_version", "name", "model", "context", "normalization", "task", "weights")


class IntegrityError(DataFormatError):
    """A weight or config file does not match its recorded SHA-256 (tampered, truncated or replaced)."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, recorded_in: str) -> None:
    """Raise :class:`IntegrityError` unless ``path`` hashes to ``expected``."""
    if not path.is_file():
        raise DataFormatError(path, f"file missing (listed in {recorded_in})")
    found = sha256_file(path)
    if found != expected:
        raise IntegrityError(
            path,
            f"SHA-256 does not match the one recorded in {recorded_in}: the file was modified, truncated "
            "or replaced; refusing to load it",
            expected=expected,
            found=found,
        )


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a :class:`DataFormatError` naming the file."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(path, f"not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise DataFormatError(path, "expected a JSON object", found=type(value).__name__)
    return value


def read_model_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json``, checked for the keys and format version a loader needs."""
    path = folder / CONFIG
    config = read_json(path)
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise DataFormatError(path, "not a sciml pretrained-model config", expected=f"keys {missing}")
    if config["format_version"] != FORMAT_VERSION:
        raise DataFormatError(
            path,
            "unsupported pretrained-model format version",
            key="format_version",
            expected=FORMAT_VERSION,
            found=config["format_version"],
        )
    return config


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write indented JSON through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def replace_folder(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing an older one only at the end."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)
