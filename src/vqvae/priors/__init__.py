"""Priors: autoregressive models over the VQ-VAE's discrete codes.

    prior = PixelCNNPrior(PixelCNNConfig.for_vqvae(vqvae.config, num_classes=10))
    logits = prior(codes, labels)          # (B, K, h, w) [(B, K, G, h, w)]
    nats = prior.nll(codes, labels)        # (B,) -log p(codes | labels)
    codes = prior.sample(64, labels=3)     # (64, h, w) [(64, G, h, w)]; vqvae.decode(codes)

    dynamics = DynamicsPrior(DynamicsConfig.for_vqvae(vqvae.config))   # video (dynamics.py)
    future = dynamics.rollout(context, actions)  # (B, C, h, w), (B, N) -> (B, N, h, w)
"""

from .dynamics import DynamicsConfig, DynamicsPrior
from .pixelcnn import PixelCNNConfig, PixelCNNPrior, read_prior_config

__all__ = ["DynamicsConfig", "DynamicsPrior", "PixelCNNConfig", "PixelCNNPrior",
           "read_prior_config"]
