"""The one training loop shared by every neural family.

Read it top to bottom: set-up (device, precision, DDP, optimizer, scheduler), ``fit`` (resume, epochs,
checkpoints), ``train_epoch`` (the steps), ``validate``. The model is any ``nn.Module`` mapping
``x [B, C_in, *grid] -> y [B, C_out, *grid]``; samples are dicts ``{"x": ..., "y": ...}``.

Exact resume: data order depends only on ``(seed, epoch)`` (:class:`EpochSampler`), checkpoints are taken
at epoch ends with every RNG state, and a killed run resumed from ``last`` repeats the interrupted epoch
from the same state, so it ends with the same weights as an uninterrupted run (on the CPU, bitwise).

An epoch is committed by one rename: that of ``checkpoints/last.pt``, which holds the epoch's state, the
metrics history and which epoch is the best. ``best.pt`` (a copy of the best epoch's ``last.pt``) and
the metrics of ``train.loggers`` (``metrics.jsonl`` by default: :mod:`sciml.training.loggers`) are written
after it and derived from it: a resume rewrites them from the committed ``last.pt`` and deletes temporary
files left by a killed write, so wherever a kill lands, the resumed run ends with the files of an
uninterrupted one. An epoch whose losses or weights are not finite is never written.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from sciml.errors import ConfigError, SciMLError
from sciml.metrics import SobolevLoss, metadata_options, sobolev_error
from sciml.models.registry import SpectralLossModel, model_defined_loss, spectral_layer_types
from sciml.progress import progress_disable
from sciml.training.checkpoint import (
    CheckpointError,
    copy_checkpoint,
    has_finite_weights,
    load_checkpoint,
    remove_stray_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
    tensor_state_dict,
    unwrap,
)
from sciml.training.config import (
    RUN_LENGTH_SCHEDULES,
    AmpMode,
    LossName,
    OptimConfig,
    RunConfig,
    config_from_mapping,
    resume_conflicts,
)
from sciml.training.distributed import DistributedContext, all_reduce_sum, report_progress, resolve_device
from sciml.training.loggers import LOGGER_FILES, RunLoggers, check_logger_packages
from sciml.training.rollout import rollout
from sciml.training.sampler import EpochSampler
from sciml.training.second_order import HessianDiagonalOptimizer, average_over_processes, build_second_order

logger = logging.getLogger(__name__)


class TrainingDivergedError(SciMLError, FloatingPointError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


def check_device_available(name: str) -> None:
    """Refuse with a :class:`ConfigError` a ``train.device`` this machine cannot use (no CUDA, no such GPU).

    The spelling of ``name`` is checked by :class:`~sciml.training.config.TrainConfig`.
    """
    if name in ("auto", "cpu"):
        return
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device: {name!r} asks for a GPU, but torch {torch.__version__} sees none "
                f"(torch.cuda.is_available() is False); use train.device=auto or cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"train.device: {name!r}, but this machine has {count} GPU(s): cuda:0 .. cuda:{count - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device: {name!r} is not available on this machine; use auto or cpu")


LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _relative_sobolev(s: float) -> Callable[[dict[str, Any]], LossFunction]:
    """A builder of the relative ``H^s`` error (per sample and channel, averaged) for a geometry."""
    return lambda geometry: SobolevLoss(s=s, relative=True, **geometry)


LOSSES: dict[str, Callable[[dict[str, Any]], LossFunction]] = {
    "l2": _relative_sobolev(0.0),
    "h1": _relative_sobolev(1.0),
    "h-1": _relative_sobolev(-1.0),
    "mse": lambda geometry: nn.MSELoss(),
    # computed in the model's transformed domain by the Trainer; this is its physical equal (Parseval)
    "spectral": _relative_sobolev(0.0),
}
"""``train.loss`` -> a builder of the loss from the data's geometry (keys: the values of ``LossName``)."""


