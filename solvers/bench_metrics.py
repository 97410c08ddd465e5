"""Benchmark of the Sobolev evaluators against their FFT floor.

Times, in the same run and interleaved (so that machine noise hits all of them alike), on a
``[B, C, N, N]`` float32 batch:

* ``rfft2``: one ``torch.fft.rfft2`` of the batch (the unit of the ratios);
* ``sobolev_norm``: ``sciml.metrics.sobolev_norm(u, s=1)``: one rfft2 plus the weighted sum of ``|U|^2``;
* ``sobolev_error``: ``sciml.metrics.sobolev_error(pred, target, s=1)``: it needs the norms of
  ``pred - target`` and of ``target``, i.e. two rfft2 of the batch, so its honest floor is 2x rfft2;
* ``sobolev_error (grad)``: the same with ``pred.requires_grad`` (the loss's forward: no in-place square);
* alternatives for the weighted sum after one rfft2, to justify the choice (the library multiplies the
  real view in place by ``sqrt(w)`` and takes one ``vector_norm``): ``abs().square() * w`` summed, an
  einsum over the real view, and an in-place square followed by a BLAS ``mv`` with ``w``.

Reported: the median and best time of each, and as ratios the median over rounds of (variant / rfft2)
timed back to back in the same round (robust to a shared, noisy machine): ``sobolev_norm / rfft2``
(target <= 2), ``sobolev_error / rfft2`` and ``sobolev_error / (2 rfft2)``.
Run ``python solvers/bench_metrics.py`` (512^2, B=4, C=1) or with ``--quick`` (128^2, a few seconds).
Writes JSON (``--out``) with the machine, torch version and date; ``markdown(record)`` renders it for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from sciml.bench.record import bar_chart, environment, output_path, run_script, write_record
from sciml.bench.render import num, para, provenance, table
from sciml.bench.timing import interleaved_times
from sciml.metrics import sobolev_error, sobolev_norm
from sciml.metrics._fourier import sobolev_weights

logger = logging.getLogger("bench_metrics")


def run(n: int, batch: int, channels: int, device: torch.device, repeats: int, rounds: int) -> dict:
    """Time every variant ``rounds`` times (interleaved), return medians (ms) and ratios."""
    g = torch.Generator(device="cpu").manual_seed(0)
    target = torch.randn(batch, channels, n, n, generator=g).to(device)
    pred = target + 0.1 * torch.randn(batch, channels, n, n, generator=g).to(device)
    pred_grad = pred.clone().requires_grad_()
    s = 1.0
    w_pairs = sobolev_weights((n, n), (1.0, 1.0), s, False, None, 1.0, device, torch.float32).square()
    w = w_pairs.reshape(-1)
    w_complex = w_pairs[..., 0].contiguous()

    def alt_abs_square() -> torch.Tensor:
        return (torch.fft.rfft2(pred).abs().square() * w_complex).sum(dim=(-2, -1))

    def alt_einsum() -> torch.Tensor:
        ur = torch.view_as_real(torch.fft.rfft2(pred)).reshape(batch * channels, -1)
        return torch.einsum("mp,mp,p->m", ur, ur, w)

    def alt_square_mv() -> torch.Tensor:
        ur = torch.view_as_real(torch.fft.rfft2(pred)).reshape(batch * channels, -1)
        return torch.mv(ur.square_(), w).sqrt_()

    variants: dict[str, Callable[[], object]] = {
        "rfft2": lambda: torch.fft.rfft2(pred),
        "sobolev_norm": lambda: sobolev_norm(pred, s),
        "sobolev_error": lambda: sobolev_error(pred, target, s),
        "sobolev_error_grad": lambda: sobolev_error(pred_grad, target, s),
        "alt_abs_square_sum": alt_abs_square,
        "alt_einsum": alt_einsum,
        "alt_square_mv": alt_square_mv,
    }
    # each timing: the mean of `repeats` calls after two untimed ones
    samples = interleaved_times(variants, rounds, device, repeats=repeats, warmup_each=2)
    ms = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    best_ms = {k: min(v) * 1e3 for k, v in samples.items()}

    def paired(name: str, floors: float = 1.0) -> float:
        """Median over rounds of (variant / rfft2) timed back to back in the same round."""
        return statistics.median(
            a / (floors * b) for a, b in zip(samples[name], samples["rfft2"], strict=True)
        )

    # accuracy of the float32 evaluator against float64
    ref = sobolev_error(pred.double(), target.double(), s)
    got = sobolev_error(pred, target, s).double()
    return {
        "shape": [batch, channels, n, n],
        "dtype": "float32",
        "s": s,
        "rounds": rounds,
        "repeats_per_round": repeats,
        "median_ms": ms,
        "min_ms": best_ms,
        "ratios": {
            "sobolev_norm_to_rfft2": paired("sobolev_norm"),
            "sobolev_error_to_rfft2": paired("sobolev_error"),
            "sobolev_error_to_two_rfft2": paired("sobolev_error", 2.0),
            "sobolev_error_grad_to_rfft2": paired("sobolev_error_grad"),
            "alt_abs_square_sum_to_rfft2": paired("alt_abs_square_sum"),
            "alt_einsum_to_rfft2": paired("alt_einsum"),
            "alt_square_mv_to_rfft2": paired("alt_square_mv"),
        },
        "ratios_of_min_times": {
            "sobolev_norm_to_rfft2": best_ms["sobolev_norm"] / best_ms["rfft2"],
            "sobolev_error_to_rfft2": best_ms["sobolev_error"] / best_ms["rfft2"],
        },
        "float32_max_rel_diff_vs_float64": float(((got - ref).abs() / ref.abs()).max()),
    }


def markdown(record: dict) -> str:
    """The record as a BENCHMARKS.md table: each evaluator's cost in units of one rfft2 of the batch."""
    r, ms = record["ratios"], record["median_ms"]
    rows = [
        ["`sobolev_norm(u, s=1)`", num(ms["sobolev_norm"], 3), num(r["sobolev_norm_to_rfft2"], bold=True)],
        [
            "`sobolev_error(pred, target, s=1)`",
            num(ms["sobolev_error"], 3),
            f"{num(r['sobolev_error_to_rfft2'], bold=True)} "
            f"({r['sobolev_error_to_two_rfft2']:.2f}x its floor of two rfft2)",
        ],
        [
            "`sobolev_error` with autograd (as a loss)",
            num(ms["sobolev_error_grad"], 3),
            num(r["sobolev_error_grad_to_rfft2"]),
        ],
    ]
    alternatives = {
        "alt_abs_square_sum": "alternative: `(rfft2(u).abs().square() * w).sum()`",
        "alt_einsum": "alternative: einsum over the real view",
        "alt_square_mv": "alternative: in-place square, then `mv` with w",
    }
    for key, label in alternatives.items():
        if f"{key}_to_rfft2" in r:
            rows.append([label, num(ms[key], 3), num(r[f"{key}_to_rfft2"])])
    b, c, n = record["shape"][0], record["shape"][1], record["shape"][-1]
    setup = (
        f"A [{b}, {c}, {n}, {n}] {record['dtype']} batch, s = {record['s']:g}, medians of {record['rounds']} "
        f"interleaved rounds; one rfft2 of the batch takes {ms['rfft2']:.3f} ms."
    )
    return "\n".join(
        [
            provenance(record),
            "",
            para(setup),
            "",
            table(["evaluator", "median ms", "/ one rfft2 of the batch"], rows),
        ]
    )


