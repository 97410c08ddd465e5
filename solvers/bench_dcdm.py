"""DCDM vs CG, IC-PCG and AMG on pressure Poisson systems of unseen obstacle scenes (issue 20).

Every solver runs to a relative residual ``||b - A x|| / ||b|| <= 1e-6`` from ``x = 0`` on the same systems:
tanks with obstacles (:func:`sciml.operators.poisson.make_scene`, seeds >= 100, none of them a training
scene) at the trained resolution (64^2) and at others (128^2 .. 512^2; 3-D 32^3 .. 64^3 for the baselines),
right-hand sides a smooth Gaussian random field (correlation length 1/32 of the tank, the hard case for CG:
most of its energy in the low modes). Solvers: CG, IC(0)-PCG, pyamg's smoothed aggregation as a solver
(V-cycles) and as CG's preconditioner, and DCDM with the zoo's trained network (or ``--model``).

Timings are per system: the solvers of one system run back to back in a rotating order, ``--rounds``
times, and each reports the median of its setup + solve seconds; ratios are taken within a system.

``OMP_NUM_THREADS=1 python solvers/bench_dcdm.py [--quick] [--model NAME|RUN_DIR] [--out JSON]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from sciml.bench.record import environment, output_path, run_script, save_figure, write_record
from sciml.bench.render import num, para, provenance, sci, table
from sciml.errors import ConfigError
from sciml.models.dcdm import DCDM
from sciml.operators.poisson import laplacian_matrix, make_scene, to_fluid
from sciml.solvers.dcdm import BASELINES, SolveResult, dcdm, solve

logger = logging.getLogger("bench_dcdm")

TOL = 1e-6
SOLVERS = (*BASELINES, "dcdm", "dcdm-10")
"""``dcdm``: the paper's iteration (2 previous directions); ``dcdm-10``: the same network, 10 previous."""
DEFAULT_MODEL = "dcdm_poisson64"
LARGE = 512
"""From this grid size on: one scene, and no ``dcdm-10``."""


