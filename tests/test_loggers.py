"""``train.loggers`` (issue 16, item 4): every logger, read back through its own library, holds each epoch
of a run once with the values of ``metrics.jsonl``, also after a run killed between its checkpoint and its
loggers is resumed; config mistakes and missing packages are one ConfigError."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.train import main
from sciml.training.config import TrainConfig, config_from_mapping
from sciml.training.loggers import CsvLogger, RunLoggers

ALL_LOGGERS = ["jsonl", "csv", "tensorboard", "wandb", "mlflow"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 16x16 trajectories of three frames (two training windows of a batch each per epoch)."""
    recipe = Recipe.from_mapping(
        {
            "name": "tiny_loggers",
            "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
            "output": {"t_final": 0.2, "record_every": 0.1},
            "n_trajectories": 8,
            "batch_size": 8,
        }
    )
    return generate(recipe, tmp_path_factory.mktemp("data") / "tiny.hdf5", progress=False, device="cpu")


def tiny_run_config(data_path: Path, run_dir: Path, **train) -> dict:
    """The smallest run: a 2-layer FNO of width 4, two optimizer steps per epoch, no report plots."""
    return {
        "data": {
            "path": str(data_path),
            "mode": "window",
            "fields": ["vorticity"],
            "train": 0.5,
            "valid": 0.25,
            "test": 0.25,
            "batch_size": 4,
        },
        "model": {"name": "fno", "modes": 4, "width": 4, "n_layers": 2},
        "train": {"epochs": 2, "run_dir": str(run_dir), "device": "cpu", **train},
        "eval": {"plots": False},
    }


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


class Killed(BaseException):
    """Stands for SIGKILL (no ``except Exception`` catches it)."""


def kill_after_commit(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """End the run right after the ``epoch``-th rename onto ``last.pt``: the epoch is committed, but no
    logger has seen it."""
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).name == "last.pt":
            seen += 1
            if seen == epoch:
                raise Killed(f"killed after committing epoch {epoch}")

    monkeypatch.setattr(os, "replace", replace)


@pytest.fixture
def offline_trackers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wandb offline and silent with its folders in tmp; mlflow at its default store (in the run)."""
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


# ------------------------------------------------------------------ readers, each the logger's own library
def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def wandb_records(run_file: Path) -> list:
    """The records of an offline wandb run file (``run-<id>.wandb``): a log of 32 KiB blocks after a
    7-byte ``:W&B`` header, each chunk a 7-byte header (checksum, length, kind: 1 full, 2 first, 3 middle,
    4 last) and a part of one of wandb's protobuf ``Record`` messages."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B", f"{run_file}: not a wandb transaction log"
    block, position, parts, records = 32768, 7, [], []
    while position + 7 <= len(data):
        room = block - position % block
        if room < 7:  # the rest of a block too short for a chunk header is padding
            position += room
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        parts.append(data[position + 7 : position + 7 + length])
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            records.append(record)
            parts = []
    return records


def wandb_history(records: list) -> dict[int, dict[str, float]]:
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {item.key or ".".join(item.nested_key): item.value_json for item in record.history.item}
            history[record.history.step.num] = {k: json.loads(v) for k, v in items.items()}
    return history


