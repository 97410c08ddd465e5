"""Learning-rate schedules: one mapping per config choice, linear warm-up composed with the schedule."""

import math
import typing

import pytest
import torch
from test_trainer import assert_same_weights, tiny_config
from torch.utils.data import Dataset

from sciml.errors import ConfigError
from sciml.train import build_operator
from sciml.training.checkpoint import tensor_state_dict
from sciml.training.config import (
    AmpMode,
    LossName,
    OptimizerName,
    SchedulerName,
    TrainConfig,
    config_from_mapping,
)
from sciml.training.data import build_data
from sciml.training.trainer import (
    AUTOCAST_DTYPES,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    Trainer,
    build_scheduler,
)

LR = 0.1


def test_each_choice_has_one_entry_in_its_dispatch_mapping():
    assert set(typing.get_args(LossName)) == set(LOSSES)
    assert set(typing.get_args(OptimizerName)) == set(OPTIMIZERS)
    assert set(typing.get_args(SchedulerName)) == set(SCHEDULES)
    assert set(typing.get_args(AmpMode)) == {"auto", *AUTOCAST_DTYPES}
    hints = typing.get_type_hints(TrainConfig)
    assert (hints["loss"], hints["amp"]) == (LossName, AmpMode)


def run_config(epochs: int = 2, **scheduler) -> object:
    return config_from_mapping(
        {
            "data": {"path": "unused.h5"},
            "model": {"name": "fno"},
            "optim": {"lr": LR, "scheduler": scheduler},
            "train": {"epochs": epochs},
        }
    )


