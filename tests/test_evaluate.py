"""The first hour with a trained run: the end-of-run summary of ``sciml.train`` and ``sciml.evaluate``.

One tiny run, made like the quickstart (a dataset recipe, a default run folder ``runs/<config>/<UTC time>``,
a zero-shot resolution whose test trajectories are solved again, plots on), serves every test here.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import yaml

from sciml.errors import ConfigError
from sciml.evaluate import evaluate_run
from sciml.evaluate import main as evaluate_main
from sciml.train import main as train_main
from sciml.training.checkpoint import load_checkpoint

RECIPE = {
    "name": "tiny_first_hour",
    "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
    "output": {"t_final": 0.3, "record_every": 0.1},
    "n_trajectories": 16,
    "batch_size": 16,
}


class Collect(logging.Handler):
    """Keeps the formatted messages of the ``sciml`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, str]:
    """A finished run in a fresh working directory: (working directory, run folder, what training logged)."""
    cwd = tmp_path_factory.mktemp("first_hour")
    (cwd / "tiny_first_hour.yaml").write_text(yaml.safe_dump(RECIPE))
    config = {
        "data": {
            "recipe": "tiny_first_hour.yaml",
            "mode": "initial_to_final",
            "input_time": 0,
            "output_time": -1,
            "fields": ["vorticity"],
            "train": 0.5,
            "valid": 0.25,
            "test": 0.25,
            "batch_size": 4,
        },
        "model": {"name": "fno", "modes": 4, "width": 8, "n_layers": 2},
        "optim": {"lr": 3e-3},
        "train": {"epochs": 3, "progress": False},
        "eval": {"resolutions": [32]},
    }
    (cwd / "tiny.yaml").write_text(yaml.safe_dump(config))
    handler = Collect()
    sciml_logger = logging.getLogger("sciml")
    sciml_logger.addHandler(handler)
    level = sciml_logger.level
    sciml_logger.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.delenv("SCIML_CACHE", raising=False)
        try:
            assert train_main(["tiny.yaml"]) == 0
        finally:
            sciml_logger.removeHandler(handler)
            sciml_logger.setLevel(level)
    (run,) = (cwd / "runs" / "tiny").iterdir()
    return cwd, run, "\n".join(handler.messages)


def test_summary_names_every_resolution_the_run_folder_and_the_files(trained):
    cwd, run, log = trained
    assert re.fullmatch(r"\d{8}-\d{6}", run.name)  # runs/<config>/<UTC time>
    summary = log[log.index("tiny finished") :]
    assert f"run folder {run.relative_to(cwd)}" in summary
    report = json.loads((run / "report" / "metrics.json").read_text())
    assert set(report["test"]) == {"16", "32"}
    assert re.search(r"test @16 \(training resolution\): rel L2 [0-9.e-]+", summary)
    assert re.search(r"test @32 \(zero-shot, [^)]+\): rel L2 [0-9.e-]+", summary)
    l2_32 = report["test"]["32"]["l2"]["mean"]
    assert f"test @32 (zero-shot, {report['test']['32']['source']}): rel L2 {l2_32:.4g}" in summary
    figures = sorted((run / "report").glob("*.png"))
    assert figures  # plots are on in this config
    for path in [run / "report" / "metrics.json", *figures, *(run / "checkpoints").glob("*.pt")]:
        assert str(path.relative_to(cwd)) in summary


def test_evaluate_defaults_to_the_weights_of_the_training_report_and_keeps_it(trained, monkeypatch):
    cwd, run, _ = trained
    monkeypatch.chdir(cwd)
    report_file = run / "report" / "metrics.json"
    before = report_file.read_bytes()
    report = json.loads(before)

    assert evaluate_main([str(run), "--resolution", "32"]) == 0

    assert report_file.read_bytes() == before  # the training report is never overwritten silently
    evaluation = json.loads((run / "report" / "evaluate_last_32.json").read_text())
    assert evaluation["checkpoint"]["name"] == "last"
    assert evaluation["checkpoint"]["epoch"] == 3
    for resolution in ("16", "32"):
        for error in ("l2", "h1", "h-1"):
            got, want = (
                evaluation["test"][resolution][error]["mean"],
                report["test"][resolution][error]["mean"],
            )
            assert got == pytest.approx(want, rel=1e-6)
    assert (run / "report" / "evaluate_last_32_prediction.png").stat().st_size > 0
    assert not list((run / "report").glob(".evaluate-*"))  # no staging folder left behind


def test_evaluate_best_records_the_best_epoch(trained, monkeypatch):
    cwd, run, _ = trained
    monkeypatch.chdir(cwd)
    best_epoch = load_checkpoint(run / "checkpoints" / "best.pt")["epoch"]
    results = evaluate_run(run, checkpoint="best")
    assert results["checkpoint"]["name"] == "best"
    assert results["checkpoint"]["epoch"] == best_epoch
    written = json.loads((run / "report" / "evaluate_best.json").read_text())
    assert written["checkpoint"] == results["checkpoint"]


def test_overwrite_report_is_explicit_and_records_the_checkpoint(trained, monkeypatch, tmp_path):
    cwd, run, _ = trained
    monkeypatch.chdir(cwd)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    files = sorted((copy / "report").iterdir())
    assert evaluate_main([str(copy), "--overwrite-report", "--checkpoint", "last"]) == 0
    rewritten = json.loads((copy / "report" / "metrics.json").read_text())
    assert rewritten["checkpoint"]["name"] == "last"
    assert sorted((copy / "report").iterdir()) == files  # the same files, rewritten: no evaluate_* file


def test_evaluate_a_folder_that_is_not_a_run(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^runs/nope: not a run folder \(no config.yaml\)"):
        evaluate_run("runs/nope")
    caplog.clear()
    assert evaluate_main(["runs/nope"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "runs/nope: not a run folder (no config.yaml); expected a directory written by "
        "python -m sciml.train, zoo:NAME or pretrained:FOLDER"
    ]
