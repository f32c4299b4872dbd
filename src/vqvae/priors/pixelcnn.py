"""A gated PixelCNN prior over VQ-VAE codes (section 3.2 of the VQ-VAE paper).

    codes (B, h, w) [(B, G, h, w)] --embedding, E per group--> (B, G E, h, w)
        --L gated layers (vertical + horizontal stacks, ``gated.py``)--> skips summed (B, F, h, w)
        --ReLU, 1x1, ReLU, 1x1--> logits (B, K, h, w) [(B, K, G, h, w)]

The order of the autoregressive factorisation is raster over positions (row by row, left to
right) and, within a position, the groups g = 0 .. G-1: the logits of group g at position p
depend on the codes at every earlier position (all groups) and on groups < g at p.  How the
masks enforce it is explained in ``gated.py``; ``tests/priors/test_pixelcnn.py`` checks it with
gradients.

``sample`` draws every sample of a batch together, position by position, and by default
recomputes only what a new code changes (``sampling.py``): about one forward pass in all,
instead of one per latent.

A prior is saved like a VQ-VAE: ``config.json`` (the ``PixelCNNConfig`` and free-form
``metadata``, e.g. which VQ-VAE's codes it was trained on) beside ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..pretrained import Pretrained, check_field_types, config_from_dict, read_model_config
from .gated import GatedLayer, MaskedConv2d, group_mask, hidden_labels, pointwise


@dataclass(frozen=True)
class PixelCNNConfig:
    """Everything that determines a ``PixelCNNPrior``.

    The code grid (``num_codes``, ``groups``, ``height``, ``width``) must be the VQ-VAE's
    (``for_vqvae``); the sizes are this package's choice (the VQ-VAE paper gives none for its
    priors): 15 layers of 128 channels with 5 x 5 stacks reach 31 rows up, the whole 32 x 32
    grid of the ImageNet model.

    Attributes:
        num_codes: K, codes per codebook; the output is a K-way softmax.
        groups: G codebooks per position, generated in order 0 .. G-1.
        height, width: h, w of the code grid.
        channels: F, hidden channels of each stack.
        layers: L gated layers.
        kernel_size: k, odd; each layer reaches k // 2 rows up and columns left.
        num_classes: > 0 for a class-conditional prior (a learned bias per class in every
            gate); 0: unconditional.
        cond_channels: C > 0 for a prior conditioned on a map (B, C, h, w) over its grid (a
            1x1 convolution of it added to every gate, e.g. features of the earlier frames
            of a video); 0: none.
    """

    num_codes: int = 512
    groups: int = 1
    height: int = 16
    width: int = 16
    channels: int = 128
    layers: int = 15
    kernel_size: int = 5
    num_classes: int = 0
    cond_channels: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("num_codes", "groups", "height", "width", "channels", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        for name in ("num_classes", "cond_channels"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.groups > 1 and self.channels < 2 * self.groups - 1:
            raise ValueError(f"channels must be at least 2 groups - 1 = {2 * self.groups - 1} "
                             f"(each group needs its own channels), got {self.channels}")

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one sample's codes: (h, w), or (G, h, w) when groups > 1."""
        hw = (self.height, self.width)
        return hw if self.groups == 1 else (self.groups, *hw)

    @property
    def embedding_dim(self) -> int:
        """E, the width of each group's code embedding: ceil(F / G)."""
        return -(-self.channels // self.groups)

    @classmethod
    def for_vqvae(cls, vqvae_config, **overrides) -> PixelCNNConfig:
        """The grid of a ``VQVAEConfig`` (K, G, h, w), with the other fields from ``overrides``."""
        *_, h, w = vqvae_config.latent_shape
        return cls(num_codes=vqvae_config.num_codes, groups=vqvae_config.groups, height=h,
                   width=w, **overrides)

    def grid_mismatch(self, vqvae_config) -> str | None:
        """Why codes of ``vqvae_config`` do not fit this prior, or None if they do."""
        mine = (self.num_codes, self.latent_shape)
        theirs = (vqvae_config.num_codes, tuple(vqvae_config.latent_shape))
        if mine == theirs:
            return None
        return (f"the prior models K={self.num_codes} codes on a {_grid(self.latent_shape)} "
                f"grid, the VQ-VAE makes K={theirs[0]} codes on a {_grid(theirs[1])} grid")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PixelCNNConfig:
        """The inverse of ``to_dict``; unknown keys are rejected, missing ones take defaults."""
        return config_from_dict(cls, data)


def _grid(shape) -> str:
    return " x ".join(map(str, shape[1:] + shape[:1] if len(shape) == 3 else shape))


class PixelCNNPrior(Pretrained, nn.Module, name="PixelCNNPrior", config=PixelCNNConfig):
    """Gated PixelCNN over code grids, built from a ``PixelCNNConfig``."""

    def __init__(self, config: PixelCNNConfig | None = None) -> None:
        super().__init__()
        c = self.config = config if config is not None else PixelCNNConfig()
        self.metadata: dict = {}  # saved with the weights (e.g. which VQ-VAE made the codes)
        e = c.embedding_dim
        self.embedding = nn.Embedding(c.groups * c.num_codes, e)
        self.register_buffer("offsets", torch.arange(c.groups) * c.num_codes, persistent=False)
        in_labels = torch.arange(c.groups).repeat_interleave(e)
        labels = hidden_labels(c.channels, c.groups)
        self.layers = nn.ModuleList(
            GatedLayer(in_labels if i == 0 else labels, labels, c.kernel_size, c.num_classes,
                       first=i == 0, last=i == c.layers - 1, cond_channels=c.cond_channels)
            for i in range(c.layers)
        )
        out_labels = torch.arange(c.groups).repeat_interleave(c.num_codes)
        self.head = pointwise(labels, labels)
        mask = group_mask(out_labels, labels, strict=False)[:, :, None, None]
        self.logits = MaskedConv2d(c.channels, c.groups * c.num_codes, 1, mask)

    # ------------------------------------------------------------------ the network
    def _grouped(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, h, w) [(B, G, h, w)] -> (B, G, h, w), checked."""
        c = self.config
        shape = tuple(codes.shape[1:])
        if (len(shape) != len(c.latent_shape) or shape[:-2] != c.latent_shape[:-2]
                or shape[-1] != c.width or not 1 <= shape[-2] <= c.height):
            raise ValueError(f"codes must be (B, {', '.join(map(str, c.latent_shape))}) "
                             f"(or fewer rows), got {tuple(codes.shape)}")
        return codes[:, None] if c.groups == 1 else codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, h, w) [(B, G, h, w)] int -> (B, G E, h, w), group g in [g E, (g+1) E)."""
        x = self.embedding(self._grouped(codes) + self.offsets[:, None, None])  # (B, G, h, w, E)
        return x.permute(0, 1, 4, 2, 3).flatten(1, 2)

    def logits_from_embedding(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                              cond: torch.Tensor | None = None) -> torch.Tensor:
        """(B, G E, h, w) embedded codes -> logits (B, K, h, w) [(B, K, G, h, w)].

        ``forward`` = ``logits_from_embedding(embed(codes))``; separate so that gradients with
        respect to the embedding can show what each output depends on.
        """
        labels = self._labels(labels, x.shape[0], x.device)
        cond = self._cond(cond, x.shape[0], x.shape[-2])
        v, h, skips = x, x, 0
        for layer in self.layers:
            v, h, skip = layer(v, h, labels, cond)
            skips = skips + skip
        out = self.logits(F.relu(self.head(F.relu(skips))))  # (B, G K, h, w)
        b, _, height, width = out.shape
        out = out.view(b, self.config.groups, self.config.num_codes, height, width)
        return out[:, 0] if self.config.groups == 1 else out.transpose(1, 2)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """codes (B, h, w) [(B, G, h, w)], labels (B,), cond (B, C, h, w) -> logits
        (B, K, h, w) [(B, K, G, h, w)].

        The logits at a position (and group) are those of p(code | earlier codes, label, map).
        ``codes`` may hold only the first rows (B, [G,] r, w): rows never depend on later ones
        (``cond`` is then cut to its first r rows).
        """
        return self.logits_from_embedding(self.embed(codes), labels, cond)

    def nll(self, codes: torch.Tensor, labels: torch.Tensor | None = None,
            cond: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) -log p(codes | label, map) in nats, summed over the h w G latents."""
        logits = self(codes, labels, cond)
        return F.cross_entropy(logits.float(), codes.long(), reduction="none").flatten(1).sum(1)

    def _labels(self, labels, batch: int, device) -> torch.Tensor | None:
        k = self.config.num_classes
        if k == 0:
            if labels is not None:
                raise ValueError("this prior is unconditional (num_classes=0); pass no labels")
            return None
        if labels is None:
            raise ValueError(f"this prior is class-conditional ({k} classes); pass labels")
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
        if labels.numel() == 1:
            labels = labels.expand(batch)
        if labels.shape != (batch,):
            raise ValueError(f"labels must be ({batch},), got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"class labels must be in [0, {k}), got {labels.tolist()}")
        return labels

    def _cond(self, cond, batch: int, rows: int) -> torch.Tensor | None:
        """The conditioning map checked against the config, cut to its first ``rows``."""
        c = self.config
        if c.cond_channels == 0:
            if cond is not None:
                raise ValueError("this prior takes no conditioning map (cond_channels=0)")
            return None
        expected = (batch, c.cond_channels, c.height, c.width)
        if cond is None or tuple(cond.shape) != expected:
            found = "none" if cond is None else tuple(cond.shape)
            raise ValueError(f"this prior is conditioned on a map {expected}, got {found}")
        return cond[:, :, :rows]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | int | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None, cache: bool = True,
               cond: torch.Tensor | None = None, argmax: bool = False) -> torch.Tensor:
        """Draws n code grids, all n in one batch -> (n, h, w) [(n, G, h, w)] int64.

        Args:
            labels: (n,) class indices, or one for all (class-conditional priors only).
            temperature: the logits are divided by it (< 1: more typical samples).
            cond: (n, C, h, w) the conditioning map (priors with ``cond_channels`` only).
            argmax: take the most likely code each time instead of drawing (greedy).
            generator: the random source (on the model's device), for reproducible samples.
            cache: keep each layer's rows and recompute only the current column per latent
                (about one forward pass in all); False: recompute the network on rows
                0 .. i for every latent of row i (a reference, h w G / 2 forward passes).
        """
        from .sampling import sample_cached, sample_recomputed

        if temperature <= 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be positive, got {temperature}")
        device = self.offsets.device
        labels = self._labels(labels, n, device)
        cond = self._cond(cond, n, self.config.height)
        fn = sample_cached if cache else sample_recomputed
        return fn(self, n, labels, None if argmax else temperature, generator, cond)


def read_prior_config(path: Path) -> tuple[PixelCNNConfig, dict]:
    """The (config, metadata) saved in ``path`` (a prior's config.json), or a CheckpointError."""
    return read_model_config(path, PixelCNNPrior.model_name, PixelCNNConfig.from_dict)