def learning_rates(config, steps_per_epoch: int, steps: int) -> list[float]:
    """The learning rate of each of the first ``steps`` optimizer steps, the schedule stepped after each."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_then_step_schedule_matches_a_hand_computation():
    config = run_config(name="step", step_size=2, gamma=0.5, warmup_steps=3, interval="step")
    # ramp lr * (k + 1) / 3 for k = 0, 1, 2; then StepLR counting its steps from the end of the ramp
    expected = [LR / 3, 2 * LR / 3, LR, LR, LR, LR / 2, LR / 2, LR / 4, LR / 4, LR / 8]
    assert learning_rates(config, 5, 10) == pytest.approx(expected, rel=1e-12)


def test_warmup_then_cosine_ends_with_the_run():
    steps_per_epoch, epochs, warmup = 5, 3, 4
    config = run_config(epochs=epochs, name="cosine", warmup_steps=warmup, interval="step")
    total = epochs * steps_per_epoch  # the warm-up counts in the run's length
    main = total - warmup
    expected = [LR * (k + 1) / warmup for k in range(warmup)]
    expected += [LR * 0.5 * (1 + math.cos(math.pi * j / main)) for j in range(main)]
    rates = learning_rates(config, steps_per_epoch, total + 1)
    assert rates[:total] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert rates[total] == pytest.approx(0.0, abs=1e-15)  # the end of the run is the end of the cosine


def test_warmup_without_a_schedule_ramps_to_the_learning_rate():
    assert learning_rates(run_config(name="none", warmup_steps=2), 3, 5) == pytest.approx(
        [LR / 2, LR, LR, LR, LR], rel=1e-12
    )


@pytest.mark.parametrize(
    ("scheduler", "reference"),
    [
        (
            {"name": "step", "step_size": 2, "gamma": 0.5},
            lambda opt, total: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        ),
        (
            {"name": "cosine", "interval": "step"},
            lambda opt, total: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total),
        ),
        (
            {"name": "onecycle"},
            lambda opt, total: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=total),
        ),
    ],
    ids=["step", "cosine", "onecycle"],
)
def test_no_warmup_is_the_plain_schedule(scheduler, reference):
    steps_per_epoch, epochs = 4, 2
    config = run_config(epochs=epochs, warmup_steps=0, **scheduler)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    expected = reference(optimizer, epochs * steps_per_epoch)
    rates = []
    for _ in range(epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        expected.step()
    assert learning_rates(config, steps_per_epoch, len(rates)) == rates
    assert type(build_scheduler(optimizer, config, steps_per_epoch)) is type(expected)


def test_warmup_config_errors():
    with pytest.raises(ConfigError, match=r"warmup_steps 3 counts optimizer steps.*interval: step"):
        run_config(name="cosine", warmup_steps=3)  # interval: epoch
    with pytest.raises(ConfigError, match=r"warmup_steps must be >= 0, got -1"):
        run_config(warmup_steps=-1)
    config = run_config(epochs=2, name="cosine", warmup_steps=10, interval="step")
    with pytest.raises(ConfigError, match=r"warmup_steps: 10 leaves no step of the cosine schedule.* 10 "):
        learning_rates(config, 5, 1)


class RunInterruptedError(Exception):
    """Stands for the run being killed."""


class InterruptedAfter(Dataset):
    """``data``, but reading more than ``limit`` samples raises :class:`RunInterruptedError` (a kill)."""

    def __init__(self, data: Dataset, limit: int) -> None:
        self.data, self.limit, self.served = data, limit, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict:
        self.served += 1
        if self.served > self.limit:
            raise RunInterruptedError
        return self.data[index]


def warmup_trainer(tiny_data, run_dir, resume: str = "never", interrupt_after: int | None = None) -> Trainer:
    data = tiny_config(tiny_data, run_dir, epochs=4, resume=resume)
    data["optim"]["scheduler"] = {"name": "cosine", "interval": "step", "warmup_steps": 20}
    config = config_from_mapping(data, name="warmup")
    bundle = build_data(config.data, unroll=config.train.unroll)
    train = bundle.train if interrupt_after is None else InterruptedAfter(bundle.train, interrupt_after)
    model = build_operator(config, bundle)
    return Trainer(model, config, train, bundle.valid, run_dir=run_dir, metadata=bundle.metadata)


def test_warmup_run_interrupted_and_resumed_ends_like_an_uninterrupted_one(tiny_data, tmp_path):
    reference = warmup_trainer(tiny_data, tmp_path / "reference")
    reference.fit()
    lr, per_epoch = reference.config.optim.lr, reference.steps_per_epoch
    assert reference.history[0]["lr"] == pytest.approx(lr * (per_epoch + 1) / 20, rel=1e-12)
    samples_per_epoch = len(reference.loader.dataset)
    killed = warmup_trainer(tiny_data, tmp_path / "killed", interrupt_after=2 * samples_per_epoch + 5)
    with pytest.raises(RunInterruptedError):  # inside epoch 3, after the checkpoint of epoch 2
        killed.fit()
    resumed = warmup_trainer(tiny_data, tmp_path / "killed", resume="must")
    assert resumed.try_resume() and resumed.epoch == 2
    assert resumed.step < 20 < reference.step  # resumed inside the warm-up, which then ends
    resumed.fit()
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in reference.history]
    assert resumed.scheduler.state_dict() == reference.scheduler.state_dict()
    assert_same_weights(tensor_state_dict(reference.raw_model), tensor_state_dict(resumed.raw_model))


def test_onecycle_starts_and_ends_at_its_div_factors():
    # the Spectral-Refiner reference: OneCycleLR(div_factor=1e3, final_div_factor=1e4) over the whole run
    config = run_config(epochs=2, name="onecycle", interval="step", div_factor=1000, final_div_factor=1e4)
    rates = learning_rates(config, steps_per_epoch=50, steps=100)
    assert rates[0] == pytest.approx(LR / 1000)
    assert max(rates) == pytest.approx(LR, rel=1e-3)
    assert rates[-1] == pytest.approx(LR / 1e7, rel=0.05)  # cosine annealing reaches the floor at the end
    default = learning_rates(run_config(epochs=2, name="onecycle", interval="step"), 50, 1)
    assert default[0] == pytest.approx(LR / 25)  # PyTorch's default


@pytest.mark.parametrize("key", ["div_factor", "final_div_factor"])
def test_onecycle_factors_below_one_are_config_errors(key):
    with pytest.raises(ConfigError, match=f"optim.scheduler.{key} must be a number >= 1"):
        run_config(name="onecycle", interval="step", **{key: 0.5})
