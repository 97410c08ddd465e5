"""Generated blocks of a markdown document: ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``.

Everything between a pair of markers is owned by the benchmark ``NAME`` and is rewritten from its JSON
record by that script's ``markdown(record)``; everything outside the markers (the narrative) is kept
verbatim. Helpers here format what every block starts with: the command that reproduces it and where
and when it was measured.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sciml.errors import ConfigError

MARKER = re.compile(r"<!--\s*(/?)bench:([A-Za-z0-9_.\-]+)\s*-->")


@dataclass(frozen=True)
class Block:
    """One generated block: its name and the character span of its content (between the markers)."""

    name: str
    open_start: int
    content_start: int
    content_end: int
    close_end: int


def find_blocks(text: str, known: Collection[str] | None = None) -> list[Block]:
    """The generated blocks of ``text``, in order.

    Raises :class:`~sciml.errors.ConfigError` on an unbalanced marker (an opening without its closing one,
    a closing one without an opening, nested or crossed markers), on a block that appears twice, and on a
    name that is not in ``known`` (when given). Messages give the line number.
    """
    blocks: list[Block] = []
    open_match: re.Match[str] | None = None
    seen: set[str] = set()
    for match in MARKER.finditer(text):
        closing, name = match.group(1) == "/", match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if known is not None and name not in known:
            raise ConfigError(
                f"line {line}: unknown benchmark marker {match.group(0)!r}; known: {', '.join(sorted(known))}"
            )
        if not closing:
            if open_match is not None:
                raise ConfigError(
                    f"line {line}: marker {match.group(0)!r} opens inside the unclosed block "
                    f"'bench:{open_match.group(2)}'"
                )
            if name in seen:
                raise ConfigError(f"line {line}: block 'bench:{name}' appears twice")
            open_match = match
            continue
        if open_match is None:
            raise ConfigError(f"line {line}: closing marker {match.group(0)!r} without an opening one")
        if open_match.group(2) != name:
            raise ConfigError(
                f"line {line}: closing marker {match.group(0)!r} does not match the open block "
                f"'bench:{open_match.group(2)}'"
            )
        blocks.append(Block(name, open_match.start(), open_match.end(), match.start(), match.end()))
        seen.add(name)
        open_match = None
    if open_match is not None:
        line = text.count("\n", 0, open_match.start()) + 1
        raise ConfigError(f"line {line}: marker {open_match.group(0)!r} is never closed")
    return blocks


def wrap(name: str, content: str) -> str:
    """``content`` between the opening and closing markers of ``name`` (one newline inside each end)."""
    return f"<!-- bench:{name} -->\n{content.strip(chr(10))}\n<!-- /bench:{name} -->"


def replace_blocks(text: str, contents: Mapping[str, str], known: Collection[str] | None = None) -> str:
    """``text`` with the content of every block named in ``contents`` replaced; the rest is kept verbatim.

    Blocks not in ``contents`` are left as they are. Marker errors raise
    :class:`~sciml.errors.ConfigError` (see :func:`find_blocks`).
    """
    pieces, cursor = [], 0
    for block in find_blocks(text, known):
        if block.name not in contents:
            continue
        pieces.append(text[cursor : block.open_start])
        pieces.append(wrap(block.name, contents[block.name]))
        cursor = block.close_end
    pieces.append(text[cursor:])
    return "".join(pieces)


def append_section(text: str, name: str, title: str, content: str) -> str:
    """``text`` with a new ``## title`` section holding the block ``name`` at its end."""
    return f"{text.rstrip(chr(10))}\n\n## {title}\n\n{wrap(name, content)}\n"


# ------------------------------------------------------------------ formatting helpers for markdown(record)
def day(record: Mapping[str, Any]) -> str:
    """The UTC date of a record (``YYYY-MM-DD``), ``?`` when missing."""
    return str(record.get("date", "?"))[:10]


def provenance(record: Mapping[str, Any], json_name: str | None = None) -> str:
    """The first line of a block: the command in backticks, then date, device, threads, torch and machine.

    Example: ```python solvers/bench_t1.py` (2026-11-23; cpu, 2 threads; torch 2.13.0+cpu;
    Linux-6.18-x86_64)``. ``json_name`` (e.g. ``t1.json``) is added as where the raw numbers are.
    """
    parts = [day(record)]
    device = record.get("device")
    threads = record.get("threads")
    if device is not None:
        plural = "" if threads == 1 else "s"
        parts.append(f"{device}, {threads} thread{plural}" if threads is not None else str(device))
    if record.get("torch"):
        parts.append(f"torch {record['torch']}")
    if record.get("machine"):
        parts.append(str(record["machine"]))
    line = f"`{record.get('command', '?')}` ({'; '.join(parts)})"
    if json_name:
        line += f", raw numbers in `{json_name}`"
    return line


def para(text: str, width: int = 110) -> str:
    """A prose paragraph wrapped at ``width`` columns (words and inline code are never split)."""
    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def num(value: Any, digits: int = 2, bold: bool = False) -> str:
    """A float with ``digits`` decimals (``-`` for None or NaN), in bold when asked."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{digits}f}"
    return f"**{text}**" if bold else text


def sci(value: Any, digits: int = 1) -> str:
    """A float in scientific notation (``1.2e-03``), ``-`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}e}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def met(flag: bool | None) -> str:
    """``**met**`` / ``**not met**`` (``-`` when undecided)."""
    if flag is None:
        return "-"
    return "**met**" if flag else "**not met**"
