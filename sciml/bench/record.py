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
from sciml.errors import ConfigError, SciMLError

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


def output_path(out: str | Path | None, name: str, quick: bool) -> Path:
    """Where a benchmark script writes: ``out`` (its ``--out``) when given, else its recorded file.

    The default is ``solvers/results/<name>``, or ``solvers/results/quick/<name>`` with ``--quick`` (the
    folders ``python -m sciml.bench`` uses); ``name=""`` gives the folder itself, for scripts whose
    ``--out`` is a folder. A quick run never writes into the recorded results: ``--quick`` with an ``out``
    in ``solvers/results/`` itself (the folder, or a file directly in it) is a :class:`ConfigError`.
    """
    import sciml.bench  # at call time: the results folders are the package's current ones

    if out is None:
        folder = sciml.bench.QUICK_RESULTS if quick else sciml.bench.RESULTS
        return _relative_to_cwd(folder / name if name else folder)
    path = Path(out)
    if quick:
        recorded = sciml.bench.RESULTS.resolve()
        folder = path.resolve() if not name else path.resolve().parent
        if folder == recorded:
            raise ConfigError(
                f"--out {out}: --quick never writes into the recorded results {sciml.bench.RESULTS}; "
                f"expected a path outside it (default {sciml.bench.QUICK_RESULTS / name})"
            )
    return path


def run_script(main: Callable[[list[str] | None], object]) -> int:
    """Run a benchmark script's ``main`` on its command line; returns the exit code.

    A :class:`SciMLError` (bad options, e.g. ``--quick`` with an ``--out`` in the recorded results) ends in
    its one-line message and exit code 2, not in a traceback.
    """
    try:
        main(None)
    except SciMLError as err:
        logging.basicConfig(format="%(message)s")
        logger.error("error: %s", err)
        return 2
    return 0


def _relative_to_cwd(path: Path) -> Path:
    """``path`` relative to the working directory when below it (records name their files so)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


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
