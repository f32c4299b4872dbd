"""The image encoder and decoder of section 4.1 of the paper.

    ImageEncoder: (B, C, H, W) -> (B, D, H / f, W / f)      z_e, fed to the quantiser
    ImageDecoder: (B, D, h, w) -> (B, C_out, h f, w f)      the likelihood's parameters

with f = ``downsample``, a power of two.  The paper (CIFAR-10): "2 strided convolutional layers
with stride 2 and window size 4 x 4, followed by two residual 3 x 3 blocks ..., all having 256
hidden units"; the decoder has "two residual 3 x 3 blocks, followed by two transposed
convolutions with stride 2 and window size 4 x 4".  In detail (as in Sonnet's example):

    encoder: log2(f) x [4x4 stride-2 conv, ReLU], 3x3 conv, residual stack, 1x1 conv to D
    decoder: 3x3 conv from D, residual stack, log2(f) 4x4 stride-2 transposed convs with a
             ReLU between them; the last one produces C_out channels

Optionally (``stage_layers`` > 0, not in the paper) a residual stack of that many blocks also
sits at every intermediate resolution, between two strided layers (for f = 4: at H / 2), in
both networks, so the decoder has capacity above the latent resolution to draw detail.

Every strided layer has ``hidden`` channels, as the paper says (Sonnet's example gives the
first one hidden / 2).  With f = 1 there is no strided layer; the decoder then ends with a
3x3 conv to C_out, the mirror of the encoder's first conv.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResidualStack
from .upsample import ConvTranspose2x


def num_halvings(factor: int) -> int:
    """log2 of the downsampling factor: 1 -> 0, 4 -> 2, 8 -> 3; anything else raises."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"downsample factor must be a positive power of two, got {factor!r}")
    if factor & (factor - 1):
        raise ValueError(f"downsample factor must be a power of two (1, 2, 4, ...), got {factor}")
    return factor.bit_length() - 1


def _check_stage_layers(stage_layers: int) -> None:
    # checked here: with one halving there is no intermediate resolution to build them at
    if stage_layers < 0:
        raise ValueError(f"stage_layers must be >= 0, got {stage_layers}")


class ImageEncoder(nn.Module):
    """Strided convolutions, a residual stack and a 1x1 projection to the quantiser's D.

    Args:
        in_channels: C, channels of the image (3 for RGB).
        hidden: channels of every conv layer (paper: 256, Sonnet: 128).
        residual_layers: blocks in the residual stack (paper: 2).
        residual_hidden: channels inside each residual block.
        out_dim: D, the quantiser's dimension.
        downsample: f, a power of two; the latent grid is (H / f, W / f).
        stage_layers: residual blocks at each intermediate resolution (0: none, the paper's).
        stage_hidden: channels inside those blocks; None: ``residual_hidden``.

    (B, C, H, W) -> (B, D, H / f, W / f); H and W must be divisible by f.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        residual_layers: int,
        residual_hidden: int,
        out_dim: int,
        downsample: int = 4,
        stage_layers: int = 0,
        stage_hidden: int | None = None,
    ) -> None:
        super().__init__()
        _check_stage_layers(stage_layers)
        self.in_channels, self.out_dim, self.downsample = in_channels, out_dim, downsample
        stage_hidden = stage_hidden or residual_hidden
        layers: list[nn.Module] = []
        channels = in_channels
        steps = num_halvings(downsample)
        for i in range(steps):
            # (B, ch, H, W) -> (B, hidden, H / 2, W / 2)
            layers += [nn.Conv2d(channels, hidden, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            channels = hidden
            if stage_layers and i < steps - 1:
                layers.append(ResidualStack(hidden, stage_layers, stage_hidden))
        layers += [
            nn.Conv2d(channels, hidden, kernel_size=3, padding=1),
            ResidualStack(hidden, residual_layers, residual_hidden),
            nn.Conv2d(hidden, out_dim, kernel_size=1),  # (B, hidden, h, w) -> (B, D, h, w)
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> z_e (B, D, H / f, W / f)."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"ImageEncoder expects (B, {self.in_channels}, H, W) images, "
                f"got {tuple(images.shape)}"
            )
        height, width = images.shape[-2:]
        if height % self.downsample or width % self.downsample:
            raise ValueError(
                f"image height and width must be divisible by the downsample factor "
                f"{self.downsample}, got {height} x {width}"
            )
        return self.net(images)


class ImageDecoder(nn.Module):
    """The encoder's mirror: 3x3 conv, residual stack, strided transposed convolutions.

    Args:
        in_dim: D, channels of the quantised latents.
        hidden, residual_layers, residual_hidden: as for ``ImageEncoder``.
        out_channels: channels of the output, ``likelihood.output_channels(C)``.
        upsample: f, a power of two.
        stage_layers, stage_hidden: as for ``ImageEncoder``.

    (B, D, h, w) -> (B, out_channels, h f, w f)
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        residual_layers: int,
        residual_hidden: int,
        out_channels: int,
        upsample: int = 4,
        stage_layers: int = 0,
        stage_hidden: int | None = None,
    ) -> None:
        super().__init__()
        _check_stage_layers(stage_layers)
        self.in_dim, self.out_channels, self.upsample = in_dim, out_channels, upsample
        stage_hidden = stage_hidden or residual_hidden
        layers: list[nn.Module] = [
            # (B, D, h, w) -> (B, hidden, h, w)
            nn.Conv2d(in_dim, hidden, kernel_size=3, padding=1),
            ResidualStack(hidden, residual_layers, residual_hidden),
        ]
        steps = num_halvings(upsample)
        for i in range(steps):
            last = i == steps - 1
            # (B, hidden, h, w) -> (B, hidden or out_channels, 2 h, 2 w)
            layers.append(ConvTranspose2x(hidden, out_channels if last else hidden))
            if not last:
                layers.append(nn.ReLU())
                if stage_layers:
                    layers.append(ResidualStack(hidden, stage_layers, stage_hidden))
        if steps == 0:
            layers.append(nn.Conv2d(hidden, out_channels, kernel_size=3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, D, h, w) -> (B, out_channels, h f, w f)."""
        if latents.dim() != 4 or latents.shape[1] != self.in_dim:
            raise ValueError(
                f"ImageDecoder expects (B, {self.in_dim}, h, w) latents, got {tuple(latents.shape)}"
            )
        return self.net(latents)
