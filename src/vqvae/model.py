"""The image VQ-VAE: encoder -> vector quantiser -> decoder -> likelihood p(x | z_q).

    images (B, C, H, W) in [-0.5, 0.5] --ImageEncoder--> z_e (B, D, H/f, W/f)
        --VectorQuantizer--> z_q (B, D, H/f, W/f), indices (B, H/f, W/f) [(B, G, H/f, W/f)]
        --ImageDecoder--> decoder output (B, O, H, W) --likelihood--> loss, nll, reconstruction

The objective is eq. 3 of the paper: -log p(x | z_q) (the likelihood's loss: MSE or nats per
sub-pixel) plus the quantiser's codebook and beta-weighted commitment terms.

A model is built from a ``VQVAEConfig``; ``save_pretrained`` writes it as ``config.json`` beside
the weights in ``model.safetensors`` (no pickle anywhere), and ``from_pretrained`` rebuilds the
model from the JSON and loads the weights, raising ``CheckpointError`` naming the file at fault.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from .errors import CheckpointError  # noqa: F401  (imported from here too)
from .nets.image import ImageDecoder, ImageEncoder, num_halvings
from .nets.likelihood import LIKELIHOODS, make_likelihood
from .pretrained import Pretrained, check_field_types, config_from_dict
from .quantize import VectorQuantizer
from .quantize.vector_quantizer import GRADIENTS


@dataclass(frozen=True)
class VQVAEConfig:
    """Everything that determines a ``VQVAE``; the defaults are the ``"default"`` preset.

    Attributes:
        image_channels: C (3 for RGB).
        image_size: H = W the model is meant for (the networks are convolutional and accept any
            size divisible by ``downsample``); gives ``latent_shape``.
        hidden: channels of the encoder's and decoder's conv layers.
        residual_layers: residual blocks in each residual stack.
        residual_hidden: channels inside each residual block.
        stage_residual_layers: residual blocks at each resolution between the strided layers
            (for f = 4: at H / 2), in encoder and decoder; 0 (the paper's): none.
        stage_residual_hidden: channels inside those blocks; None: ``residual_hidden``.
        downsample: f, a power of two; latents are (H / f, W / f).
        embedding_dim: D, the quantiser's dimension (split over ``groups``).
        num_codes: K, codes per codebook.
        groups: G codebooks per latent position, each of D / G channels.
        beta: commitment weight.
        update: ``"ema"`` or ``"loss"`` codebook learning (see ``VectorQuantizer``).
        decay: EMA decay.
        init: codebook initialisation, ``"random"``, ``"kmeans"`` or ``"kmeans++"``.
        restart_after: steps after which an unused code is restarted; None: never.
        likelihood: ``"gaussian"`` (MSE), ``"categorical"`` or ``"logistic_mixture"``.
        logistic_mixtures: M, components of the logistic mixture likelihood.
        gaussian_std: fixed std of the gaussian likelihood's discretised ``nll``; None: the
            gaussian likelihood has no ``nll`` (training is MSE either way).
        gradient: how the encoder gets the decoder's gradient through the bottleneck,
            ``"straight_through"`` (the paper's) or ``"rotation"`` (see ``VectorQuantizer``).
    """

    image_channels: int = 3
    image_size: int = 64
    hidden: int = 64
    residual_layers: int = 2
    residual_hidden: int = 32
    stage_residual_layers: int = 0
    stage_residual_hidden: int | None = None
    downsample: int = 4
    embedding_dim: int = 64
    num_codes: int = 512
    groups: int = 1
    beta: float = 0.25
    update: str = "ema"
    decay: float = 0.99
    init: str = "kmeans"
    restart_after: int | None = 100
    likelihood: str = "gaussian"
    logistic_mixtures: int = 10
    gaussian_std: float | None = None
    gradient: str = "straight_through"

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("image_channels", "image_size", "hidden", "residual_hidden",
                     "embedding_dim", "num_codes", "groups", "logistic_mixtures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        num_halvings(self.downsample)  # raises unless a power of two
        c = self
        checks = [
            (c.residual_layers >= 0, f"residual_layers must be >= 0, got {c.residual_layers}"),
            (c.stage_residual_layers >= 0,
             f"stage_residual_layers must be >= 0, got {c.stage_residual_layers}"),
            (c.stage_residual_hidden is None or c.stage_residual_hidden >= 1,
             f"stage_residual_hidden must be None or >= 1, got {c.stage_residual_hidden}"),
            (c.image_size % c.downsample == 0,
             f"image_size {c.image_size} must be divisible by downsample {c.downsample}"),
            (c.embedding_dim % c.groups == 0,
             f"embedding_dim {c.embedding_dim} must be divisible by groups {c.groups}"),
            (c.beta >= 0, f"beta must be >= 0, got {c.beta}"),
            (0 <= c.decay < 1, f"decay must be in [0, 1), got {c.decay}"),
            (c.update in ("ema", "loss"), f"update must be 'ema' or 'loss', got {c.update!r}"),
            (c.init in ("random", "kmeans", "kmeans++"),
             f"init must be 'random', 'kmeans' or 'kmeans++', got {c.init!r}"),
            (c.restart_after is None or c.restart_after >= 1,
             f"restart_after must be None or >= 1, got {c.restart_after}"),
            (c.likelihood in LIKELIHOODS,
             f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {c.likelihood!r}"),
            (c.gaussian_std is None or c.gaussian_std > 0,
             f"gaussian_std must be positive, got {c.gaussian_std}"),
            (c.gradient in GRADIENTS,
             f"gradient must be one of {', '.join(GRADIENTS)}, got {c.gradient!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one image's indices: (h, w), or (G, h, w) when groups > 1."""
        side = self.image_size // self.downsample
        return (side, side) if self.groups == 1 else (self.groups, side, side)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VQVAEConfig:
        """The inverse of ``to_dict``; unknown keys are rejected, missing ones take defaults."""
        return config_from_dict(cls, data)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VQVAEConfig:
        """The preset ``name`` of ``PRESETS``, with some fields replaced."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS: dict[str, VQVAEConfig] = {
    # 64 x 64 ViZDoom frames -> 16 x 16 codes; small enough to train on a laptop CPU
    "default": VQVAEConfig(),
    # paper 4.1: 32 x 32 -> 8 x 8 x 10 latents, 256 hidden units everywhere, codebook learned
    # by the loss, 256-way softmax output (the paper's bits/dim); D = 10 x 64 (not given)
    "paper-cifar10": VQVAEConfig(
        image_size=32, hidden=256, residual_hidden=256, embedding_dim=640, groups=10,
        update="loss", init="random", restart_after=None, likelihood="categorical",
    ),
    # Sonnet's vqvae_example: 128 hidden, 2 x 32 residual, D = 64, EMA 0.99, MSE
    "sonnet-cifar10": VQVAEConfig(
        image_size=32, hidden=128, residual_hidden=32, init="random", restart_after=None,
    ),
    # paper 4.4: 84 x 84 x 3 frames of a 3D world -> 21 x 21 x 1 latents, K = 512 (the frame
    # tokenizer of the video model); 128 hidden units, not the paper's 256, to train on a CPU
    "vizdoom84": VQVAEConfig(image_size=84, hidden=128, residual_hidden=32),
    # paper 4.2: 128 x 128 x 3 -> 32 x 32 x 1 latents, K = 512
    "imagenet128": VQVAEConfig(
        image_size=128, hidden=256, residual_hidden=256, update="loss", init="random",
        restart_after=None,
    ),
}


@dataclass
class VQVAEOutput:
    """Result of ``VQVAE.forward``."""

    reconstruction: torch.Tensor  # (B, C, H, W) the likelihood's mean, in [-0.5, 0.5]
    decoder_output: torch.Tensor  # (B, O, H, W) raw parameters of p(x | z_q)
    indices: torch.Tensor  # (B, h, w), or (B, G, h, w) when groups > 1
    loss: torch.Tensor  # () recon_loss + quantizer_loss: minimise this
    recon_loss: torch.Tensor  # () the likelihood's loss (MSE, or nats per sub-pixel)
    quantizer_loss: torch.Tensor  # () codebook_loss + beta * commitment_loss
    commitment_loss: torch.Tensor  # () before the beta factor
    codebook_loss: torch.Tensor  # () zero with EMA updates
    perplexity: torch.Tensor  # () of code usage in the batch
    usage: torch.Tensor  # () fraction of codes used in the batch


class VQVAE(Pretrained, nn.Module, name="VQVAE", config=VQVAEConfig):
    """VQ-VAE for images, built from a ``VQVAEConfig`` (default: the ``"default"`` preset)."""

    def __init__(self, config: VQVAEConfig | None = None) -> None:
        super().__init__()
        c = self.config = config if config is not None else VQVAEConfig()
        self.likelihood = make_likelihood(c.likelihood, mixtures=c.logistic_mixtures,
                                          std=c.gaussian_std)
        self.encoder = ImageEncoder(c.image_channels, c.hidden, c.residual_layers,
                                    c.residual_hidden, c.embedding_dim, c.downsample,
                                    c.stage_residual_layers, c.stage_residual_hidden)
        self.quantizer = VectorQuantizer(
            c.num_codes, c.embedding_dim, beta=c.beta, update=c.update, decay=c.decay,
            groups=c.groups, init=c.init, restart_after=c.restart_after, gradient=c.gradient,
        )
        self.decoder = ImageDecoder(c.embedding_dim, c.hidden, c.residual_layers,
                                    c.residual_hidden,
                                    self.likelihood.output_channels(c.image_channels),
                                    c.downsample, c.stage_residual_layers,
                                    c.stage_residual_hidden)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VQVAE:
        return cls(VQVAEConfig.from_preset(name, **overrides))

    def forward(self, images: torch.Tensor) -> VQVAEOutput:
        """images (B, C, H, W) in [-0.5, 0.5] -> VQVAEOutput.

        In training mode the quantiser also updates its codebook (EMA, data initialisation,
        restarts); in eval mode nothing changes.
        """
        q = self.quantizer(self.encoder(images))
        output = self.decoder(q.quantized)
        recon_loss, reconstruction = self.likelihood.loss_and_mean(output, images)
        return VQVAEOutput(
            reconstruction=reconstruction,
            decoder_output=output,
            indices=q.indices,
            loss=recon_loss + q.loss,
            recon_loss=recon_loss,
            quantizer_loss=q.loss,
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
            perplexity=q.perplexity,
            usage=q.usage,
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> indices (B, h, w) [(B, G, h, w)]; changes no state."""
        return self.quantizer.frozen(self.encoder(images)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, h, w) [(B, G, h, w)] -> images (B, C, h f, w f) in [-0.5, 0.5]."""
        return self.likelihood.mean(self.decoder(self.quantizer.lookup(indices)))

    def nll(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> (B,) -log p(images | z_q(images)) in nats.

        bits/dim = nll / (C H W ln 2).  Raises ``NotImplementedError`` for the gaussian
        likelihood unless ``config.gaussian_std`` is set.
        """
        output = self.decoder(self.quantizer.frozen(self.encoder(images)).quantized)
        return self.likelihood.nll(output, images)
