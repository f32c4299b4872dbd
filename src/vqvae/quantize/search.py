"""Nearest-code search in bounded memory.

The distance ||z - e_k||^2 = ||z||^2 - 2 z.e_k + ||e_k||^2; the first term does not change the
argmin, so each code is scored by ||e_k||^2 - 2 z.e_k.  Appending a constant 1 to z and the
column ||e_k||^2 to -2 e_k makes that one matrix product, [z, 1] [-2 E, |E|^2]^T, with no bias
to copy.  Rows are processed in chunks so that the (rows, K) score block never exceeds
``memory_bytes``: a full (N, K) distance matrix is never built, and the score block is one
buffer reused for every chunk (fresh large allocations would page-fault on every chunk).

``quantize_rows`` does the whole forward work of the bottleneck in the same pass over a chunk,
while the chunk is still in cache: search, code lookup, residual, squared error and the
per-code statistics of the EMA update.  Nothing of size N x K (distances, one-hot) is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_SEARCH_MEMORY = 256 * 2**20  # bytes allowed for the (rows, K) score block
MAX_CHUNK_ROWS = 4096  # larger chunks fall out of cache and get slower (benchmarks/quantizer.py)


def chunk_rows(num_codes: int, memory_bytes: int = DEFAULT_SEARCH_MEMORY) -> int:
    """Rows per chunk so that a (rows, num_codes) fp32 score block fits in ``memory_bytes``."""
    # the score block and the scratch of the row-wise reduction
    return max(1, min(MAX_CHUNK_ROWS, memory_bytes // (2 * num_codes * 4)))


def _argmin_rows(scores: torch.Tensor, out: torch.Tensor) -> None:
    """``torch.argmin(scores, 1, out=out)``, about 2-4x faster on the CPU for wide rows.

    argmin is a scalar loop on the CPU while amin is vectorised, so the row is cut into blocks
    of B codes: the vectorised block minima find the block holding the row minimum, and the
    scalar argmin then runs over K / B block minima and the B scores of that block.  The first
    block attaining the minimum holds the first index attaining it, so ties resolve exactly as
    torch.argmin does (to the lowest index).
    """
    rows, k = scores.shape
    block = 64 if k >= 4096 else 32
    if k % block or k < 4 * block or scores.device.type != "cpu":
        torch.argmin(scores, dim=1, out=out)
        return
    blocks = scores.view(rows, k // block, block)
    best_block = blocks.amin(-1).argmin(1)  # (rows,)
    inside = blocks[torch.arange(rows, device=scores.device), best_block]  # (rows, B)
    torch.add(inside.argmin(1), best_block, alpha=block, out=out)


class _ChunkSearch:
    """Nearest code among one codebook (K, d) for chunks of at most ``rows`` rows.

    ``rerank`` > 0 scores in bfloat16 (fast matrix units), keeps the ``rerank`` best candidates
    per row and chooses among them with exact fp32 distances.
    """

    def __init__(self, codebook: torch.Tensor, rows: int, rerank: int = 0) -> None:
        k, d = codebook.shape
        self.codebook, self.d = codebook, d
        self.sqnorm = codebook.pow(2).sum(1)
        # (d + 1, K): [-2 e_k ; ||e_k||^2] for each code k
        self.table = torch.cat([-2.0 * codebook, self.sqnorm[:, None]], 1).t().contiguous()
        self.rerank = rerank if 0 < rerank < k else 0
        dtype = torch.bfloat16 if self.rerank else codebook.dtype
        if self.rerank:
            self.table = self.table.to(dtype)
        self.zbuf = torch.ones(rows, d + 1, dtype=dtype, device=codebook.device)
        self.scores = torch.empty(rows, k, dtype=dtype, device=codebook.device)

    def __call__(self, zc: torch.Tensor, out: torch.Tensor) -> None:
        """zc (r, d) -> ``out`` (r,) int64 indices of the nearest codes."""
        r = zc.shape[0]
        zb = self.zbuf[:r]
        zb[:, : self.d].copy_(zc)
        # (r, d + 1) x (d + 1, K) -> (r, K) scores ||e||^2 - 2 z.e
        scores = torch.mm(zb, self.table, out=self.scores[:r])
        if not self.rerank:
            _argmin_rows(scores, out)
            return
        cand = scores.topk(self.rerank, dim=1, largest=False, sorted=False).indices  # (r, R)
        exact = self.sqnorm[cand] - 2.0 * torch.einsum("nd,nrd->nr", zc, self.codebook[cand])
        torch.gather(cand, 1, exact.argmin(1, keepdim=True), out=out.unsqueeze(1))


@torch.no_grad()
def nearest_code(
    z: torch.Tensor,
    codebook: torch.Tensor,
    *,
    memory_bytes: int = DEFAULT_SEARCH_MEMORY,
    rerank: int = 0,
) -> torch.Tensor:
    """Index of the nearest code for every row of ``z``.

    Args:
        z: (N, D) float vectors.
        codebook: (K, D) codes, same dtype and device as ``z``.
        memory_bytes: bound on the extra memory of the search.
        rerank: if > 0, score in bfloat16, keep the ``rerank`` best candidates per row and
            choose among them with exact fp32 distances.  0 = exact fp32 search.

    Returns:
        (N,) int64 indices.
    """
    if z.shape[1] != codebook.shape[1]:
        raise ValueError(f"vectors have dimension {z.shape[1]} but codes have {codebook.shape[1]}")
    out = torch.empty(z.shape[0], dtype=torch.long, device=z.device)
    rows = min(z.shape[0], chunk_rows(codebook.shape[0], memory_bytes))
    search = _ChunkSearch(codebook, max(rows, 1), rerank)
    for s in range(0, z.shape[0], rows):
        search(z[s : s + rows], out[s : s + rows])
    return out


@dataclass
class RowQuantization:
    """What ``quantize_rows`` computes for N rows of G groups of d channels (D = G d)."""

    indices: torch.Tensor  # (N, G) int64, code index within the group's codebook
    quantized: torch.Tensor  # (N, D) the chosen codes
    residual: torch.Tensor  # (N, D) z - quantized
    sse: torch.Tensor  # () sum of squared residuals
    counts: torch.Tensor  # (G, K) how many rows chose each code
    sums: torch.Tensor | None  # (G, K, d) sum of the rows that chose each code


@torch.no_grad()
def quantize_rows(
    z: torch.Tensor,
    codebook: torch.Tensor,
    *,
    memory_bytes: int = DEFAULT_SEARCH_MEMORY,
    rerank: int = 0,
    with_sums: bool = False,
) -> RowQuantization:
    """Quantize each row of ``z`` against per-group codebooks, chunk by chunk.

    Args:
        z: (N, D) contiguous fp32, D = G * d; group g is channels [g d, (g + 1) d).
        codebook: (G, K, d) fp32.
        with_sums: also accumulate the per-code sums of z (for the EMA update).
    """
    n, dim = z.shape
    groups, k, d = codebook.shape
    assert dim == groups * d and z.is_contiguous()
    flat_codes = codebook.reshape(groups * k, d)
    rows = max(1, min(n, chunk_rows(k, memory_bytes)))
    searches = [_ChunkSearch(codebook[g], rows, rerank) for g in range(groups)]
    offsets = torch.arange(groups, device=z.device) * k  # index into the flat (G K, d) table

    indices = torch.empty(n, groups, dtype=torch.long, device=z.device)
    quantized = torch.empty_like(z)
    residual = torch.empty_like(z)
    sse = torch.zeros((), dtype=torch.float64, device=z.device)
    sums = torch.zeros(groups * k, d, dtype=z.dtype, device=z.device) if with_sums else None

    for s in range(0, n, rows):
        zc = z[s : s + rows]  # (r, D)
        r = zc.shape[0]
        for g, search in enumerate(searches):
            search(zc[:, g * d : (g + 1) * d], indices[s : s + r, g])
        flat_idx = (indices[s : s + r] + offsets).view(-1)  # (r G,)
        qc = quantized[s : s + r]
        torch.index_select(flat_codes, 0, flat_idx, out=qc.view(r * groups, d))
        rc = torch.sub(zc, qc, out=residual[s : s + r])
        sse += torch.dot(rc.view(-1), rc.view(-1))
        if sums is not None:
            sums.index_add_(0, flat_idx, zc.view(r * groups, d))
    counts = torch.bincount((indices + offsets).view(-1), minlength=groups * k).to(z.dtype)
    return RowQuantization(
        indices=indices,
        quantized=quantized,
        residual=residual,
        sse=sse.to(z.dtype),
        counts=counts.view(groups, k),
        sums=None if sums is None else sums.view(groups, k, d),
    )
