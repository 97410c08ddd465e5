"""Run configuration: YAML sections (data, model, optim, train, eval) read into dataclasses.

``python -m sciml.train CONFIG.yaml section.key=value ...``: overrides are parsed as YAML scalars and must
keep the type of the field they replace; an unknown section or key is an error naming the nearest valid
one. The model section is ``{name: <registered family>, **arguments}``; its arguments are checked against
the family's signature when the model is built.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sciml.config import check_choices, from_dict, load_yaml, nearest, to_dict
from sciml.errors import ConfigError

# The allowed values of the config's choice fields, declared once: the config machinery checks them
# (sciml.config.from_dict / check_choices) and the code that acts on a choice reads a mapping keyed by them.
DataMode = Literal["initial_to_final", "window", "pairs"]
SchedulerName = Literal["none", "step", "cosine", "onecycle"]
SchedulerInterval = Literal["epoch", "step"]
OptimizerName = Literal["adamw", "adam", "sgd", "adahessian", "sophia"]
ProbeName = Literal["rademacher", "gaussian"]
LossName = Literal["l2", "h1", "h-1", "mse", "spectral"]
AmpMode = Literal["auto", "bf16", "fp16", "none"]
ResumeMode = Literal["never", "auto", "must"]
UnrollGradient = Literal["all", "last"]
LoggerName = Literal["jsonl", "csv", "tensorboard", "wandb", "mlflow"]
WandbMode = Literal["online", "offline", "disabled"]

RUN_LENGTH_SCHEDULES: tuple[SchedulerName, ...] = ("cosine", "onecycle")
"""Schedules that span the whole run (``train.epochs`` times the optimizer steps of an epoch)."""


@dataclass
class DataConfig:
    """Where the data come from and how samples are cut from them.

    Exactly one of ``path`` (a file in any supported format, or a URL: ``https://``, ``s3://``, ``hf://``...,
    read lazily) and ``recipe`` (a dataset recipe, generated into the cache on first use) is given.
    ``mode``: ``"initial_to_final"`` (x = frame ``input_time``, y = frame ``output_time``), ``"window"``
    (``t_in`` frames in, ``t_out`` frames out, for autoregressive models) or ``"pairs"`` (files that already
    hold x/y pairs). ``options``: keyword arguments of ``sciml.datasets.open`` for the file, e.g.
    ``{block_size: 1048576, storage_options: {anon: true}}`` for a URL.
    """

    path: str | None = None
    recipe: str | None = None
    format: str | None = None
    options: dict[str, Any] | None = None
    fields: list[str] | None = None
    mode: DataMode = "initial_to_final"
    input_time: int = 0
    output_time: int = -1
    t_in: int = 1
    t_out: int = 1
    stride: int = 1
    train: float = 0.8
    valid: float = 0.1
    test: float = 0.1
    split_seed: int = 0
    shuffle_split: bool = False
    normalize: bool = True
    batch_size: int = 16
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_choices(self, "data")
        if (self.path is None) == (self.recipe is None):
            raise ConfigError(
                "data: give exactly one of 'path' (a data file) and 'recipe' (a dataset recipe)"
            )
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.options is not None and not isinstance(self.options, dict):
            raise ConfigError(f"data.options must be a mapping of reader options, got {self.options!r}")


@dataclass
class SchedulerConfig:
    """Learning-rate schedule: ``none``, ``step`` (StepLR), ``cosine`` or ``onecycle``.

    ``interval``: the schedule advances once per epoch or once per optimizer step (``onecycle`` always
    per step). ``warmup_steps`` > 0: the learning rate rises linearly over the first ``warmup_steps``
    optimizer steps, ``lr * (k + 1) / warmup_steps`` at step ``k``, to the rate the schedule starts from
    (``optim.lr``; ``onecycle`` starts from ``optim.lr / div_factor`` and rises further), then the schedule
    runs over the remaining steps: the warm-up counts in the run's length, so ``cosine`` and ``onecycle``
    still end at the last step of ``train.epochs``, and ``step`` counts its ``step_size`` from the end of
    the warm-up. A warm-up is stepped per optimizer step, so ``step`` and ``cosine`` need
    ``interval: step`` with it. ``onecycle`` rises from ``lr / div_factor`` to ``lr`` over the first 30% of
    the run and falls to ``lr / (div_factor * final_div_factor)`` (PyTorch's ``OneCycleLR``; its defaults
    25 and 1e4; the Spectral-Refiner reference uses 1e3 and 1e4).
    """

    name: SchedulerName = "none"
    step_size: int = 100
    gamma: float = 0.5
    warmup_steps: int = 0
    interval: SchedulerInterval = "epoch"
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        check_choices(self, "optim.scheduler")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.scheduler.warmup_steps must be >= 0, got {self.warmup_steps}")
        for key in ("div_factor", "final_div_factor"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value >= 1):
                raise ConfigError(f"optim.scheduler.{key} must be a number >= 1, got {value!r}")
        if self.warmup_steps > 0 and not self.per_step:
            raise ConfigError(
                f"optim.scheduler.warmup_steps {self.warmup_steps} counts optimizer steps, but the "
                f"{self.name} schedule after it is stepped per epoch; set optim.scheduler.interval: step"
            )

    @property
    def per_step(self) -> bool:
        """Whether the schedule advances every optimizer step (else once per epoch)."""
        return (
            self.interval == "step"
            or self.name == "onecycle"
            or (self.name == "none" and self.warmup_steps > 0)
        )


def _check_positive(section: str, key: str, value: Any, at_most: float | None = None) -> None:
    """``value`` is a number > 0 (and <= ``at_most``), else a ConfigError naming ``section.key``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok or (at_most is not None and value > at_most):
        bound = f" and <= {at_most:g}" if at_most is not None else ""
        raise ConfigError(f"{section}.{key} must be a number > 0{bound}, got {value!r}")