def metrics_jsonl(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ the loggers of a killed, resumed run
def test_every_logger_holds_each_epoch_once_after_a_kill_and_resume(
    tiny_data, tmp_path, monkeypatch, offline_trackers
):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_run_config(tiny_data, run_dir, loggers=ALL_LOGGERS))
    with monkeypatch.context() as patch:
        kill_after_commit(patch, epoch=2)  # epoch 2 is in last.pt; no logger has it
        with pytest.raises(Killed):
            main([str(cfg)])
    assert [row["epoch"] for row in metrics_jsonl(run_dir)] == [1]
    assert main([str(cfg), "--resume", "train.epochs=3"]) == 0
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # set for the logger's writes only

    rows = metrics_jsonl(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    metrics = [key for key in rows[0] if key != "epoch"]
    assert {"train_loss", "valid_l2", "lr", "step"} <= set(metrics)

    with (run_dir / "metrics.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [int(line["epoch"]) for line in table] == [1, 2, 3]
    assert [float(line["valid_l2"]) for line in table] == [row["valid_l2"] for row in rows]

    scalars = tensorboard_scalars(run_dir / "tensorboard")
    for key in metrics:
        assert [step for step, _ in scalars[key]] == [1, 2, 3], key
        assert [value for _, value in scalars[key]] == pytest.approx([r[key] for r in rows], rel=1e-6)

    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert runs, "no offline wandb run in the run folder"
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    assert all(folder.name.endswith(run_id) for folder in runs)  # the resume continued the same run
    records = wandb_records(runs[-1] / f"run-{run_id}.wandb")
    history = wandb_history(records)
    assert sorted(history) == [1, 2, 3]
    for row in rows:
        assert {key: history[row["epoch"]][key] for key in metrics} == {key: row[key] for key in metrics}
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert json.loads({i.key: i.value_json for i in run_record.config.update}["model"])["name"] == "fno"

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 opens a file store only with it
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    mlflow_run = client.get_run((run_dir / "mlflow_run_id.txt").read_text().strip())
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["model.name"] == "fno"
    for key in metrics:
        history = sorted((m.step, m.value) for m in client.get_metric_history(mlflow_run.info.run_id, key))
        assert history == [(row["epoch"], float(row[key])) for row in rows], key


def test_jsonl_alone_is_the_default_and_writes_nothing_else(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    assert main([str(write_config(tmp_path / "c.yaml", tiny_run_config(tiny_data, run_dir)))]) == 0
    assert [row["epoch"] for row in metrics_jsonl(run_dir)] == [1, 2]
    written = {path.name for path in run_dir.iterdir()}
    assert not written & {"metrics.csv", "tensorboard", "wandb", "mlruns", "mlflow_run_id.txt"}


# ------------------------------------------------------------------ csv columns
def test_csv_has_one_header_and_blank_cells_for_a_column_that_appears_later(tmp_path):
    config = config_from_mapping(tiny_run_config(tmp_path / "none.hdf5", tmp_path / "run"))
    (tmp_path / "run").mkdir()
    table = CsvLogger(config, tmp_path / "run")
    table.start({}, [{"epoch": 1, "train_loss": 0.5}])
    table.log_metrics({"epoch": 2, "train_loss": 0.25, "valid_l2": 0.125}, step=2)
    table.log_metrics({"epoch": 3, "valid_l2": 0.0625}, step=3)
    text = (tmp_path / "run" / "metrics.csv").read_text()
    assert text.count("epoch") == 1
    assert list(csv.reader(text.splitlines())) == [
        ["epoch", "train_loss", "valid_l2"],
        ["1", "0.5", ""],
        ["2", "0.25", "0.125"],
        ["3", "", "0.0625"],
    ]


# ------------------------------------------------------------------ a tracker failing mid-run
class BrokenTracker:
    """A tracker whose server went away after the run started."""

    name, required = "broken", False
    closed_as_failed: bool | None = None

    def start(self, config, history) -> None:
        pass

    def log_metrics(self, metrics, step: int) -> None:
        raise ConnectionError("tracking server unreachable")

    def close(self, failed: bool = False) -> None:
        self.closed_as_failed = failed


def test_a_failing_tracker_is_dropped_with_a_warning_and_the_files_go_on(tmp_path, caplog):
    config = config_from_mapping(tiny_run_config(tmp_path / "none.hdf5", tmp_path / "run"))
    (tmp_path / "run").mkdir()
    run_loggers = RunLoggers(config, tmp_path / "run")
    tracker = BrokenTracker()
    run_loggers.loggers.append(tracker)
    run_loggers.start({}, [])
    for epoch in (1, 2):
        run_loggers.log_metrics({"epoch": epoch, "train_loss": 1.0 / epoch}, step=epoch)
    run_loggers.close()
    assert [row["epoch"] for row in metrics_jsonl(tmp_path / "run")] == [1, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "train.loggers: broken failed at epoch 1 (ConnectionError: tracking server unreachable); "
        "the run continues without it"
    ]
    assert tracker.closed_as_failed is True


# ------------------------------------------------------------------ config mistakes and missing packages
@pytest.mark.parametrize(
    ("loggers", "message"),
    [
        (["jsonl", "comet"], r"'comet' is not one of jsonl, csv, tensorboard, wandb, mlflow"),
        ("jsonl", r"train\.loggers: expected a list"),
        (["csv", "csv"], r"train\.loggers: csv listed more than once"),
    ],
)
def test_bad_loggers_are_one_config_error_naming_the_known_ones(tmp_path, loggers, message):
    data = tiny_run_config(tmp_path / "d.hdf5", tmp_path / "run", loggers=loggers)
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data, where="c.yaml")
    with pytest.raises(ConfigError, match=r"train\.loggers"):
        TrainConfig(loggers=loggers)


def test_unknown_logger_in_python_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"'comet' is not a logger; known loggers: jsonl, csv, tensorboard"):
        TrainConfig(loggers=["comet"])


def test_old_tensorboard_flag_adds_the_tensorboard_logger():
    assert TrainConfig(tensorboard=True).loggers == ["jsonl", "tensorboard"]
    assert TrainConfig().loggers == ["jsonl"]


def test_missing_logger_package_is_one_config_error_before_anything_is_written(
    tiny_data, tmp_path, monkeypatch, caplog
):
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as if mlflow were not installed
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_run_config(tiny_data, run_dir, loggers=["jsonl", "mlflow"]))
    assert main([str(cfg)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "'mlflow' needs the package 'mlflow'" in errors[0]
    assert "pip install sciml[loggers]" in errors[0]
    assert not run_dir.exists()
