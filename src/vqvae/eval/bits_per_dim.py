"""Bits per dimension of images under a VQ-VAE and a prior over its codes (paper, 4.1).

The model of an image is p(x) >= p(x | z_q) p(z_q) with z_q = q(x), so

    bpd = (-log p(x | z_q) - log p(z_q)) / (C H W ln 2),

averaged over the images of a split: the VQ-VAE's likelihood gives -log p(x | z_q) (discrete
likelihoods only), the prior gives -log p(z_q).  During training the prior is uniform,
-log p(z) = L ln K for L latents per image; ``bpd_uniform_prior`` is that figure (the same as
``evaluate_reconstruction``'s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..model import VQVAE
from ..priors import PixelCNNPrior


@dataclass(frozen=True)
class BitsPerDim:
    images: int  # N
    dims: int  # C H W per image
    latents: int  # L per image (G h w)
    num_codes: int  # K
    nll_x: float | None  # mean -log p(x | z_q), nats per image; None: no discrete likelihood
    nll_z: float  # mean -log p(z_q) under the prior, nats per image

    @property
    def nll_z_per_latent(self) -> float:
        return self.nll_z / self.latents

    @property
    def nll_z_uniform(self) -> float:
        """-log p(z) under the uniform prior: L ln K nats per image."""
        return self.latents * math.log(self.num_codes)

    @property
    def bpd(self) -> float | None:
        if self.nll_x is None:
            return None
        return (self.nll_x + self.nll_z) / (self.dims * math.log(2))

    @property
    def bpd_uniform_prior(self) -> float | None:
        if self.nll_x is None:
            return None
        return (self.nll_x + self.nll_z_uniform) / (self.dims * math.log(2))


@torch.no_grad()
def bits_per_dim(vqvae: VQVAE, prior: PixelCNNPrior, dataset: Dataset, *,
                 batch_size: int = 256, device: str | torch.device = "cpu",
                 progress: bool = True) -> BitsPerDim:
    """-log p(x | z_q) and -log p(z_q) over every ``(image, label)`` of ``dataset``.

    The labels condition the prior when it is class-conditional.  Raises ``ValueError`` when
    the prior models another code grid than the VQ-VAE makes.
    """
    mismatch = prior.config.grid_mismatch(vqvae.config)
    if mismatch:
        raise ValueError(f"the prior does not fit the VQ-VAE: {mismatch}")
    vqvae, prior = vqvae.to(device).eval(), prior.to(device).eval()
    c = vqvae.config
    discrete = c.likelihood != "gaussian" or c.gaussian_std is not None
    conditional = prior.config.num_classes > 0
    nll_x = nll_z = 0.0
    n = dims = 0
    # its own generator: iterating would otherwise draw from the global RNG
    loader = DataLoader(dataset, batch_size=batch_size, generator=torch.Generator())
    for x, labels in tqdm(loader, desc="bits/dim", disable=not progress, leave=False):
        x = x.to(device)
        out = vqvae(x)  # eval mode: changes nothing
        nll_z += prior.nll(out.indices, labels.to(device) if conditional else None).sum().item()
        if discrete:
            nll_x += vqvae.likelihood.nll(out.decoder_output, x).sum().item()
        n += x.shape[0]
        dims = x[0].numel()
    if n == 0:
        raise ValueError("bits/dim of an empty data set")
    return BitsPerDim(images=n, dims=dims, latents=math.prod(c.latent_shape),
                      num_codes=c.num_codes, nll_x=nll_x / n if discrete else None,
                      nll_z=nll_z / n)


@torch.no_grad()
def prior_nll_per_latent(prior: PixelCNNPrior, codes: Dataset, *, batch_size: int = 256,
                         device: str | torch.device = "cpu") -> float:
    """Mean -log p(z) in nats per latent over a data set of ``(codes, label)`` pairs."""
    prior = prior.to(device).eval()
    conditional = prior.config.num_classes > 0
    total, count = 0.0, 0
    for z, labels in DataLoader(codes, batch_size=batch_size, generator=torch.Generator()):
        z = z.to(device).long()
        total += prior.nll(z, labels.to(device) if conditional else None).sum().item()
        count += z.numel()
    return total / max(count, 1)