def _check_period(section: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{section}.update_period must be an integer >= 1 (optimizer steps), got {value!r}")


@dataclass
class AdaHessianConfig:
    """``optim.name: adahessian`` (Yao et al. 2021; docs/optimizers.md). ``optim.lr``, ``optim.betas``
    (the paper's 0.9, 0.999) and ``optim.weight_decay`` (decoupled) apply too.

    ``hessian_power``: the exponent k in (0, 1] of the RMS Hessian diagonal (1: the paper's default);
    ``eps``: added to the denominator (1e-4, the authors' code); ``update_period``: refresh the Hessian
    estimate every that many steps (1); ``spatial_average``: average the estimate over each convolution
    kernel's spatial block (the paper's Eq. 9); ``probe``: the Hutchinson probes' distribution (rademacher).
    """

    hessian_power: float = 1.0
    eps: float = 1e-4
    update_period: int = 1
    spatial_average: bool = True
    probe: ProbeName = "rademacher"

    def __post_init__(self) -> None:
        check_choices(self, "optim.adahessian")
        _check_positive("optim.adahessian", "hessian_power", self.hessian_power, at_most=1.0)
        _check_positive("optim.adahessian", "eps", self.eps)
        _check_period("optim.adahessian", self.update_period)


@dataclass
class SophiaConfig:
    """``optim.name: sophia`` (Sophia-H of Liu et al. 2023; docs/optimizers.md). ``optim.lr`` and
    ``optim.weight_decay`` (decoupled) apply too; ``optim.betas`` does not (Sophia has its own).

    Defaults are the paper's: ``betas`` 0.96, 0.99 (gradient and Hessian EMAs), ``gamma`` 0.01 (the
    update is ``clip(m / max(gamma * h, eps), 1)``), ``eps`` 1e-12, ``update_period`` k = 10 (steps between
    Hessian estimates), ``probe`` gaussian.
    """

    betas: list[float] = field(default_factory=lambda: [0.96, 0.99])
    gamma: float = 0.01
    eps: float = 1e-12
    update_period: int = 10
    probe: ProbeName = "gaussian"

    def __post_init__(self) -> None:
        check_choices(self, "optim.sophia")
        _check_betas("optim.sophia.betas", self.betas)
        _check_positive("optim.sophia", "gamma", self.gamma)
        _check_positive("optim.sophia", "eps", self.eps)
        _check_period("optim.sophia", self.update_period)


def _check_betas(key: str, betas: Any) -> None:
    ok = isinstance(betas, list | tuple) and len(betas) == 2
    if not ok or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"{key} must be two numbers in [0, 1), got {betas!r}")


