"""What every benchmark record carries and how it is written: the environment, the JSON, the PNG.

Records and figures are written to a unique temporary name in the target folder and renamed into place,
so a reader never sees half a file. Figures are drawn on a :class:`matplotlib.figure.Figure` (no
``pyplot``): drawing never changes the matplotlib backend or the global figure state of the caller.
"""

from __future__ import annotations

import datetime
import json
import logging
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sciml.atomic import write_atomically, write_text_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def environment(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Machine, processor, device name, CPU threads, torch and numpy versions and the UTC date."""
    device = torch.device(device)
    return {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON to ``path`` (atomically)."""
    return write_text_atomically(path, json.dumps(record, indent=2))


def save_figure(fig: Figure, path: str | Path, **savefig: Any) -> Path:
    """Save ``fig`` to ``path`` (atomically; the format from the suffix) with ``Figure.savefig`` options."""
    path = Path(path)
    savefig.setdefault("format", path.suffix.lstrip(".") or None)
    return write_atomically(path, lambda fh: fig.savefig(fh, **savefig))


def write_record_and_plot(
    path: str | Path, record: dict[str, Any], plot: Callable[[dict[str, Any], Path], object]
) -> Path:
    """Draw ``plot(record, <path>.png)``, then write ``record`` as JSON to ``path``."""
    path = Path(path)
    plot(record, path.with_suffix(".png"))
    write_record(path, record)
    logger.info("wrote %s and %s", path, path.with_suffix(".png"))
    return path


def bar_chart(
    path: str | Path,
    labels: list[str],
    values: list[float],
    title: str,
    ylabel: str,
    reference: float | None = None,
) -> Path:
    """A bar chart of one measured quantity per label, with an optional horizontal reference line (PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 0.9 * len(labels) + 2), 3.5))
    ax = fig.subplots()
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)), labels, rotation=20, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="tab:red", linestyle="--", linewidth=1, label=f"reference {reference:g}")
        ax.legend(fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