def size_list(text: str) -> list[int]:
    """``"64,128"`` -> ``[64, 128]`` (``""``: none); grid sizes of at least 8."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(n < 8 for n in sizes):
        raise argparse.ArgumentTypeError(f"grid sizes must be >= 8, got {text!r}")
    return sizes


def load_network(spec: str | None) -> tuple[DCDM, str]:
    """The DCDM network: a zoo name, a run folder, or (``None``, quick mode) an untrained small one."""
    if spec is None:
        torch.manual_seed(0)
        return DCDM(2, channels=4, down_blocks=1, up_blocks=1).eval(), "untrained (quick mode)"
    if Path(spec).is_dir() and (Path(spec) / "checkpoints").is_dir():
        from sciml.train import restore_run

        model = restore_run(spec, "last").model.model
        return model.eval(), f"run {spec} (last checkpoint)"
    import sciml.zoo

    model = sciml.zoo.load(spec).operator.model
    if not isinstance(model, DCDM):
        raise ConfigError(f"--model {spec}: a {type(model).__name__}, expected a dcdm model")
    return model.eval(), f"zoo {spec}"


def right_hand_side(cells: np.ndarray, seed: int) -> np.ndarray:
    """A smooth Gaussian random field on the fluid cells (correlation length 1/32 of the tank), unit RMS."""
    noise = np.random.default_rng(seed).standard_normal(cells.shape)
    field = ndimage.gaussian_filter(noise, sigma=max(cells.shape) / 32)
    b = to_fluid(field, cells)
    return b / np.sqrt(np.mean(b**2))


def run_solver(
    name: str, A: Any, b: np.ndarray, network: DCDM | None, cells: np.ndarray, cap: int
) -> SolveResult:
    """One solve of ``A x = b`` by ``name`` (a baseline or ``dcdm``), timed."""
    if not name.startswith("dcdm"):
        return solve(name, A, b, tol=TOL, max_iterations=cap)
    assert network is not None
    started = time.perf_counter()
    direction = network.direction(cells)
    setup = time.perf_counter() - started
    n_previous = 10 if name == "dcdm-10" else 2
    result = dcdm(A, b, direction, tol=TOL, max_iterations=cap, n_previous=n_previous)
    result.setup_seconds = setup
    return result


def _seconds(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def bench_system(
    kind: str, shape: tuple[int, ...], seed: int, network: DCDM | None, rounds: int, dcdm_cap: int
) -> dict[str, Any]:
    """All solvers on one scene: iterations, convergence, median setup/solve seconds, residual history."""
    cells = make_scene(kind, shape, seed=seed)
    A = laplacian_matrix(cells)
    b = right_hand_side(cells, seed)
    solvers = [s for s in SOLVERS if not s.startswith("dcdm") or network is not None]
    if max(shape) >= LARGE:  # the network costs about 2 s an iteration there: the paper's variant only
        solvers = [s for s in solvers if s != "dcdm-10"]
    times: dict[str, list[float]] = {s: [] for s in solvers}
    results: dict[str, SolveResult] = {}
    for r in range(rounds):
        order = solvers[r % len(solvers) :] + solvers[: r % len(solvers)]
        for name in order:
            cap = dcdm_cap if name.startswith("dcdm") else 20000
            result = run_solver(name, A, b, network, cells, cap)
            times[name].append(result.setup_seconds + result.solve_seconds)
            results[name] = result
    row: dict[str, Any] = {"kind": kind, "seed": seed, "shape": list(shape), "unknowns": int(A.shape[0])}
    if network is not None:  # what one DCDM iteration pays for its direction, against one CG iteration
        direction, unit = network.direction(cells), b / np.linalg.norm(b)
        row["network_ms"] = 1e3 * statistics.median(_seconds(lambda: direction(unit)) for _ in range(3))
        row["matvec_ms"] = 1e3 * statistics.median(_seconds(lambda: A @ b) for _ in range(20))
    for name in solvers:
        res = results[name]
        row[name] = {
            "iterations": res.iterations,
            "converged": res.converged,
            "final_residual": res.residuals[-1],
            "setup_seconds": res.setup_seconds,
            "seconds": statistics.median(times[name]),
            "fallbacks": res.fallbacks,
            "residuals": [float(f"{v:.3e}") for v in res.residuals],
        }
        logger.info(
            "%s %s seed %d: %-7s %5d iterations%s, %.3f s",
            "x".join(map(str, shape)),
            kind,
            seed,
            name,
            res.iterations,
            "" if res.converged else " (not converged)",
            row[name]["seconds"],
        )
    return row


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per grid: mean iterations, whether all converged, and the mean time ratios to AMG-PCG and to CG."""
    summary = []
    for shape in dict.fromkeys(tuple(r["shape"]) for r in rows):
        group = [r for r in rows if tuple(r["shape"]) == shape]
        entry: dict[str, Any] = {
            "shape": list(shape),
            "systems": len(group),
            "unknowns": group[0]["unknowns"],
        }
        if "network_ms" in group[0]:
            entry["network_over_matvec"] = float(np.mean([r["network_ms"] / r["matvec_ms"] for r in group]))
        for name in SOLVERS:
            if name not in group[0]:
                continue
            entry[name] = {
                "iterations": float(np.mean([r[name]["iterations"] for r in group])),
                "converged": all(r[name]["converged"] for r in group),
                "seconds": float(np.mean([r[name]["seconds"] for r in group])),
                "time_over_amg_pcg": float(
                    np.mean([r[name]["seconds"] / r["amg-pcg"]["seconds"] for r in group])
                ),
                "time_over_cg": float(np.mean([r[name]["seconds"] / r["cg"]["seconds"] for r in group])),
            }
        summary.append(entry)
    return summary


