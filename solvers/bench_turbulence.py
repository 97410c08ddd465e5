"""3-D forced turbulence on a 16^3 LES grid: IFactFormer-m vs -o vs FNO-3D vs IFNO vs LES closures.

The setting of Yang, Wang, Wang (IFactFormer-m, arXiv:2412.18840) at this machine's scale: the data are
``datasets/hit_quick.yaml`` (forced HIT, 32^3 DNS at nu = 0.025, Re_lambda about 26, spectrally filtered
to 16^3; 8 trajectories of 21 frames 0.5 time units apart). Each neural operator maps the current velocity
frame to the next (``t_in = t_out = 1``), trained by the shared Trainer (``sciml.train.run``) on the first
6 trajectories (1 for validation, 1 for test). The LES baselines integrate the same forced equations on the
16^3 grid with an eddy viscosity (constant Smagorinsky C_s = 0.17, dynamic Smagorinsky, WALE C_w = 0.5,
and none: an under-resolved DNS) from the same filtered frames.

* Short term: from every 5th frame of the test trajectory, rollouts of ``--horizon`` frames; relative L2
  error of the velocity (all components together) against the filtered DNS at each predicted frame.
* Long term: from the test trajectory's first frame, ``--long-frames`` predicted frames; energy and shell
  spectrum of every frame against the filtered DNS (time mean of all 8 trajectories), the first frame that
  drifts (energy off by 50 % or spectrum off by a factor 2 on average) or blows up (energy x10), and the
  distance of the spectrum averaged over the last half of the rollout (:mod:`sciml.training.long_rollout`).
* Cost per predicted frame (0.5 time units): one forward pass of each model against the LES advancing the
  same time (10 steps of dt = 0.05, rk4-cn), timed interleaved in the same process; the ratio is the
  comparable number.

Run ``python solvers/bench_turbulence.py`` (full: trains the four models, about 30 min on one CPU thread;
``--runs DIR`` keeps the runs, which later calls reuse) or ``--quick`` (an 8^3 file, one epoch, seconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import met, num, provenance, table
from sciml.bench.timing import interleaved_times
from sciml.datasets.recipes import Recipe
from sciml.metrics import rollout_errors
from sciml.training.long_rollout import LongRollout, long_rollout, plot_long_rollouts
from sciml.training.rollout import rollout

logger = logging.getLogger("bench_turbulence")

MODELS: dict[str, dict[str, Any]] = {
    "IFactFormer-m": {"name": "ifactformer", "variant": "parallel", "dim": 32, "heads": 4, "dim_head": 8,
                      "n_layers": 4},
    "IFactFormer-o": {"name": "ifactformer", "variant": "chained", "dim": 32, "heads": 4, "dim_head": 8,
                      "n_layers": 4},
    "FNO-3D": {"name": "fno", "modes": [8, 8, 8], "width": 16, "n_layers": 4},
    "IFNO": {"name": "ifno", "modes": 8, "width": 16, "n_layers": 4},
}  # fmt: skip
"""The neural operators compared, as ``model`` sections of a run config (IFactFormer at the paper's layer
but a smaller width and 4 iterations instead of 10, so training fits a CPU)."""

QUICK_SIZES: dict[str, dict[str, Any]] = {
    "ifactformer": {"dim": 8, "heads": 2, "dim_head": 4, "kernel_multiplier": 2, "n_layers": 2},
    "fno": {"modes": [3, 3, 3], "width": 8, "n_layers": 2},
    "ifno": {"modes": 3, "width": 8, "n_layers": 2},
}
"""Quick mode's tiny sizes of each family (a smoke test, not a comparison)."""

LES: dict[str, tuple[str | None, dict[str, float]]] = {
    "LES dynamic Smagorinsky": ("dynamic_smagorinsky", {}),
    "LES WALE": ("wale", {"constant": 0.5}),
    "LES Smagorinsky": ("smagorinsky", {"constant": 0.17}),
    "no model (coarse DNS)": (None, {}),
}
"""The LES closures (:mod:`sciml.solvers.les`) on the coarse grid, by name."""

