"""Reconstruction metrics of an image VQ-VAE over a whole split.

NMSE = MSE / variance of the training data (Sonnet's convention), PSNR for images scaled to
[-0.5, 0.5] (peak-to-peak 1), perplexity and the fraction of codes used over the split, and
bits/dim with the uniform prior used during training when the likelihood is discrete:

    bpd = (-log p(x | z_q) + L ln K) / (C H W ln 2),   L = latents per image
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..model import VQVAE


@dataclass
class ReconstructionEval:
    metrics: dict[str, float]  # mse, nmse, psnr, perplexity, codes_used[, bpd_uniform_prior]
    counts: torch.Tensor  # (G, K) how often each code was used over the split


@torch.no_grad()
def evaluate_reconstruction(
    model: VQVAE,
    dataset: Dataset,
    *,
    train_variance: float,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> ReconstructionEval:
    """Metrics of ``model`` (eval mode, nothing updated) on every item of ``dataset``."""
    model = model.to(device).eval()
    c = model.config
    counts = torch.zeros(c.groups, c.num_codes, dtype=torch.float64)
    sq_err, n_pixels, n_images = 0.0, 0, 0
    nll_total = 0.0
    discrete = c.likelihood != "gaussian" or c.gaussian_std is not None
    # its own generator: iterating would otherwise draw from the global RNG
    loader = DataLoader(dataset, batch_size=batch_size, generator=torch.Generator())
    for x, _ in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        x = x.to(device)
        out = model(x)
        sq_err += (out.reconstruction.float() - x).pow(2).sum().item()
        n_pixels += x.numel()
        n_images += x.shape[0]
        idx = out.indices.reshape(x.shape[0], c.groups, -1).transpose(0, 1).reshape(c.groups, -1)
        for g in range(c.groups):
            counts[g] += torch.bincount(idx[g].cpu(), minlength=c.num_codes).double()
        if discrete:
            nll_total += model.likelihood.nll(out.decoder_output, x).sum().item()
    mse = sq_err / n_pixels
    probs = counts / counts.sum(-1, keepdim=True)
    entropy = -(probs * probs.clamp(min=1e-30).log()).sum(-1)
    metrics = {
        "mse": mse,
        "nmse": mse / train_variance,
        "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
        "perplexity": entropy.exp().mean().item(),
        "codes_used": (counts > 0).double().mean().item(),
        "images": float(n_images),
    }
    if discrete:
        dims = n_pixels / n_images
        latents = math.prod(c.latent_shape)
        nll = nll_total / n_images
        metrics["nll_x_nats"] = nll
        metrics["bpd_uniform_prior"] = (nll + latents * math.log(c.num_codes)) / (
            dims * math.log(2)
        )
    return ReconstructionEval(metrics, counts)
