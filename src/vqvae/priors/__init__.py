"""Priors: autoregressive models over the VQ-VAE's discrete codes.

    prior = PixelCNNPrior(PixelCNNConfig.for_vqvae(vqvae.config, num_classes=10))
    logits = prior(codes, labels)          # (B, K, h, w) [(B, K, G, h, w)]
    nats = prior.nll(codes, labels)        # (B,) -log p(codes | labels)
    codes = prior.sample(64, labels=3)     # (64, h, w) [(64, G, h, w)]; vqvae.decode(codes)
"""

from .pixelcnn import PixelCNNConfig, PixelCNNPrior, read_prior_config

__all__ = ["PixelCNNConfig", "PixelCNNPrior", "read_prior_config"]