def plot(record: dict, path: str | Path) -> Path:
    """Each evaluator's median time as a multiple of one rfft2 of the batch (PNG)."""
    ratios = record["ratios"]
    labels = [k.removesuffix("_to_rfft2") for k in ratios if k.endswith("_to_rfft2")]
    values = [ratios[f"{k}_to_rfft2"] for k in labels]
    return bar_chart(
        path, labels, values, "Sobolev evaluators vs one rfft2", "time / one rfft2", reference=2.0
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, log a table, write the JSON; returns the result dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="128^2 grid, few repeats (a few seconds)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=None, help="grid side (default 512, quick 128)")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/metrics.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "metrics.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = args.resolution or (128 if args.quick else 512)
    repeats, rounds = (5, 15) if args.quick else (5, 41)
    # timed as evaluation code calls them: autograd on, inputs without grad (sobolev_error_grad: with)
    row = run(n, args.batch, args.channels, device, repeats, rounds)
    logger.info(f"shape {row['shape']} float32, s = 1, device {device}, {torch.get_num_threads()} threads")
    r = row["ratios"]
    paired_ratio = {"rfft2": 1.0} | {k.removesuffix("_to_rfft2"): v for k, v in r.items()}
    logger.info(f"{'variant':>22} {'median ms':>10} {'best ms':>9} {'/ rfft2':>8}")
    for name, value in row["median_ms"].items():
        ratio = paired_ratio.get(name, float("nan"))
        logger.info(f"{name:>22} {value:>10.3f} {row['min_ms'][name]:>9.3f} {ratio:>8.2f}")
    logger.info(
        f"sobolev_norm / rfft2 = {r['sobolev_norm_to_rfft2']:.2f}; "
        f"sobolev_error / rfft2 = {r['sobolev_error_to_rfft2']:.2f} "
        f"(= {r['sobolev_error_to_two_rfft2']:.2f} x its two-rfft2 floor)"
    )
    command = "python solvers/bench_metrics.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    result = {
        "benchmark": "sobolev_evaluators_vs_rfft2",
        "command": command.strip(),
        **environment(device),
        "target": "sobolev_norm <= 2x one rfft2 of the batch; sobolev_error needs two rfft2 (floor 2x)",
        **row,
    }
    out = write_record(out_path, result)
    plot(result, out_path.with_suffix(".png"))
    logger.info(f"wrote {out}")
    return result


if __name__ == "__main__":
    sys.exit(run_script(main))
