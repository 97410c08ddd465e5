"""Where a run's per-epoch metrics go: ``train.loggers: [jsonl, csv, tensorboard, wandb, mlflow]``.

Every logger follows :class:`RunLogger`: :meth:`~RunLogger.start` once per :meth:`Trainer.fit
<sciml.training.trainer.Trainer.fit>` (the run's config and the epochs already committed: empty for a new
run, the checkpoint's history for a resumed one), :meth:`~RunLogger.log_metrics` once per finished epoch
(``step`` is the epoch), :meth:`~RunLogger.close` at the end. Only rank 0 logs under DDP.

A resumed run appends: each logger ends with every epoch of the run once, however the previous process
ended. ``jsonl`` and ``csv`` rewrite their file from the history; ``tensorboard`` discards the events of the
previous process (``purge_step``) and logs the history again; ``wandb`` and ``mlflow`` continue the same
tracker run (its id is kept in the run folder) and log only the epochs it does not hold yet.

The trackers are optional dependencies (``pip install sciml[loggers]``: ``tensorboard``, ``wandb``,
``mlflow-skinny``), imported only when asked for; a missing one is a :class:`ConfigError` before anything is
written (:func:`check_logger_packages`).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from sciml.atomic import write_text_atomically
from sciml.errors import ConfigError
from sciml.training.config import RunConfig

logger = logging.getLogger(__name__)

EXTRA = "pip install sciml[loggers]"
"""How to install every optional logger package."""

PACKAGES: dict[str, str] = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""Logger name -> the module it imports (``mlflow`` is provided by ``mlflow`` or ``mlflow-skinny``)."""

LOGGER_FILES = ("metrics.jsonl", "metrics.csv", "wandb_run_id.txt", "mlflow_run_id.txt")
"""Files the loggers write atomically into the run folder (a killed write leaves a ``.<name>*.tmp``)."""

Row = Mapping[str, Any]


class RunLogger(Protocol):
    """What the Trainer calls on each logger of ``train.loggers``."""

    name: str
    required: bool
    """Whether a failure while logging stops the run (files of the run) or only drops this logger."""

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """Record the run's config once and bring the logger in line with the committed ``history``."""

    def log_metrics(self, metrics: Row, step: int) -> None:
        """Record one finished epoch's row (``metrics["epoch"] == step``)."""

    def close(self, failed: bool = False) -> None:
        """Flush and release; ``failed``: the run stopped on an error."""


def scalars(metrics: Row) -> dict[str, float]:
    """The row's finite numbers except the epoch (it is the step): what the trackers plot."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key != "epoch"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


# ---------------------------------------------------------------------------------------- files of the run
class _RewrittenFile:
    """A file of the run holding every epoch's row, rewritten atomically from all rows at each epoch."""

    name = ""
    file_name = ""
    required = True

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        self.path = run_dir / self.file_name
        self.rows: list[dict[str, Any]] = []

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """Rewrite the file from the committed history (a resume drops epochs logged after it)."""
        self.rows = [dict(row) for row in history]
        if self.rows or self.path.exists():
            write_text_atomically(self.path, self.render(self.rows))

    def log_metrics(self, metrics: Row, step: int) -> None:
        """Add the epoch's row and rewrite the file."""
        self.rows.append(dict(metrics))
        write_text_atomically(self.path, self.render(self.rows))

    def close(self, failed: bool = False) -> None:
        """Nothing to release: every write is complete."""

    def render(self, rows: list[dict[str, Any]]) -> str:
        """The file's text for ``rows``."""
        raise NotImplementedError


class JsonlLogger(_RewrittenFile):
    """``metrics.jsonl``: one JSON object per epoch, in the order of the Trainer's row."""

    name = "jsonl"
    file_name = "metrics.jsonl"

    def render(self, rows: list[dict[str, Any]]) -> str:
        """One ``json.dumps(row)`` line per row."""
        return "".join(json.dumps(row) + "\n" for row in rows)


class CsvLogger(_RewrittenFile):
    """``metrics.csv``: one header (every column any epoch had, in order of first appearance), one line
    per epoch; an epoch without a column leaves its cell empty."""

    name = "csv"
    file_name = "metrics.csv"

    def render(self, rows: list[dict[str, Any]]) -> str:
        """The CSV text of ``rows``."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue()


# ---------------------------------------------------------------------------------------- trackers
def _import_failed(name: str, err: ImportError) -> ConfigError:
    return ConfigError(
        f"train.loggers: {name!r} cannot import its package ({type(err).__name__}: {err}); {EXTRA}"
    )


def _run_name(config: RunConfig, run_dir: Path) -> str:
    """The trackers' name of the run: ``train.name``, else ``<config name>/<run folder>``."""
    return config.train.name or f"{config.name}/{run_dir.name}"