QUICK_RECIPE = {
    "name": "hit_bench_quick",
    "solver": {"resolution": 16, "viscosity": 0.05, "forcing": "band", "dt": 0.05, "stepper": "heun-cn"},
    "hit": {"injection_rate": 0.1, "peak_wavenumber": 2.0},
    "output": {"resolution": 8, "downsample": "spectral", "warmup": 0.1, "t_final": 0.4, "record_every": 0.1},
    "n_trajectories": 8,
    "batch_size": 8,
}


def run_config(model: dict[str, Any], data: dict[str, Any], epochs: int, run_dir: Path) -> dict[str, Any]:
    """The run config of one operator: velocity frame -> next frame, one-step relative L2 training."""
    return {
        "data": {
            **data,
            "mode": "window",
            "t_in": 1,
            "t_out": 1,
            "fields": ["velocity_x", "velocity_y", "velocity_z"],
            "train": 0.75,
            "valid": 0.125,
            "test": 0.125,
            "batch_size": 4,
        },
        "model": model,
        "optim": {"lr": 2e-3, "weight_decay": 1e-4, "scheduler": {"name": "cosine", "interval": "step"}},
        "train": {"epochs": epochs, "loss": "l2", "seed": 0, "progress": False, "run_dir": str(run_dir)},
        "eval": {"plots": False, "rollout_steps": 4},
    }


def train_or_reuse(name: str, config: dict[str, Any], run_dir: Path, base_dir: Path) -> tuple[Any, Any]:
    """A trained run of ``config`` in ``run_dir`` (trained now by ``sciml.train.run`` unless a finished run
    of the same config is there); returns the restored model and its data bundle."""
    from sciml.train import restore_run, run
    from sciml.training.config import config_from_mapping

    cfg = config_from_mapping(config, name=name.replace(" ", "_"))
    finished = run_dir / "report" / "metrics.json"
    saved = run_dir / "config.yaml"
    if not (finished.exists() and saved.exists() and saved.read_text() == cfg.to_yaml()):
        logger.info("training %s into %s", name, run_dir)
        run(cfg, run_dir, base_dir)
    restored = restore_run(run_dir, "best", base_dir)
    return restored.model, restored


def les_solver(recipe: Recipe, resolution: int, closure: str | None, options: dict[str, float]) -> Any:
    """The recipe's forced equations on the LES grid with an eddy-viscosity closure (``None``: none)."""
    from sciml.solvers.les import make_closure
    from sciml.solvers.navier_stokes_3d import NavierStokes3D

    s, hit = recipe.solver, recipe.hit
    assert hit is not None
    return NavierStokes3D(
        resolution,
        s.viscosity,
        domain_length=s.domain_length or 2 * math.pi,
        forcing=s.forcing,
        injection_rate=hit.injection_rate,
        forcing_wavenumber=hit.forcing_wavenumber,
        dt=s.dt,
        stepper=s.stepper,
        eddy_viscosity=make_closure(closure, **options) if closure else None,
    )


def short_term(
    predict: Any, frames: list[torch.Tensor], horizon: int, every: int, metadata: Any
) -> list[float]:
    """Mean relative L2 (velocity components together) of each of ``horizon`` predicted frames, over the
    rollouts from every ``every``-th frame of each trajectory ``frames[i] [T, 3, *grid]``."""
    curves = []
    for trajectory in frames:
        for start in range(0, trajectory.shape[0] - horizon, every):
            window = trajectory[start : start + 1].float()
            predicted = predict(window, horizon).reshape(1, horizon, *trajectory.shape[1:])
            truth = trajectory[None, start + 1 : start + 1 + horizon].float()
            errors = rollout_errors(predicted.float(), truth, channel_reduction="joint", metadata=metadata)
            curves.append(errors[0].double())
    return torch.stack(curves).mean(dim=0).tolist()


