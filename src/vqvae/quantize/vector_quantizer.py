"""The vector-quantisation bottleneck of VQ-VAE (van den Oord et al. 2017, section 3 and A.1).

    z_e (B, D, *spatial) --nearest code--> z_q (B, D, *spatial), indices (B, *spatial)

* forward value: the nearest code; backward: the gradient of z_q is copied to z_e unchanged
  (straight-through estimator, eq. 3 of the paper);
* loss = ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2: the codebook term moves only the codes, the
  commitment term only the encoder output (both as means over elements);
* ``update="ema"``: the codebook term is replaced by exponential moving averages of the
  assignment counts and sums (appendix A.1), with Laplace smoothing of the counts;
* ``groups=G``: the D channels are split into G slices of D / G, each with its own codebook of
  K codes (the paper's CIFAR-10 latent of 8 x 8 x 10 is G = 10);
* ``gradient="rotation"`` (an option, not the paper's): instead of copying the gradient of z_q
  to z_e, pass it through the rotation and scaling that carries z_e onto z_q (the rotation
  trick, Fifty et al. 2025): z_q = lambda R z_e with R and lambda = ||z_q|| / ||z_e|| held
  constant, so d z_q / d z_e = lambda R.  R is the rotation in the plane of z_e and z_q taking
  the direction of z_e to that of z_q; per code slice of d channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import all_reduce_sum_, broadcast_
from .kmeans import kmeans
from .search import DEFAULT_SEARCH_MEMORY, RowQuantization, quantize_rows


@dataclass
class QuantizerOutput:
    """Result of ``VectorQuantizer.forward``."""

    quantized: torch.Tensor  # (B, D, *spatial), straight-through to the input
    indices: torch.Tensor  # (B, *spatial), or (B, G, *spatial) when groups > 1
    loss: torch.Tensor  # () codebook_loss + beta * commitment_loss: add it to the objective
    commitment_loss: torch.Tensor  # () mean ||z_e - sg[e]||^2 (before the beta factor)
    codebook_loss: torch.Tensor  # () mean ||sg[z_e] - e||^2; zero in EMA mode
    perplexity: torch.Tensor  # () exp(entropy) of code usage in the batch, mean over groups
    usage: torch.Tensor  # () fraction of codes used in the batch, mean over groups


GRADIENTS = ("straight_through", "rotation")


class _BottleneckGrad(torch.autograd.Function):
    """Gives the bottleneck its gradients; the values were computed by ``quantize_rows``.

    Outputs (quantized, commitment_sse, codebook_sse), where both sse are sum ||z - e||^2:
      d quantized / d z      = identity          (straight-through; or lambda R, the rotation)
      d commitment_sse / d z = 2 (z - e)         (e treated as a constant)
      d codebook_sse / d e_k = -2 sum_{z -> k} (z - e_k)   (z treated as a constant)
    """

    @staticmethod
    def forward(ctx, z, flat_codebook, quantized, residual, flat_indices, sse, rotate):
        # z (N, D), flat_codebook (G K, d), quantized/residual (N, D), flat_indices (N G,)
        ctx.save_for_backward(residual, flat_indices, z if rotate else None,
                              quantized if rotate else None)
        ctx.codebook_shape = flat_codebook.shape
        return quantized.view_as(quantized), sse.clone(), sse.clone()

    @staticmethod
    def backward(ctx, grad_q, grad_commit, grad_codebook):
        residual, flat_indices, z, quantized = ctx.saved_tensors
        grad_z = grad_codes = None
        if ctx.needs_input_grad[0]:
            if z is not None:
                d = ctx.codebook_shape[1]
                grad_q = rotated_gradient(z.view(-1, d), quantized.view(-1, d),
                                          grad_q.reshape(-1, d)).view_as(z)
            grad_z = torch.addcmul(grad_q, residual, 2.0 * grad_commit)
        if ctx.needs_input_grad[1]:
            d = ctx.codebook_shape[1]
            grad_codes = residual.new_zeros(ctx.codebook_shape)
            grad_codes.index_add_(0, flat_indices, residual.view(-1, d))
            grad_codes.mul_(-2.0 * grad_codebook)
        return grad_z, grad_codes, None, None, None, None, None


def rotated_gradient(e: torch.Tensor, q: torch.Tensor, grad: torch.Tensor,
                     eps: float = 1e-8) -> torch.Tensor:
    """The rotation trick's backward: e, q, grad (N, d) -> (N, d) lambda R^T grad.

    With unit vectors u = e / ||e||, v = q / ||q|| and w = (u + v) / ||u + v||, the rotation
    R = I - 2 w w^T + 2 v u^T maps u to v (and is the identity outside their plane), and
    lambda = ||q|| / ||e||, so lambda R e = q.  R^T g = g - 2 w (w.g) + 2 u (v.g).
    """
    e_norm = e.norm(dim=1, keepdim=True).clamp_min(eps)
    q_norm = q.norm(dim=1, keepdim=True).clamp_min(eps)
    u, v = e / e_norm, q / q_norm
    w = u + v
    w = w / w.norm(dim=1, keepdim=True).clamp_min(eps)
    rotated = (grad - 2 * w * (w * grad).sum(1, keepdim=True)
               + 2 * u * (v * grad).sum(1, keepdim=True))
    return rotated * (q_norm / e_norm)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantiser with straight-through gradients.

    Args:
        num_codes: K, codes per codebook (paper: 512).
        dim: D, channels of the input.
        beta: weight of the commitment loss (paper: 0.25).
        update: ``"ema"`` (appendix A.1, default) or ``"loss"`` (codebook learned by gradient).
        decay: EMA decay gamma (paper: 0.99).
        eps: Laplace smoothing of the EMA counts.
        groups: G codebooks per position; D must be divisible by G.
        init: ``"random"`` (N(0, 1) codes, uniform(-1/K, 1/K) with ``update="loss"``),
            ``"kmeans"`` or ``"kmeans++"``: k-means on the first training batch.
        kmeans_iters: Lloyd iterations of the data initialisation.
        restart_after: replace a code unused for this many training steps by an encoder output
            of the current batch (None: never, the paper's setting).
        search_memory: bytes allowed for the score block of the nearest-code search.
        rerank: > 0 searches in bfloat16 and re-ranks that many candidates in fp32.
        gradient: ``"straight_through"`` (the paper's, default) or ``"rotation"`` (the rotation
            trick, see the module docstring).
    """

    _version = 1  # of the state dict; see _load_from_state_dict

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 64,
        *,
        beta: float = 0.25,
        update: Literal["ema", "loss"] = "ema",
        decay: float = 0.99,
        eps: float = 1e-5,
        groups: int = 1,
        init: Literal["random", "kmeans", "kmeans++"] = "random",
        kmeans_iters: int = 10,
        restart_after: int | None = None,
        search_memory: int = DEFAULT_SEARCH_MEMORY,
        rerank: int = 0,
        gradient: Literal["straight_through", "rotation"] = "straight_through",
    ) -> None:
        super().__init__()
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")
        if update not in ("ema", "loss"):
            raise ValueError(f"update must be 'ema' or 'loss', got {update!r}")
        if init not in ("random", "kmeans", "kmeans++"):
            raise ValueError(f"init must be 'random', 'kmeans' or 'kmeans++', got {init!r}")
        if groups < 1 or dim % groups:
            raise ValueError(f"dim={dim} must be divisible by groups={groups}")
        if num_codes < 1:
            raise ValueError(f"num_codes must be positive, got {num_codes}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if restart_after is not None and restart_after < 1:
            raise ValueError(
                f"restart_after must be a positive number of steps, got {restart_after}"
            )
        self.num_codes, self.dim, self.groups = num_codes, dim, groups
        self.code_dim = dim // groups
        self.beta, self.update, self.decay, self.eps = beta, update, decay, eps
        self.init, self.kmeans_iters, self.restart_after = init, kmeans_iters, restart_after
        self.search_memory, self.rerank, self.gradient = search_memory, rerank, gradient

        shape = (groups, num_codes, self.code_dim)
        if update == "ema":
            self.register_buffer("codebook", torch.randn(shape))
            self.register_buffer("ema_count", torch.zeros(groups, num_codes))
            self.register_buffer("ema_sum", torch.zeros(shape))
        else:
            bound = 1.0 / num_codes
            self.codebook = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.register_buffer("steps_unused", torch.zeros(groups, num_codes, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(init == "random"))

    def extra_repr(self) -> str:
        return (
            f"num_codes={self.num_codes}, dim={self.dim}, groups={self.groups}, beta={self.beta}, "
            f"update={self.update!r}, decay={self.decay}, init={self.init!r}, "
            f"restart_after={self.restart_after}, gradient={self.gradient!r}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        """x: (B, D, *spatial) -> QuantizerOutput (see its fields for shapes)."""
        if x.dim() < 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"VectorQuantizer expects (B, {self.dim}, *spatial), got {tuple(x.shape)}"
            )
        batch, spatial = x.shape[0], x.shape[2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            # (B, D, *S) -> (N, D); a view when x is channels-last
            z = x.movedim(1, -1).reshape(-1, self.dim).float().contiguous()
            if self.training and not bool(self.initialized):
                self._init_from_data(z)
            codebook = self.codebook
            rq = quantize_rows(
                z,
                codebook.detach(),
                memory_bytes=self.search_memory,
                rerank=self.rerank,
                with_sums=self.training and self.update == "ema",
            )
            offsets = torch.arange(self.groups, device=z.device) * self.num_codes
            flat_indices = (rq.indices + offsets).view(-1)
            q, commit_sse, codebook_sse = self._grad_fn(z, codebook, rq, flat_indices)
            numel = z.numel()
            commitment_loss = commit_sse / numel
            if self.update == "loss":
                codebook_loss = codebook_sse / numel
            else:
                codebook_loss = torch.zeros((), device=z.device)
            loss = codebook_loss + self.beta * commitment_loss

            counts = rq.counts
            if self.training:
                counts = all_reduce_sum_(counts.clone())
                if self.update == "ema":
                    self._ema_update(counts, all_reduce_sum_(rq.sums))
                if self.restart_after is not None:
                    self._restart_dead_codes(z, counts)
            perplexity, usage = _usage_stats(counts)

        quantized = q.to(x.dtype).view(batch, *spatial, self.dim).movedim(-1, 1)
        indices = rq.indices.view(batch, *spatial, self.groups)
        indices = indices.squeeze(-1) if self.groups == 1 else indices.movedim(-1, 1)
        return QuantizerOutput(
            quantized=quantized,
            indices=indices,
            loss=loss,
            commitment_loss=commitment_loss,
            codebook_loss=codebook_loss,
            perplexity=perplexity,
            usage=usage,
        )

    def _grad_fn(self, z, codebook, rq: RowQuantization, flat_indices):
        flat = codebook.view(self.groups * self.num_codes, self.code_dim)
        return _BottleneckGrad.apply(z, flat, rq.quantized, rq.residual, flat_indices, rq.sse,
                                     self.gradient == "rotation")

    def frozen(self, x: torch.Tensor) -> QuantizerOutput:
        """``forward`` as in eval mode (no EMA update, initialisation or restart), whatever the
        module's mode; the mode is left as it was."""
        was_training = self.training
        self.train(False)
        try:
            return self(x)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ lookup
    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes for token ids: (B, *spatial) [or (B, G, *spatial)] -> (B, D, *spatial)."""
        indices = indices.long()
        if self.groups == 1:
            indices = indices.unsqueeze(1)
        if indices.dim() < 2 or indices.shape[1] != self.groups:
            raise ValueError(
                f"expected indices of shape (B, {self.groups}, *spatial) for groups={self.groups},"
                f" got {tuple(indices.shape)}"
            )
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_codes):
            raise ValueError(
                f"indices must lie in [0, {self.num_codes}), got values in "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        g = torch.arange(self.groups, device=indices.device).view(
            1, -1, *([1] * (indices.dim() - 2))
        )
        flat = self.codebook.reshape(self.groups * self.num_codes, self.code_dim)
        codes = F.embedding(indices + g * self.num_codes, flat)  # (B, G, *S, d)
        codes = codes.movedim(1, -2)  # (B, *S, G, d)
        return codes.reshape(*codes.shape[:-2], self.dim).movedim(-1, 1)

    # ------------------------------------------------------------------ training-time updates
    @torch.no_grad()
    def _init_from_data(self, z: torch.Tensor) -> None:
        """k-means on rank 0's first batch, broadcast to every rank."""
        codes = torch.stack(
            [
                kmeans(
                    z[:, g * self.code_dim : (g + 1) * self.code_dim],
                    self.num_codes,
                    iters=self.kmeans_iters,
                    plus_plus=self.init == "kmeans++",
                )
                for g in range(self.groups)
            ]
        )
        broadcast_(codes)
        self.codebook.data.copy_(codes)
        if self.update == "ema":
            self.ema_count.zero_()
            self.ema_sum.zero_()
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """Appendix A.1: N <- g N + (1-g) n;  m <- g m + (1-g) sum z;  e = m / N (smoothed).

        Codes that no vector chose in this step keep their vector: their m and N decay by the
        same factor, so m / N is unchanged, whereas the smoothed ratio would drift to zero.
        """
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum(-1, keepdim=True)
        smoothed = (self.ema_count + self.eps) / (total + self.num_codes * self.eps) * total
        updated = self.ema_sum / smoothed.unsqueeze(-1)
        self.codebook.copy_(torch.where((counts > 0).unsqueeze(-1), updated, self.codebook))

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor, counts: torch.Tensor) -> None:
        """Replace codes unused for ``restart_after`` steps by random encoder outputs.

        Runs after the EMA update of the same step, and resets the restarted codes' EMA
        statistics to one vector at the new position, so no stale sum overwrites them.
        ``counts`` are already summed over ranks, so every rank finds the same dead codes; the
        replacement vectors are drawn on rank 0 and broadcast.
        """
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        dead = self.steps_unused >= self.restart_after  # (G, K)
        if not bool(dead.any()):
            return
        pick = torch.randint(z.shape[0], (self.groups, self.num_codes), device=z.device)
        d = self.code_dim
        fresh = torch.stack([z[pick[g], g * d : (g + 1) * d] for g in range(self.groups)])
        broadcast_(fresh)
        mask = dead.unsqueeze(-1)
        self.codebook.data.copy_(torch.where(mask, fresh, self.codebook.data))
        if self.update == "ema":
            self.ema_count.masked_fill_(dead, 1.0)
            self.ema_sum.copy_(torch.where(mask, fresh, self.ema_sum))
        self.steps_unused.masked_fill_(dead, 0)

    # ------------------------------------------------------------------ state dict
    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors
    ):
        version = local_metadata.get("version")
        if version is not None and version > self._version:
            errors.append(
                f"{prefix}: state dict version {version} is newer than this VectorQuantizer "
                f"(version {self._version}); upgrade vqvae"
            )
            return
        # version 1 is the first; later versions convert older keys here
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing, unexpected, errors
        )


def _usage_stats(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """counts (G, K) -> (perplexity, fraction of codes used), each averaged over groups."""
    probs = counts / counts.sum(-1, keepdim=True).clamp(min=1)
    entropy = -(probs * torch.log(probs.clamp(min=1e-12))).sum(-1)
    return entropy.exp().mean(), (counts > 0).float().mean()