class TensorBoardLogger:
    """``tensorboard/`` in the run folder: one scalar per metric and epoch, the config as text."""

    name = "tensorboard"
    required = False

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise _import_failed(self.name, err) from err
        self.writer_class = SummaryWriter
        self.log_dir = run_dir / "tensorboard"
        self.writer: Any = None

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """Open the writer; events of an earlier process are discarded and the history logged again."""
        earlier = self.log_dir.is_dir() and any(self.log_dir.iterdir())
        # purge_step: readers drop every earlier event at a step >= 1, so the history below replaces them
        self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=1 if earlier else None)
        self.writer.add_text("config", "```\n" + yaml.safe_dump(dict(config), sort_keys=False) + "```", 0)
        for row in history:
            self._add(row, int(row["epoch"]))
        self.writer.flush()

    def log_metrics(self, metrics: Row, step: int) -> None:
        """One scalar per metric at ``step``."""
        self._add(metrics, step)
        self.writer.flush()

    def _add(self, metrics: Row, step: int) -> None:
        for key, value in scalars(metrics).items():
            self.writer.add_scalar(key, value, step)

    def close(self, failed: bool = False) -> None:
        """Close the event file."""
        if self.writer is not None:
            self.writer.close()


def _read_run_id(path: Path) -> str | None:
    """The tracker run id kept in ``path`` by an earlier process of this run, if any."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


class WandbLogger:
    """Weights & Biases: the run's files in ``<run>/wandb/``, one history row per epoch (``step`` = epoch).

    The mode is ``train.wandb_mode``, else ``$WANDB_MODE`` (wandb's own default: online); ``offline`` needs
    no account and keeps everything in the run folder (``wandb sync <run>/wandb/offline-run-*`` uploads
    it later). The project is ``train.wandb_project``, else ``$WANDB_PROJECT``, else ``sciml``. A resumed
    run continues the same wandb run (id in ``wandb_run_id.txt``).
    """

    name = "wandb"
    required = False

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        try:
            import wandb
        except ImportError as err:
            raise _import_failed(self.name, err) from err
        self.wandb = wandb
        self.config = config
        self.run_dir = run_dir
        self.run: Any = None

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """Start (or resume) the wandb run with the config, then log the epochs it does not hold."""
        t = self.config.train
        id_file = self.run_dir / "wandb_run_id.txt"
        run_id = _read_run_id(id_file) or uuid.uuid4().hex[:12]
        write_text_atomically(id_file, run_id + "\n")
        try:
            self.run = self.wandb.init(
                project=t.wandb_project or os.environ.get("WANDB_PROJECT") or "sciml",
                name=_run_name(self.config, self.run_dir),
                id=run_id,
                resume="allow",
                mode=t.wandb_mode,
                dir=str(self.run_dir),
                config=dict(config),
            )
        except Exception as err:  # wandb's errors (no login, no network) have no common base class
            raise ConfigError(
                f"train.loggers: wandb could not start a run ({type(err).__name__}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}); log in with "
                f"`wandb login`, or set train.wandb_mode=offline (or WANDB_MODE=offline)"
            ) from err
        first_missing = int(getattr(self.run, "starting_step", 0) or 0)
        for row in history:
            if int(row["epoch"]) >= first_missing:
                self.run.log(scalars(row), step=int(row["epoch"]))

    def log_metrics(self, metrics: Row, step: int) -> None:
        """One history row at ``step``."""
        self.run.log(scalars(metrics), step=step)

    def close(self, failed: bool = False) -> None:
        """Finish the wandb run (exit code 1 when the run failed)."""
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)


class MlflowLogger:
    """MLflow: the config as parameters, one value per metric and epoch (``step`` = epoch).

    The tracking URI is ``train.mlflow_tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else a file store in
    the run folder, ``file:<run>/mlruns`` (MLflow 3 reads a file store only with
    ``MLFLOW_ALLOW_FILE_STORE=true``, which this logger sets while it writes: read it with
    ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file:<run>/mlruns``). The experiment is
    ``train.mlflow_experiment``, else the config's name. A resumed run continues the same MLflow run (id
    in ``mlflow_run_id.txt``) and logs only the epochs each metric does not hold yet.
    """

    name = "mlflow"
    required = False

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        try:
            from mlflow.entities import Metric, Param
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise _import_failed(self.name, err) from err
        self.metric_class, self.param_class = Metric, Param
        self.client_class, self.mlflow_error = MlflowClient, MlflowException
        self.config = config
        self.run_dir = run_dir
        t = config.train
        default = (run_dir / "mlruns").resolve().as_uri()
        self.tracking_uri = t.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default
        self.experiment = t.mlflow_experiment or config.name
        self.client: Any = None
        self.run_id: str | None = None
        self._allowed_file_store = False

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """Open (or continue) the MLflow run, log the config's parameters and the missing epochs."""
        if self.tracking_uri.startswith("file:") and "MLFLOW_ALLOW_FILE_STORE" not in os.environ:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
            self._allowed_file_store = True
        try:
            self.client = self.client_class(tracking_uri=self.tracking_uri)
            run = self._open_run()
            self._log_params(config, run.data.params)
            self._log_history(history)
        except self.mlflow_error as err:
            raise ConfigError(
                f"train.loggers: mlflow at {self.tracking_uri}: {str(err).strip().splitlines()[0]}"
            ) from err

    def _open_run(self) -> Any:
        """The run of an earlier process of this run (its id in ``mlflow_run_id.txt``), else a new one."""
        id_file = self.run_dir / "mlflow_run_id.txt"
        run_id = _read_run_id(id_file)
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
                self.run_id = run_id
                self.client.update_run(run_id, status="RUNNING")
                return run
            except self.mlflow_error:
                logger.info("mlflow run %s is not at %s; starting a new one", run_id, self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        run = self.client.create_run(
            experiment_id,
            run_name=_run_name(self.config, self.run_dir),
            tags={"sciml.run_dir": str(self.run_dir.resolve())},
        )
        self.run_id = run.info.run_id
        write_text_atomically(id_file, self.run_id + "\n")
        return run

    def _log_params(self, config: Mapping[str, Any], logged: Mapping[str, str]) -> None:
        """The config's leaves as parameters (``train.epochs``...); MLflow keeps a parameter's first value,
        so a resume logs only new ones."""
        params = [self.param_class(key, str(value)) for key, value in _flatten(config).items()]
        new = [p for p in params if p.key not in logged]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=new[start : start + 100])

    def _log_history(self, history: Sequence[Row]) -> None:
        """Log each metric's epochs past the last step the run holds for it."""
        logged: dict[str, int] = {}
        for row in history:
            for key, value in scalars(row).items():
                if key not in logged:
                    steps = [m.step for m in self.client.get_metric_history(self.run_id, key)]
                    logged[key] = max(steps, default=0)
                if int(row["epoch"]) > logged[key]:
                    self._log({key: value}, int(row["epoch"]))

    def log_metrics(self, metrics: Row, step: int) -> None:
        """One value per metric at ``step``."""
        self._log(scalars(metrics), step)

    def _log(self, values: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self.metric_class(key, value, now, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, failed: bool = False) -> None:
        """Mark the run FINISHED (FAILED when the run failed)."""
        try:
            if self.client is not None and self.run_id is not None:
                self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
        finally:
            if self._allowed_file_store:
                os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
                self._allowed_file_store = False


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"section.key": value}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---------------------------------------------------------------------------------------- the set of them
LOGGERS: dict[str, Callable[[RunConfig, Path], RunLogger]] = {
    "jsonl": JsonlLogger,
    "csv": CsvLogger,
    "tensorboard": TensorBoardLogger,
    "wandb": WandbLogger,
    "mlflow": MlflowLogger,
}
"""``train.loggers`` entry -> the logger (keys: the values of ``LoggerName``)."""


