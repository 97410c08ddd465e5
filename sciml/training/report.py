"""The evaluation report of a run: ``report/metrics.json`` and the PNGs a person would look at.

Test errors are the relative L2, H1 and H^-1 errors of :mod:`sciml.metrics` (per sample and channel,
averaged), at the training resolution and at every ``eval.resolutions`` entry (zero-shot). For windowed
(autoregressive) data with ``eval.rollout_steps > 0`` the model is rolled out on each test trajectory
and the error of every predicted frame is reported and plotted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sciml.bench.record import environment, write_record
from sciml.errors import ConfigError
from sciml.metrics import rollout_errors, scalar_spectrum, sobolev_error_for
from sciml.training.config import RunConfig
from sciml.training.rollout import rollout

logger = logging.getLogger(__name__)

ERRORS = {"l2": 0.0, "h1": 1.0, "h-1": -1.0}


@torch.no_grad()
def evaluate_errors(
    model: nn.Module, dataset: Dataset, metadata: Any, batch_size: int = 16, per_sample: bool = False
) -> dict[str, Any]:
    """Relative L2/H1/H^-1 test errors (mean, std, median over samples) and one example batch.

    With ``per_sample`` the result also holds ``"per_sample": {error: [one value per sample]}`` in the
    dataset's order (what the model zoo's cards record to check reproductions sample by sample).

    The norms follow the data's geometry (:func:`sciml.metrics.sobolev_error_for`: spectral on periodic
    boxes, the non-periodic variant on walled ones); spectra are computed on periodic data only.
    """
    periodic = all(metadata.periodic)
    model.eval()
    device = next(model.parameters()).device
    sample_errors: dict[str, list[torch.Tensor]] = {k: [] for k in ERRORS}
    example = None
    pred_spectra, true_spectra = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        x, y = batch["x"].to(device), batch["y"].to(device)
        pred = model(x).float()
        for name, s in ERRORS.items():
            sample_errors[name].append(sobolev_error_for(pred, y, s, metadata).mean(dim=-1).cpu())
        if periodic:
            lengths = tuple(metadata.domain_lengths)
            dims = tuple(range(-len(lengths), 0))  # every spatial axis (2-D or 3-D grids)
            pred_spectra.append(scalar_spectrum(pred[:, -1], lengths=lengths, dims=dims).cpu())
            true_spectra.append(scalar_spectrum(y[:, -1], lengths=lengths, dims=dims).cpu())
        if example is None:
            example = (x[:1].cpu(), y[:1].cpu(), pred[:1].cpu())
    out: dict[str, Any] = {"n_samples": len(dataset)}
    for name, values in sample_errors.items():
        v = torch.cat(values).double()
        out[name] = {
            "mean": v.mean().item(),
            "std": v.std().item() if len(v) > 1 else 0.0,
            "median": v.median().item(),
        }
    if per_sample:
        out["per_sample"] = {
            name: torch.cat(values).double().tolist() for name, values in sample_errors.items()
        }
    out["_example"] = example
    out["_spectra"] = (torch.cat(pred_spectra).mean(0), torch.cat(true_spectra).mean(0)) if periodic else None
    return out


@torch.no_grad()
def evaluate_rollouts(
    model: nn.Module,
    trajectories: Any,
    indices: np.ndarray,
    t_in: int,
    t_out: int,
    steps: int,
    metadata: Any,
    channels: list[int] | None = None,
) -> torch.Tensor:
    """Roll ``model`` out on each trajectory: relative L2 error of each predicted frame, ``[n, steps*t_out]``.

    The model sees the first ``t_in`` frames of the trajectory, predicts ``t_out``, and its own predictions
    are fed back as the newest frames of the next input window (:func:`sciml.training.rollout.rollout`),
    for ``steps`` steps or as many as the trajectory has frames for. Each frame's error is
    :func:`sciml.metrics.rollout_errors` (per channel in the data's geometry, averaged over channels).
    """
    model.eval()
    device = next(model.parameters()).device
    curves = []
    for i in indices:
        frames = trajectories.read(int(i))
        if channels is not None:
            frames = frames[:, channels]
        n_steps = min(steps, (frames.shape[0] - t_in) // t_out)
        if n_steps < 1:
            raise ConfigError(
                f"rollout evaluation: trajectory {int(i)} has {frames.shape[0]} frames, fewer than "
                f"t_in + t_out = {t_in + t_out}"
            )
        c = frames.shape[1]
        window = frames[:t_in].reshape(1, t_in * c, *frames.shape[2:]).to(device)
        truth = frames[None, t_in : t_in + n_steps * t_out].to(device)  # [1, frames, C, *grid]
        predictions = rollout(model, window, n_steps, gradient="none").float().reshape(truth.shape)
        curves.append(rollout_errors(predictions, truth, s=0.0, metadata=metadata)[0].cpu())
    return torch.stack(curves)


def write_report(
    run_dir: Path, model: nn.Module, config: RunConfig, data: Any, trainer: Any | None = None
) -> dict:
    """Evaluate ``model`` on the test split (and the extra resolutions) and write ``run_dir/report``."""
    report_dir = Path(run_dir) / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    batch = config.eval.batch_size or config.data.batch_size
    test = data.test if data.test is not None else data.valid
    if test is None:
        raise ValueError("no test or validation split to evaluate; set data.test > 0")
    n_params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    results: dict[str, Any] = {
        "config": config.name,
        "model": config.model_name,
        "params": n_params,
        "data": str(data.path),
        "environment": environment(next(model.parameters()).device),
        "test": {},
    }
    resolution = data.metadata.grid_shape[-1]
    main = evaluate_errors(model, test, data.metadata, batch)
    results["test"][str(resolution)] = {k: v for k, v in main.items() if not k.startswith("_")}
    for extra in config.eval.resolutions:
        if extra == resolution:
            continue
        from sciml.training.resolution import test_set_at_resolution

        other, how = test_set_at_resolution(config, data, extra)
        ev = evaluate_errors(model, other, data.metadata, batch)
        results["test"][str(extra)] = {k: v for k, v in ev.items() if not k.startswith("_")} | {"source": how}
    if trainer is not None:
        history = trainer.history
        results["epochs"] = len(history)
        results["train_seconds"] = trainer.train_seconds
        results["train_samples_per_second"] = (
            float(np.mean([h["samples_per_second"] for h in history])) if history else None
        )
        results["final_train_loss"] = history[-1]["train_loss"] if history else None
    if config.eval.rollout_steps > 0 and config.data.mode == "window":
        from sciml.training.data import channel_indices

        curves = evaluate_rollouts(
            model,
            data.source,
            data.splits["test"],
            config.data.t_in,
            config.data.t_out,
            config.eval.rollout_steps,
            data.metadata,
            channel_indices(data.metadata, config.data.fields),
        )
        results["rollout_l2"] = curves.mean(0).tolist()
    write_record(report_dir / "metrics.json", results)
    if config.eval.plots:
        from sciml.training.plots import plot_example, plot_losses, plot_rollout, plot_spectra

        plot_example(report_dir / "prediction.png", *main["_example"])
        if main["_spectra"] is not None:
            plot_spectra(report_dir / "spectrum.png", *main["_spectra"])
        if trainer is not None and trainer.history:
            plot_losses(report_dir / "losses.png", trainer.history)
        if "rollout_l2" in results:
            plot_rollout(report_dir / "rollout.png", results["rollout_l2"])
    summary = results["test"][str(resolution)]
    logger.info(
        "test @%d: rel L2 %.4g  H1 %.4g  H-1 %.4g  (%s)",
        resolution,
        summary["l2"]["mean"],
        summary["h1"]["mean"],
        summary["h-1"]["mean"],
        report_dir,
    )
    return results
