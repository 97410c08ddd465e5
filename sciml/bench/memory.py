"""Peak memory of a block of code, on a GPU (allocator statistics) or the CPU (resident set size).

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``: the peak of tensor memory
  allocated by torch on the device, and its increase over what was allocated before the block.
* CPU (Linux): the process's peak resident set ``VmHWM``, reset through ``/proc/self/clear_refs`` before
  the block (after a ``gc.collect`` and ``malloc_trim`` so that freed heap is returned to the system),
  minus ``VmRSS`` before it. It counts everything the process touched (tensors, allocator caches, Python
  objects), not only tensors. Where ``/proc/self/clear_refs`` cannot be written, the increase of
  ``ru_maxrss`` is used; it is zero when the block stays below an earlier peak of the process, so it is a
  lower bound only. :attr:`PeakMemory.method` says which was used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import re
import resource
import sys
from pathlib import Path
from types import TracebackType

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _malloc_trim() -> None:
    """Return freed heap memory to the system (glibc only; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _max_rss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, kB on Linux


class PeakMemory:
    """Context manager measuring the peak memory of its block on ``device``.

    Attributes (after the block): ``increase_mb`` (peak minus the memory in use before, MiB),
    ``peak_mb`` (the peak itself: allocated tensors on CUDA, the process's resident set on the CPU) and
    ``method`` (how it was measured).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.increase_mb = float("nan")
        self.peak_mb = float("nan")
        self.method = ""
        self._before = 0
        self._hwm_reset = False

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated - memory_allocated before"
            return self
        _malloc_trim()
        self._hwm_reset = _reset_peak_rss() and _status_kb("VmHWM") is not None
        if self._hwm_reset:
            self._before = _status_kb("VmRSS") or 0
            self.method = "peak RSS (VmHWM reset via /proc/self/clear_refs) - RSS before"
        else:
            self._before = _max_rss_kb()
            self.method = "ru_maxrss increase (a lower bound: 0 below an earlier peak)"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.peak_mb = peak / 2**20
            self.increase_mb = (peak - self._before) / 2**20
            return
        peak_kb = (_status_kb("VmHWM") if self._hwm_reset else _max_rss_kb()) or 0
        self.peak_mb = peak_kb / 1024
        self.increase_mb = max(0, peak_kb - self._before) / 1024
