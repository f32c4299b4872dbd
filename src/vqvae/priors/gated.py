"""The pieces of a gated PixelCNN: group-causal masks, masked convolutions, the gated layer.

One gated layer (van den Oord et al. 2016, fig. 2) has two stacks that together see every
earlier position and no later one (no blind spot):

* the vertical stack: a (k//2 + 1) x k convolution over the rows above *and including* the
  current row; it never reaches the output directly, only through
* the link, a 1x1 convolution of the vertical pre-activation shifted down one row, added to
* the horizontal stack: a 1 x (k//2 + 1) convolution over the columns left of *and including*
  the current one, with a residual connection and a 1x1 skip connection to the output.

Both stacks use gated units y = tanh(a) * sigmoid(b), with a learned per-class bias added to
a and b when the prior is class-conditional (eq. 4 of the paper), and, when it is conditioned
on a map (B, C, H, W) (the paper's location-dependent conditioning, e.g. features of earlier
video frames), a 1x1 convolution of the map added at every position.  Neither reads the
codes being modelled, so neither changes what depends on what.

Several codebooks per position (G groups) are ordered g = 0 .. G-1 within a position.  Every
channel carries a *group label*: the input embedding of group g has label g; a hidden channel
has label g (it may depend on groups < g at its own position) or -1, a "context" channel that
depends on earlier positions only and that every group may read.  Wherever a layer reads the
*current* position (the current column of the horizontal convolution, and every 1x1
convolution of the horizontal stack and the output head), an output of label o may read an
input of label i only if

    i < o   in the first layer (it reads the codes themselves: mask "A"), and
    i <= o  afterwards (it reads features that already exclude their own group: mask "B").

So the logits of group g at position p depend on all codes before p and on groups < g at p.
The vertical stack and the link need no group mask: the link only carries rows above.
With G = 1 every label is 0, and the masks reduce to the usual PixelCNN ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONTEXT = -1  # label of hidden channels that any group may read


def hidden_labels(channels: int, groups: int) -> torch.Tensor:
    """(channels,) group label of each hidden channel.

    One group: all 0.  G > 1: the first half are context channels (-1), the rest is split as
    evenly as possible over the groups 0 .. G-1 (each needs at least one channel), so that even
    group 0 sees half the network's width.
    """
    if groups == 1:
        return torch.zeros(channels, dtype=torch.long)
    context = channels // 2
    rest = channels - context
    assert rest >= groups, "PixelCNNConfig checks channels >= 2 groups - 1"
    return torch.cat([torch.full((context,), CONTEXT), torch.arange(rest) * groups // rest])


def group_mask(out_labels: torch.Tensor, in_labels: torch.Tensor, strict: bool) -> torch.Tensor:
    """(O, I) 1 where output channel o may read input channel i at the same position."""
    o, i = out_labels[:, None], in_labels[None, :]
    return (i < o if strict else i <= o).float()


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask (O, I, kh, kw).

    Masked weights get no gradient and never contribute; an all-ones mask is dropped.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, mask: torch.Tensor):
        super().__init__(in_channels, out_channels, kernel_size)
        mask = mask.expand_as(self.weight).clone()
        self.register_buffer("mask", None if bool(mask.all()) else mask, persistent=False)
        if self.mask is not None:
            with torch.no_grad():
                self.weight.mul_(self.mask)

    def masked_weight(self) -> torch.Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """A 1x1 convolution applied to vectors: (B, I) -> (B, O)."""
        return F.linear(x, self.masked_weight().flatten(1), self.bias)


def pointwise(out_labels: torch.Tensor, in_labels: torch.Tensor) -> MaskedConv2d:
    """A group-causal 1x1 convolution (mask "B")."""
    mask = group_mask(out_labels, in_labels, strict=False)[:, :, None, None]
    return MaskedConv2d(len(in_labels), len(out_labels), 1, mask)


def gate(x: torch.Tensor) -> torch.Tensor:
    """(B, 2F, ...) -> (B, F, ...): tanh(first half) * sigmoid(second half)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W): row r takes row r - 1; row 0 becomes zeros."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class GatedLayer(nn.Module):
    """One gated layer: (v, h) -> (v', h', skip); first layer: mask "A" and no residual.

    Args:
        in_labels: group labels of the input channels (the embedding's for the first layer).
        labels: group labels of the F hidden channels.
        kernel_size: k (odd); the vertical stack reaches k // 2 rows up (the link one row
            more), the horizontal one k // 2 columns left.
        num_classes: > 0 adds a learned class bias to every gate.
        first: whether this layer reads the codes' embedding.
        last: whether this is the last layer, whose only output is its skip (it has no
            ``h_out`` and returns v and h unchanged).
        cond_channels: C > 0 adds a 1x1 convolution of a conditioning map (B, C, H, W) to
            every gate; 0: no map (and no such weights).
    """

    def __init__(self, in_labels: torch.Tensor, labels: torch.Tensor, kernel_size: int,
                 num_classes: int, first: bool, last: bool = False,
                 cond_channels: int = 0) -> None:
        super().__init__()
        c_in, f = len(in_labels), len(labels)
        self.reach = r = kernel_size // 2
        self.first, self.last = first, last
        self.v_conv = nn.Conv2d(c_in, 2 * f, (r + 1, 2 * r + 1))
        self.v_to_h = nn.Conv2d(2 * f, 2 * f, 1)
        # columns left of the current one: unmasked; the current column: group-causal
        mask = torch.ones(2 * f, c_in, 1, r + 1)
        mask[:, :, 0, r] = group_mask(labels.repeat(2), in_labels, strict=first)
        self.h_conv = MaskedConv2d(c_in, 2 * f, (1, r + 1), mask)
        self.h_out = None if last else pointwise(labels, labels)
        self.skip = pointwise(labels, labels)
        self.cond = nn.Embedding(num_classes, 4 * f) if num_classes else None
        self.cond_map = nn.Conv2d(cond_channels, 4 * f, 1) if cond_channels else None

    def class_bias(self, labels: torch.Tensor | None):
        """(B,) class indices -> biases (B, 2F) of the vertical and the horizontal gates;
        (0, 0) for an unconditional layer."""
        if self.cond is None:
            return 0, 0
        return self.cond(labels).chunk(2, dim=1)

    def map_bias(self, cond: torch.Tensor | None):
        """A conditioning map (B, C, H, W) -> biases (B, 2F, H, W) of the vertical and the
        horizontal gates; (0, 0) for a layer without one."""
        if self.cond_map is None:
            return 0, 0
        return self.cond_map(cond).chunk(2, dim=1)

    def forward(self, v: torch.Tensor, h: torch.Tensor, labels: torch.Tensor | None,
                cond: torch.Tensor | None = None):
        """v, h (B, C, H, W), cond (B, C', H, W) -> v', h', skip, each (B, F, H, W)."""
        r = self.reach
        bias_v, bias_h = self.class_bias(labels)
        if self.cond is not None:
            bias_v, bias_h = bias_v[:, :, None, None], bias_h[:, :, None, None]
        map_v, map_h = self.map_bias(cond)
        bias_v, bias_h = bias_v + map_v, bias_h + map_h
        v_pre = self.v_conv(F.pad(v, (r, r, r, 0))) + bias_v
        h_pre = self.h_conv(F.pad(h, (r, 0, 0, 0))) + shift_down(self.v_to_h(v_pre)) + bias_h
        gated = gate(h_pre)
        if self.last:
            return v, h, self.skip(gated)
        h_next = self.h_out(gated) if self.first else h + self.h_out(gated)
        return gate(v_pre), h_next, self.skip(gated)