def build_loss(name: LossName, geometry: dict[str, Any]) -> LossFunction:
    """The training loss ``name``: a relative Sobolev error (l2, h1, h-1) or MSE (:data:`LOSSES`).

    ``geometry`` (box lengths, periodicity, grid kind: :func:`sciml.metrics.metadata_options`) makes
    walled data use the non-periodic norms.
    """
    return LOSSES[name](geometry)


OPTIMIZERS: dict[str, Callable[[nn.Module, list[nn.Parameter], RunConfig], torch.optim.Optimizer]] = {
    "adamw": lambda model, params, c: torch.optim.AdamW(
        params, lr=c.optim.lr, weight_decay=c.optim.weight_decay, betas=tuple(c.optim.betas)
    ),
    "adam": lambda model, params, c: torch.optim.Adam(
        params, lr=c.optim.lr, weight_decay=c.optim.weight_decay, betas=tuple(c.optim.betas)
    ),
    "sgd": lambda model, params, c: torch.optim.SGD(
        params, lr=c.optim.lr, weight_decay=c.optim.weight_decay, momentum=c.optim.betas[0]
    ),
    # second order (Hessian-diagonal preconditioning): sciml.training.second_order
    "adahessian": build_second_order,
    "sophia": build_second_order,
}
"""``optim.name`` -> the optimizer over some parameters of a model, given the run config (keys: the values
of ``OptimizerName``)."""


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """The ``optim.name`` optimizer (:data:`OPTIMIZERS`) over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS[config.optim.name](model, params, config)


LRScheduler = torch.optim.lr_scheduler.LRScheduler

SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, OptimConfig, int], LRScheduler | None]] = {
    "none": lambda optimizer, o, length: None,
    "step": lambda optimizer, o, length: torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=o.scheduler.step_size, gamma=o.scheduler.gamma
    ),
    "cosine": lambda optimizer, o, length: torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=length
    ),
    "onecycle": lambda optimizer, o, length: torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=o.lr,
        total_steps=length,
        div_factor=o.scheduler.div_factor,
        final_div_factor=o.scheduler.final_div_factor,
    ),
}
"""``optim.scheduler.name`` -> the schedule of an optimizer, given its length in scheduler steps (used by
``cosine`` and ``onecycle``); keys: the values of ``SchedulerName``."""


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: RunConfig, steps_per_epoch: int
) -> LRScheduler | None:
    """The ``optim.scheduler`` schedule (:data:`SCHEDULES`; ``None`` for ``none`` without warm-up).

    It is stepped once per epoch or once per optimizer step (:attr:`SchedulerConfig.per_step`), and the run
    lasts ``train.epochs`` times that many steps. With ``warmup_steps`` W > 0, a linear ramp (``lr * (k + 1)
    / W`` at step ``k``) runs first and the schedule after it, over the remaining steps (``SequentialLR``):
    ``cosine`` and ``onecycle`` then end with the run, as without warm-up. Its state (in checkpoints)
    holds both parts, so a resumed run continues either exactly.
    """
    s = config.optim.scheduler
    total = max(1, config.train.epochs * (steps_per_epoch if s.per_step else 1))
    warmup = s.warmup_steps
    if warmup == 0:
        return SCHEDULES[s.name](optimizer, config.optim, total)
    if s.name in RUN_LENGTH_SCHEDULES and warmup >= total:
        raise ConfigError(
            f"optim.scheduler.warmup_steps: {warmup} leaves no step of the {s.name} schedule; the run has "
            f"{total} optimizer steps (train.epochs {config.train.epochs} x {steps_per_epoch} per epoch)"
        )
    # the schedule is built first: the ramp rises to the rate it starts from (onecycle: optim.lr / 25)
    schedule = SCHEDULES[s.name](optimizer, config.optim, total - warmup)
    if schedule is None:
        schedule = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    ramp = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, schedule], milestones=[warmup])


AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}
"""``train.amp`` (``auto`` resolved by :func:`resolve_amp`) -> the autocast dtype (``None``: no autocast)."""


def resolve_amp(amp: AmpMode, device: torch.device) -> str:
    """``train.amp`` for ``device``: ``auto`` is bf16 on a GPU that has it, else none; others are kept."""
    if amp != "auto":
        return amp
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "none"


def keep_spectral_layers_in_float32(model: nn.Module) -> int:
    """Under autocast, feed every spectral layer float32 input so its FFTs run in float32.

    Autocast leaves complex tensors alone, so the spectral weights act in complex64; the layers around
    them run in bf16. Returns the number of layers hooked.
    """
    types = spectral_layer_types()
    count = 0
    for module in model.modules():
        if types and isinstance(module, types):
            module.register_forward_pre_hook(_inputs_to_float32)
            count += 1
    return count


def _inputs_to_float32(module: nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


class Trainer:
    """Trains ``model`` on ``train_set``, validates on ``valid_set``, checkpoints into ``run_dir``.

    Args:
        model: the operator (already built; the caller seeds torch before building it).
        config: the resolved run config (optim, train sections are used here).
        train_set, valid_set: datasets of ``{"x", "y"}`` dicts.
        run_dir: where checkpoints and the metrics of ``train.loggers`` go (``None``: nothing written).
        context: distributed context (default: single process on ``config.train.device``).
        metadata: the dataset's metadata (box lengths and periodicity for the Sobolev losses and errors;
            default: a periodic unit box).
    """

    def __init__(
        self,
        model: nn.Module,
        config: RunConfig,
        train_set: Dataset,
        valid_set: Dataset | None = None,
        run_dir: str | Path | None = None,
        context: DistributedContext | None = None,
        metadata: Any | None = None,
    ) -> None:
        self.config = config
        t = config.train
        if context is None:
            check_device_available(t.device)
        self.context = context or DistributedContext(device=resolve_device(t.device))
        self.device = self.context.device
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:  # a missing logger package is refused before anything is written
            check_logger_packages(t.loggers)
        # batches are [B, C, *grid]: two axes before the grid's (2-D or 3-D)
        ndim = 2 + len(getattr(metadata, "periodic", ()))
        self.geometry = metadata_options(metadata, ndim) if metadata is not None else {}
        if t.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False

        # precision: bf16 autocast on GPUs that have it (spectral layers kept in float32), none on CPU
        amp = resolve_amp(t.amp, self.device)
        self.amp_dtype = AUTOCAST_DTYPES[amp]
        self.raw_model = model.to(self.device)
        if self.amp_dtype is not None:
            hooked = keep_spectral_layers_in_float32(self.raw_model)
            logger.info("autocast %s; %d spectral layers kept in float32", amp, hooked)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.model: nn.Module = self.raw_model
        if t.compile:
            self.model = torch.compile(self.model)
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

        # data: the global batch is split evenly over the processes
        batch = config.data.batch_size
        if batch % self.context.world_size:
            raise ConfigError(
                f"data.batch_size {batch} is not divisible by the {self.context.world_size} processes"
            )
        self.sampler = EpochSampler(
            len(train_set),
            shuffle=True,
            seed=t.seed,
            rank=self.context.rank,
            world_size=self.context.world_size,
        )
        self.loader = DataLoader(
            train_set,
            batch_size=batch // self.context.world_size,
            sampler=self.sampler,
            num_workers=config.data.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        self.valid_set = valid_set
        # loss "spectral": relative L2 in the orthonormal transformed domain of the model, no inverse; the
        # model must declare the contract (sciml.models.registry.SpectralLossModel: t1, Normalized around t1)
        self.spectral_loss = t.loss == "spectral"
        if self.spectral_loss and not isinstance(self.raw_model, SpectralLossModel):
            raise ConfigError(
                f"train.loss: 'spectral' trains in the model's transformed domain, but model "
                f"{config.model_name!r} has none (not a SpectralLossModel: t1 is one; mg_tfno is none even "
                f"around t1, as a loss on its patches' spectra is not the full-field loss); use l2, h1, h-1 "
                f"or mse"
            )
        self.loss_fn = build_loss("l2" if self.spectral_loss else t.loss, self.geometry)
        self.unroll, self.unroll_gradient = t.unroll, t.unroll_gradient
        self.pushforward = t.unroll_gradient == "last"
        self.optimizer = build_optimizer(self.raw_model, config)
        accumulate = config.optim.accumulate
        self.steps_per_epoch = math.ceil(len(self.loader) / accumulate)
        self.scheduler = build_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.scheduler_per_step = config.optim.scheduler.per_step

        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.best = math.inf
        self.best_epoch = 0  # the epoch that reached ``best`` (0: none yet)
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.committed: tuple[Path, int] | None = None  # last checkpoint written (or resumed), its epoch
        self._resume_attempted = False
        self._repair_pending = False

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where training stands."""
        return {
            "model": tensor_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "rng": rng_state(),
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.epoch, self.step, self.best = state["epoch"], state["step"], state["best"]
        self.best_epoch = state.get("best_epoch")
        if self.best_epoch is None:  # written before checkpoints recorded it: the first epoch reaching best
            metric = self.config.train.checkpoint_metric
            self.best_epoch = next((r["epoch"] for r in state["history"] if r.get(metric) == self.best), 0)
        self.history = list(state["history"])
        self.train_seconds = state.get("train_seconds", 0.0)
        set_rng_state(state["rng"])

    @property
    def checkpoint_dir(self) -> Path | None:
        """``run_dir/checkpoints`` (holding ``last.pt`` and ``best.pt``)."""
        return None if self.run_dir is None else self.run_dir / "checkpoints"

    def try_resume(self) -> bool:
        """Continue from ``last.pt`` when ``train.resume`` asks for it; returns whether it did.

        Writes nothing, so a caller may call it before creating any file: a checkpoint whose config differs
        from this run's in anything but :data:`~sciml.training.config.RESUME_MAY_CHANGE`, or whose weights
        are not finite, is refused with a :class:`ConfigError` / :class:`CheckpointError`. :meth:`fit` calls
        it unless it was called before.
        """
        self._resume_attempted = True
        mode = self.config.train.resume
        path = None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"
        if mode == "never" or path is None:
            return False
        if not path.is_file():
            if mode == "must":
                raise SciMLError(f"train.resume=must but there is no checkpoint at {path}")
            return False
        state = load_checkpoint(path, map_location=self.device)
        self._check_resumable(path, state)
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise CheckpointError(
                f"{path}: does not fit this run's model or optimizer ({str(err).splitlines()[0][:200]})"
            ) from err
        self.committed = (path, self.epoch)
        self._repair_pending = True
        logger.info("resumed from %s at epoch %d (step %d)", path, self.epoch, self.step)
        return True

    def _check_resumable(self, path: Path, state: dict[str, Any]) -> None:
        """Refuse a checkpoint trained with another config, or holding NaN/inf weights."""
        saved = state.get("config")
        if not isinstance(saved, dict) or not isinstance(state.get("model"), dict):
            raise CheckpointError(f"{path}: holds no run config or no model weights; cannot resume from it")
        saved_config = config_from_mapping(saved, name=str(saved.get("name", "run")), where=f"{path}: config")
        conflicts = resume_conflicts(saved_config, self.config)
        if conflicts:
            raise ConfigError(
                f"{path}: cannot resume this run with a different config: {'; '.join(conflicts)}. A resumed "
                f"run keeps its model, data, optimizer, seed and loss (train.epochs may grow; device, "
                f"precision, checkpointing and eval settings may change); train this config in a new run "
                f"directory instead"
            )
        if not has_finite_weights(state["model"]):
            raise CheckpointError(f"{path}: holds non-finite weights (NaN or inf); cannot resume from it")

    def _commit_epoch(self, improved: bool) -> None:
        """Write the finished epoch's checkpoints: ``last.pt`` (the commit), then ``best.pt``.

        ``last.pt`` is written every ``train.checkpoint_every`` epochs, at the last epoch and whenever the
        epoch is the best so far; ``best.pt`` is then a byte copy of it. Rank 0 writes.
        """
        every, total = self.config.train.checkpoint_every, self.config.train.epochs
        due = improved or self.epoch % every == 0 or self.epoch == total
        if due and self.checkpoint_dir is not None:
            last = self.checkpoint_dir / "last.pt"
            if self.context.is_main:
                save_checkpoint(last, self.state_dict())
                if improved:
                    copy_checkpoint(last, self.checkpoint_dir / "best.pt")
            self.committed = (last, self.epoch)

    def _repair_run_dir(self) -> None:
        """Delete temporary files of killed writes; after a resume, rewrite ``best.pt`` when the committed
        ``last.pt`` was the best epoch (the loggers rewrite their files from its history when they start)."""
        if self.run_dir is None or self.checkpoint_dir is None or not self.context.is_main:
            return
        remove_stray_temporaries(self.checkpoint_dir, ["last.pt", "best.pt"])
        remove_stray_temporaries(self.run_dir, [*LOGGER_FILES, "config.yaml"])
        if not self._repair_pending:
            return
        self._repair_pending = False
        if self.best_epoch == self.epoch > 0:
            copy_checkpoint(self.checkpoint_dir / "last.pt", self.checkpoint_dir / "best.pt")

    def _last_good_checkpoint(self) -> str:
        """A sentence naming the last checkpoint written (finite, it exists), or saying there is none."""
        if self.checkpoint_dir is None:
            return "No checkpoint is kept (no run_dir)."
        if self.committed is None or not self.committed[0].is_file():
            return "No checkpoint of this run was written."
        path, epoch = self.committed
        return f"Last good checkpoint: {path} (epoch {epoch})."

    # ------------------------------------------------------------------ loop
    def fit(self) -> list[dict[str, Any]]:
        """Train for ``train.epochs`` epochs (continuing a resumed run); returns the per-epoch history."""
        if not self._resume_attempted:
            self.try_resume()
        self._repair_run_dir()
        run_loggers = self._start_loggers()
        failed = True
        try:
            total = self.config.train.epochs
            while self.epoch < total:
                row = self._run_epoch()
                if run_loggers is not None:
                    run_loggers.log_metrics(row, self.epoch)
                logger.info(
                    "epoch %d/%d  %s",
                    self.epoch,
                    total,
                    "  ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"),
                )
            failed = False
        finally:
            if run_loggers is not None:
                run_loggers.close(failed)
        return self.history

    def _run_epoch(self) -> dict[str, Any]:
        """Train and validate one epoch, then commit it; returns its row of the history."""
        started = time.perf_counter()
        train_stats = self.train_epoch()
        seconds = time.perf_counter() - started
        self.train_seconds += seconds
        row = {"epoch": self.epoch + 1, "step": self.step, **train_stats, "epoch_seconds": seconds}
        if self.valid_set is not None:
            row.update(self.validate())
        self._check_epoch_finite(row)
        self.epoch += 1
        self.history.append(row)
        metric = row.get(self.config.train.checkpoint_metric)
        improved = metric is not None and metric < self.best
        if improved:
            self.best, self.best_epoch = metric, self.epoch
        self._commit_epoch(improved)
        return row

    def _start_loggers(self) -> RunLoggers | None:
        """The ``train.loggers`` of this run (rank 0 with a run directory only), started with the config
        and the committed history (a resumed run's loggers end with each epoch once)."""
        if self.run_dir is None or not self.context.is_main:
            return None
        run_loggers = RunLoggers(self.config, self.run_dir)
        run_loggers.start(self.config.to_dict(), self.history)
        return run_loggers

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training set; returns the mean loss and the throughput."""
        self.model.train()
        self.sampler.set_epoch(self.epoch)
        accumulate = self.config.optim.accumulate
        clip = self.config.optim.grad_clip
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        n_batches, n_samples = 0, 0
        started = time.perf_counter()
        bar = tqdm(
            self.loader,
            desc=f"epoch {self.epoch + 1}",
            disable=progress_disable(self.config.train.progress and self.context.is_main),
            leave=False,
        )
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(bar):
            report_progress(self.context, f"epoch {self.epoch + 1} batch {i + 1} (training)")
            x = batch["x"].to(self.device, non_blocking=True)
            y = batch["y"].to(self.device, non_blocking=True)
            last_micro = (i + 1) % accumulate == 0 or i + 1 == len(self.loader)
            sync = last_micro or not self.context.enabled
            # a step refreshing a Hessian estimate differentiates twice: outside DDP's sync, averaged below
            second_order = self.optimizer if isinstance(self.optimizer, HessianDiagonalOptimizer) else None
            hessian = second_order is not None and second_order.hessian_due()
            with self._no_sync(not sync or hessian), self._autocast():
                loss = self._training_loss(x, y, self._pushforward_steps(i) if self.pushforward else None)
            self._check_finite(loss)
            if second_order is not None and hessian:
                second_order.backward_with_hessian(loss / accumulate)
            else:
                self.scaler.scale(loss / accumulate).backward()
            if last_micro:
                if second_order is not None and hessian:
                    average_over_processes(second_order, self.context)
                if clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                if self.scheduler is not None and self.scheduler_per_step:
                    self.scheduler.step()
            loss_sum += loss.detach().double()
            n_batches += 1
            n_samples += x.shape[0]
            if not bar.disable and i % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4g}")
        if self.scheduler is not None and not self.scheduler_per_step:
            self.scheduler.step()
        seconds = time.perf_counter() - started
        totals = all_reduce_sum(
            torch.tensor([loss_sum.item(), n_batches, n_samples], dtype=torch.float64, device=self.device),
            self.context,
        )
        return {
            "train_loss": (totals[0] / max(1.0, totals[1].item())).item(),
            "lr": self.optimizer.param_groups[0]["lr"],
            "samples_per_second": totals[2].item() / max(seconds, 1e-9),
        }

    def _no_sync(self, skip_sync: bool):
        if skip_sync and isinstance(self.model, nn.parallel.DistributedDataParallel):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def _pushforward_steps(self, batch_index: int) -> int:
        """Rollout length of one pushforward batch: uniform in ``1 .. unroll``, a function of the seed, the
        epoch and the batch, so a resumed run and every DDP process draw the same."""
        rng = np.random.default_rng([self.config.train.seed, self.epoch, batch_index])
        return int(rng.integers(1, self.unroll + 1))

    def _training_loss(self, x: torch.Tensor, y: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """The configured loss of one batch; for ``spectral``, on the orthonormal spectra of output and target
        (equal to the physical relative L2 by Parseval, without the model's final inverse transform); for
        ``unroll`` K > 1, on the K predictions of an autoregressive rollout from ``x`` (``y`` holds K windows
        of target frames; per-frame relative errors averaged, as in the FNO paper's time-stepping); with
        ``unroll_gradient: last`` (the pushforward trick of Brandstetter et al., ICLR 2022), a rollout of
        ``steps`` (drawn in 1 .. K per batch) whose first ``steps - 1`` run without gradients; only the last
        prediction is compared with its target window. A model that defines its own loss
        (:class:`~sciml.models.registry.ModelDefinedLoss`, e.g. DCDM's residual) gets ``training_loss(x,
        model(x), y)`` called instead of ``train.loss`` (with neither unroll nor the spectral loss)."""
        own_loss = model_defined_loss(self.raw_model)
        if own_loss is not None:
            if self.unroll > 1 or self.spectral_loss:
                raise ConfigError(
                    f"model {self.config.model_name!r} defines its own training loss: train.unroll must be "
                    f"1 and train.loss not 'spectral' (got unroll {self.unroll}, loss "
                    f"{self.config.train.loss!r})"
                )
            return own_loss(x, self.model(x).float(), y)
        if self.unroll > 1:  # the model's own predictions fed back (sciml.training.rollout)
            steps = self.unroll if steps is None else steps
            predictions = rollout(self.model, x, steps, gradient=self.unroll_gradient)
            width = y.shape[1] // self.unroll
            if self.pushforward:  # only the last prediction carries gradients: it alone is compared
                return self.loss_fn(
                    predictions[:, -width:].float(), y[:, (steps - 1) * width : steps * width]
                )
            return self.loss_fn(predictions.float(), y[:, : steps * width])
        if not self.spectral_loss:
            return self.loss_fn(self.model(x).float(), y)
        with torch.no_grad():
            target = self.raw_model.transform_target(y)
        pred = self.model(x, spectral=True).to(target.dtype)
        return self.raw_model.transformed_loss(pred, target, y.shape[-1])

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop on a NaN/inf loss on any process, keeping the last good checkpoint."""
        finite = bool(torch.isfinite(loss))
        if self.context.enabled:  # every process must stop together
            bad = torch.tensor([0.0 if finite else 1.0], device=self.device)
            finite = all_reduce_sum(bad, self.context).item() == 0
        if not finite:
            raise TrainingDivergedError(
                f"non-finite training loss ({loss.item()}) at epoch {self.epoch + 1}, step {self.step}; "
                f"training stopped. {self._last_good_checkpoint()} Lower optim.lr or set optim.grad_clip."
            )

    def _check_epoch_finite(self, row: dict[str, Any]) -> None:
        """Stop before saving an epoch whose mean losses or weights hold NaN or inf (on any process)."""
        keys = ("train_loss", "valid_l2", self.config.train.checkpoint_metric)
        bad = [f"{k} = {row[k]}" for k in dict.fromkeys(keys) if k in row and not math.isfinite(row[k])]
        if not has_finite_weights(tensor_state_dict(self.model)):
            bad.append("weights (NaN or inf)")
        if self.context.enabled:  # every process must stop together
            count = torch.tensor([float(len(bad))], device=self.device)
            if all_reduce_sum(count, self.context).item() and not bad:
                bad.append("values on another process")
        if bad:
            raise TrainingDivergedError(
                f"non-finite {', '.join(bad)} after epoch {self.epoch + 1}, step {self.step}; training "
                f"stopped and this epoch was not saved. {self._last_good_checkpoint()} Lower optim.lr or "
                f"set optim.grad_clip."
            )

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean relative L2 error over the validation set.

        Under DDP each process evaluates every ``world_size``-th sample and the sums are all-reduced, so
        every process gets the same mean as one process would (up to the order of the sums).
        """
        self.model.eval()
        report_progress(self.context, f"epoch {self.epoch + 1} (validation)")
        world, rank = self.context.world_size, self.context.rank
        shard = (
            self.valid_set if world == 1 else Subset(self.valid_set, range(rank, len(self.valid_set), world))
        )
        loader = DataLoader(shard, batch_size=self.config.eval.batch_size or self.config.data.batch_size)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for batch in loader:
            x, y = batch["x"].to(self.device), batch["y"].to(self.device)
            with self._autocast():
                pred = unwrap(self.model)(x).float()
            err = sobolev_error(pred, y, 0.0, **self.geometry)
            total += (
                err.double().mean(dim=tuple(range(1, err.ndim))).sum() if err.ndim > 1 else err.double().sum()
            )
            count += x.shape[0]
        sums = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=self.device)])
        total, count = all_reduce_sum(sums, self.context).tolist()
        return {"valid_l2": total / max(count, 1.0)}
