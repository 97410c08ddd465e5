"""Distributed set-up from the environment torchrun provides (RANK, WORLD_SIZE, LOCAL_RANK).

One process per device; ``torchrun --nproc_per_node=G -m sciml.train CONFIG`` on one machine, and
``--nnodes/--node_rank/--rdzv_endpoint`` across machines. CUDA uses NCCL, the CPU uses gloo.

A collective that does not complete within ``train.ddp_timeout_s`` (a rank stopped, died or hangs) ends
the job instead of waiting forever. Every rank records its progress (epoch, step, phase) in the job's
key-value store before each step; on a timeout, :func:`watch_collectives` turns gloo's timeout error into
one :class:`~sciml.errors.CollectiveTimeoutError` that names the ranks that fell behind and where they
stopped. With NCCL, torch's watchdog aborts the process after the same timeout and prints the collective.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from sciml.errors import CollectiveTimeoutError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this process's GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def setup(device_name: str = "auto", timeout_s: float = 600.0) -> DistributedContext:
    """Join the process group when launched by torchrun; a single-process context otherwise.

    ``timeout_s`` bounds every collective (gloo raises, NCCL's watchdog aborts) so that a stalled rank
    ends the job rather than hanging it.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        logger.info("joined process group: rank %d of %d on %s", rank, world_size, device)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum a tensor over all processes (identity in a single process)."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


_PROGRESS_KEY = "sciml/progress/{rank}"


def report_progress(context: DistributedContext, where: str) -> None:
    """Record in the job's store where this rank is (e.g. ``"epoch 3 step 12 train"``); no-op alone."""
    if context.enabled:
        dist.distributed_c10d._get_default_store().set(_PROGRESS_KEY.format(rank=context.rank), where)


def progress_of_ranks(context: DistributedContext, wait_s: float = 5.0) -> dict[int, str]:
    """Where every rank last reported itself (``"unknown"`` when the store does not answer)."""
    store = dist.distributed_c10d._get_default_store()
    store.set_timeout(datetime.timedelta(seconds=wait_s))
    progress = {}
    for rank in range(context.world_size):
        key = _PROGRESS_KEY.format(rank=rank)
        try:
            progress[rank] = store.get(key).decode() if store.check([key]) else "no progress reported"
        except (RuntimeError, dist.DistError):
            progress[rank] = "unknown (the store did not answer)"
    return progress


def _is_timeout(err: BaseException) -> bool:
    text = str(err).lower()
    return "timed out" in text or "timeout" in text


@contextmanager
def watch_collectives(context: DistributedContext, timeout_s: float) -> Iterator[None]:
    """Turn a collective's timeout inside the block into one :class:`CollectiveTimeoutError`.

    The message names the ranks whose last reported progress differs from this rank's: those are the
    ones that stalled (stopped, died or hang) while this one waited for them in a collective.
    """
    try:
        yield
    except RuntimeError as err:
        if not context.enabled or not _is_timeout(err):
            raise
        progress = progress_of_ranks(context)
        mine = progress.get(context.rank, "unknown")
        behind = {r: where for r, where in progress.items() if r != context.rank and where != mine}
        others = behind or {r: where for r, where in progress.items() if r != context.rank}
        listing = "; ".join(f"rank {r} at {where}" for r, where in sorted(others.items()))
        raise CollectiveTimeoutError(
            f"rank {context.rank}: a collective did not complete within train.ddp_timeout_s = "
            f"{timeout_s:g} s while this rank was at {mine}; stalled or lost: {listing} "
            f"({str(err).splitlines()[0][:160]})"
        ) from None
