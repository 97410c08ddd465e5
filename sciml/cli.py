"""The ``sciml`` command: one entry point for the ``python -m sciml.<command>`` tools.

``sciml train | evaluate | zoo | bench | datasets | reproduce ARGS...`` hands ``ARGS`` to that command's
``main(argv)``; ``sciml --version`` and ``sciml --help`` answer without importing torch (a command's module is
imported only when it runs).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    """A subcommand: the module whose ``main(argv) -> int`` runs it, and one line of help."""

    module: str
    summary: str


COMMANDS: dict[str, Command] = {
    "train": Command("sciml.train", "train a run config (a YAML file or a shipped name, e.g. quickstart)"),
    "evaluate": Command("sciml.evaluate", "evaluate a finished run folder or a zoo model (zoo:NAME)"),
    "zoo": Command("sciml.zoo.__main__", "list, build, export and verify the pretrained models"),
    "bench": Command("sciml.bench.__main__", "list, run and render the benchmarks (BENCHMARKS.md)"),
    "datasets": Command(
        "sciml.datasets.__main__",
        "generate a dataset from a recipe (e.g. ns_quick); inspect, download a file",
    ),
    "reproduce": Command(
        "sciml.reproduce.__main__", "reproduce a paper's comparison at smoke, cpu or paper scale"
    ),
}


def version() -> str:
    """The installed distribution's version, else the package's ``__version__`` (a bare checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("sciml")
    except PackageNotFoundError:
        import sciml

        return sciml.__version__


def help_text() -> str:
    """The text of ``sciml --help``."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: sciml COMMAND [ARGS...]",
        "       sciml --version | --help",
        "",
        "Scientific machine learning on fluid flows. Commands:",
        "",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
        "",
        "sciml COMMAND --help shows the command's arguments; each command is also python -m sciml.COMMAND.",
    ]
    return "\n".join(lines)


_invoked_as: str | None = None


def program(default: str) -> str:
    """The name a command's usage line shows: ``sciml train`` when run through the ``sciml`` command, else
    ``default`` (``python -m sciml.train``)."""
    return _invoked_as or default


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sciml ARGS``; returns the exit code (2 for an unknown command, else the command's own)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(help_text(), file=sys.stderr)
        return 2
    first, rest = args[0], args[1:]
    if first in ("-h", "--help", "help"):
        print(help_text())
        return 0
    if first in ("-V", "--version"):
        print(f"sciml {version()}")
        return 0
    if first not in COMMANDS:
        close = difflib.get_close_matches(first, COMMANDS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(COMMANDS)}"
        print(f"sciml: unknown command {first!r}; {hint} (see sciml --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[first].module)
    global _invoked_as
    _invoked_as = f"sciml {first}"
    try:
        return int(module.main(rest) or 0)
    except BrokenPipeError:  # the reader of the output left early (``sciml zoo list | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    finally:
        _invoked_as = None