@dataclass
class OptimConfig:
    """Optimizer (AdamW by default), gradient clipping and accumulation.

    ``adahessian`` and ``sophia`` (second-order, :mod:`sciml.training.second_order`) take their own options
    from the sections of the same names.
    """

    name: OptimizerName = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float | None = None
    accumulate: int = 1
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    adahessian: AdaHessianConfig = field(default_factory=AdaHessianConfig)
    sophia: SophiaConfig = field(default_factory=SophiaConfig)

    def __post_init__(self) -> None:
        check_choices(self, "optim")
        if self.accumulate < 1:
            raise ConfigError(f"optim.accumulate must be >= 1, got {self.accumulate}")
        if self.name in ("adahessian", "sophia"):
            _check_betas("optim.betas", self.betas)


DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class TrainConfig:
    """The loop: epochs, loss, device, precision, checkpoints and the run directory.

    ``checkpoint_every``: ``last.pt`` is written every that many epochs, at the last epoch and at every
    epoch that improves ``checkpoint_metric`` (``best.pt`` is then a copy of it).
    ``ddp_timeout_s``: under DDP, the longest a collective may wait for the other ranks before the job
    stops with a message naming the ranks that stalled.
    ``progress``: allow the per-epoch progress bar; it is drawn only when stderr is a terminal unless
    ``$SCIML_PROGRESS`` is ``always`` (:mod:`sciml.progress`).

    ``loggers``: where the per-epoch metrics go (:mod:`sciml.training.loggers`): ``jsonl``
    (``metrics.jsonl``, the default), ``csv`` (``metrics.csv``), ``tensorboard`` (``tensorboard/``),
    ``wandb`` (Weights & Biases; its files in ``wandb/``; ``wandb_mode`` else ``$WANDB_MODE`` picks
    online or offline; ``wandb_project`` else ``$WANDB_PROJECT`` else ``sciml``) and ``mlflow``
    (``mlflow_tracking_uri`` else ``$MLFLOW_TRACKING_URI`` else a file store ``mlruns/`` in the run
    folder; ``mlflow_experiment`` else the config's name). Both trackers name the run after its folder.
    ``tensorboard: true`` is kept for older configs: it adds ``tensorboard`` to ``loggers``.
    """

    epochs: int = 10
    seed: int = 0
    loss: LossName = "l2"
    device: str = "auto"
    amp: AmpMode = "auto"
    compile: bool = False
    run_dir: str | None = None
    name: str | None = None
    resume: ResumeMode = "never"
    checkpoint_metric: str = "valid_l2"
    checkpoint_every: int = 1
    tensorboard: bool = False
    progress: bool = True
    deterministic: bool = True
    unroll: int = 1
    unroll_gradient: UnrollGradient = "all"
    ddp_timeout_s: float = 600.0
    loggers: list[LoggerName] = field(default_factory=lambda: ["jsonl"])
    wandb_project: str | None = None
    wandb_mode: WandbMode | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str | None = None

    def __post_init__(self) -> None:
        check_choices(self, "train")
        self._check_loggers()
        if not self.ddp_timeout_s > 0:
            raise ConfigError(f"train.ddp_timeout_s must be > 0 seconds, got {self.ddp_timeout_s!r}")
        if not isinstance(self.device, str) or not DEVICE_NAME.fullmatch(self.device):
            raise ConfigError(
                f"train.device: {self.device!r} is not a device; "
                "expected auto, cpu, cuda, cuda:<index> or mps"
            )
        if self.epochs < 0:
            raise ConfigError(f"train.epochs must be >= 0, got {self.epochs}")
        if not isinstance(self.unroll, int) or self.unroll < 1:
            raise ConfigError(
                f"train.unroll must be an integer >= 1 (autoregressive steps), got {self.unroll!r}"
            )
        if self.unroll > 1 and self.loss == "spectral":
            raise ConfigError(
                "train.unroll > 1 feeds physical predictions back; it cannot use loss: spectral"
            )

    def _check_loggers(self) -> None:
        """``loggers``: a list of known logger names, each once; ``tensorboard: true`` adds tensorboard."""
        known = typing.get_args(LoggerName)
        if not isinstance(self.loggers, list | tuple):
            raise ConfigError(
                f"train.loggers: expected a list of logger names ({', '.join(known)}), found {self.loggers!r}"
            )
        for name in self.loggers:
            if name not in known:
                raise ConfigError(
                    f"train.loggers: {name!r} is not a logger; known loggers: {', '.join(known)}"
                )
        repeated = sorted({name for name in self.loggers if self.loggers.count(name) > 1})
        if repeated:
            raise ConfigError(f"train.loggers: {', '.join(repeated)} listed more than once")
        self.loggers = list(self.loggers)
        if self.tensorboard and "tensorboard" not in self.loggers:
            self.loggers.append("tensorboard")


