"""The decoder's 2x upsampling: a 4x4 transposed convolution of stride 2, padding 1.

``ConvTranspose2x`` is an ``nn.ConvTranspose2d`` (same parameters, same state-dict keys, same
output) with a faster route for bf16 autocast on the CPU.  oneDNN runs bf16 matrix products on
AMX/AVX-512 units several times faster than fp32, but its transposed-convolution backward
falls off that path (on the paper's CIFAR-10 decoder the last layer's backward alone took
more than a third of a training step).  So, under CPU autocast, a widening layer (C_out >
C_in) is computed as the equivalent sub-pixel convolution written as matrix products:

Each output pixel (2m + a, 2n + c) sees only a 2 x 2 window of the input: rows {m - 1, m}
through kernel rows (3, 1) when a = 0, rows {m, m + 1} through kernel rows (2, 0) when a = 1,
and likewise for columns.  Padding the input by one and taking every 2 x 2 patch gives
(H + 1) x (W + 1) patches of 4 C_in values, and phase (a, c) of output (m, n) is patch
(m + a, n + c) times the (4 C_in, C_out) block (a, c) of one (4 C_in, 4 C_out) matrix.  Each
phase is one product over the H x W patches it reads, gathered contiguously (computing all
four phases over all (H + 1) x (W + 1) patches in a single product costs 13 % more at
16 x 16).  The backward pass is written by hand as two more products per phase on contiguous
operands, so every product stays on the fast path.  Activations are kept channels-last.

Elsewhere (fp32, another device, or C_out <= C_in) it is ``nn.ConvTranspose2d`` unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def phase_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(C_in, C_out, 4, 4) transposed-conv weight -> (4 C_in, 4 C_out) patch matrix.

    Rows are ordered (tap row i, tap column j, input channel); columns (phase row a, phase
    column c, output channel).  Phase a, tap i uses kernel row 3 - a - 2 i (a = 0: rows 3, 1;
    a = 1: rows 2, 0), i.e. row a + 2 i of the flipped kernel.
    """
    c_in, c_out = weight.shape[:2]
    w = weight.flip(2, 3).view(c_in, c_out, 2, 2, 2, 2)  # (C_in, C_out, i, a, j, c)
    return w.permute(2, 4, 0, 3, 5, 1).reshape(4 * c_in, 4 * c_out)


class _SubpixelProduct(torch.autograd.Function):
    """x (B, H, W, C_in), matrix (4 C_in, 4 C_out), bias (C_out,) -> (B, 2H, 2W, C_out);
    all in one dtype."""

    @staticmethod
    def forward(ctx, x, matrix, bias):
        b, h, w, c_in = x.shape
        c_out = matrix.shape[1] // 4
        padded = F.pad(x, (0, 0, 1, 1, 1, 1))  # (B, H + 2, W + 2, C_in)
        blocks = matrix.view(4 * c_in, 2, 2, c_out)
        out = x.new_empty(b, h, 2, w, 2, c_out)
        reads = []
        for a in (0, 1):
            for c in (0, 1):
                # (B H W, 4 C_in): the 2 x 2 input window of phase (a, c) of every output pixel
                read = torch.cat([padded[:, a + i : a + i + h, c + j : c + j + w]
                                  for i in (0, 1) for j in (0, 1)], dim=-1).view(-1, 4 * c_in)
                out[:, :, a, :, c] = (read @ blocks[:, a, c]).view(b, h, w, c_out)
                reads.append(read)
        out = out.view(b, 2 * h, 2 * w, c_out).add_(bias)
        ctx.save_for_backward(matrix, *reads)
        ctx.shape = (b, h, w, c_in, c_out)
        return out

    @staticmethod
    def backward(ctx, grad):
        matrix, *reads = ctx.saved_tensors
        b, h, w, c_in, c_out = ctx.shape
        grad = grad.contiguous().view(b, h, 2, w, 2, c_out)
        # the CPU reduction of bf16 accumulates in fp32; asking for dtype=fp32 would first
        # copy the whole gradient to fp32
        grad_bias = grad.view(-1, c_out).sum(0)
        blocks = matrix.view(4 * c_in, 2, 2, c_out)
        grad_blocks = matrix.new_empty(4 * c_in, 2, 2, c_out)
        grad_padded = grad.new_zeros(b, h + 2, w + 2, c_in, dtype=torch.float32)
        phases = ((a, c) for a in (0, 1) for c in (0, 1))
        for (a, c), read in zip(phases, reads, strict=True):
            grad_phase = grad[:, :, a, :, c].reshape(-1, c_out)  # (B H W, C_out)
            grad_blocks[:, a, c] = read.t() @ grad_phase
            grad_read = (grad_phase @ blocks[:, a, c].t()).view(b, h, w, 2, 2, c_in)
            for i in (0, 1):
                for j in (0, 1):
                    grad_padded[:, a + i : a + i + h, c + j : c + j + w] += grad_read[:, :, :, i, j]
        grad_x = grad_padded[:, 1 : h + 1, 1 : w + 1].to(grad.dtype)
        return grad_x, grad_blocks.view(4 * c_in, 4 * c_out), grad_bias


def subpixel_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                            dtype: torch.dtype) -> torch.Tensor:
    """``conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for a 4x4 ``weight``,
    computed in ``dtype`` by the sub-pixel product.

    x (B, C_in, H, W) -> (B, C_out, 2H, 2W), channels-last in memory, in ``dtype``.
    """
    with torch.autocast(x.device.type, enabled=False):
        out = _SubpixelProduct.apply(x.permute(0, 2, 3, 1).to(dtype),
                                     phase_matrix(weight.to(dtype)), bias.to(dtype))
    return out.permute(0, 3, 1, 2)


class ConvTranspose2x(nn.ConvTranspose2d):
    """4x4 transposed convolution, stride 2, padding 1: (B, C_in, H, W) -> (B, C_out, 2H, 2W).

    The sub-pixel product is used under CPU autocast for layers that widen (C_out > C_in:
    the 256 -> 3 x 256 logits of the paper's CIFAR-10 decoder, 1.6x faster forward and
    backward there).  For C_out <= C_in oneDNN's own transposed convolution measured as fast
    or faster (256 -> 256 at 8 x 8, 128 -> 3 at 16 x 16), so it is kept.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or not torch.is_autocast_enabled("cpu")
                or self.out_channels <= self.in_channels):
            return super().forward(x)
        return subpixel_conv_transpose(x, self.weight, self.bias, torch.get_autocast_dtype("cpu"))
