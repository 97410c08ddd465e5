"""Where the zoo lives and what it holds: ``models/`` and its ``manifest.json``.

The zoo folder is ``$SCIML_ZOO`` when set, else ``models/`` at the top of the sciml checkout. Nothing is
ever downloaded. A name (``"fno_ns64"``) resolves only to an entry of the zoo's manifest, inside the zoo
folder, never to a folder of the current directory; a string that is a path is refused as a name (a local
folder is loaded explicitly, with ``path=``, and reported as unverified).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sciml.assets import asset_root
from sciml.config import nearest
from sciml.errors import ConfigError, DataFormatError
from sciml.zoo.files import (
    CONFIG,
    MANIFEST,
    SHA256_PATTERN,
    read_json,
    read_model_config,
    sha256_file,
    weights_file,
    write_json_atomic,
)


def zoo_root() -> Path:
    """The zoo folder: ``$SCIML_ZOO``, else the shipped ``models/`` (the checkout's, or the copy installed
    with the package; see :func:`sciml.assets.asset_root`)."""
    env = os.environ.get("SCIML_ZOO")
    return Path(env) if env else asset_root() / "models"


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

    @property
    def has_test_metrics(self) -> bool:
        """Whether the entry was measured on regenerated Navier-Stokes test trajectories (its card's test
        metrics; an entry trained on a file or on another kind of recipe, e.g. DCDM's Poisson data, has
        none)."""
        return self.test_l2 is not None

    def row(self, name_width: int = 22, family_width: int = 11) -> str:
        """The entry as one line of the ``python -m sciml.zoo list`` table (columns of the given widths)."""
        l2 = f"{self.test_l2:.4f}" if self.test_l2 is not None else "-"
        size = f"{self.params:>10,d} {self.megabytes:>7.2f}"
        return f"{self.name:<{name_width}} {self.family:<{family_width}} {size} {l2:>8}  {self.description}"


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


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is a path (has a separator, is ``.``/``..`` or starts with ``~``), not a zoo name."""
    return "/" in name or "\\" in name or name in (".", "..") or name.startswith("~")


def resolve_name(name: str) -> tuple[Path, dict[str, Any]]:
    """The folder of the zoo entry ``name`` and its manifest entry (with the SHA-256s to check).

    Only names listed in the manifest resolve, to ``zoo_root() / name``; the current directory is never
    looked at. A path given as a name raises :class:`ConfigError` pointing to ``path=``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"a zoo name must be a non-empty string, got {type(name).__name__} {str(name)!r}; "
            "to load a local folder pass it explicitly as path= (it is reported as unverified)"
        )
    if looks_like_path(name):
        raise ConfigError(
            f"{name!r} is a path, not a zoo name (a plain name such as 'fno_ns64'); to load a local folder "
            f"pass it explicitly: sciml.zoo.load(path={name!r}) (it is reported as unverified)"
        )
    root = zoo_root()
    models = read_manifest(root)["models"]
    if name not in models:
        where = f"the zoo at {root}"
        hint = "; a local folder loads with path=" if Path(name).is_dir() else ""
        if not models:
            raise ConfigError(f"no pretrained model named {name!r}: {where} is empty{hint}")
        raise ConfigError(f"no pretrained model named {name!r} in {where}; {nearest(name, models)}{hint}")
    entry = models[name]
    manifest = root / MANIFEST
    for key in ("sha256", "config_sha256"):
        value = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(value, str) or not SHA256_PATTERN.fullmatch(value):
            raise DataFormatError(
                manifest,
                "zoo entry without a valid checksum",
                key=f"models.{name}.{key}",
                expected="64 lowercase hex digits",
                found=repr(value)[:80],
            )
    folder = root / name
    if not folder.resolve().is_relative_to(root.resolve()):
        raise DataFormatError(folder, f"zoo entry {name!r} leaves the zoo folder {root}")
    return folder, entry


def register(folder: Path, root: Path | None = None) -> dict[str, Any]:
    """Add (or refresh) a model folder in the zoo manifest with the SHA-256 of its weights and config."""
    root = root or zoo_root()
    config = read_model_config(folder)
    weights = weights_file(folder, config)
    metrics = config.get("metrics", {})
    entry = {
        "family": config["model"]["name"],
        "description": config.get("description", ""),
        "weights": f"{folder.name}/{weights.relative_to(folder.resolve()).as_posix()}",
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
