"""Surrogate vs solver: inference time of each trained model against the solver's time over the same horizon.

For every model of the zoo (``sciml.zoo.list()``; ``--models`` for a subset), on a few fresh test
trajectories of its own dataset recipe (the card's test seed, so never a training trajectory):

* the solver (``sciml.datasets.generate.make_solver(recipe)``: the recipe's resolution, time step and
  stepper, i.e. the solver that made the training data) advances the state at the model's last input
  frame over the horizon of one model call (``output_time - input_time`` frames, or ``t_out`` frames for
  windowed models), on the same batch of trajectories and on the same device as the model;
* the model maps the input frames to the output frames in one call (``torch.inference_mode``);
* both are timed in interleaved rounds (solver, then model, in each round, so that machine noise hits
  both alike); the speedup is the median over rounds of solver time / model time, per sample;
* the accuracy traded: the model's relative L2, H1 and H^-1 errors against the solver's frames, and the
  relative error of the kinetic-energy spectrum of the last predicted frame
  (``sum_k |E_pred(k) - E_true(k)| / sum_k E_true(k)``, velocity from the vorticity, every shell).

The solver's frames are the ground truth here (they are how the test data are made), so its own error is
zero by construction; the table answers what accuracy the speedup costs. For context, the FNO paper
(Li et al., ICLR 2021) reports 0.005 s for one FNO evaluation against 2.2 s for the pseudo-spectral solver
at 256^2. Without zoo models (or with ``--quick``) a tiny FNO is trained here first on a small 32^2 set.
Run ``python solvers/bench_surrogate.py`` (``--quick`` for the test suite); writes JSON and a PNG (speedup
vs rel. L2); ``markdown(record)`` renders the record for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record_and_plot
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import seconds_per_call
from sciml.datasets.generate import downsample, initial_conditions, make_solver
from sciml.datasets.recipes import Recipe
from sciml.metrics import energy_spectrum, relative_l2, sobolev_error
from sciml.models import ModelContext, build_model
from sciml.models.wrappers import Normalized
from sciml.solvers.navier_stokes import NavierStokes2D

logger = logging.getLogger("bench_surrogate")

FNO_PAPER = {"resolution": 256, "fno_seconds": 0.005, "solver_seconds": 2.2, "ratio": 2.2 / 0.005}

# the quick model's data: the FNO setting (nu = 1e-3, FNO forcing and initial conditions) on a 32^2 grid
QUICK_RECIPE = {
    "name": "surrogate_quick",
    "solver": {"resolution": 32, "viscosity": 1e-3, "forcing": "fno", "dt": 1e-2, "stepper": "heun-cn"},
    "output": {"t_final": 2.0, "record_every": 1.0},
    "n_trajectories": 32,
    "batch_size": 32,
    "seed": 0,
}


def task_frames(config: dict[str, Any], recipe: Recipe) -> tuple[list[int], list[int]]:
    """The recorded frame indices the model reads and the ones it predicts."""
    n_frames = round(recipe.output.t_final / recipe.output.record_every) + 1
    task = config["task"]
    if task["mode"] == "initial_to_final":
        return [int(task["input_time"]) % n_frames], [int(task["output_time"]) % n_frames]
    t_in, t_out = int(task["t_in"]), int(task["t_out"])
    if t_in + t_out > n_frames:
        raise ValueError(f"window task needs {t_in + t_out} frames, the recipe records {n_frames}")
    return list(range(t_in)), list(range(t_in, t_in + t_out))


def recipe_of(config: dict[str, Any], n: int) -> Recipe:
    """The model's recipe with its test seed and ``n`` trajectories."""
    mapping = dict(config["dataset"]["recipe"])
    mapping["seed"] = int(config.get("evaluation", {}).get("seed", 1000))
    mapping["n_trajectories"] = n
    mapping["batch_size"] = n
    return Recipe.from_mapping(mapping)


