"""Exception types raised by sciml.

Every error a user can trigger with bad input is one of these, so ``except sciml.SciMLError`` catches them
all; each also derives from the built-in type a Python user would expect (``ValueError`` for bad values).
"""

from __future__ import annotations

from os import PathLike
from typing import Any


class SciMLError(Exception):
    """Base class of every error raised by sciml on bad input or bad state."""


class DataFormatError(SciMLError, ValueError):
    """A data file is unreadable, truncated, of an unknown format, or holds unexpected keys/shapes/values.

    The message always names the file, and where known the key, what was expected and what was found.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        problem: str,
        *,
        key: str | None = None,
        expected: Any = None,
        found: Any = None,
    ) -> None:
        self.path = str(path)
        self.key = key
        self.expected = expected
        self.found = found
        message = f"{self.path}"
        if key is not None:
            message += f" [key {key!r}]"
        message += f": {problem}"
        if expected is not None:
            message += f"; expected {expected}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)


class ConfigError(SciMLError, ValueError):
    """A configuration (YAML file, recipe, override or constructor argument) is invalid."""


class SolverError(SciMLError, RuntimeError):
    """A solver was given an invalid problem or diverged."""


class CollectiveTimeoutError(SciMLError, RuntimeError):
    """A distributed collective did not complete in time: another rank stalled, died or hangs."""
