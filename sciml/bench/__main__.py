"""Command line: ``python -m sciml.bench {all,render,list}``.

``all [--quick] [--only NAME,...]``: run the benchmark scripts of ``solvers/``, then re-render the document.
``render [--check]``: re-render the document from the JSON records only (``--check``: exit 1 on drift).
``list``: the registered scripts and their records. Defaults: full mode reads and writes
``solvers/results/`` and ``BENCHMARKS.md``; ``--quick`` uses ``solvers/results/quick/`` and its own
``BENCHMARKS.md`` there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sciml.bench import BENCHMARKS, DOCUMENT, QUICK_RESULTS, RESULTS, render, run_all, select
from sciml.cli import program
from sciml.errors import SciMLError

logger = logging.getLogger("sciml.bench")


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    results = Path(args.results) if args.results else (QUICK_RESULTS if args.quick else RESULTS)
    if args.doc:
        doc = Path(args.doc)
    elif args.quick or args.results:
        doc = results / "BENCHMARKS.md"
    else:
        doc = DOCUMENT
    return results, doc


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog=program("python -m sciml.bench"), description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("all", "run the benchmark scripts, then re-render the document"),
        ("render", "re-render the document from the JSON records"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "--quick", action="store_true", help="quick mode: solvers/results/quick/ and its document"
        )
        p.add_argument("--results", help="folder of the JSON records (default solvers/results[/quick])")
        p.add_argument("--doc", help="document to render (default BENCHMARKS.md, or the results folder's)")
        if name == "all":
            p.add_argument("--only", help="comma-separated script names (default: all registered)")
        else:
            p.add_argument(
                "--check", action="store_true", help="write nothing; exit 1 if the document drifted"
            )
    sub.add_parser("list", help="the registered scripts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        if args.command == "list":
            for bench in BENCHMARKS:
                state = "" if bench.script.exists() else "  (script missing)"
                print(f"{bench.name:<24} {bench.json:<24} {bench.title}{state}")
            return 0
        results, doc = _paths(args)
        if args.command == "render":
            return render(doc, results, quick=args.quick, check=args.check)
        outcome = run_all(select(args.only), results, args.quick)
        code = render(doc, results, quick=args.quick)
        if outcome["failed"]:
            for name, why in outcome["failed"].items():
                logger.error("FAILED %s: %s", name, why)
            return 1
        return code
    except SciMLError as err:
        logger.error("error: %s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
