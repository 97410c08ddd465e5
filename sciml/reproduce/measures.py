"""What the reproductions measure on a trained run, and how a claim is judged against the seed spread.

* :func:`trajectory_rollout_l2`: the autoregressive error the FNO and LSM papers report
  (``test_l2_full`` in their scripts): the model sees the first ``t_in`` frames of each test trajectory,
  is rolled out ``steps`` times on its own predictions, and the error of one trajectory is the relative L2
  norm of all predicted frames together, :math:`\\|\\hat w - w\\|_2 / \\|w\\|_2` over (time, space), averaged
  over trajectories. With ``batch_statistics=True`` the model runs in train mode (BatchNorm normalizes by
  the statistics of each test batch instead of its running ones), as the LSM paper's test loop does (it
  never calls ``eval()``); on a model without batch-dependent layers the two are equal.
* :func:`train_step_seconds`: the time of one training step of each side, interleaved round by round.
* :func:`ratio_claim`: "a <= factor x b", decided only outside the seed spread.
"""

from __future__ import annotations

import copy
import math
import statistics
from typing import Any

import torch

from sciml.bench.timing import interleaved_times, train_step
from sciml.models.registry import SpectralLossModel
from sciml.training.data import channel_indices
from sciml.training.rollout import rollout


@torch.no_grad()
def trajectory_rollout_l2(
    run: Any, steps: int | None = None, batch_statistics: bool = False, batch_size: int | None = None
) -> float:
    """Mean over the test trajectories of the relative L2 error of the whole ``steps``-step rollout.

    ``run`` is a :class:`sciml.train.RestoredRun` of a windowed task; ``steps`` defaults to the run's
    ``eval.rollout_steps``. Test trajectories go through the model in batches of ``batch_size`` (default
    ``data.batch_size``): the batches the paper's test loop uses, which matters with ``batch_statistics``.
    """
    config, data = run.config, run.data
    t_in, t_out = config.data.t_in, config.data.t_out
    steps = steps or config.eval.rollout_steps
    channels = channel_indices(data.metadata, config.data.fields)
    model = copy.deepcopy(run.model).train() if batch_statistics else run.model.eval()
    indices = [int(i) for i in data.splits["test"]]
    errors = []
    batch_size = batch_size or config.data.batch_size
    for start in range(0, len(indices), batch_size):
        frames = torch.stack([data.source.read(i) for i in indices[start : start + batch_size]])
        if channels is not None:
            frames = frames[:, :, channels]
        b, _, c = frames.shape[:3]
        window = frames[:, :t_in].reshape(b, t_in * c, *frames.shape[3:])
        truth = frames[:, t_in : t_in + steps * t_out]
        predicted = rollout(model, window, steps, gradient="none").reshape(truth.shape)
        difference = torch.linalg.vector_norm((predicted - truth).reshape(b, -1), dim=1)
        errors += (difference / torch.linalg.vector_norm(truth.reshape(b, -1), dim=1)).tolist()
    return statistics.fmean(errors)


def train_step_seconds(runs: dict[str, Any], rounds: int = 7) -> dict[str, float]:
    """Median seconds of one train step of each run's model (with its training loss) on the same training
    batch, interleaved round by round."""
    first = next(iter(runs.values()))
    samples = [first.data.train[i] for i in range(min(first.config.data.batch_size, len(first.data.train)))]
    batch = {key: torch.stack([s[key] for s in samples]) for key in ("x", "y")}
    steps = {}
    for label, run in runs.items():
        model = copy.deepcopy(run.model).train()  # timed steps train a copy, never the run's model
        spectral = run.config.train.loss == "spectral" and isinstance(model, SpectralLossModel)
        steps[label] = train_step(model, batch["x"], batch["y"], spectral=spectral, lr=1e-6)
    times = interleaved_times(steps, rounds, "cpu", warmup=1)
    return {label: statistics.median(t) for label, t in times.items()}


def ratio_claim(
    summary: dict[str, dict[str, dict[str, Any]]], a: str, b: str, metric: str, factor: float, what: str
) -> tuple[str, bool | None]:
    """Judge ``a <= factor * b`` on ``metric``: the ratio of the seed means with its propagated spread.

    Met when ``ratio + spread <= factor``, not met when ``ratio - spread > factor``, undecided (``None``)
    when ``factor`` lies within the spread. Returns the figure in words and the verdict.
    """
    ea, eb = summary[a][metric], summary[b][metric]
    ma, mb = ea["mean"], eb["mean"]
    if ma is None or mb is None or mb == 0:
        return "no finite value", False
    ratio = ma / mb
    spread = abs(ratio) * math.hypot(ea["std"] / ma if ma else 0.0, eb["std"] / mb)
    words = f"{ratio:.3g}x ± {spread:.2g} ({a} {ma:.4g} vs {b} {mb:.4g} {what})"
    if min(len(ea["values"]), len(eb["values"])) < 2:
        words += "; one seed: no spread, judged on the single values"
    if ratio + spread <= factor:
        return words, True
    if ratio - spread > factor:
        return words, False
    return words + "; within the seed spread", None