@dataclass
class EvalConfig:
    """What the report holds: test resolutions (zero-shot), rollout length, plots."""

    resolutions: list[int] = field(default_factory=list)
    rollout_steps: int = 0
    plots: bool = True
    batch_size: int | None = None


SECTIONS = {"data": DataConfig, "optim": OptimConfig, "train": TrainConfig, "eval": EvalConfig}


@dataclass
class RunConfig:
    """A whole run: the five sections and the config's name (its file stem)."""

    data: DataConfig
    model: dict[str, Any]
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "run"

    @property
    def model_name(self) -> str:
        """The registered family of the model section."""
        return self.model["name"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """The model section without its name: the family's arguments."""
        return {k: v for k, v in self.model.items() if k != "name"}

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (YAML/JSON)."""
        return to_dict(self)

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def config_from_mapping(data: dict[str, Any], name: str = "run", where: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from nested mappings; strict on unknown sections and keys."""
    data = dict(data)
    data.pop("name", None)
    valid = [*SECTIONS, "model"]
    for key in data:
        if key not in valid:
            raise ConfigError(f"{where}: unknown section {key!r}; {nearest(str(key), valid)}")
    model = data.get("model")
    if not isinstance(model, dict) or "name" not in model:
        raise ConfigError(
            f"{where}: the 'model' section must be a mapping with a 'name' (a registered family)"
        )
    if "data" not in data:
        raise ConfigError(f"{where}: the 'data' section is required")
    sections = {key: from_dict(cls, data.get(key), f"{where}: {key}") for key, cls in SECTIONS.items()}
    if sections["train"].unroll > 1 and sections["data"].mode != "window":
        raise ConfigError(
            f"{where}: train.unroll {sections['train'].unroll} rolls a windowed model out; "
            f"data.mode is {sections['data'].mode!r}, expected window"
        )
    return RunConfig(model=dict(model), name=name, **sections)


RESUME_MAY_CHANGE = (
    "name",
    "train.epochs",
    "train.device",
    "train.amp",
    "train.compile",
    "train.run_dir",
    "train.name",
    "train.resume",
    "train.checkpoint_every",
    "train.tensorboard",
    "train.progress",
    "train.deterministic",
    "train.ddp_timeout_s",
    "train.loggers",
    "train.wandb_project",
    "train.wandb_mode",
    "train.mlflow_tracking_uri",
    "train.mlflow_experiment",
    "data.num_workers",
    "eval",
)
"""Keys of a run config that may differ when a run is resumed; every other key (the model, the data, the
optimizer and schedule, the seed, the loss and the checkpoint metric) must equal the run's. ``train.epochs``
may only grow, and must stay the same under a cosine or one-cycle schedule (their length is fixed by it)."""


def resume_conflicts(saved: RunConfig, config: RunConfig) -> list[str]:
    """What forbids resuming the run trained with ``saved`` under ``config``; empty when nothing does.

    Each entry reads ``key: saved value -> new value (why)``; see :data:`RESUME_MAY_CHANGE`.
    """
    old, new = _flatten(saved.to_dict()), _flatten(config.to_dict())
    conflicts = []
    for key in sorted(old.keys() | new.keys()):
        if any(key == k or key.startswith(k + ".") for k in RESUME_MAY_CHANGE):
            continue
        if old.get(key, "(unset)") != new.get(key, "(unset)"):
            conflicts.append(f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}")
    before, after = saved.train.epochs, config.train.epochs
    if after < before:
        conflicts.append(f"train.epochs: {before} -> {after} (may only grow)")
    elif after != before and saved.optim.scheduler.name in RUN_LENGTH_SCHEDULES:
        conflicts.append(
            f"train.epochs: {before} -> {after} (the {saved.optim.scheduler.name} schedule's length is fixed)"
        )
    return conflicts


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"section.key": value}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_overrides(data: dict[str, Any], overrides: list[str], where: str = "override") -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a nested mapping, keeping the type of existing values.

    Values are parsed as YAML scalars (``lr=3e-4``, ``fields=[vorticity]``, ``grad_clip=null``). Keys are
    checked against the dataclass fields (or, for ``model.*``, accepted as family arguments and checked
    when the model is built).
    """
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{where}: {item!r} is not of the form section.key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"{where}: cannot parse the value of {dotted} ({err})") from err
        if isinstance(value, str):
            value = _number_or_text(value)  # YAML 1.1 reads "3e-4" as text; users mean a number
        _check_override_path(keys, dotted)
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {dotted}: {key!r} is not a section")
        old = node.get(keys[-1])
        if old is not None and value is not None and not _same_kind(old, value):
            raise ConfigError(
                f"{where}: {dotted}={raw!r} changes the type of the value ({type(old).__name__} "
                f"{old!r} -> {type(value).__name__})"
            )
        node[keys[-1]] = value
    return out


def _number_or_text(text: str) -> Any:
    """``text`` as an int or float when it spells one, else unchanged."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _same_kind(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, int | float) and isinstance(new, int | float):
        return not (isinstance(old, int) and isinstance(new, float) and not new.is_integer())
    return isinstance(new, type(old))


