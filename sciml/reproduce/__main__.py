"""``python -m sciml.reproduce PAPER --scale {smoke,cpu,paper} [--seeds N] [--work DIR] [--out JSON]``.

Trains the paper's comparison at the scale, then writes the record (``--out``, default
``runs/reproduce/<paper>/<scale>/<paper>_<scale>.json``) with the table (``.md``) and the learning curves
(``.png``) beside it; runs are kept in ``--work`` and reused, so an interrupted reproduction continues.
``--fresh`` removes the work folder first; ``--quick`` is ``--scale smoke``; ``--zoo [FOLDER]`` exports the
first seed of every side to the zoo (or to FOLDER) as ``<paper>_<side>_<scale>`` (``--zoo-sides`` picks sides,
``--zoo-dtype float16`` halves the files of real weights; the card gives the error change). ``--width-factor
F`` multiplies every side's widths by F instead of the scale's factor (its own ``--work``); ``--trajectories
N`` generates N trajectories instead of the scale's (its own ``--work`` too). ``--only-seeds 2``
(or ``0,2``) runs those seeds instead of the scale's, so that seeds can train in parallel processes sharing
one ``--work`` (e.g. one a core, ``OMP_NUM_THREADS=1``); a last call without it reuses every finished run and
writes the whole record. ``python -m sciml.reproduce list`` names the papers. Runs of one side live in
``WORK/<side>/seed<k>/`` (spaces in a side's name become underscores).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
from pathlib import Path

from sciml.cli import program
from sciml.errors import SciMLError
from sciml.reproduce.papers import PAPERS
from sciml.reproduce.protocol import SCALES
from sciml.reproduce.runner import markdown, reproduce

__all__ = ["main", "markdown"]  # the benchmark registry renders the records with ``markdown``

logger = logging.getLogger("sciml.reproduce")


def _seed_list(text: str) -> list[int]:
    """``"0,2"`` -> ``[0, 2]`` (argparse reports text that is no list of integers; :func:`reproduce` checks
    the seeds themselves)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 0,2") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.reproduce"), description=__doc__.split("\n")[0]
    )
    parser.add_argument("paper", choices=[*PAPERS, "list"], help="the paper's comparison, or 'list'")
    parser.add_argument("--scale", choices=SCALES, default="smoke", help="smoke (seconds), cpu, paper")
    parser.add_argument("--quick", action="store_true", help="the smoke scale (as every benchmark's --quick)")
    parser.add_argument("--seeds", type=int, help="only the first N seeds of the scale")
    parser.add_argument(
        "--only-seeds",
        type=_seed_list,
        help="comma-separated seeds to run instead of the scale's (parallel shards of one --work)",
    )
    parser.add_argument("--work", help="folder of the runs (default runs/reproduce/<paper>/<scale>)")
    parser.add_argument("--out", help="the JSON record (table .md and figure .png beside it)")
    parser.add_argument("--fresh", action="store_true", help="remove the work folder first")
    parser.add_argument(
        "--zoo",
        nargs="?",
        const="",
        help="export the first seed of every side to the zoo (or to this folder)",
    )
    parser.add_argument(
        "--zoo-dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="storage precision of the exported real weights (the card gives the error change)",
    )
    parser.add_argument(
        "--zoo-sides", help="comma-separated side labels to export (default every side), e.g. 'LSM'"
    )
    parser.add_argument(
        "--width-factor",
        type=float,
        help="every side's widths x this instead of the scale's factor (1: the papers' widths)",
    )
    parser.add_argument(
        "--trajectories",
        type=int,
        help="trajectories in the data recipe instead of the scale's, for every side (its own --work)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    if args.quick:
        args.scale = "smoke"
    if args.seeds is not None and args.only_seeds is not None:
        parser.error("--seeds (the first N of the scale's) and --only-seeds (these seeds) exclude each other")
    if args.paper == "list":
        for paper in PAPERS.values():
            print(f"{paper.name:10s} {paper.title}  (scales: {', '.join(paper.scales)})")
        return 0
    work = Path(args.work or Path("runs") / "reproduce" / args.paper / args.scale)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    command = "python -m sciml.reproduce " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        zoo = None
        if args.zoo is not None:
            from sciml.zoo.hub import zoo_root

            zoo = Path(args.zoo) if args.zoo else zoo_root()
        record = reproduce(
            PAPERS[args.paper],
            args.scale,
            work,
            Path(args.out) if args.out else None,
            args.only_seeds if args.only_seeds is not None else args.seeds,
            command,
            zoo,
            zoo_dtype=args.zoo_dtype,
            zoo_sides=[s.strip() for s in args.zoo_sides.split(",")] if args.zoo_sides else None,
            width_factor=args.width_factor,
            trajectories=args.trajectories,
        )
    except SciMLError as err:
        logger.error("%s", err)
        return 2
    for claim in record["claims"]:
        verdict = {True: "met", False: "not met", None: "undecided"}[claim["met"]]
        logger.info("%s: %s (%s)", claim["claim"], verdict, claim["ours"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
