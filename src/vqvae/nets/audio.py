"""The speech encoder of section 4.3 of the paper.

    AudioEncoder: waveform (B, T) -> z_e (B, D, T / 2^n)

"The encoder has 6 strided convolutions with stride 2 and window-size 4.  This yields a latent
space 64x smaller than the original waveform."  In detail: n x [conv (window 4, stride 2,
padding 1), ReLU], then a 1x1 conv to D.  The number of halvings n is configurable (6: 64x,
7: 128x); the paper gives no channel count (``channels``).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResidualStack


class AudioEncoder(nn.Module):
    """Strided 1-D convolutions and a 1x1 projection to the quantiser's D.

    Args:
        channels: channels of every strided layer.
        out_dim: D, the quantiser's dimension.
        halvings: n, strided layers; one latent per ``2 ** n`` samples (the hop).
        residual_layers: residual blocks (ReLU, conv of width 3, ReLU, 1x1 conv) at the code
            rate after the strided layers, as the image encoder's residual stack; each widens
            what a code sees by two hops.  0: none, the paper's encoder.

    (B, T) or (B, 1, T) -> (B, D, T / hop); T must be a multiple of the hop.
    """

    def __init__(self, channels: int, out_dim: int, halvings: int = 6,
                 residual_layers: int = 0) -> None:
        super().__init__()
        if halvings < 1:
            raise ValueError(f"halvings must be at least 1, got {halvings}")
        self.out_dim, self.hop = out_dim, 2**halvings
        layers: list[nn.Module] = []
        for i in range(halvings):
            # (B, ch, T) -> (B, channels, T / 2)
            layers += [nn.Conv1d(1 if i == 0 else channels, channels, kernel_size=4, stride=2,
                                 padding=1), nn.ReLU()]
        if residual_layers:
            layers.append(ResidualStack(channels, residual_layers, channels, dims=1))
        layers.append(nn.Conv1d(channels, out_dim, kernel_size=1))  # -> (B, D, T / hop)
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform (B, T) [or (B, 1, T)] floats -> z_e (B, D, T / hop)."""
        x = waveform.unsqueeze(1) if waveform.dim() == 2 else waveform
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"AudioEncoder expects (B, T) waveforms, got {tuple(waveform.shape)}")
        if x.shape[-1] % self.hop:
            raise ValueError(f"AudioEncoder needs a length divisible by {self.hop}, got "
                             f"{x.shape[-1]}")
        return self.net(x)
