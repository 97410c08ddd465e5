"""Build hook: a wheel carries the checkout's shipped files inside the package, under ``sciml/_assets/``.

The repository's top-level ``configs/``, ``datasets/``, ``models/``, ``solvers/`` and ``BENCHMARKS.md`` stay
the only committed copy; ``build_py`` copies them into the built package (never into the source tree), where
:func:`sciml.assets.asset_root` finds them when there is no checkout. An editable install copies nothing: it
uses the checkout itself. The list below is ``sciml.assets.SHIPPED`` (a test keeps the two equal).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("configs", "datasets", "models", "solvers", "BENCHMARKS.md")
INSTALLED_FOLDER = Path("sciml") / "_assets"
LEFT_OUT_FOLDERS = {"__pycache__", ROOT / "solvers" / "results" / "quick"}  # caches; smoke-run records
LEFT_OUT_SUFFIXES = (".pyc", ".tmp")


def left_out(folder: str, names: list[str]) -> set[str]:
    """The entries of ``folder`` that a wheel does not carry (``shutil.copytree``'s ``ignore``)."""
    return {
        name
        for name in names
        if name.startswith(".")
        or name.endswith(LEFT_OUT_SUFFIXES)
        or name in LEFT_OUT_FOLDERS
        or Path(folder, name) in LEFT_OUT_FOLDERS
    }


class BuildPyWithAssets(build_py):
    """``build_py`` that also copies the shipped files into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / INSTALLED_FOLDER
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=left_out)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithAssets})
