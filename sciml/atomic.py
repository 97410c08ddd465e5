"""Atomic file writes: readers see the previous file or the complete new one, never a part.

One mechanism for every file the package publishes (checkpoints, run logs, zoo configs and manifests,
benchmark records and figures): write under a unique temporary name beside the target, fsync, then one
``os.replace``. The temporary name is ``.<name>.<pid>.<random>.tmp``, so a killed writer's leftover is
recognizable (:func:`sciml.training.checkpoint.remove_stray_temporaries`) and two writers never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Create ``path`` with ``write(file)``: a unique temporary name, fsync, then one ``os.replace``.

    Readers see the previous file or the complete new one, never a part; a write that fails removes its
    temporary file (a killed process leaves it, for
    :func:`sciml.training.checkpoint.remove_stray_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """:func:`write_atomically` for UTF-8 text."""
    return write_atomically(path, lambda fh: fh.write(text.encode("utf-8")))