def solve_frames(
    solver: NavierStokes2D, recipe: Recipe, w0: torch.Tensor, frames: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recorded ``frames`` (on the output grid, ``[B, len, n, n]``) and the solver state at the last."""
    o = recipe.output
    state = w0
    if o.warmup > 0:
        state = solver.simulate(state, o.warmup, o.warmup).vorticity[:, -1]
    last = max(frames)
    if last == 0:
        traj = state[:, None]
    else:
        traj = solver.simulate(state, last * o.record_every, o.record_every).vorticity
    out = downsample(traj[:, frames], recipe.output_resolution, o.downsample)
    return out, traj[:, last]


def spectrum_error(pred: torch.Tensor, true: torch.Tensor, length: float) -> torch.Tensor:
    """Relative L1 error of the kinetic-energy spectrum per sample (vorticity fields ``[B, n, n]``)."""
    velocity = NavierStokes2D(pred.shape[-1], viscosity=0.0, domain_length=length, forcing=None).velocity
    e_pred = energy_spectrum(*velocity(pred.double()), lengths=length)
    e_true = energy_spectrum(*velocity(true.double()), lengths=length)
    return (e_pred - e_true).abs().sum(-1) / e_true.sum(-1)


def compare(
    name: str,
    model: torch.nn.Module,
    config: dict[str, Any],
    n: int,
    rounds: int,
    device: torch.device,
) -> dict[str, Any]:
    """Time the model against the solver over the model's horizon and measure the accuracy traded."""
    recipe = recipe_of(config, n)
    solver = make_solver(recipe)
    dtype = torch.float64 if recipe.dtype == "float64" else torch.float32
    inputs, outputs = task_frames(config, recipe)
    w0 = initial_conditions(recipe, range(n), device, dtype)
    x_frames, state = solve_frames(solver, recipe, w0, inputs)  # untimed: the model's input frames
    re = recipe.output.record_every
    horizon = (max(outputs) - max(inputs)) * re
    x = x_frames.float().contiguous()  # [B, t_in, n, n]: one field (vorticity), time-major channels
    model = model.to(device).eval()

    wanted = [o - max(inputs) for o in outputs]  # the predicted frames, counted from the last input one

    def run_solver() -> torch.Tensor:
        return solver.simulate(state, horizon, re).vorticity[:, wanted]

    @torch.inference_mode()
    def run_model() -> torch.Tensor:
        return model(x)

    truth = downsample(run_solver(), recipe.output_resolution, recipe.output.downsample).float()
    pred = run_model().float()  # warm-up (and the prediction)
    solver_s, model_s = [], []
    for _ in range(rounds):  # interleaved: machine noise hits both alike
        solver_s.append(seconds_per_call(run_solver, device))
        model_s.append(seconds_per_call(run_model, device, repeats=5))
    length = solver.domain_length
    errors = {
        "rel_l2": relative_l2(pred, truth, lengths=length).mean(-1),
        "rel_h1": sobolev_error(pred, truth, 1.0, lengths=length).mean(-1),
        "rel_h_minus_1": sobolev_error(pred, truth, -1.0, lengths=length).mean(-1),
        "energy_spectrum_rel_error": spectrum_error(pred[:, -1], truth[:, -1], length),
    }
    card_l2 = config.get("metrics", {}).get("per_trajectory", {}).get("l2")
    row = {
        "model": name,
        "family": config.get("model", {}).get("name", "?"),
        "task": config["task"]["mode"],
        "input_frames": inputs,
        "output_frames": outputs,
        "horizon": horizon,
        "solver_steps": round(horizon / solver.dt),
        "solver": {"resolution": solver.resolution, "dt": solver.dt, "stepper": solver.stepper},
        "model_resolution": recipe.output_resolution,
        "batch": n,
        "device": str(device),
        "solver_ms_per_sample": 1e3 * statistics.median(solver_s) / n,
        "model_ms_per_sample": 1e3 * statistics.median(model_s) / n,
        "speedup": statistics.median(a / b for a, b in zip(solver_s, model_s, strict=True)),
        "solver_s_all": solver_s,
        "model_s_all": model_s,
        **{k: v.mean().item() for k, v in errors.items()},
        "per_sample": {k: v.tolist() for k, v in errors.items()},
    }
    if card_l2 and config["task"]["mode"] == "initial_to_final":
        row["card_rel_l2_same_trajectories"] = statistics.fmean(card_l2[:n])
    logger.info(
        f"{name:>16} {row['solver_ms_per_sample']:>9.1f} ms  {row['model_ms_per_sample']:>8.3f} ms  "
        f"x{row['speedup']:>8.0f}  rel L2 {row['rel_l2']:.4f}  H1 {row['rel_h1']:.4f}  "
        f"H-1 {row['rel_h_minus_1']:.4f}  spectrum {row['energy_spectrum_rel_error']:.4f}"
    )
    return row


def train_tiny(steps: int, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A tiny FNO trained here on QUICK_RECIPE (w(0) -> w(2)); returns it and a zoo-like config."""
    recipe = Recipe.from_mapping(QUICK_RECIPE)
    solver = make_solver(recipe)
    w0 = initial_conditions(recipe, range(recipe.n_trajectories), device, torch.float32)
    traj = solver.simulate(w0, recipe.output.t_final, recipe.output.t_final).vorticity
    x, y = traj[:, :1].contiguous(), traj[:, -1:].contiguous()
    context = ModelContext(1, 1, (32, 32), (1.0, 1.0), (True, True))
    torch.manual_seed(0)
    net = build_model("fno", {"modes": 8, "width": 16, "n_layers": 2}, context)
    model = Normalized(net, [x.mean().item()], [x.std().item()], [y.mean().item()], [y.std().item()]).to(
        device
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (8,), generator=generator)
        loss = relative_l2(model(x[idx]), y[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    logger.info("trained the tiny FNO: %d steps, last batch rel L2 %.4f", steps, loss.item())
    config = {
        "name": "fno_tiny_selftrained",
        "model": {"name": "fno", "kwargs": {"modes": 8, "width": 16, "n_layers": 2}},
        "task": {"mode": "initial_to_final", "input_time": 0, "output_time": 2},
        "dataset": {"recipe": dict(QUICK_RECIPE)},
        "evaluation": {"seed": 1000, "n_trajectories": 4},
        "training": {"steps": steps, "trajectories": recipe.n_trajectories},
    }
    return model, config


def plot(record: dict[str, Any], path: Path) -> Path:
    """Scatter of speedup (log) against relative L2 error, one point per model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for row in record["rows"]:
        ax.scatter(row["rel_l2"], row["speedup"])
        ax.annotate(
            row["model"],
            (row["rel_l2"], row["speedup"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.axhline(FNO_PAPER["ratio"], color="gray", ls="--", lw=0.8, label="FNO paper at 256² (2.2 s / 0.005 s)")
    ax.set_yscale("log")
    ax.set_xlabel("relative L2 error vs the solver")
    ax.set_ylabel("speedup (solver time / model time)")
    ax.set_title(f"surrogates vs solver on {record['device']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(record: dict[str, Any]) -> str:
    """The record as a BENCHMARKS.md table: times per sample, speedup and the errors traded per model."""
    rows = []
    for r in record["rows"]:
        s = r["solver"]
        card = r.get("card_rel_l2_same_trajectories")
        rows.append(
            [
                f"`{r['model']}`",
                f"{r['horizon']:g} ({r['solver_steps']} × {s['stepper']}, dt {s['dt']:g})",
                f"{s['resolution']}² / {r['model_resolution']}²",
                num(r["solver_ms_per_sample"], 1),
                num(r["model_ms_per_sample"], 3),
                f"**{r['speedup']:.0f}x**",
                num(r["rel_l2"], 4) + (f" (card {card:.4f})" if card is not None else ""),
                num(r["rel_h1"], 4),
                num(r["rel_h_minus_1"], 4),
                num(r["energy_spectrum_rel_error"], 4),
            ]
        )
    text = (
        f"{record['n_trajectories']} fresh test trajectories per model (the card's test seed), batch "
        f"{record['n_trajectories']} on {record['device']}, {record['rounds']} interleaved rounds (medians). "
        "The solver is the recipe's own (the one that made the data) advancing the last input frame over "
        "the model's horizon; its frames are the truth of the errors. Spectrum: relative L1 error of the "
        "kinetic-energy spectrum of the last predicted frame."
    )
    if record.get("source") == "self-trained":
        text += (
            " No zoo model was used: a tiny FNO was trained here on a small 32² set, so the errors show "
            "the pipeline, not a trained surrogate's accuracy."
        )
    paper = FNO_PAPER
    context = (
        f"For context, the FNO paper reports {paper['fno_seconds']} s per FNO evaluation against "
        f"{paper['solver_seconds']} s for the pseudo-spectral solver at {paper['resolution']}², a ratio of "
        f"{paper['ratio']:.0f}x (different hardware, resolution and horizon: compare ratios, not times)."
    )
    header = ["model", "horizon (solver steps)", "grid solver / model", "solver ms/sample", "model ms/sample"]
    header += ["speedup", "rel L2", "rel H1", "rel H^-1", "spectrum err"]
    parts = [provenance(record), "", para(text), "", table(header, rows), "", para(context)]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison for every model, log it, write JSON and PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny self-trained FNO at 32^2 (under a minute)"
    )
    parser.add_argument("--models", default=None, help="comma-separated zoo names (default: the whole zoo)")
    parser.add_argument("--n", type=int, default=None, help="test trajectories = batch (default 4, quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 3)")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="steps of the self-trained model (default 1000, quick 40)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/surrogate.json)")
    args = parser.parse_args(argv)
    out = output_path(args.out, "surrogate.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    n = args.n or (2 if args.quick else 4)
    rounds = args.rounds or (2 if args.quick else 3)
    models: list[tuple[str, torch.nn.Module, dict[str, Any]]] = []
    source = "zoo"
    if not args.quick:
        import sciml.zoo

        names = [e.name for e in sciml.zoo.list() if e.has_test_metrics]  # flow surrogates
        if args.models:
            wanted = [m.strip() for m in args.models.split(",") if m.strip()]
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                parser.error(f"unknown zoo models {unknown}; the zoo has {names}")
            names = wanted
        for name in names:
            model = sciml.zoo.load(name, device=device)
            models.append((name, model, model.config))
    if not models:
        if not args.quick:
            logger.info("the zoo is empty: training a tiny FNO here instead")
        source = "self-trained"
        model, config = train_tiny(args.train_steps or (40 if args.quick else 1000), device)
        models.append((config["name"], model, config))
    header = f"{'model':>16} {'solver/sample':>12} {'model/sample':>12} {'speedup':>9}"
    logger.info("%s  errors vs the solver", header)
    rows = [compare(name, model, config, n, rounds, device) for name, model, config in models]
    record = {
        "benchmark": "surrogate_vs_solver",
        "command": "python solvers/bench_surrogate.py" + (" --quick" if args.quick else ""),
        **environment(device),
        "source": source,
        "n_trajectories": n,
        "rounds": rounds,
        "fno_paper": FNO_PAPER,
        "rows": rows,
        "plot": str(out.with_suffix(".png")),
    }
    write_record_and_plot(out, record, plot)
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
