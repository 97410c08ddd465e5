"""Progress bars stay out of logs and pipes (issue 16, first hour): every tqdm bar of the package is drawn
only when stderr is a terminal, unless ``$SCIML_PROGRESS`` forces it (``always``) or turns it off."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_loggers
import torch
from test_loggers import tiny_run_config, write_config

from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.progress import PROGRESS_ENV, progress_disable
from sciml.solvers.gp import GPSolver
from sciml.solvers.gp_problem import PDEProblem
from sciml.train import main as train_main

ROOT = Path(__file__).parents[1]
tiny_data = test_loggers.tiny_data  # the fixture: the tiny dataset of the logger tests


def train_under_a_pipe(config: Path) -> str:
    """Run ``python -m sciml.train`` with stderr into a pipe; returns what it wrote there (bytes decoded
    as they are: a text-mode pipe would turn carriage returns into newlines)."""
    environment = {k: v for k, v in os.environ.items() if k != PROGRESS_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "sciml.train", str(config)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
        check=False,
    )
    log = result.stderr.decode("utf-8", errors="replace")
    assert result.returncode == 0, log[-2000:]
    return log


def test_training_under_a_pipe_writes_no_progress_lines(tiny_data, tmp_path):
    config = write_config(tmp_path / "c.yaml", tiny_run_config(tiny_data, tmp_path / "run", progress=True))
    log = train_under_a_pipe(config)
    assert "epoch 2/2" in log  # the log itself is there
    assert "\r" not in log and "it/s" not in log


def test_training_draws_its_bar_only_when_forced(tiny_data, tmp_path, capsys, monkeypatch):
    config = write_config(tmp_path / "c.yaml", tiny_run_config(tiny_data, tmp_path / "run", progress=True))
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert train_main([str(config)]) == 0
    assert "\r" not in capsys.readouterr().err
    monkeypatch.setenv(PROGRESS_ENV, "always")
    assert train_main([str(config), "train.run_dir=" + str(tmp_path / "forced")]) == 0
    assert "\repoch 1:" in capsys.readouterr().err  # the override draws the bar into a captured stream
    monkeypatch.setenv(PROGRESS_ENV, "always")
    assert train_main([str(config), "train.progress=false", "train.run_dir=" + str(tmp_path / "off")]) == 0
    assert "\r" not in capsys.readouterr().err  # a bar the config turned off stays off


def _poisson_1d() -> PDEProblem:
    return PDEProblem(
        box=[(0.0, math.pi)],
        residual=lambda d, x: d["xx"] + 4.0 * torch.sin(2 * x[..., 0]),
        boundary=lambda x: torch.sin(2 * x[..., 0]),
        name="poisson1d",
    )


def test_gp_fit_draws_no_bar_into_a_captured_stream(capsys, monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    GPSolver(_poisson_1d(), 8).fit(3, progress=True, method="adam")
    assert "\r" not in capsys.readouterr().err
    monkeypatch.setenv(PROGRESS_ENV, "always")
    GPSolver(_poisson_1d(), 8).fit(3, progress=True, method="adam")
    assert "GP-HM" in capsys.readouterr().err


def test_generate_draws_no_bar_into_a_captured_stream(tmp_path, capsys, monkeypatch):
    recipe = Recipe.from_mapping(
        {
            "name": "tiny_progress",
            "solver": {"resolution": 8, "viscosity": 1e-3, "dt": 0.05, "stepper": "heun-cn"},
            "output": {"t_final": 0.1, "record_every": 0.1},
            "n_trajectories": 1,
            "batch_size": 1,
        }
    )
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    generate(recipe, tmp_path / "a.hdf5", progress=True, device="cpu")
    assert "\r" not in capsys.readouterr().err
    monkeypatch.setenv(PROGRESS_ENV, "always")
    generate(recipe, tmp_path / "b.hdf5", progress=True, device="cpu")
    assert "generate tiny_progress" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "allowed", "disable"),
    [
        (None, True, None),  # tqdm: drawn on a terminal only
        ("auto", True, None),
        ("always", True, False),
        ("1", True, False),
        ("never", True, True),
        ("OFF", True, True),
        ("always", False, True),  # a bar its caller turned off stays off
    ],
)
def test_progress_setting(monkeypatch, setting, allowed, disable):
    if setting is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, setting)
    assert progress_disable(allowed) is disable


def test_unknown_progress_setting_is_one_config_error(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "sometimes")
    with pytest.raises(ConfigError, match=r"SCIML_PROGRESS='sometimes' .*expected always, never or auto"):
        progress_disable()
