"""Building blocks shared by the encoders and decoders.

The residual stack of section 4.1 of the paper: each block is

    x <- x + conv1x1(relu(conv3x3(relu(x))))

and, as in the paper's reference implementation (Sonnet ``ResidualStack``), one ReLU follows the
last block, so the stack's output is non-negative.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """ReLU, 3x3 conv to ``hidden`` channels, ReLU, 1x1 conv back; added to the input.

    ``dims=1``: the same with convolutions of width 3 and 1 over a sequence.

    (B, channels, H, W) -> (B, channels, H, W); dims=1: (B, channels, T) -> (B, channels, T)
    """

    def __init__(self, channels: int, hidden: int, dims: int = 2) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        # not in place: the input is needed again for the skip connection
        self.branch = nn.Sequential(
            nn.ReLU(),
            conv(channels, hidden, kernel_size=3, padding=1),
            nn.ReLU(),
            conv(hidden, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class ResidualStack(nn.Module):
    """``num_layers`` residual blocks followed by a ReLU.

    Args:
        channels: channels of the input and output.
        num_layers: number of residual blocks (paper: 2).
        hidden: channels inside each block, after the 3x3 conv (paper: 256, Sonnet: 32).
        dims: 2 for images, 1 for sequences (see ``ResidualBlock``).

    (B, channels, H, W) -> (B, channels, H, W), non-negative; dims=1: (B, channels, T)
    """

    def __init__(self, channels: int, num_layers: int, hidden: int, dims: int = 2) -> None:
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.layers = nn.ModuleList(ResidualBlock(channels, hidden, dims)
                                    for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return torch.relu(x)
