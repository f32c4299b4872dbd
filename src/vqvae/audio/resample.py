"""Band-limited resampling by a rational factor: a Kaiser-windowed sinc filter, polyphase.

For new / orig = L / M (in lowest terms), output sample n lies at input time t = n M / L; it is
the sum of the 2 W input samples around t weighted by

    h(delta) = fc sinc(fc delta) kaiser(delta / W),   delta = t - input position,

with fc = rolloff * min(1, L / M) (the cut-off, a fraction of the input's Nyquist frequency:
below both rates' Nyquist, so downsampling does not alias) and W = zero_crossings / fc.  The
fractional part of t takes only L values, so the L filters (phases) are computed once and each
output sample is one dot product of its 2 W inputs with its phase's filter.  Every phase is
scaled to sum to 1 (a constant signal stays constant); the signal is zero outside its ends.
The output has ceil(T L / M) samples; sample 0 is at the same time as input sample 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def resample(x, orig_rate: int, new_rate: int, *, zero_crossings: int = 16,
             rolloff: float = 0.945, kaiser_beta: float = 8.6, chunk: int = 1 << 15):
    """(..., T) float waveform at ``orig_rate`` Hz -> (..., ceil(T new / orig)) at ``new_rate``.

    Accepts a torch tensor or a NumPy array and returns the same kind and float dtype (integer
    input is converted to float32).  ``chunk`` output samples are computed at a time.
    """
    for name, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise ValueError(f"{name} must be a positive integer number of Hz, got {rate!r}")
    is_numpy = isinstance(x, np.ndarray)
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    if orig_rate == new_rate:
        return x.copy() if is_numpy else t.clone()
    g = math.gcd(orig_rate, new_rate)
    up, down = new_rate // g, orig_rate // g
    fc = rolloff * min(1.0, up / down)
    half = math.ceil(zero_crossings / fc)
    filters = _phase_filters(up, fc, half, kaiser_beta).to(t.dtype)  # (up, 2 half)

    shape, length = t.shape[:-1], t.shape[-1]
    n_out = -(-length * up // down)
    rows = t.reshape(-1, length)
    padded = torch.nn.functional.pad(rows, (half - 1, half + 1))
    windows = padded.unfold(-1, 2 * half, 1)  # (R, T + 1, 2 half): inputs base-half+1 .. base+half
    out = torch.empty(rows.shape[0], n_out, dtype=t.dtype)
    for lo in range(0, n_out, chunk):
        n = torch.arange(lo, min(lo + chunk, n_out), dtype=torch.long)
        base, phase = (n * down) // up, (n * down) % up
        out[:, lo : lo + len(n)] = torch.einsum("rcw,cw->rc", windows[:, base], filters[phase])
    out = out.reshape(*shape, n_out)
    return out.numpy() if is_numpy else out


def _phase_filters(up: int, fc: float, half: int, beta: float) -> torch.Tensor:
    """(up, 2 half) weights: row p for outputs at fraction p / up past an input sample."""
    frac = torch.arange(up, dtype=torch.float64)[:, None] / up
    taps = torch.arange(-half + 1, half + 1, dtype=torch.float64)[None, :]
    delta = frac - taps  # time from each input sample to the output sample, in input samples
    window = torch.special.i0(beta * torch.sqrt((1 - (delta / half) ** 2).clamp(min=0)))
    h = fc * torch.sinc(fc * delta) * window  # the window's scale cancels below
    return h / h.sum(-1, keepdim=True)
