"""Where the zoo lives and what it holds: ``models/`` and its ``manifest.json``.

The zoo folder is ``$SCIML_ZOO`` when set, else ``models/`` at the top of the sciml checkout. Nothing is
ever downloaded: a name resolves to a folder on disk or fails with the list of names that exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sciml.config import nearest
from sciml.errors import ConfigError, DataFormatError
from sciml.zoo.files import (
    CONFIG,
    MANIFEST,
    WEIGHTS,
    read_json,
    read_model_config,
    sha256_file,
    write_json_atomic,
)


def zoo_root() -> Path:
    """The zoo folder: ``$SCIML_ZOO`` or ``<checkout>/models``."""
    env = os.environ.get("SCIML_ZOO")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def read_manifest(root: Path | None = None) -> dict[str, Any]:
    """The zoo's manifest (``{"format_version", "models": {name: entry}}``); empty when there is none."""
    path = (root or zoo_root()) / MANIFEST
    if not path.exists():
        return {"format_version": 1, "models": {}}
    manifest = read_json(path)
    if not isinstance(manifest.get("models"), dict):
        raise DataFormatError(path, "not a zoo manifest", key="models", expected="an object of models")
    return manifest


@dataclass(frozen=True)
class ZooEntry:
    """One row of the zoo listing."""

    name: str
    family: str
    params: int
    megabytes: float
    test_l2: float | None
    description: str

    def row(self) -> str:
        """The entry as one line of the ``python -m sciml.zoo list`` table."""
        l2 = f"{self.test_l2:.4f}" if self.test_l2 is not None else "-"
        size = f"{self.params:>9,d} {self.megabytes:>7.2f}"
        return f"{self.name:<22} {self.family:<9} {size} {l2:>8}  {self.description}"


def list_models(root: Path | None = None) -> list[ZooEntry]:
    """Every model in the zoo's manifest, sorted by name."""
    root = root or zoo_root()
    entries = []
    for name, entry in sorted(read_manifest(root)["models"].items()):
        entries.append(
            ZooEntry(
                name=name,
                family=str(entry.get("family", "?")),
                params=int(entry.get("params", 0)),
                megabytes=float(entry.get("bytes", 0)) / 2**20,
                test_l2=entry.get("test_l2"),
                description=str(entry.get("description", "")),
            )
        )
    return entries


def resolve(name_or_path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The folder of a zoo name or a local path, and the zoo manifest entry (``None`` for local folders)."""
    candidate = Path(name_or_path)
    if candidate.is_dir() and (candidate / CONFIG).exists():
        return candidate, None
    name = str(name_or_path)
    root = zoo_root()
    models = read_manifest(root)["models"]
    if name in models:
        return root / name, models[name]
    if candidate.exists() or os.sep in name:
        raise DataFormatError(candidate, "not a pretrained-model folder", expected=f"a folder with {CONFIG}")
    if not models:
        raise ConfigError(f"no pretrained model named {name!r}: the zoo at {root} is empty")
    raise ConfigError(f"no pretrained model named {name!r} in the zoo at {root}; {nearest(name, models)}")


def register(folder: Path, root: Path | None = None) -> dict[str, Any]:
    """Add (or refresh) a model folder in the zoo manifest with the SHA-256 of its weights and config."""
    root = root or zoo_root()
    config = read_model_config(folder)
    weights = folder / config["weights"].get("file", WEIGHTS)
    metrics = config.get("metrics", {})
    entry = {
        "family": config["model"]["name"],
        "description": config.get("description", ""),
        "weights": f"{folder.name}/{weights.name}",
        "sha256": sha256_file(weights),
        "config_sha256": sha256_file(folder / CONFIG),
        "bytes": weights.stat().st_size,
        "params": config["weights"].get("params", 0),
        "test_l2": metrics.get("l2", {}).get("mean"),
    }
    manifest = read_manifest(root)
    manifest["models"][folder.name] = entry
    manifest["models"] = dict(sorted(manifest["models"].items()))
    write_json_atomic(root / MANIFEST, manifest)
    return entry
