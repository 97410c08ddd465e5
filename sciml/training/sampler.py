"""A deterministic epoch sampler shared by single-process and distributed runs.

Epoch ``e`` visits the permutation drawn from ``seed + e`` (the convention of torch's
DistributedSampler); process ``r`` of ``W`` takes positions ``r, r + W, ...``. With a global batch of
``B`` split as ``B / W`` per process, the union of the processes' k-th batches is exactly the k-th batch
of a single-process run with batch ``B``, so the averaged gradients agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Indices of one process for one epoch; call :meth:`set_epoch` before each epoch."""

    def __init__(
        self, n: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n = int(n)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        # every process gets the same count: the permutation is padded by wrapping around
        self.per_rank = -(-self.n // world_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def indices(self) -> list[int]:
        """This process's indices for the current epoch."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world_size
        order = (order * (total // max(1, len(order)) + 1))[:total]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return self.per_rank

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint stores of the sampler."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore :meth:`state_dict`."""
        self.epoch = int(state["epoch"])
        self.seed = int(state["seed"])
