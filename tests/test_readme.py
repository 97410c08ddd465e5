"""Every ```python block of README.md runs as written, in a fresh namespace and an empty working directory.

A block that reads a file the user brings (the FNO ``.mat`` file of the datasets section) gets a small
stand-in of that file, generated in the FNO layout, in its working directory. A block may be skipped only
with ``<!-- readme-test: skip, needs a GPU -->`` (or "many processes") on the line before it; none is today.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(
    r"^(?P<marker><!-- readme-test: skip, (?P<why>[^>]*) -->\n)?```python\n(?P<code>.*?)^```", re.M | re.S
)


def fno_mat_stand_in(path: Path) -> None:
    """A tiny FNO-layout ``.mat`` file (2 trajectories, 11 frames at 16^2) under the name the README uses."""
    recipe = Recipe.from_mapping(
        {
            "name": "readme_stand_in",
            "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
            "output": {"t_final": 1.0, "record_every": 0.1},
            "n_trajectories": 2,
            "batch_size": 2,
        }
    )
    generate(recipe, path, file_format="mat", progress=False, device="cpu")


STAND_INS: dict[str, Callable[[Path], None]] = {"NavierStokes_V1e-3_N5000_T50.mat": fno_mat_stand_in}


def python_blocks() -> list:
    """``pytest.param(code, start line)`` for every python block, skip-marked ones with their reason."""
    text = README.read_text()
    params = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        marks = []
        if match["marker"]:
            marks.append(pytest.mark.skip(reason=f"README.md:{line}: needs {match['why']}"))
        params.append(pytest.param(match["code"], line, marks=marks, id=f"README.md:{line}"))
    return params


BLOCKS = python_blocks()


def test_the_readme_has_its_python_blocks():
    assert len(BLOCKS) >= 6  # solver, datasets, Spectral-Refiner, zoo, GP, metrics


def test_skips_are_only_for_gpus_or_many_processes():
    for match in BLOCK.finditer(README.read_text()):
        if match["marker"]:
            assert re.search(r"GPU|processes", match["why"]), match["why"]


@pytest.mark.parametrize(("code", "line"), BLOCKS)
def test_readme_block_runs(code, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, make in STAND_INS.items():
        if name in code:
            make(tmp_path / name)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme_block"})
