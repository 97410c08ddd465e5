"""Benchmark of the pseudo-spectral Navier-Stokes solver: cost of one step against its FFT floor.

For each (resolution, batch, dtype, stepper) the script times, in the same run and interleaved:

* ``step``: one time step of :class:`sciml.solvers.navier_stokes.NavierStokes2D` on the spectrum;
* ``fft floor``: only the FFTs that step performs (per explicit evaluation one batched ``irfft2`` of the
  velocity pair and one batched ``rfft2`` of the two products, in the same cache-sized blocks of
  trajectories as the step), on tensors of the same shapes;
* ``fno-style step``: a step written the way the FNO data generator writes it (five FFTs per step: four
  inverse for u, v, w_x, w_y and one forward, complex arithmetic on full spectra), the usual torch
  implementation, as a reference on the same machine.

The reported ratios (step / floor, fno-style / ours) are what to compare across machines; absolute times
are only meaningful on a GPU. Full mode runs 64^2 to 1024^2 (cases whose buffers would not fit in the
free memory are skipped and listed), batches 1 and 8 (64 on a GPU) and float32/float64.

It also measures, in float64 on the CPU:

* ``taylor_green``: the relative L2 error of each stepper against the exact Taylor-Green decay
  ``w = 2k cos(kx) cos(ky) exp(-2 nu k^2 t)`` after a fixed time. On this single-mode flow the advection
  vanishes identically, so the error is that of the (Crank-Nicolson) diffusion treatment alone;
* ``convergence``: the observed order of each stepper when dt halves, ``log2(e(dt) / e(dt/2))``, on the
  Taylor-Green flow against its exact solution, and on a forced turbulent-like flow (an FNO-type random
  initial vorticity, nu = 1e-3) against a fine ``rk4-cn`` reference (dt / 16 of the finest dt measured);
  ``rk4-cn`` also without viscosity, where its own fourth order shows.

Run ``python solvers/bench_navier_stokes.py`` (full) or with ``--quick``. Writes a JSON file (``--out``)
with the machine, device, torch version and date, and a PNG next to it (step / floor per resolution, error
vs dt per stepper); ``markdown(record)`` renders the record for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import statistics
import sys
from pathlib import Path

import torch

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import met, num, provenance, sci, table
from sciml.bench.timing import interleaved_times
from sciml.solvers.navier_stokes import NavierStokes2D, gaussian_random_field
from sciml.solvers.time_stepping import STEPPERS

logger = logging.getLogger("bench_navier_stokes")


def fno_style_step_factory(solver: NavierStokes2D, w_hat: torch.Tensor):
    """A one-step closure of the classic FNO generator scheme (5 FFTs, complex arithmetic), for reference."""
    n = solver.resolution
    device, real = w_hat.device, w_hat.real.dtype
    k = torch.fft.fftfreq(n, 1.0 / n, device=device, dtype=real) * (2 * math.pi / solver.domain_length)
    kx, ky = k[:, None].expand(n, n // 2 + 1), k[: n // 2 + 1].abs()[None, :].expand(n, n // 2 + 1)
    lap = kx**2 + ky**2
    lap_safe = lap.clone()
    lap_safe[0, 0] = 1.0
    cut = (2.0 / 3.0) * (n / 2.0) * (2 * math.pi / solver.domain_length)
    dealias = ((kx.abs() <= cut) & (ky.abs() <= cut)).to(real)
    f_hat = torch.fft.rfft2(solver.forcing_field(device, real))
    dt, nu = solver.dt, solver.viscosity

    def step(w_h: torch.Tensor) -> torch.Tensor:
        psi_h = w_h / lap_safe
        u = torch.fft.irfft2(1j * ky * psi_h, s=(n, n))
        v = torch.fft.irfft2(-1j * kx * psi_h, s=(n, n))
        w_x = torch.fft.irfft2(1j * kx * w_h, s=(n, n))
        w_y = torch.fft.irfft2(1j * ky * w_h, s=(n, n))
        advection = torch.fft.rfft2(u * w_x + v * w_y) * dealias
        return (-dt * advection + dt * f_hat + (1.0 - 0.5 * dt * nu * lap) * w_h) / (
            1.0 + 0.5 * dt * nu * lap
        )

    return step


def bench_case(
    resolution: int, batch: int, dtype: torch.dtype, stepper: str, device: torch.device, repeats: int
):
    """Time one configuration; returns a dict of per-step times (ms) and ratios."""
    solver = NavierStokes2D(resolution, viscosity=1e-3, forcing="fno", dt=1e-4, stepper=stepper)
    w = gaussian_random_field(batch, resolution, dtype=dtype, device=device, seed=0)
    equation, time_stepper = solver.equation(w.device, w.dtype), solver.time_stepper(w.device, w.dtype)
    w_hat = torch.fft.rfft2(w)
    evaluations = time_stepper.explicit_evaluations
    pair_hat = torch.fft.rfft2(torch.stack([w, w], dim=1))
    pair = torch.stack([w, w], dim=1)
    single_hat = w_hat

    state = w_hat.clone()

    def ours():  # steps the spectrum in place; the FNO step is applied to w_hat, which stays unchanged
        time_stepper.step_(state)

    block = equation.block_trajectories or batch

    def floor():  # the same transforms, in the same blocks of trajectories as the step
        for _ in range(evaluations):
            for start in range(0, batch, block):
                torch.fft.irfft2(pair_hat[start : start + block], s=equation.shape)
                torch.fft.rfft2(pair[start : start + block])

    def floor_five():
        for _ in range(4):
            torch.fft.irfft2(single_hat, s=equation.shape)
        torch.fft.rfft2(w)

    fno_step = fno_style_step_factory(solver, w_hat) if stepper == "cn-euler" else None
    timed = {"step": ours, "floor": floor, "floor_5fft": floor_five}
    if fno_step is not None:
        timed["fno_style"] = lambda: fno_step(w_hat)
    # 7 interleaved rounds, so that machine noise hits all alike; each timing: the mean of `repeats`
    # calls after two untimed ones
    samples = interleaved_times(timed, 7, device, repeats=repeats, warmup_each=2)
    med = {k: statistics.median(v) * 1e3 for k, v in samples.items() if v}
    # ratios paired round by round (both timings of a round see the same machine load), then the median
    paired = statistics.median(a / b for a, b in zip(samples["step"], samples["floor"], strict=True))
    row = {
        "resolution": resolution,
        "batch": batch,
        "dtype": str(dtype).replace("torch.", ""),
        "stepper": stepper,
        "explicit_evaluations": evaluations,
        "step_ms": med["step"],
        "fft_floor_ms": med["floor"],
        "ratio_step_to_fft_floor": paired,
        "ratio_of_best_times": min(samples["step"]) / min(samples["floor"]),
        "ratio_step_to_5fft_floor": med["step"] / (evaluations * med["floor_5fft"]),
    }
    if "fno_style" in med:
        row["fno_style_step_ms"] = med["fno_style"]
        row["fno_style_ratio_to_its_5fft_floor"] = med["fno_style"] / med["floor_5fft"]
        row["speedup_vs_fno_style"] = statistics.median(
            a / b for a, b in zip(samples["fno_style"], samples["step"], strict=True)
        )
    return row


def taylor_green(solver: NavierStokes2D, wavenumber: int = 1) -> torch.Tensor:
    """Taylor-Green vorticity ``2k cos(kx) cos(ky)`` on the solver's grid, ``[1, N, N]`` float64."""
    x, y = solver.grid()
    k = 2 * math.pi * wavenumber / solver.domain_length
    return (2 * k * torch.cos(k * x) * torch.cos(k * y))[None]


