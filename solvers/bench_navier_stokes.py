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
are only meaningful on a GPU. Run ``python solvers/bench_navier_stokes.py`` (full) or with ``--quick``.
Writes a JSON file (``--out``) with the machine, device, torch version and date.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time

import torch

from sciml.benchmarking import environment, write_record
from sciml.solvers.navier_stokes import NavierStokes2D, gaussian_random_field

logger = logging.getLogger("bench_navier_stokes")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn`` (mean over ``repeats`` calls after a warm-up)."""
    for _ in range(2):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


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
    ops = solver._ops(w.device, w.dtype)
    w_hat = torch.fft.rfft2(w)
    evaluations = len(ops.stages) * (2 if stepper == "heun-cn" else 1)
    pair_hat = torch.fft.rfft2(torch.stack([w, w], dim=1))
    pair = torch.stack([w, w], dim=1)
    single_hat = w_hat

    state = w_hat.clone()

    def ours():  # steps the spectrum in place; the FNO step is applied to w_hat, which stays unchanged
        solver._step_spectral(state, ops)

    block = ops.block_trajectories or batch

    def floor():  # the same transforms, in the same blocks of trajectories as the step
        for _ in range(evaluations):
            for start in range(0, batch, block):
                torch.fft.irfft2(pair_hat[start : start + block], s=ops.shape)
                torch.fft.rfft2(pair[start : start + block])

    def floor_five():
        for _ in range(4):
            torch.fft.irfft2(single_hat, s=ops.shape)
        torch.fft.rfft2(w)

    fno_step = fno_style_step_factory(solver, w_hat) if stepper == "cn-euler" else None
    samples: dict[str, list[float]] = {"step": [], "floor": [], "floor_5fft": [], "fno_style": []}
    for _ in range(7):  # interleave the timings so that machine noise hits all of them alike
        samples["step"].append(_time(ours, device, repeats))
        samples["floor"].append(_time(floor, device, repeats))
        samples["floor_5fft"].append(_time(floor_five, device, repeats))
        if fno_step is not None:
            samples["fno_style"].append(_time(lambda: fno_step(w_hat), device, repeats))
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


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table, write the JSON; returns the result dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid and few repeats (< 1 minute)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="solvers/results/navier_stokes.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.quick:
        cases = [(64, 4, torch.float32, s) for s in ("cn-euler", "heun-cn", "rk4-cn")]
        repeats = 10
    else:
        cases = [(256, 8, torch.float32, s) for s in ("cn-euler", "heun-cn", "rk4-cn")]
        cases += [(n, 8, torch.float32, "cn-euler") for n in (64, 128, 512)]
        cases += [(256, 8, torch.float64, "cn-euler"), (256, 1, torch.float32, "cn-euler")]
        if device.type == "cuda":
            cases += [(1024, 8, torch.float32, "cn-euler"), (256, 64, torch.float32, "cn-euler")]
        repeats = 20
    rows = []
    header = (
        f"{'N':>5} {'B':>3} {'dtype':>8} {'stepper':>9} {'step ms':>9} {'floor ms':>9} {'step/floor':>10}"
    )
    logger.info(header + f" {'vs FNO-style':>13}")
    for resolution, batch, dtype, stepper in cases:
        row = bench_case(resolution, batch, dtype, stepper, device, repeats)
        rows.append(row)
        speedup = f"{row['speedup_vs_fno_style']:.2f}x" if "speedup_vs_fno_style" in row else "-"
        logger.info(
            f"{resolution:>5} {batch:>3} {row['dtype']:>8} {stepper:>9} {row['step_ms']:>9.3f} "
            f"{row['fft_floor_ms']:>9.3f} {row['ratio_step_to_fft_floor']:>10.2f} {speedup:>13}"
        )
    result = {
        "benchmark": "navier_stokes_step_vs_fft_floor",
        "command": "python solvers/bench_navier_stokes.py" + (" --quick" if args.quick else ""),
        **environment(device),
        "target": "step <= 1.5x its FFT floor at 256^2, batch 8, float32",
        "rows": rows,
    }
    out = write_record(args.out, result)
    logger.info(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
