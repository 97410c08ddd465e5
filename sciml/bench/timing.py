"""Wall-clock timing of benchmark code on the CPU or a GPU.

A GPU runs asynchronously, so the device is synchronized before the clock starts and before it stops:
the time is that of the work done, not of its launch. The scripts of ``solvers/`` time interleaved rounds
(every variant once per round, so that machine noise hits all alike) and report medians or minima over
the rounds; what is timed per round (calls, warm-up) is a parameter, never fixed here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a CUDA device); nothing to wait for on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(
    fn: Callable[[], object], device: torch.device | str = "cpu", *, repeats: int = 1, warmup: int = 0
) -> float:
    """Mean seconds per call of ``fn`` over ``repeats`` back-to-back calls, after ``warmup`` untimed calls.

    The device is synchronized before the clock starts and before it stops.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def interleaved_times(
    fns: Mapping[str, Callable[[], object]],
    rounds: int,
    device: torch.device | str = "cpu",
    *,
    repeats: int = 1,
    warmup: int = 0,
    warmup_each: int = 0,
) -> dict[str, list[float]]:
    """Time every function once per round, in order, for ``rounds`` rounds: ``{name: [seconds per call]}``.

    Args:
        fns: the functions to time, by name (the order of the rounds).
        rounds: how many times each is timed.
        device: the device to synchronize around each timing.
        repeats: back-to-back calls per timing (the timing is their mean).
        warmup: untimed calls of each function before the first round (one-time set-up: kernels, plans).
        warmup_each: untimed calls before every timing.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(seconds_per_call(fn, device, repeats=repeats, warmup=warmup_each))
    return times


def train_step(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, spectral: bool = False, lr: float = 1e-3
) -> Callable[[], None]:
    """One AdamW training step of ``model`` on ``(x, y)`` as a closure to time: forward, loss, backward, step.

    The loss is the relative L2 error; with ``spectral`` it is computed on the model's orthonormal spectra
    (:class:`~sciml.models.registry.SpectralLossModel`: targets transformed once, beforehand, no inverse
    transform in the step). ``model`` is trained in place by each call.
    """
    from sciml.metrics import relative_l2

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    target = model.transform_target(y) if spectral else y

    def step() -> None:
        if spectral:
            loss = model.transformed_loss(model(x, spectral=True), target, y.shape[-1])
        else:
            loss = relative_l2(model(x), y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step