def taylor_green_exact(solver: NavierStokes2D, t: float, wavenumber: int = 1) -> torch.Tensor:
    """The exact Taylor-Green vorticity at time ``t``: the initial field times ``exp(-2 nu k^2 t)``."""
    k = 2 * math.pi * wavenumber / solver.domain_length
    return taylor_green(solver, wavenumber) * math.exp(-(2 * solver.viscosity * k**2 + solver.drag) * t)


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _orders(errors: list[float]) -> list[float]:
    """``log2(e_k / e_{k+1})`` for successive halvings of dt (NaN where an error is zero)."""
    return [math.log2(a / b) if a > 0 and b > 0 else float("nan") for a, b in itertools.pairwise(errors)]


def taylor_green_accuracy(resolution: int, viscosity: float, t_final: float, dt: float) -> list[dict]:
    """Relative L2 error of every stepper against the exact Taylor-Green decay after ``t_final`` (float64)."""
    rows = []
    for stepper in STEPPERS:
        solver = NavierStokes2D(resolution, viscosity=viscosity, forcing=None, dt=dt, stepper=stepper)
        w = solver.simulate(taylor_green(solver), t_final, t_final).vorticity[:, -1]
        rows.append(
            {
                "stepper": stepper,
                "resolution": resolution,
                "viscosity": viscosity,
                "t_final": t_final,
                "dt": dt,
                "steps": round(t_final / dt),
                "rel_l2_error": _rel_l2(w, taylor_green_exact(solver, t_final)),
            }
        )
    return rows