def check_logger_packages(names: Sequence[str]) -> None:
    """Raise one :class:`ConfigError` when a logger of ``names`` needs a package that is not installed."""
    for name in names:
        module = PACKAGES.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"train.loggers: {name!r} needs the package {module!r}, which is not installed; "
                f"{EXTRA} (or pip install {'mlflow-skinny' if name == 'mlflow' else module})"
            )


class RunLoggers:
    """The loggers of one :meth:`Trainer.fit <sciml.training.trainer.Trainer.fit>`, called together.

    A failure of a ``required`` logger (a file of the run) stops the run; one of a tracker is logged as a
    warning and that tracker is dropped for the rest of the run (its metrics stay in the run's files).
    """

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        check_logger_packages(config.train.loggers)
        self.loggers: list[RunLogger] = [LOGGERS[name](config, run_dir) for name in config.train.loggers]

    def start(self, config: Mapping[str, Any], history: Sequence[Row]) -> None:
        """:meth:`RunLogger.start` on each logger (a failure here stops the run: its setup is wrong)."""
        for index, run_logger in enumerate(self.loggers):
            try:
                run_logger.start(config, history)
            except BaseException:
                for started in self.loggers[: index + 1]:  # the failed one may hold resources too
                    self._close(started, failed=True)
                self.loggers = []
                raise

    def log_metrics(self, metrics: Row, step: int) -> None:
        """:meth:`RunLogger.log_metrics` on each logger."""
        for run_logger in list(self.loggers):
            try:
                run_logger.log_metrics(metrics, step)
            except Exception as err:
                if run_logger.required:
                    raise
                logger.warning(
                    "train.loggers: %s failed at epoch %d (%s: %s); the run continues without it",
                    run_logger.name,
                    step,
                    type(err).__name__,
                    err,
                )
                self.loggers.remove(run_logger)
                self._close(run_logger, failed=True)

    def close(self, failed: bool = False) -> None:
        """:meth:`RunLogger.close` on each logger; a tracker that fails to close is only warned about."""
        for run_logger in self.loggers:
            self._close(run_logger, failed)
        self.loggers = []

    @staticmethod
    def _close(run_logger: RunLogger, failed: bool) -> None:
        try:
            run_logger.close(failed)
        except Exception as err:
            if run_logger.required:
                raise
            logger.warning(
                "train.loggers: %s failed to close (%s: %s)", run_logger.name, type(err).__name__, err
            )
