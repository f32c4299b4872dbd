"""Keeping codebooks identical on every rank of a data-parallel run.

Every function is a no-op when torch.distributed is not initialised, so the quantizer calls
them unconditionally.  EMA statistics are summed over ranks (all-reduce); anything chosen at
random (data initialisation, restarted codes) is chosen on rank 0 and broadcast.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy rank ``src``'s ``tensor`` to every rank, in place."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
