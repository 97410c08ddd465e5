"""Streaming, atomic writers of trajectory files.

A writer is created with the full shape of what it will hold, receives trajectories in batches
(``write(start, vorticity, velocity)``), and only on a clean ``close()`` renames its temporary file to the
final name. Leaving the ``with`` block by an exception deletes the temporary file, so an interrupted
generation never leaves a file that looks finished.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any

import numpy as np

from sciml.errors import DataFormatError


def close_hdf5(handle: Any) -> None:
    """Flush (when still open) and close an h5py file; ``None`` is ignored."""
    if handle is None:
        return
    try:
        if handle.id.valid:
            handle.flush()
    finally:
        handle.close()


def temporary_path(path: Path) -> Path:
    """The name a file is written under until it is complete."""
    return path.with_name(f".{path.name}.partial")


class TrajectoryWriter(abc.ABC):
    """Base of the atomic batch writers.

    Args:
        path: final file name.
        n_trajectories: number of trajectories the file will hold.
        times: time stamps of the frames, shape ``(T,)`` (``times[0]`` is the initial state).
        grid_shape: ``(X, Y)``.
        domain_lengths: box lengths ``(Lx, Ly)``; the grid is ``x_i = i * Lx / X`` (periodic).
        viscosity: kinematic viscosity.
        attributes: further metadata (e.g. ``{"recipe": yaml_text, "forcing": "fno"}``) stored in the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_trajectories: int,
        times: np.ndarray,
        grid_shape: tuple[int, int],
        domain_lengths: tuple[float, float],
        viscosity: float,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.tmp_path = temporary_path(self.path)
        self.n_trajectories = int(n_trajectories)
        self.times = np.asarray(times, dtype=np.float64)
        self.grid_shape = tuple(int(n) for n in grid_shape)
        self.domain_lengths = tuple(float(length) for length in domain_lengths)
        self.viscosity = float(viscosity)
        self.attributes = dict(attributes or {})
        self.written = np.zeros(self.n_trajectories, dtype=bool)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp_path.exists():
            self.tmp_path.unlink()
        try:
            self._create()
        except BaseException:
            self.tmp_path.unlink(missing_ok=True)
            raise

    @abc.abstractmethod
    def _create(self) -> None:
        """Create ``self.tmp_path`` with every dataset allocated."""

    @abc.abstractmethod
    def _write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        """Store trajectories ``start : start + len(vorticity)``."""

    @abc.abstractmethod
    def _flush_and_close(self) -> None:
        """Flush and close the temporary file."""

    def write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        """Store a batch: vorticity ``[b, T, X, Y]`` and velocity ``[b, T, X, Y, 2]``."""
        b = vorticity.shape[0]
        expected_w = (b, len(self.times), *self.grid_shape)
        if vorticity.shape != expected_w or velocity.shape != (*expected_w, 2):
            raise DataFormatError(
                self.tmp_path,
                "batch of the wrong shape",
                expected=f"vorticity {expected_w} and velocity {(*expected_w, 2)}",
                found=f"{vorticity.shape} and {velocity.shape}",
            )
        if start < 0 or start + b > self.n_trajectories:
            raise DataFormatError(
                self.tmp_path, "batch outside the file", expected=f"<= {self.n_trajectories}", found=start + b
            )
        self._write(start, vorticity, velocity)
        self.written[start : start + b] = True

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns that name."""
        self._flush_and_close()
        if not self.written.all():
            missing = int((~self.written).sum())
            self.abort()
            raise DataFormatError(self.path, f"{missing} trajectories were never written; file discarded")
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Discard the temporary file."""
        try:
            self._flush_and_close()
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
