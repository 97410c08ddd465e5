"""Streaming, atomic writers of trajectory files, and the lock that serializes writers of one output.

A writer is created with the full shape of what it will hold, receives trajectories in batches
(``write(start, vorticity, velocity)``), and only on a clean ``close()`` renames its temporary file to the
final name. Leaving the ``with`` block by an exception deletes the temporary file, so an interrupted
generation never leaves a file that looks finished.

Every writer has its own temporary name (``.<name>.<host>-<pid>-<random>.partial`` next to the
output), so two writers of one output never touch each other's file: each publishes a complete file by
an atomic rename and the last to finish wins. :func:`output_lock` lets processes take turns instead, so
that the second one can find the first one's file and use it rather than compute it again.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import glob
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sciml.errors import DataFormatError

try:
    import fcntl
except ImportError:  # not POSIX: writers still never clash, but processes do not take turns
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: ``flock`` errors meaning "this file system cannot lock" (not "someone else holds the lock").
_NO_LOCKING = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


def close_hdf5(handle: Any) -> None:
    """Flush (when still open) and close an h5py file; ``None`` is ignored."""
    if handle is None:
        return
    try:
        if handle.id.valid:
            handle.flush()
    finally:
        handle.close()


def _host() -> str:
    """This machine's name as it appears in temporary names (keeps pids of hosts sharing a folder apart)."""
    return re.sub(r"\W", "_", socket.gethostname()) or "host"


def temporary_path(path: Path) -> Path:
    """A fresh name, unique to this writer, that ``path`` is written under until it is complete.

    ``.<name>.<host>-<pid>-<random>.partial``, in the same folder (so that the final rename is atomic).
    """
    return path.with_name(f".{path.name}.{_host()}-{os.getpid()}-{secrets.token_hex(4)}.partial")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of ``path`` left by writers that were killed; returns what was deleted.

    Only files written on this host by a process that no longer exists are touched: a live writer's
    temporary file is never deleted.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)-[0-9a-f]+\.partial")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        match = pattern.fullmatch(candidate.name)
        if match and not _process_exists(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
            logger.info("removed %s, left by a writer that no longer runs", candidate)
    return removed


def lock_path(path: Path) -> Path:
    """The lock file of an output: ``<output>.lock``, present only while a process holds the lock."""
    return path.with_name(f"{path.name}.lock")


def _lock_current_file(lock: Path) -> int | None:
    """Open and ``flock`` the lock file (waiting for its holder); the descriptor, or ``None`` when the
    file was deleted or replaced while this process waited (lock the new one then)."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process writing %s", lock.with_suffix(""))
            fcntl.flock(fd, fcntl.LOCK_EX)
        held, current = os.fstat(fd), os.stat(lock)
    except FileNotFoundError:
        current = None
    except BaseException:
        os.close(fd)
        raise
    if current is not None and (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
        return fd
    os.close(fd)
    return None


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive inter-process lock on the output ``path`` (``flock`` on ``<output>.lock``).

    A second process blocks until the first leaves the block. The holder deletes the lock file before it
    lets go, so none is left behind; a waiter that then holds the lock of the deleted file notices and
    locks the current one instead. A process killed while holding the lock releases it (the kernel drops
    the ``flock`` of a dead process) and leaves the lock file, which the next holder reuses and deletes.
    On a file system without ``flock`` (e.g. Lustre mounted without it) it warns and does not lock:
    writers then still publish only complete files, but may both compute them. Raises
    :class:`DataFormatError` when the lock file cannot be created.
    """
    path = Path(path)
    if fcntl is None:
        yield
        return
    lock = lock_path(path)
    fd = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        while fd is None:
            fd = _lock_current_file(lock)
    except OSError as err:
        if err.errno not in _NO_LOCKING:
            raise DataFormatError(lock, f"cannot lock the output ({err})") from err
        logger.warning("%s: the file system has no flock (%s); writing without the lock", lock, err)
        lock.unlink(missing_ok=True)
        yield
        return
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


class TrajectoryWriter(abc.ABC):
    """Base of the atomic batch writers.

    Args:
        path: final file name.
        n_trajectories: number of trajectories the file will hold.
        times: time stamps of the frames, shape ``(T,)`` (``times[0]`` is the initial state).
        grid_shape: ``(X, Y)`` or ``(X, Y, Z)``.
        domain_lengths: box lengths ``(Lx, Ly[, Lz])``; the grid is ``x_i = i * Lx / X`` (periodic).
        viscosity: kinematic viscosity.
        attributes: further metadata (e.g. ``{"recipe": yaml_text, "forcing": "fno"}``) stored in the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_trajectories: int,
        times: np.ndarray,
        grid_shape: tuple[int, ...],
        domain_lengths: tuple[float, ...],
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

    @property
    def vorticity_components(self) -> tuple[int, ...]:
        """Trailing axes of the vorticity: none in 2D (a scalar), ``(3,)`` in 3D (a vector)."""
        return () if len(self.grid_shape) == 2 else (len(self.grid_shape),)

    def write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        """Store a batch: vorticity ``[b, T, X, Y]`` and velocity ``[b, T, X, Y, 2]`` (2D), or vorticity and
        velocity ``[b, T, X, Y, Z, 3]`` (3D)."""
        b = vorticity.shape[0]
        frames = (b, len(self.times), *self.grid_shape)
        expected_w = (*frames, *self.vorticity_components)
        expected_u = (*frames, len(self.grid_shape))
        if vorticity.shape != expected_w or velocity.shape != expected_u:
            raise DataFormatError(
                self.tmp_path,
                "batch of the wrong shape",
                expected=f"vorticity {expected_w} and velocity {expected_u}",
                found=f"{vorticity.shape} and {velocity.shape}",
            )
        if start < 0 or start + b > self.n_trajectories:
            raise DataFormatError(
                self.tmp_path, "batch outside the file", expected=f"<= {self.n_trajectories}", found=start + b
            )
        self._write(start, vorticity, velocity)
        self.written[start : start + b] = True

    def close(self) -> Path:
        """Finish the file and move it to its final name (atomically); returns that name.

        On any failure the temporary file is deleted and the final name is left as it was.
        """
        try:
            self._flush_and_close()
            if not self.written.all():
                missing = int((~self.written).sum())
                raise DataFormatError(self.path, f"{missing} trajectories were never written; file discarded")
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
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
