"""Faults of issue 13 in training: a kill between the writes of an epoch, divergence, config mistakes and
failed runs; each ends in a consistent run directory or one clear sciml error before anything is written."""

import json
import logging
import math
import os
import re
from pathlib import Path

import pytest
import torch
from test_trainer import _trainer, assert_same_weights, final_weights, tiny_config, write_config

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, build_model
from sciml.train import main
from sciml.training.checkpoint import has_finite_weights, load_checkpoint
from sciml.training.trainer import TrainingDivergedError, check_device_available

TIMINGS = {"epoch_seconds", "samples_per_second"}


class Killed(BaseException):
    """Stands for SIGKILL: raised from ``os.replace``, no ``except Exception`` on its way out catches it
    (temporary files stay behind, as after a real kill)."""


def kill_at(monkeypatch: pytest.MonkeyPatch, name: str, occurrence: int, when: str) -> None:
    """Make the ``occurrence``-th rename onto a file called ``name`` end the run, ``before`` or ``after``
    it takes place."""
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        if Path(dst).name == name:
            seen += 1
            if seen == occurrence:
                if when == "after":
                    real_replace(src, dst, *args, **kwargs)
                raise Killed(f"killed {when} writing {name} #{occurrence}")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def metrics_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def one_error_line(caplog: pytest.LogCaptureFixture) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def reference_run(tiny_data, tmp_path_factory) -> Path:
    """Two epochs without interruption; both improve the validation error (both write best.pt)."""
    root = tmp_path_factory.mktemp("reference")
    run_dir = root / "run"
    assert main([str(write_config(root / "c.yaml", tiny_config(tiny_data, run_dir, epochs=2)))]) == 0
    valid = [row["valid_l2"] for row in metrics_rows(run_dir)]
    assert valid[1] < valid[0]  # the final epoch is the best: the kills below hit its best.pt write
    return run_dir


# ------------------------------------------------------------------ item 3: kill between the final writes
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", ["last.pt", "best.pt", "metrics.jsonl"])
def test_kill_during_the_final_epoch_commit_is_repaired_on_resume(
    tiny_data, reference_run, tmp_path, monkeypatch, name, when
):
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, run_dir, epochs=2))
    with monkeypatch.context() as patch:
        kill_at(patch, name, occurrence=2, when=when)  # the second epoch's write of `name`
        with pytest.raises(Killed):
            main([str(cfg)])
    assert main([str(cfg), "--resume"]) == 0

    assert_same_weights(final_weights(reference_run), final_weights(run_dir))
    best, reference_best = (load_checkpoint(d / "checkpoints" / "best.pt") for d in (run_dir, reference_run))
    assert best["epoch"] == reference_best["epoch"] == 2
    assert_same_weights(reference_best["model"], best["model"])
    assert metrics_rows(run_dir) == metrics_rows(reference_run)  # every epoch once, none missing
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ item 4: divergence names a good one
def test_divergence_before_the_first_checkpoint_names_none(tiny_data, tmp_path, caplog):
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, run_dir))
    assert main([str(cfg), "optim.lr=1e6"]) == 2
    message = one_error_line(caplog)
    assert "non-finite" in message and "No checkpoint of this run was written" in message
    assert "last.pt" not in message


def test_divergence_keeps_and_names_only_a_finite_checkpoint(tiny_data, tmp_path):
    # one step per epoch (36 training windows): the loss of a step is finite, the weights it leaves are not
    trainer = _trainer(tiny_data, tmp_path / "run", data__batch_size=36, train__epochs=1)
    trainer.fit()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    good = load_checkpoint(last)
    trainer.config.train.epochs = 3
    for group in trainer.optimizer.param_groups:
        group["lr"] = 1e6
    with pytest.raises(TrainingDivergedError, match=r"non-finite .*after epoch 2.*") as info:
        trainer.fit()
    assert f"Last good checkpoint: {last} (epoch 1)" in str(info.value)
    kept = load_checkpoint(last)
    assert kept["epoch"] == 1 and math.isfinite(kept["history"][-1]["valid_l2"])
    assert has_finite_weights(kept["model"])
    assert_same_weights(good["model"], kept["model"])
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


# ------------------------------------------------------------------ item 6: config mistakes, one clear error
def _devices() -> list[tuple[str, str]]:
    count = torch.cuda.device_count()
    cases = [
        ("gpu0", r"train.device: 'gpu0' is not a device; expected auto, cpu, cuda"),
        (f"cuda:{count}", rf"train.device: 'cuda:{count}'"),  # one past the last GPU, or none at all
    ]
    if not torch.cuda.is_available():
        cases.append(("cuda", r"train.device: 'cuda' asks for a GPU, but torch .* sees none"))
    return cases


@pytest.mark.parametrize(("device", "message"), _devices())
def test_unusable_device_is_one_config_error(tiny_data, tmp_path, caplog, device, message):
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, tmp_path / "run"))
    assert main([str(cfg), f"train.device={device}"]) == 2
    assert re.search(message, one_error_line(caplog))
    assert not (tmp_path / "run").exists()
    if device != "gpu0":
        with pytest.raises(ConfigError, match=message):
            check_device_available(device)


def test_model_constructor_failure_is_one_config_error(tiny_data, tmp_path, caplog):
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, tmp_path / "run"))
    assert main([str(cfg), "model.width=-4"]) == 2
    assert "model 'fno': cannot be built with" in one_error_line(caplog)
    assert "width=-4" in one_error_line(caplog)
    assert not (tmp_path / "run").exists()
    context = ModelContext(in_channels=2, out_channels=1, grid_shape=(16, 16))
    for family in ("fno", "tfno"):  # caught in the registry, whatever the family raised
        with pytest.raises(ConfigError, match=rf"model '{family}': cannot be built with modes=-1"):
            build_model(family, {"modes": -1}, context)


@pytest.mark.parametrize(
    ("override", "conflict"),
    [
        ("model.width=16", "model.width: 8 -> 16"),
        ("data.batch_size=2", "data.batch_size: 4 -> 2"),
        ("train.seed=1", "train.seed: 0 -> 1"),
        ("train.epochs=0", "train.epochs: 1 -> 0 (may only grow)"),
    ],
)
def test_resume_with_a_different_config_is_refused_before_writing(
    tiny_data, tmp_path, caplog, override, conflict
):
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, run_dir, epochs=1))
    assert main([str(cfg)]) == 0
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    caplog.clear()
    assert main([str(cfg), "--resume", override]) == 2
    message = one_error_line(caplog)
    assert "cannot resume this run with a different config" in message and conflict in message
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    # what may change does: more epochs, another device spelling
    assert main([str(cfg), "--resume", "train.epochs=2", "train.device=cpu"]) == 0
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 2


# ------------------------------------------------------------------ item 9: no stray run folders
def test_failed_run_leaves_no_folder_it_created(tiny_data, tmp_path):
    nested = tmp_path / "runs" / "tiny" / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, nested))
    assert main([str(cfg), "optim.lr=1e6"]) == 2  # fails in epoch 1, after the folder was made
    assert not (tmp_path / "runs").exists()
    assert main([str(cfg), "model.name=fnoo"]) == 2  # fails while building
    assert not (tmp_path / "runs").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("kept")
    cfg = write_config(tmp_path / "c2.yaml", tiny_config(tiny_data, existing))
    assert main([str(cfg), "optim.lr=1e6"]) == 2
    assert (existing / "notes.txt").read_text() == "kept"
