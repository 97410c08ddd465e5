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

``config.json`` is checked before anything it describes is used (:func:`read_model_config`): every key a
loader needs has the expected type and shape, and a file it names (``weights.file``) must stay inside the
model's folder: absolute paths, ``..`` and symlinks that lead out are refused before the file is opened.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from sciml.atomic import write_text_atomically
from sciml.errors import DataFormatError

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("format_version", "name", "model", "context", "normalization", "task", "weights")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


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


def _shown(value: Any, limit: int = 160) -> str:
    """``repr(value)``, cut to ``limit`` characters so a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _malformed(path: Path, key: str, expected: str, value: Any) -> DataFormatError:
    return DataFormatError(
        path, "malformed pretrained-model config", key=key, expected=expected, found=_shown(value)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def confined_file(folder: Path, name: Any, recorded_in: Path, key: str) -> Path:
    """``folder/name`` resolved, refused unless it stays inside ``folder`` (checked before it is opened).

    ``name`` comes from a file (``recorded_in``, at ``key``): an absolute path, a ``..`` component, or a
    path that leaves ``folder`` once symlinks are resolved raises :class:`DataFormatError` naming them.
    """
    expected = f"a file name inside {folder}"
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise _malformed(recorded_in, key, expected, name)
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.is_absolute() or pure.drive or pure.root or ".." in pure.parts:
            raise DataFormatError(
                recorded_in,
                "refusing a file outside the model folder",
                key=key,
                expected=expected,
                found=_shown(name),
            )
    resolved = (folder / name).resolve()
    if resolved == folder.resolve():
        raise _malformed(recorded_in, key, expected, name)
    if not resolved.is_relative_to(folder.resolve()):
        raise DataFormatError(
            recorded_in,
            f"refusing a file outside the model folder (it resolves to {resolved})",
            key=key,
            expected=expected,
            found=_shown(name),
        )
    return resolved


def _check_numbers(path: Path, key: str, value: Any, length: int, what: str, positive: bool) -> None:
    sign = "positive " if positive else ""
    expected = f"a list of {length} finite {sign}numbers (one per {what} channel)"
    ok = isinstance(value, list) and len(value) == length and all(_is_number(v) for v in value)
    if not ok or (positive and min(value) <= 0):
        raise _malformed(path, key, expected, value)


def check_model_config(config: dict[str, Any], path: Path) -> None:
    """Raise :class:`DataFormatError` (naming ``path`` and the key) unless ``config`` is loadable.

    Checks the types and shapes of what a loader uses: ``model`` (name, kwargs object), ``context``
    (channel counts, grid), ``normalization`` (one finite number per channel, positive stds), ``task``
    and ``weights`` (a file inside the folder, a SHA-256).
    """
    for key in ("model", "context", "normalization", "task", "weights"):
        if not isinstance(config[key], dict):
            raise _malformed(path, key, "a JSON object", config[key])
    model, context, weights = config["model"], config["context"], config["weights"]
    if not isinstance(model.get("name"), str):
        raise _malformed(path, "model.name", "a registry model name (a string)", model.get("name"))
    kwargs = model.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _malformed(path, "model.kwargs", "an object of model arguments", kwargs)
    for key in ("in_channels", "out_channels"):
        if not _is_count(context.get(key)):
            raise _malformed(path, f"context.{key}", "a positive integer", context.get(key))
    grid = context.get("grid_shape")
    if not isinstance(grid, list) or not grid or not all(_is_count(n) for n in grid):
        raise _malformed(path, "context.grid_shape", "a list of positive integers", grid)
    channels = {"x": (context["in_channels"], "input"), "y": (context["out_channels"], "output")}
    for side, (length, what) in channels.items():
        for stat in ("mean", "std"):
            key = f"{side}_{stat}"
            value = config["normalization"].get(key)
            _check_numbers(path, f"normalization.{key}", value, length, what, positive=stat == "std")
    if not isinstance(config["task"].get("mode"), str):
        raise _malformed(path, "task.mode", "a task mode (a string)", config["task"].get("mode"))
    if not isinstance(weights.get("sha256"), str) or not SHA256_PATTERN.fullmatch(weights["sha256"]):
        raise _malformed(path, "weights.sha256", "64 lowercase hex digits", weights.get("sha256"))
    if weights.get("dtype", "float32") not in ("float32", "float16", "bfloat16"):
        raise _malformed(path, "weights.dtype", "float32, float16 or bfloat16", weights.get("dtype"))
    confined_file(path.parent, weights.get("file", WEIGHTS), path, "weights.file")


def read_model_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json``, checked for the keys, format version and values a loader needs."""
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
            found=_shown(config["format_version"]),
        )
    check_model_config(config, path)
    return config


def weights_file(folder: Path, config: dict[str, Any]) -> Path:
    """The weights file named by a checked ``config.json`` of ``folder``, confined to ``folder``."""
    return confined_file(folder, config["weights"].get("file", WEIGHTS), folder / CONFIG, "weights.file")


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write indented JSON atomically (:func:`sciml.atomic.write_text_atomically`)."""
    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")


def _usual_permissions(folder: Path) -> None:
    """Give ``folder`` and its files the permissions of a folder made with ``mkdir`` under the umask (a
    ``tempfile.mkdtemp`` folder is private, 0700, and safetensors writes its files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def replace_folder(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing an older one only at the end; the
    result has the umask's usual permissions, as a folder written in place would."""
    _usual_permissions(staging)
    old = target.with_name(f".{target.name}.old.{uuid.uuid4().hex[:12]}")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    if old.exists():
        shutil.rmtree(old)
