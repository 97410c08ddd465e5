"""Benchmark of the 3D pseudo-spectral Navier-Stokes solver: step cost vs FFT floor, Taylor-Green at Re 1600.

Two parts, in one record:

* ``step``: one time step of :class:`sciml.solvers.navier_stokes_3d.NavierStokes3D` (rotational form, 9 real
  3D FFTs per explicit evaluation) against its FFT floor, the same 6 inverse and 3 forward ``rfftn`` per
  explicit evaluation alone on tensors of the same shapes, timed interleaved in the same run; the ratio of
  the two is what compares across machines (target: <= 1.5x at 64^3 and 128^3).
* ``taylor_green``: the Taylor-Green vortex at Re = 1600 (nu = 1/1600, unit velocity on [0, 2 pi)^3) to
  t = 10; the dissipation -dE/dt (central differences of the recorded kinetic energy) and the spectral
  dissipation 2 nu sum k^2 E(k) against the reference spectral DNS: peak -dE/dt = 0.0127 near t = 9
  (Brachet et al., J. Fluid Mech. 130, 1983; the 512^3 spectral reference of the HiOCFD workshop, van Rees
  et al., J. Comput. Phys. 230, 2011). The run is long at 128^3 on one CPU thread (about half an hour), so
  ``--only tgv`` runs it alone and ``--tgv-from RECORD`` reuses the ``taylor_green`` section of such a run.

Run ``python solvers/bench_navier_stokes_3d.py`` (full) or with ``--quick`` (32^3, Taylor-Green to t = 1).
Writes a JSON record (``--out``) and a PNG next to it; ``markdown(record)`` renders it for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import met, num, provenance, table
from sciml.bench.timing import interleaved_times
from sciml.errors import ConfigError
from sciml.solvers.navier_stokes_3d import NavierStokes3D, random_solenoidal_field, taylor_green_vortex

logger = logging.getLogger("bench_navier_stokes_3d")

#: The reference: peak of -dE/dt and its time (module docstring), and the tolerances the run is held to.
REFERENCE_PEAK = 0.0127
REFERENCE_PEAK_TIME = 9.0
PEAK_TOLERANCE = 0.05
PEAK_TIME_TOLERANCE = 0.5


def bench_step(resolution: int, batch: int, dtype: torch.dtype, stepper: str, rounds: int) -> dict:
    """Step time and FFT-floor time (interleaved) at one size; per-step ms and their paired ratio."""
    solver = NavierStokes3D(resolution, viscosity=1e-2, forcing="band", dt=1e-3, stepper=stepper)
    u = random_solenoidal_field(batch, resolution, dtype=dtype, seed=0)
    equation, time_stepper = solver.equation(u.device, dtype), solver.time_stepper(u.device, dtype)
    state = equation.box.to_spectral(u).contiguous()
    evaluations = time_stepper.explicit_evaluations
    velocity_hat, vorticity_hat = state.clone(), state.clone()
    products = u.clone()
    shape = equation.box.shape

    def step() -> None:
        time_stepper.step_(state)

    def floor() -> None:
        for _ in range(evaluations):  # the step's calls: velocity and vorticity back, the cross product forth
            torch.fft.irfftn(velocity_hat, s=shape, dim=(-3, -2, -1))
            torch.fft.irfftn(vorticity_hat, s=shape, dim=(-3, -2, -1))
            torch.fft.rfftn(products, dim=(-3, -2, -1))

    samples = interleaved_times({"step": step, "floor": floor}, rounds, u.device, repeats=1, warmup=1)
    paired = statistics.median(a / b for a, b in zip(samples["step"], samples["floor"], strict=True))
    return {
        "resolution": resolution,
        "batch": batch,
        "dtype": str(dtype).removeprefix("torch."),
        "stepper": stepper,
        "explicit_evaluations": evaluations,
        "ffts_per_evaluation": 9,
        "step_ms": statistics.median(samples["step"]) * 1e3,
        "fft_floor_ms": statistics.median(samples["floor"]) * 1e3,
        "ratio_step_to_fft_floor": paired,
        "ratio_of_best_times": min(samples["step"]) / min(samples["floor"]),
    }


def taylor_green_run(resolution: int, t_final: float, dt: float, record_every: float, stepper: str) -> dict:
    """The Taylor-Green vortex at Re = 1600 in float32: energy and spectral dissipation at every record."""
    viscosity = 1.0 / 1600.0
    solver = NavierStokes3D(resolution, viscosity, dt=dt, stepper=stepper)
    dtype = torch.float32
    equation, time_stepper = solver.equation("cpu", dtype), solver.time_stepper("cpu", dtype)
    box = equation.box
    state = box.to_spectral(taylor_green_vortex(resolution, dtype=dtype)).contiguous()
    steps_per_record = round(record_every / dt)
    n_records = round(t_final / record_every)
    k2 = box.k2.to(torch.float64)
    weights = box.multiplicity.to(torch.float64) / float(resolution) ** 6

    def measure() -> tuple[float, float]:
        power = (state.real.double() ** 2 + state.imag.double() ** 2).sum(dim=1) * weights
        return 0.5 * float(power.sum()), viscosity * float((power * k2).sum())

    times, energies, dissipations = [0.0], [], []
    energy, dissipation = measure()
    energies.append(energy)
    dissipations.append(dissipation)
    start = time.perf_counter()
    for r in range(1, n_records + 1):
        for _ in range(steps_per_record):
            time_stepper.step_(state)
        energy, dissipation = measure()
        if not math.isfinite(energy):
            raise ConfigError(
                f"Taylor-Green at {resolution}^3 diverged at t = {r * record_every:g} (dt = {dt:g})"
            )
        times.append(r * steps_per_record * dt)
        energies.append(energy)
        dissipations.append(dissipation)
        logger.info(
            "TGV %d^3 t = %.2f E = %.6f eps = %.6f (%.0f s)",
            resolution,
            times[-1],
            energy,
            dissipation,
            time.perf_counter() - start,
        )
    wall = time.perf_counter() - start
    decay = (-np.gradient(np.array(energies), np.array(times))).tolist()
    peak_index = int(np.argmax(decay))
    peak, peak_time = decay[peak_index], times[peak_index]
    # a parabola through the peak and its neighbours places the peak between records
    if 0 < peak_index < len(decay) - 1:
        y0, y1, y2 = decay[peak_index - 1 : peak_index + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature < 0:
            shift = 0.5 * (y0 - y2) / curvature
            peak_time = times[peak_index] + shift * record_every
            peak = y1 - 0.25 * (y0 - y2) * shift
    return {
        "resolution": resolution,
        "viscosity": viscosity,
        "reynolds": 1600,
        "dtype": "float32",
        "stepper": stepper,
        "dt": dt,
        "t_final": t_final,
        "record_every": record_every,
        "times": times,
        "energy": energies,
        "dissipation_minus_dEdt": decay,
        "dissipation_spectral": dissipations,
        "peak": peak,
        "peak_time": peak_time,
        "reference_peak": REFERENCE_PEAK,
        "reference_peak_time": REFERENCE_PEAK_TIME,
        "peak_relative_error": abs(peak - REFERENCE_PEAK) / REFERENCE_PEAK,
        "peak_tolerance": PEAK_TOLERANCE,
        "peak_time_tolerance": PEAK_TIME_TOLERANCE,
        "met": t_final >= 10.0
        and abs(peak - REFERENCE_PEAK) <= PEAK_TOLERANCE * REFERENCE_PEAK
        and abs(peak_time - REFERENCE_PEAK_TIME) <= PEAK_TIME_TOLERANCE,
        "wall_s": wall,
        "threads": torch.get_num_threads(),
    }


def _taylor_green_section(path: str, option: str) -> dict:
    """The ``taylor_green`` section of an earlier record of this script (a ConfigError naming the file)."""
    try:
        section = json.loads(Path(path).read_text())["taylor_green"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{option} {path}: no taylor_green section readable ({err})") from err
    if not isinstance(section, dict) or "peak" not in section:
        raise ConfigError(
            f"{option} {path}: the taylor_green section holds no run; expected one of --only tgv"
        )
    return section


def plot(record: dict, path: Path) -> Path:
    """Step / floor per resolution, and the Taylor-Green dissipation history against the reference peak."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    rows = sorted(record.get("rows", []), key=lambda r: r["resolution"])
    if rows:
        axes[0].plot([r["resolution"] for r in rows], [r["ratio_step_to_fft_floor"] for r in rows], "o-")
    axes[0].axhline(1.5, color="gray", ls="--", lw=0.8, label="target 1.5")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("N (grid N^3)")
    axes[0].set_ylabel("step / FFT floor")
    axes[0].set_title("3D step cost (rk4-cn, float32)")
    axes[0].legend()
    tg = record.get("taylor_green")
    for coarse in record.get("taylor_green_coarser", []):
        axes[1].plot(
            coarse["times"],
            coarse["dissipation_minus_dEdt"],
            lw=0.8,
            label=f"-dE/dt, {coarse['resolution']}^3",
        )
    if tg:
        axes[1].plot(tg["times"], tg["dissipation_minus_dEdt"], "k", label=f"-dE/dt, {tg['resolution']}^3")
        axes[1].plot(tg["times"], tg["dissipation_spectral"], "--", label="2 nu sum k^2 E(k)")
        axes[1].plot([tg["reference_peak_time"]], [tg["reference_peak"]], "k*", ms=10, label="reference peak")
        axes[1].set_xlabel("t")
        axes[1].set_ylabel("dissipation")
        axes[1].set_title("Taylor-Green vortex, Re = 1600")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md text: the step table and the Taylor-Green summary."""
    rows = [
        [
            f"{r['resolution']}³",
            str(r["batch"]),
            r["dtype"],
            r["stepper"],
            str(r["explicit_evaluations"]),
            num(r["step_ms"], 1),
            num(r["fft_floor_ms"], 1),
            num(r["ratio_step_to_fft_floor"], bold=True),
            num(r["ratio_of_best_times"]),
            met(r["ratio_step_to_fft_floor"] <= 1.5),
        ]
        for r in record.get("rows", [])
    ]
    header = ["grid", "batch", "dtype", "stepper", "evaluations", "step ms", "FFT floor ms"]
    header += ["**step / floor** (median of paired rounds)", "ratio of best times", "<= 1.5x"]
    parts = [provenance(record), "", table(header, rows)]
    tg = record.get("taylor_green")
    if tg:
        parts += [
            "",
            f"Taylor-Green vortex, Re = 1600, {tg['resolution']}³, {tg['dtype']}, {tg['stepper']}, "
            f"dt = {tg['dt']:g}, to t = {tg['t_final']:g} ({tg['wall_s'] / 60:.0f} min at "
            f"{tg['threads']} thread(s); command: `{tg.get('command', record['command'])}`):",
            "",
            table(
                ["quantity", "measured", "reference", "tolerance", "met"],
                [
                    [
                        "peak -dE/dt",
                        f"{tg['peak']:.5f}",
                        f"{tg['reference_peak']:.4f}",
                        f"{100 * tg['peak_tolerance']:.0f} %",
                        met(tg["peak_relative_error"] <= tg["peak_tolerance"]),
                    ],
                    [
                        "time of the peak",
                        f"{tg['peak_time']:.2f}",
                        f"{tg['reference_peak_time']:.1f}",
                        f"± {tg['peak_time_tolerance']:g}",
                        met(abs(tg["peak_time"] - tg["reference_peak_time"]) <= tg["peak_time_tolerance"]),
                    ],
                ],
            ),
        ]
    runs = sorted(
        [*record.get("taylor_green_coarser", []), *([tg] if tg else [])], key=lambda r: r["resolution"]
    )
    if len(runs) > 1:
        parts += [
            "",
            "Resolution study (same dt, stepper and dtype; peak of -dE/dt by a parabola through the largest "
            "recorded value and its neighbours):",
            "",
            table(
                ["grid", "peak -dE/dt", "vs 0.0127", "time of the peak", "k_max eta at the peak", "wall min"],
                [
                    [
                        f"{r['resolution']}³",
                        f"{r['peak']:.5f}",
                        f"{100 * (r['peak'] / r['reference_peak'] - 1):+.1f} %",
                        f"{r['peak_time']:.2f}",
                        f"{_kmax_eta(r):.2f}",
                        f"{r['wall_s'] / 60:.0f}",
                    ]
                    for r in runs
                ],
            ),
        ]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


def _kmax_eta(run: dict) -> float:
    """k_max eta at the dissipation peak: k_max = floor((N - 1) / 3) (2/3 rule), eta = (nu^3 / eps)^(1/4)."""
    return ((run["resolution"] - 1) // 3) * (run["viscosity"] ** 3 / run["peak"]) ** 0.25


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write the JSON and the PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="32^3 step, Taylor-Green 32^3 to t = 1 (< 1 min)"
    )
    parser.add_argument("--only", choices=("step", "tgv"), help="run one part only")
    parser.add_argument("--tgv-resolution", type=int, default=128)
    parser.add_argument("--tgv-dt", type=float, default=0.025)
    parser.add_argument(
        "--tgv-from", help="reuse the taylor_green section of an earlier record of this script"
    )
    parser.add_argument(
        "--tgv-also",
        nargs="*",
        default=[],
        help="records of coarser Taylor-Green runs (--only tgv) shown beside the main one (resolution study)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/navier_stokes_3d.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "navier_stokes_3d.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python solvers/bench_navier_stokes_3d.py" + (" " + " ".join(argv) if argv else "")
    if argv is None:
        command = "python solvers/bench_navier_stokes_3d.py " + " ".join(sys.argv[1:])
    rows = []
    if args.only != "tgv":
        sizes = [(32, 5)] if args.quick else [(64, 7), (128, 5)]
        for resolution, rounds in sizes:
            row = bench_step(resolution, 1, torch.float32, "rk4-cn", rounds)
            rows.append(row)
            logger.info(
                "%d^3: step %.1f ms, floor %.1f ms, step/floor %.2f",
                resolution,
                row["step_ms"],
                row["fft_floor_ms"],
                row["ratio_step_to_fft_floor"],
            )
    tg = None
    if args.tgv_from:
        tg = _taylor_green_section(args.tgv_from, "--tgv-from")
    elif args.only != "step":
        if args.quick:
            tg = taylor_green_run(32, t_final=1.0, dt=0.05, record_every=0.1, stepper="rk4-cn")
        else:
            tg = taylor_green_run(args.tgv_resolution, 10.0, args.tgv_dt, record_every=0.1, stepper="rk4-cn")
        tg["command"] = command
    record = {
        "benchmark": "navier_stokes_3d",
        "command": command.strip(),
        **environment("cpu"),
        "target": "step <= 1.5x its FFT floor (9 rfftn per explicit evaluation) at 64^3 and 128^3; "
        "Taylor-Green Re 1600 peak -dE/dt within 5 % of 0.0127 and its time within 0.5 of t = 9",
        "rows": rows,
        "taylor_green": tg,
        "taylor_green_coarser": [_taylor_green_section(path, "--tgv-also") for path in args.tgv_also],
        "plot": str(out_path.with_suffix(".png")),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot(record, out_path.with_suffix(".png"))
    write_record(out_path, record)
    logger.info("wrote %s and %s", out_path, record["plot"])
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