def markdown(record: dict) -> str:
    """Iterations and wall-time ratios (to AMG-PCG) per grid and solver."""
    others = [s for s in SOLVERS if s != "amg-pcg"]
    header = ["grid", "scenes", "unknowns", *[f"{s} iters" for s in SOLVERS]]
    header += [f"{s} time / AMG-PCG" for s in others] + ["f(r) / A v"]
    rows = []
    for entry in record["summary"]:
        grid = "x".join(map(str, entry["shape"]))
        grid += " (trained)" if entry["shape"] == record["trained_shape"] else ""

        def iters(name: str, entry: dict = entry) -> str:
            if name not in entry:
                return "-"
            value = f"{entry[name]['iterations']:.0f}"
            if entry[name]["converged"]:
                return value
            rows_here = [r for r in record["rows"] if r["shape"] == entry["shape"]]
            worst = max(r[name]["final_residual"] for r in rows_here)
            return f"{value} (cap; residual {sci(worst)})"

        def ratio(name: str, entry: dict = entry) -> str:
            return num(entry[name]["time_over_amg_pcg"]) if name in entry else "-"

        counts = [grid, str(entry["systems"]), str(entry["unknowns"])]
        cost = num(entry.get("network_over_matvec"), 0)
        rows.append([*counts, *[iters(s) for s in SOLVERS], *[ratio(s) for s in others], cost])
    scenes = ", ".join(f"{kind} seed {seed}" for kind, seed in record["scenes"])
    text = (
        f"Relative residual {record['tol']:g} from x = 0 on up to {record['systems_per_grid']} unseen "
        f"scenes per grid ({scenes}; the scenes column says how many), smooth random right-hand sides; "
        f"DCDM network: {record['network']}, trained on {record['trained_shape'][0]}^2 tanks. Iterations "
        f"are means over the scenes; times are setup + solve, median of {record['rounds']} rotating "
        "round(s), as ratios to AMG-PCG's on the same system (mean over the scenes); the absolute seconds "
        "and every residual history are in the JSON record; unknowns: those of the first scene. DCDM "
        f"iteration cap: {record['dcdm_cap']}; `dcdm-10`: the same network, each direction A-orthogonalized "
        f"against 10 previous ones instead of the paper's 2 (below {LARGE}^2). Last column: the cost of one "
        "network direction over that of one sparse matrix-vector product (CG's main cost per iteration)."
    )
    loose = para(
        "Iterations to looser tolerances, read off the same residual histories (first iteration at or below "
        "the tolerance; mean over the scenes; `>N`: not reached within the N iterations run):"
    )
    return "\n".join(
        [provenance(record), "", para(text), "", table(header, rows), "", loose, "", loose_table(record)]
    )


LOOSE = (1e-2, 1e-4)
"""The looser tolerances of the second table."""


def first_below(residuals: list[float], tol: float) -> int | None:
    """The first iteration whose relative residual is ``<= tol`` (``None``: never)."""
    return next((k for k, value in enumerate(residuals) if value <= tol), None)


def loose_table(record: dict) -> str:
    """Iterations to each of :data:`LOOSE` per grid and solver, from the residual histories."""
    header = ["grid", *[f"{s} to {t:.0e}".replace("e-0", "e-") for t in LOOSE for s in SOLVERS]]
    rows = []
    for entry in record["summary"]:
        group = [r for r in record["rows"] if r["shape"] == entry["shape"]]
        cells = ["x".join(map(str, entry["shape"]))]
        for tol in LOOSE:
            for name in SOLVERS:
                if name not in group[0]:
                    cells.append("-")
                    continue
                hits = [first_below(r[name]["residuals"], tol) for r in group]
                if any(h is None for h in hits):
                    cells.append(f">{max(r[name]['iterations'] for r in group)}")
                else:
                    cells.append(f"{np.mean([h for h in hits if h is not None]):.0f}")
        rows.append(cells)
    return table(header, rows)