def late_spectrum_distance(result: LongRollout) -> float | None:
    """Mean |ln E/E_ref| over the resolved shells of the spectrum averaged over the last half of a rollout
    (None if it blew up)."""
    if result.blowup is not None:
        return None
    from sciml.metrics.turbulence import spectrum_log_distance

    late = torch.tensor(result.spectra[result.frames // 2 :]).mean(dim=0)
    shells = (1, int(result.tolerances["max_shell"]))  # the band the filtered data hold
    return float(spectrum_log_distance(late, torch.tensor(result.reference_spectrum), shells))


def main(argv: list[str] | None = None) -> dict:
    """Train (or reuse) the operators, run the LES, compare, write the JSON and the PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="an 8^3 file, 1 epoch, short rollouts")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--horizon", type=int, default=4, help="short-term predicted frames")
    parser.add_argument("--long-frames", type=int, default=200, help="long-term predicted frames")
    parser.add_argument("--runs", help="folder of the training runs (default runs/bench_turbulence)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help=f"subset of {list(MODELS)}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/turbulence.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "turbulence.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    command = "python solvers/bench_turbulence.py " + " ".join(sys.argv[1:] if argv is None else argv)
    base_dir = Path.cwd()
    scratch = tempfile.TemporaryDirectory() if args.quick else None
    if args.quick:
        assert scratch is not None
        from sciml.datasets.generate import generate

        recipe = Recipe.from_mapping(QUICK_RECIPE)
        data_path = generate(recipe, Path(scratch.name) / "hit.hdf5", progress=False, device="cpu")
        data: dict[str, Any] = {"path": str(data_path)}
        epochs, horizon, long_frames, every, rounds = 1, 2, 6, 2, 2
        runs = Path(args.runs or Path(scratch.name) / "runs")
    else:
        recipe = Recipe.from_yaml("hit_quick")
        data = {"recipe": "hit_quick"}
        epochs, horizon, long_frames, every, rounds = (
            args.epochs,
            args.horizon,
            args.long_frames,
            5,
            args.rounds,
        )
        runs = Path(args.runs or "runs/bench_turbulence")
    try:
        record, results = compare(
            args.models, recipe, data, epochs, horizon, long_frames, every, rounds, runs, base_dir, args.quick
        )
    finally:
        if scratch is not None:
            scratch.cleanup()
    record.update(
        {
            "benchmark": "turbulence",
            "command": command.strip(),
            **environment("cpu"),
            "target": "IFactFormer-m: long rollouts stable with spectra closer to filtered DNS than FNO-3D's "
            "and IFactFormer-o's; short-term error below dynamic Smagorinsky LES; faster per step than LES",
            "plot": str(out_path.with_suffix(".png")),
            "plot_long": str(out_path.with_name(out_path.stem + "_long.png")),
        }
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot_short(record, out_path.with_suffix(".png"))
    plot_long_rollouts(Path(record["plot_long"]), results, frame_time=record["frame_time"])
    write_record(out_path, record)
    logger.info("wrote %s", out_path)
    return record


def compare(
    models: list[str],
    recipe: Recipe,
    data: dict[str, Any],
    epochs: int,
    horizon: int,
    long_frames: int,
    every: int,
    rounds: int,
    runs: Path,
    base_dir: Path,
    quick: bool = False,
) -> tuple[dict[str, Any], dict[str, LongRollout]]:
    """The comparison itself (module docstring): the record (one row per method) and the long rollouts."""
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        from sciml.errors import ConfigError

        raise ConfigError(f"--models: {unknown} not among {list(MODELS)}")
    rows: list[dict[str, Any]] = []
    long: dict[str, LongRollout] = {}
    bundle = None
    predictors: dict[str, Any] = {}
    for name in models:
        section = MODELS[name] | (QUICK_SIZES[MODELS[name]["name"]] if quick else {})
        config = run_config(section, data, epochs, runs / name.replace(" ", "_"))
        model, restored = train_or_reuse(name, config, runs / name.replace(" ", "_"), base_dir)
        bundle = restored.data
        report = json.loads((runs / name.replace(" ", "_") / "report" / "metrics.json").read_text())
        n_params = sum(p.numel() for p in model.parameters())
        rows.append(
            {
                "method": name,
                "kind": "neural operator",
                "params": n_params,
                "train_seconds": report.get("train_seconds"),
                "epochs": report.get("epochs"),
                "test_l2_one_step": report["test"][str(bundle.metadata.grid_shape[-1])]["l2"]["mean"],
            }
        )
        predictors[name] = model
    if bundle is None:
        from sciml.training.config import config_from_mapping
        from sciml.training.data import build_data, resolve_data_path

        cfg = config_from_mapping(run_config(MODELS["FNO-3D"], data, 1, runs / "none"), name="data")
        bundle = build_data(cfg.data, base_dir, path=resolve_data_path(cfg.data, base_dir))
    meta = bundle.metadata
    resolution = meta.grid_shape[-1]
    frame_time = float(meta.times[1] - meta.times[0]) if len(meta.times) > 1 else recipe.output.record_every
    test = [bundle.source.read(int(i))[:, :3] for i in bundle.splits["test"]]
    every_frame = torch.cat([bundle.source.read(i)[:, :3] for i in range(len(bundle.source))])
    start = test[0][:1].float()
    les_rows = []
    for name, (closure, options) in LES.items():
        solver = les_solver(recipe, resolution, closure, options)
        steps = round(frame_time / solver.dt)
        predictors[name] = _les_predictor(solver, steps)
        les_rows.append({"method": name, "kind": "LES", "closure": closure, "options": options,
                         "solver_steps_per_frame": steps, "dt": solver.dt})  # fmt: skip
    rows += les_rows
    for row in rows:
        predict = predictors[row["method"]]
        with torch.no_grad():
            row["short_term_l2"] = short_term(
                lambda w, n, p=predict: rollout(p, w, n, gradient="none"), test, horizon, every, meta
            )
            result = long_rollout(predict, start, long_frames, reference=every_frame)
        row["long_blowup_frame"] = result.blowup
        row["long_drift_frame"] = result.drift
        row["long_frames"] = result.frames
        row["late_spectrum_distance"] = late_spectrum_distance(result)
        long[row["method"]] = result
        logger.info(
            "%s: short-term L2 %s, drift at %s, blow-up at %s",
            row["method"],
            [f"{e:.3f}" for e in row["short_term_l2"]],
            result.drift,
            result.blowup,
        )
    # cost per predicted frame, interleaved in one process
    functions = {row["method"]: _timed(predictors[row["method"]], start) for row in rows}
    samples = interleaved_times(functions, rounds, "cpu", warmup=1)
    reference_les = statistics.median(samples["LES dynamic Smagorinsky"])
    for row in rows:
        row["ms_per_frame"] = statistics.median(samples[row["method"]]) * 1e3
        row["dynamic_les_over_this"] = statistics.median(
            a / b for a, b in zip(samples["LES dynamic Smagorinsky"], samples[row["method"]], strict=True)
        )
    summary = {name: {k: r.to_dict()[k] for k in ("energy", "spectrum_distance", "drift", "blowup")}
               for name, r in long.items()}  # fmt: skip
    return {
        "data": str(bundle.path),
        "grid": list(meta.grid_shape),
        "frame_time": frame_time,
        "horizon": horizon,
        "long_frames_asked": long_frames,
        "epochs": epochs,
        "test_trajectories": [int(i) for i in bundle.splits["test"]],
        "reference_energy": long[rows[0]["method"]].reference_energy,
        "reference_spectrum": long[rows[0]["method"]].reference_spectrum,
        "wavenumbers": long[rows[0]["method"]].wavenumbers,
        "dynamic_les_ms_per_frame": reference_les * 1e3,
        "rows": rows,
        "long": summary,
    }, long


def _les_predictor(solver: Any, steps: int) -> Any:
    """The LES as a windowed model: a velocity frame ``[B, 3, N, N, N]`` -> the frame ``steps`` dt later."""

    def predict(window: torch.Tensor) -> torch.Tensor:
        return solver.step(window.double(), steps).to(window.dtype)

    return predict


def _timed(predict: Any, window: torch.Tensor) -> Any:
    def call() -> None:
        with torch.no_grad():
            predict(window)

    return call


def plot_short(record: dict, path: Path) -> Path:
    """Short-term relative L2 per predicted frame, one curve per method."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    for i, row in enumerate(record["rows"]):
        t = [record["frame_time"] * (j + 1) for j in range(len(row["short_term_l2"]))]
        style = "-" if row["kind"] == "neural operator" else "--"
        ax.plot(t, row["short_term_l2"], style, marker="o", ms=3, color=f"C{i}", label=row["method"])
    ax.set_xlabel("prediction time")
    ax.set_ylabel("relative L2 vs filtered DNS")
    ax.set_title(f"short term, {'x'.join(map(str, record['grid']))} grid")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md text: one table row per method."""
    rows = []
    for row in record["rows"]:
        short = row["short_term_l2"]
        blow = row["long_blowup_frame"]
        drift = row["long_drift_frame"]
        late = row["late_spectrum_distance"]
        rows.append(
            [
                row["method"],
                f"{row['params']:,}" if "params" in row else "-",
                num(short[0], 3),
                num(short[-1], 3),
                "never" if drift is None else f"frame {drift + 1}",
                "never" if blow is None else f"frame {blow + 1}",
                "-" if late is None else num(late, 3),
                num(row["ms_per_frame"], 1),
                num(row["dynamic_les_over_this"], 2),
            ]
        )
    horizon = record["horizon"] * record["frame_time"]
    header = [
        "method",
        "params",
        f"rel L2 at t+{record['frame_time']:g}",
        f"rel L2 at t+{horizon:g}",
        "drifts (energy ±50 % or spectrum x2)",
        "blows up (energy x10)",
        "late spectrum mean abs ln(E/E_DNS)",
        "ms per frame",
        "dynamic LES time / this",
    ]
    parts = [
        provenance(record),
        "",
        f"Data `{Path(record['data']).name}` ({'x'.join(map(str, record['grid']))}), test trajectories "
        f"{record['test_trajectories']}, frames {record['frame_time']:g} time units apart; long rollouts of "
        f"{record['long_frames_asked']} frames from the test trajectory's first frame; neural operators "
        f"trained {record['epochs']} epochs by `sciml.train`.",
        "",
        table(header, rows),
    ]
    by_name = {row["method"]: row for row in record["rows"]}
    m, dyn = by_name.get("IFactFormer-m"), by_name.get("LES dynamic Smagorinsky")
    if m and dyn:
        checks = [
            ["short-term error below dynamic Smagorinsky (first frame)",
             met(m["short_term_l2"][0] < dyn["short_term_l2"][0])],
            ["faster per frame than dynamic Smagorinsky LES", met(m["dynamic_les_over_this"] > 1)],
            ["long rollout never blows up", met(m["long_blowup_frame"] is None)],
        ]  # fmt: skip
        for other in ("FNO-3D", "IFactFormer-o"):
            o = by_name.get(other)
            if o:
                ok = m["late_spectrum_distance"] is not None and (
                    o["late_spectrum_distance"] is None
                    or m["late_spectrum_distance"] < o["late_spectrum_distance"]
                )
                checks.append([f"late spectrum closer to filtered DNS than {other}", met(ok)])
        parts += ["", table(["IFactFormer-m target", "met"], checks)]
    parts += ["", f"Plots: `{record['plot']}` (short term), `{record['plot_long']}` (long rollouts)."]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(run_script(main))