def _check_override_path(keys: list[str], dotted: str) -> None:
    """Unknown sections/keys of the fixed sections are errors naming the nearest valid key."""
    section = keys[0]
    if section == "model":
        if len(keys) < 2:
            raise ConfigError(f"override {dotted}: name a model argument, e.g. model.width=64")
        return
    if section not in SECTIONS:
        raise ConfigError(
            f"override {dotted}: unknown section {section!r}; {nearest(section, [*SECTIONS, 'model'])}"
        )
    cls: Any = SECTIONS[section]
    for key in keys[1:]:
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(f"override {dotted}: {key!r} is below a plain value")
        names = {f.name: f for f in dataclasses.fields(cls)}
        if key not in names:
            raise ConfigError(f"override {dotted}: unknown key {key!r}; {nearest(key, names)}")
        hint = cls.__dataclass_fields__[key].type
        cls = _resolve_dataclass(hint)


def _resolve_dataclass(hint: Any) -> Any:
    """The dataclass a (string) annotation names, if it is one of ours; else None."""
    names = {c.__name__: c for c in (SchedulerConfig, AdaHessianConfig, SophiaConfig)}
    return names.get(hint if isinstance(hint, str) else getattr(hint, "__name__", ""))


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config file and apply overrides."""
    p = Path(path)
    data = load_yaml(p)
    if overrides:
        data = apply_overrides(data, overrides)
    return config_from_mapping(data, name=str(data.get("name") or p.stem), where=str(p))