def plot(record: dict, path: str | Path) -> Path:
    """Iterations vs unknowns per solver, and the residual histories on the largest 2-D grid."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    two_d = [e for e in record["summary"] if len(e["shape"]) == 2]
    for name in SOLVERS:
        done = [(e["unknowns"], e[name]["iterations"]) for e in two_d if name in e and e[name]["converged"]]
        capped = [
            (e["unknowns"], e[name]["iterations"]) for e in two_d if name in e and not e[name]["converged"]
        ]
        if done:
            line = left.plot(*zip(*done, strict=True), "o-", label=name)[0]
        if capped:  # the cap, not an iteration count: drawn apart so that it never reads as a flat curve
            color = line.get_color() if done else None
            left.plot(
                *zip(*capped, strict=True), "x", ms=9, color=color, label=f"{name}: not converged at cap"
            )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("unknowns (2-D grids 64^2 ..)")
    left.set_ylabel(f"iterations to {record['tol']:g}")
    left.set_title("iterations vs grid size (unseen scenes)")
    left.legend(fontsize=8)
    largest = max((r for r in record["rows"] if len(r["shape"]) == 2), key=lambda r: r["unknowns"])
    for name in SOLVERS:
        if name in largest:
            right.semilogy(largest[name]["residuals"], label=name)
    right.set_xscale("symlog", linthresh=10)
    right.set_xlabel("iteration")
    right.set_ylabel("||b - A x|| / ||b||")
    right.set_title(f"residual histories, {'x'.join(map(str, largest['shape']))} {largest['kind']}")
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, write the JSON record and the PNG; returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=None, help=f"zoo name or run folder (default {DEFAULT_MODEL})")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--dcdm-cap", type=int, default=None, help="DCDM iteration cap")
    parser.add_argument(
        "--sizes", type=size_list, default=None, help="comma-separated 2-D sizes (default 64,128,256,512)"
    )
    parser.add_argument(
        "--sizes-3d",
        type=size_list,
        default=None,
        help="comma-separated 3-D sizes, baselines (32,64; '' none)",
    )
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/dcdm.json)")
    args = parser.parse_args(argv)
    out_path = output_path(args.out, "dcdm.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    network, network_name = load_network(args.model or (None if args.quick else DEFAULT_MODEL))
    if args.quick:
        sizes, sizes_3d, scenes, rounds, cap = [16, 24], [8], [("boxes", 101)], args.rounds or 1, 40
    else:
        sizes, sizes_3d = [64, 128, 256, 512], [32, 64]
        scenes, rounds, cap = [("boxes", 101), ("blobs", 102)], args.rounds or 1, 200
    sizes = args.sizes or sizes
    sizes_3d = sizes_3d if args.sizes_3d is None else args.sizes_3d
    cap = args.dcdm_cap or cap
    # the largest grid on the first scene only (DCDM's network costs about 2 s an iteration there)
    rows = [
        bench_system(k, (n, n), s, network, rounds, cap)
        for n in sizes
        for k, s in (scenes if n < LARGE else scenes[:1])
    ]
    rows += [bench_system(k, (n, n, n), s, None, rounds, cap) for n in sizes_3d for k, s in scenes[:1]]
    record = {
        "benchmark": "dcdm_vs_cg_ic_amg",
        "tol": TOL,
        "network": network_name,
        "trained_shape": [64, 64],
        "scenes": scenes,
        "systems_per_grid": len(scenes),
        "rounds": rounds,
        "dcdm_cap": cap,
        "summary": summarize(rows),
        "rows": rows,
        **environment("cpu"),
        "command": "OMP_NUM_THREADS=1 python solvers/bench_dcdm.py"
        + (" --quick" if args.quick else "")
        + (f" --model {args.model}" if args.model else ""),
    }
    out = write_record(out_path, record)
    plot(record, out_path.with_suffix(".png"))
    logger.info("wrote %s", out)
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
