"""Where sciml's shipped files are: run configs, dataset recipes, the model zoo and the benchmark scripts.

The repository keeps them at its top level (``configs/``, ``datasets/``, ``models/``, ``solvers/`` and
``BENCHMARKS.md``). Run from a checkout (an editable install included), those copies are used: they are
the source a developer edits. A built wheel carries a copy of them inside the package, under
``sciml/_assets/`` with the same layout (``setup.py`` copies them at build time); that copy is used when
there is no checkout around the package.

Configs and recipes resolve by name as well as by path (:func:`resolve_config`): ``quickstart``,
``configs/quickstart.yaml``, ``ns_quick`` and ``datasets/ns_quick.yaml`` all name shipped files, while a
path that exists (relative to the working directory, or absolute) always wins.
"""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Sequence
from pathlib import Path

from sciml.errors import ConfigError

INSTALLED_FOLDER = "_assets"
"""The folder inside the installed package that holds the wheel's copy of the shipped files."""

SHIPPED = ("configs", "datasets", "models", "solvers", "BENCHMARKS.md")
"""The top-level folders and files of the checkout that a wheel carries (``setup.py`` copies them)."""

CONFIG_FOLDERS = ("configs", "datasets")
"""The shipped folders of YAML files that resolve by name: run configs first, then dataset recipes."""

YAML_SUFFIXES = (".yaml", ".yml")


def package_dir() -> Path:
    """The folder of the imported ``sciml`` package."""
    return Path(str(importlib.resources.files("sciml")))


def checkout_root(package: Path | None = None) -> Path | None:
    """The repository around the package (``<root>/sciml``), or ``None`` when the package is installed.

    A checkout is recognized by its ``pyproject.toml`` and ``configs/`` folder beside the package.
    """
    root = (package or package_dir()).resolve().parent
    if (root / "pyproject.toml").is_file() and (root / "configs").is_dir():
        return root
    return None


def installed_root(package: Path | None = None) -> Path:
    """The copy of the shipped files inside the package (present in an installed wheel)."""
    return (package or package_dir()) / INSTALLED_FOLDER


def asset_root(package: Path | None = None) -> Path:
    """The folder that holds ``configs/``, ``datasets/``, ``models/``, ``solvers/`` and ``BENCHMARKS.md``:
    the checkout when the package runs from one, else the copy installed inside the package.

    ``package`` is the package folder to look from (default: the imported ``sciml``).
    """
    return checkout_root(package) or installed_root(package)


def shipped_config_names(folders: Sequence[str] = CONFIG_FOLDERS, root: Path | None = None) -> list[str]:
    """The names of the shipped YAML files of ``folders``: paths inside the folder without the suffix
    (``quickstart``, ``zoo/fno_ns64``, ``ns_quick``), in the order of ``folders``, each sorted."""
    root = root or asset_root()
    names: list[str] = []
    for folder in folders:
        base = root / folder
        files = [p for p in base.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES]
        names += sorted(p.relative_to(base).with_suffix("").as_posix() for p in files)
    return names


def _with_suffixes(path: Path) -> list[Path]:
    """``path`` itself, and with each YAML suffix when it has none."""
    if path.suffix in YAML_SUFFIXES:
        return [path]
    return [path, *(path.parent / f"{path.name}{suffix}" for suffix in YAML_SUFFIXES)]


def _candidates(path: Path, folders: Sequence[str], root: Path) -> list[Path]:
    """Where a relative ``path`` may name a shipped file: ``root/path`` when it starts with one of
    ``folders`` (``datasets/ns_quick.yaml``), else ``root/<folder>/path`` for each folder (``ns_quick``)."""
    if path.parts and path.parts[0] in folders:
        return _with_suffixes(root / path)
    return [c for folder in folders for c in _with_suffixes(root / folder / path)]


def resolve_config(
    path: str | Path, folders: Sequence[str] = CONFIG_FOLDERS, root: Path | None = None
) -> Path:
    """The YAML file that ``path`` names: the path itself when it is a file, else a shipped file of
    ``folders`` (by ``folder/name.yaml`` or by bare name, suffix optional).

    Raises :class:`ConfigError` naming the nearest shipped names when there is no such file.
    """
    given = Path(path)
    if given.is_file():
        return given
    if given.is_absolute():
        raise ConfigError(f"{path}: no such config file")
    root = root or asset_root()
    for candidate in _candidates(given, folders, root):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{path}: no such config file, nor a shipped name; {_suggest(given, folders, root)}")


def _suggest(path: Path, folders: Sequence[str], root: Path) -> str:
    """A hint naming the shipped files closest to ``path`` (or where the shipped ones are)."""
    names = shipped_config_names(folders, root)
    parts = path.parts[1:] if path.parts and path.parts[0] in folders else path.parts
    wanted = Path(*parts).as_posix() if parts else str(path)
    wanted = wanted.removesuffix(path.suffix) if path.suffix in YAML_SUFFIXES else wanted
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
    if not close:  # compare the file name alone too (``fno_ns64`` for ``zoo/fno_ns64``)
        by_file_name = {Path(name).name: name for name in names}
        close = [by_file_name[n] for n in difflib.get_close_matches(Path(wanted).name, by_file_name, n=3)]
    if close:
        return f"did you mean {' or '.join(repr(name) for name in close)}?"
    where = ", ".join(str(root / folder) for folder in folders)
    return f"expected a YAML file or the name of one in {where}"
