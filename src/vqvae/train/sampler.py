"""A data order that can be saved and resumed, and split over data-parallel ranks.

Epoch e visits the dataset in the order ``randperm(n, seed + e)``; step t of an epoch uses
global batch ``perm[t B : (t + 1) B]``, of which rank r takes the r-th slice of B / world
samples.  The union of the ranks' batches is therefore exactly the batch a single process
takes, and (epoch, step in epoch) is all that resuming needs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ResumableBatches:
    """Batch sampler over ``n`` samples (use as ``DataLoader(batch_sampler=...)``).

    Args:
        n: dataset size.
        batch_size: global batch size B (all ranks together); must be divisible by ``world``.
        seed: base seed of the shuffling.
        rank, world: this process's slice of every global batch.
        epoch, step: where to start (as saved in a checkpoint).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        epoch: int = 0,
        step: int = 0,
        shuffle: bool = True,
    ) -> None:
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        if n < batch_size:
            raise ValueError(f"dataset of {n} samples is smaller than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.shuffle = rank, world, shuffle
        self.epoch, self.step = epoch, step

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size  # the incomplete last batch is dropped

    def __len__(self) -> int:
        return self.steps_per_epoch - self.step

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))

    def advance(self) -> None:
        """Record that one batch was consumed (the caller does this, not the iterator, so that
        batches prefetched by loader workers are not counted as done)."""
        self.step += 1
        if self.step >= self.steps_per_epoch:
            self.epoch, self.step = self.epoch + 1, 0

    def __iter__(self) -> Iterator[list[int]]:
        """The rest of the current epoch, from the recorded position."""
        perm = self.order(self.epoch)
        local = self.batch_size // self.world
        for t in range(self.step, self.steps_per_epoch):
            lo = t * self.batch_size + self.rank * local
            yield perm[lo : lo + local].tolist()