# (stepper, viscosity, forcing, the order the scheme should show)
CONVERGENCE_CASES = (
    ("cn-euler", 1e-3, "fno", 1.0),
    ("heun-cn", 1e-3, "fno", 2.0),
    ("rk4-cn", 1e-3, "fno", 2.0),  # Crank-Nicolson sub-steps: second order with diffusion
    ("rk4-cn", 0.0, None, 4.0),  # inviscid: the Carpenter-Kennedy scheme's own fourth order
)


def convergence(resolution: int, t_final: float, n_dts: int, coarsest: int = 16) -> list[dict]:
    """Observed order of every stepper when dt halves, ``n_dts`` step sizes from ``t_final / coarsest``.

    Two problems: the Taylor-Green decay against its exact solution (nu = 1e-2, unforced), and an FNO-type
    random initial vorticity (forced, nu = 1e-3; or inviscid and unforced) against an ``rk4-cn`` run with a
    step 16x smaller than the finest one measured. All in float64.
    """
    dts = [t_final / (coarsest * 2**i) for i in range(n_dts)]
    rows = []
    for stepper in STEPPERS:  # Taylor-Green: only the diffusion treatment is seen (advection vanishes)
        errors = []
        for dt in dts:
            solver = NavierStokes2D(resolution, viscosity=1e-2, forcing=None, dt=dt, stepper=stepper)
            w = solver.simulate(taylor_green(solver), t_final, t_final).vorticity[:, -1]
            errors.append(_rel_l2(w, taylor_green_exact(solver, t_final)))
        rows.append(
            {
                "problem": "taylor_green",
                "reference": "exact",
                "stepper": stepper,
                "viscosity": 1e-2,
                "forcing": None,
                "expected_order": 2.0,
                "dts": dts,
                "errors": errors,
                "orders": _orders(errors),
            }
        )
    w0 = gaussian_random_field(2, resolution, dtype=torch.float64, seed=3)
    for stepper, viscosity, forcing, order in CONVERGENCE_CASES:
        fine = dts[-1] / 16
        reference = (
            NavierStokes2D(resolution, viscosity=viscosity, forcing=forcing, dt=fine, stepper="rk4-cn")
            .simulate(w0, t_final, t_final)
            .vorticity[:, -1]
        )
        errors = []
        for dt in dts:
            solver = NavierStokes2D(resolution, viscosity=viscosity, forcing=forcing, dt=dt, stepper=stepper)
            errors.append(_rel_l2(solver.simulate(w0, t_final, t_final).vorticity[:, -1], reference))
        rows.append(
            {
                "problem": "random_forced" if forcing else "random_inviscid",
                "reference": f"rk4-cn, dt = {fine:.3g}",
                "stepper": stepper,
                "viscosity": viscosity,
                "forcing": forcing,
                "expected_order": order,
                "dts": dts,
                "errors": errors,
                "orders": _orders(errors),
            }
        )
    for row in rows:
        finest = row["orders"][-1]
        row["observed_order"] = finest
        row["order_met"] = bool(abs(finest - row["expected_order"]) <= 0.2)
        logger.info(
            f"{row['problem']:>16} {row['stepper']:>9}  errors {' '.join(f'{e:.2e}' for e in row['errors'])}"
            f"  orders {' '.join(f'{o:.2f}' for o in row['orders'])} (expected {row['expected_order']:.0f})"
        )
    return rows


