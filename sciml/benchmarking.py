"""What every benchmark record carries: the environment it was measured in, written atomically as JSON."""

from __future__ import annotations

import datetime
import json
import logging
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
    """Write ``record`` as indented JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)
    return path


def write_record_and_plot(
    path: str | Path, record: dict[str, Any], plot: Callable[[dict[str, Any], Path], object]
) -> Path:
    """Draw ``plot(record, <path>.png)``, then write ``record`` as JSON to ``path`` (both atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 2), 3.5))
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)), labels, rotation=20, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="tab:red", linestyle="--", linewidth=1, label=f"reference {reference:g}")
        ax.legend(fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
