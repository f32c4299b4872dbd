"""Codebook initialisation from data: k-means++ seeding and Lloyd iterations.

Used once, on the first training batch, when ``VectorQuantizer(init="kmeans")`` or
``init="kmeans++"``.  All searches go through the memory-bounded ``nearest_code``.
"""

from __future__ import annotations

import torch

from .search import nearest_code


def _sample_rows(z: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """``count`` rows of ``z``, distinct when there are enough of them."""
    n = z.shape[0]
    if n >= count:
        pick = torch.randperm(n, generator=generator, device="cpu")[:count]
    else:
        pick = torch.randint(n, (count,), generator=generator, device="cpu")
    return z[pick.to(z.device)].clone()


def kmeans_plus_plus(
    z: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to D(z)^2.

    z: (N, d) -> (k, d).  Costs k passes over z; meant for K up to a few thousand.
    """
    n = z.shape[0]
    first = torch.randint(n, (1,), generator=generator).item()
    centres = torch.empty(k, z.shape[1], dtype=z.dtype, device=z.device)
    centres[0] = z[first]
    dist2 = (z - centres[0]).pow(2).sum(1)
    for i in range(1, k):
        total = dist2.sum()
        if total <= 0:  # fewer distinct points than codes: repeat points
            choice = torch.randint(n, (1,), generator=generator).item()
        else:
            probs = (dist2 / total).cpu().double()
            choice = torch.multinomial(probs, 1, generator=generator).item()
        centres[i] = z[choice]
        dist2 = torch.minimum(dist2, (z - centres[i]).pow(2).sum(1))
    return centres


@torch.no_grad()
def kmeans(
    z: torch.Tensor,
    k: int,
    *,
    iters: int = 10,
    plus_plus: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Lloyd's k-means on the rows of ``z`` (N, d) -> (k, d) centres.

    Empty clusters are re-seeded with random rows so that every code starts in use.
    """
    z = z.float()
    centres = kmeans_plus_plus(z, k, generator) if plus_plus else _sample_rows(z, k, generator)
    for _ in range(iters):
        idx = nearest_code(z, centres)
        counts = torch.bincount(idx, minlength=k).to(z.dtype)
        sums = torch.zeros_like(centres).index_add_(0, idx, z)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            centres[empty] = _sample_rows(z, int(empty.sum()), generator)
    return centres
