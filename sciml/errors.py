"""Exception types raised by sciml.

Every error a user can trigger with bad input is one of these, so ``except sciml.SciMLError`` catches them
all; each also derives from the built-in type a Python user would expect (``ValueError`` for bad values).
"""

from __future__ import annotations

from os import PathLike
from typing import Any


class SciMLError(Exception):
    """Base class of every error raised by sciml on bad input or bad state."""


def _original_message(message: str) -> str:
    """The error's own line from a message that a DataLoader worker wrapped with its traceback."""
    if "\nOriginal Traceback" not in message:
        return message
    last = message.rstrip().splitlines()[-1]
    name, _, text = last.partition(": ")
    return text if text and "Error" in name else last


class DataFormatError(SciMLError, ValueError):
    """A data file is unreadable, truncated, of an unknown format, or holds unexpected keys/shapes/values.

    The message always names the file, and where known the key, what was expected and what was found.
    ``DataFormatError(message)`` with one argument rebuilds an error from its finished message (as pickle
    and torch's DataLoader workers do), so the error crosses process boundaries unchanged.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        problem: str | None = None,
        *,
        key: str | None = None,
        expected: Any = None,
        found: Any = None,
    ) -> None:
        self.path = str(path)
        self.key = key
        self.expected = expected
        self.found = found
        if problem is None:  # rebuilt from a finished message
            super().__init__(_original_message(self.path))
            return
        message = f"{self.path}"
        if key is not None:
            message += f" [key {key!r}]"
        message += f": {problem}"
        if expected is not None:
            message += f"; expected {expected}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)

    def __reduce__(self) -> tuple:
        """Pickle as the finished message plus the attributes (path, key, expected, found)."""
        return (self.__class__, (str(self),), dict(self.__dict__))


class ConfigError(SciMLError, ValueError):
    """A configuration (YAML file, recipe, override or constructor argument) is invalid."""


class SolverError(SciMLError, RuntimeError):
    """A solver was given an invalid problem or diverged."""


class CollectiveTimeoutError(SciMLError, RuntimeError):
    """A distributed collective did not complete in time: another rank stalled, died or hangs."""


class ExportError(SciMLError, RuntimeError):
    """A model cannot be exported to the format asked for, or its export does not reproduce the model."""
