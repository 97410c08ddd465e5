"""A Griffe extension for the API pages: the reST markup of sciml's docstrings rewritten as Markdown.

sciml's docstrings are Google style with reST roles and directives inside. mkdocstrings renders docstrings
as Markdown, where ``:class:`~a.B``` would show its role and ``.. math::`` would be a plain paragraph whose
backslashes Markdown eats. Before the docstrings are parsed, this rewrites

* ``:math:`x``` to ``\\(x\\)`` and a ``.. math::`` block to ``\\[ ... \\]`` (pymdownx.arithmatex, MathJax);
* ``:class:``, ``:func:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:`` to inline
  code (``~a.b.C`` shows ``C``, as in Sphinx);
* a paragraph ending in ``::`` (a reST literal block follows) to one ending in ``:``;
* a bullet that directly follows text gets a blank line before it (Markdown starts no list inside a
  paragraph).

Loaded by mkdocs.yml (``extensions`` of the mkdocstrings python handler); nothing in sciml imports it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

MATH_ROLE = re.compile(r":math:`([^`]+)`")
REFERENCE_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")
LITERAL_MARKER = re.compile(r"(?<=\S)::$")
BULLET = re.compile(r"^ {0,2}[*-] ")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(lines: list[str]) -> list[str]:
    """Each ``.. math::`` directive (its first line and the more indented lines after it) as ``\\[ \\]``."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = MATH_DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        body = [match["first"].strip()] if match["first"].strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            if not lines[i].strip() and (i + 1 >= len(lines) or _indent(lines[i + 1]) <= len(indent)):
                break  # a blank line before text at the directive's indent ends the block
            body.append(lines[i].strip())
            i += 1
        # Markdown continues a list item only at 4 spaces: a block at reST's 2 moves out to the margin
        indent = indent if len(indent) >= 4 else ""
        out.extend(["", f"{indent}\\[", *(f"{indent}{line}" for line in body if line), f"{indent}\\]", ""])
    return out


def _lists_after_paragraphs(lines: list[str]) -> list[str]:
    """A blank line before each bullet that directly follows text: Markdown starts no list in a paragraph."""
    out: list[str] = []
    for line in lines:
        previous = out[-1] if out else ""
        if BULLET.match(line) and previous.strip() and not BULLET.match(previous) and _indent(previous) < 4:
            out.append("")
        out.append(line)
    return out


def _reference(match: re.Match[str]) -> str:
    target = match[2]
    return f"`{target.rsplit('.', 1)[-1] if match[1] else target}`"


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with its reST roles, math and literal-block markers in Markdown."""
    text = "\n".join(_lists_after_paragraphs(_math_blocks(text.splitlines())))
    text = MATH_ROLE.sub(lambda m: f"\\({m[1]}\\)", text)
    text = REFERENCE_ROLE.sub(_reference, text)
    lines = []
    for line in text.splitlines():
        if line.strip() == "::":
            continue
        lines.append(LITERAL_MARKER.sub(":", line))
    return "\n".join(lines)


class ReSTDocstrings(griffe.Extension):
    """Rewrites every docstring Griffe loads with :func:`rst_to_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