def fits_in_memory(resolution: int, batch: int, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the benchmark's tensors for one case (about 40 fields of the batch) fit in the free memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    needed = 40 * batch * resolution * resolution * itemsize
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return needed < 0.8 * free
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable"))
    except (OSError, StopIteration, ValueError):
        return True
    return needed < 0.5 * available


def plot(record: dict, path: Path) -> Path:
    """Step / floor per resolution (cn-euler, float32, the largest batch) and error vs dt per stepper."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    rows = [r for r in record["rows"] if r["stepper"] == "cn-euler" and r["dtype"] == "float32"]
    for batch in sorted({r["batch"] for r in rows}):
        sel = sorted((r for r in rows if r["batch"] == batch), key=lambda r: r["resolution"])
        axes[0].plot(
            [r["resolution"] for r in sel],
            [r["ratio_step_to_fft_floor"] for r in sel],
            "o-",
            label=f"batch {batch}",
        )
    axes[0].axhline(1.5, color="gray", ls="--", lw=0.8, label="target 1.5")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("N (grid N x N)")
    axes[0].set_ylabel("step / FFT floor")
    axes[0].set_title("cn-euler, float32")
    axes[0].legend()
    for row in record.get("convergence", []):
        axes[1].loglog(
            row["dts"],
            row["errors"],
            "o-",
            label=f"{row['stepper']} {row['problem']} ({row['observed_order']:.1f})",
        )
    axes[1].set_xlabel("dt")
    axes[1].set_ylabel("relative L2 error at t_final")
    axes[1].set_title("convergence (float64; observed order)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md tables: step vs floor, Taylor-Green accuracy, convergence orders."""
    rows = []
    for r in record["rows"]:
        target = (r["resolution"], r["batch"], r["dtype"]) == (256, 8, "float32")
        speedup = r.get("speedup_vs_fno_style")
        rows.append(
            [
                str(r["resolution"]),
                str(r["batch"]),
                r["dtype"],
                r["stepper"],
                num(r["step_ms"]),
                num(r["fft_floor_ms"]),
                num(r["ratio_step_to_fft_floor"], bold=target),
                num(r["ratio_of_best_times"]),
                f"{speedup:.2f}x" if speedup is not None else "-",
            ]
        )
    header = ["N", "batch", "dtype", "stepper", "step ms", "FFT floor ms"]
    header += ["**step / floor** (median of paired rounds)", "ratio of best times", "vs FNO-style"]
    parts = [provenance(record), "", table(header, rows)]
    if record.get("skipped"):
        skipped = ", ".join(f"{s['resolution']}² batch {s['batch']} {s['dtype']}" for s in record["skipped"])
        parts += ["", f"Skipped (would not fit in the free memory): {skipped}."]
    if record.get("taylor_green"):
        tg = record["taylor_green"]
        first = tg[0]
        parts += [
            "",
            f"Accuracy against the exact Taylor-Green decay (float64, {first['resolution']}², "
            f"nu = {first['viscosity']:g}, unforced, t = {first['t_final']:g}, dt = {first['dt']:g}):",
            "",
            table(
                ["stepper", "steps", "relative L2 error"],
                [[r["stepper"], str(r["steps"]), sci(r["rel_l2_error"])] for r in tg],
            ),
        ]
    if record.get("convergence"):
        conv = record["convergence"]
        dts = conv[0]["dts"]
        crows = []
        for r in conv:
            crows.append(
                [
                    r["problem"].replace("_", " "),
                    r["stepper"],
                    f"{r['viscosity']:g}",
                    " / ".join(sci(e) for e in r["errors"]),
                    " / ".join(num(o) for o in r["orders"]),
                    f"{r['expected_order']:.0f}",
                    met(r["order_met"]),
                ]
            )
        parts += [
            "",
            "Observed convergence order when dt halves "
            f"(float64, {record.get('convergence_resolution', '?')}², "
            f"t = {record.get('convergence_t_final', '?')}, dt = {' / '.join(f'{d:.4g}' for d in dts)}; "
            "Taylor-Green against its exact solution, the random flows against an rk4-cn reference 16x finer "
            "than the finest dt; the order is met when the last one is within 0.2 of the expected):",
            "",
            table(["problem", "stepper", "nu", "errors", "orders", "expected", "order"], crows),
        ]
    if record.get("plot"):
        parts += ["", f"Plot: `{record['plot']}`."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, write the JSON; returns the result dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid and few repeats (< 1 minute)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/navier_stokes.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "navier_stokes.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.quick:
        cases = [(32, 4, torch.float32, s) for s in ("cn-euler", "heun-cn", "rk4-cn")]
        repeats = 4
    else:
        cases = [(256, 8, torch.float32, s) for s in ("cn-euler", "heun-cn", "rk4-cn")]
        cases += [(n, 8, torch.float32, "cn-euler") for n in (64, 128, 512, 1024)]
        cases += [(256, 8, torch.float64, "cn-euler"), (256, 1, torch.float32, "cn-euler")]
        cases += [(1024, 1, torch.float32, "cn-euler")]
        if device.type == "cuda":
            cases += [(n, 64, torch.float32, "cn-euler") for n in (256, 512, 1024)]
        repeats = 20
    rows, skipped = [], []
    header = (
        f"{'N':>5} {'B':>3} {'dtype':>8} {'stepper':>9} {'step ms':>9} {'floor ms':>9} {'step/floor':>10}"
    )
    logger.info(header + f" {'vs FNO-style':>13}")
    for resolution, batch, dtype, stepper in cases:
        if not fits_in_memory(resolution, batch, dtype, device):
            logger.info(f"{resolution:>5} {batch:>3} {dtype} {stepper}: skipped, would not fit in memory")
            skipped.append(
                {"resolution": resolution, "batch": batch, "dtype": str(dtype).replace("torch.", "")}
            )
            continue
        # grids above 512^2: fewer calls per timing, so that a round stays about as long as at 512^2
        reps = repeats if resolution <= 512 else max(3, round(repeats * (512 / resolution) ** 2))
        row = bench_case(resolution, batch, dtype, stepper, device, reps)
        rows.append(row)
        speedup = f"{row['speedup_vs_fno_style']:.2f}x" if "speedup_vs_fno_style" in row else "-"
        logger.info(
            f"{resolution:>5} {batch:>3} {row['dtype']:>8} {stepper:>9} {row['step_ms']:>9.3f} "
            f"{row['fft_floor_ms']:>9.3f} {row['ratio_step_to_fft_floor']:>10.2f} {speedup:>13}"
        )
    # accuracy and convergence: float64 on the CPU (the exact solution and the orders, not the speed)
    tg = taylor_green_accuracy(16 if args.quick else 64, viscosity=1e-2, t_final=1.0, dt=1e-2)
    for r in tg:
        logger.info(
            f"Taylor-Green {r['stepper']:>9}: rel L2 error {r['rel_l2_error']:.2e} after {r['steps']} steps"
        )
    conv_resolution, conv_t_final = (16, 0.5) if args.quick else (64, 0.5)
    conv = convergence(conv_resolution, conv_t_final, n_dts=3 if args.quick else 4)
    result = {
        "benchmark": "navier_stokes_step_vs_fft_floor",
        "command": "python solvers/bench_navier_stokes.py" + (" --quick" if args.quick else ""),
        **environment(device),
        "target": "step <= 1.5x its FFT floor at 256^2, batch 8, float32",
        "rows": rows,
        "skipped": skipped,
        "taylor_green": tg,
        "convergence_resolution": conv_resolution,
        "convergence_t_final": conv_t_final,
        "convergence": conv,
        "plot": str(out_path.with_suffix(".png")),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plot(result, out_path.with_suffix(".png"))
    out = write_record(out_path, result)
    logger.info(f"wrote {out} and {result['plot']}")
    return result


if __name__ == "__main__":
    sys.exit(run_script(main))
