"""Log-mel spectrograms, and pictures of them side by side (Pillow only).

    spec = log_mel_spectrogram(wave, 8000)              # (n_mels, frames) in dB
    save_spectrograms([orig, recon], ["original", "reconstruction"], 8000, "cmp.png")

The STFT uses a Hann window of ``n_fft`` samples (default: 32 ms, rounded to a power of two)
every ``hop`` samples (default: 4 ms), centred (the signal is reflect-padded by n_fft / 2).
Mel filters are triangles on the HTK mel scale, mel = 2595 log10(1 + f / 700), from 0 Hz to
the Nyquist frequency; values are 10 log10(power + 1e-10), in dB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..images import save_png


def stft_power(wave, n_fft: int, hop: int) -> torch.Tensor:
    """(T,) waveform -> (n_fft // 2 + 1, frames) power |X|^2 (float32)."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
    if len(x) <= n_fft // 2:  # reflect padding needs more samples than the pad
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - len(x)))
    spec = torch.stft(x, n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, pad_mode="reflect", return_complex=True)
    return spec.abs().square()


def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced in mel, peak 1."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges_mel = np.linspace(0.0, mel(sample_rate / 2), n_mels + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.from_numpy(np.clip(np.minimum(up, down), 0.0, None).astype(np.float32))


def default_n_fft(sample_rate: int) -> int:
    """The analysis window: 32 ms rounded to a power of two (256 samples at 8 kHz)."""
    return 2 ** round(math.log2(0.032 * sample_rate))


def log_mel_spectrogram(wave, sample_rate: int, *, n_mels: int = 64, n_fft: int | None = None,
                        hop: int | None = None) -> np.ndarray:
    """(T,) waveform -> (n_mels, frames) float32 log-mel power in dB."""
    n_fft = n_fft or default_n_fft(sample_rate)
    hop = hop or max(1, round(0.004 * sample_rate))
    power = stft_power(wave, n_fft, hop)
    mel = mel_filters(sample_rate, n_fft, n_mels) @ power
    return (10.0 * torch.log10(mel + 1e-10)).numpy()


# a perceptually ordered dark-blue -> yellow colour map (a few anchors of "viridis")
_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98],
                     [253, 231, 37]], dtype=np.float64)


def _colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB."""
    pos = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(pos.astype(int), len(_ANCHORS) - 2)
    t = (pos - i)[..., None]
    return np.round(_ANCHORS[i] * (1 - t) + _ANCHORS[i + 1] * t).astype(np.uint8)


def save_spectrograms(waves: Sequence, titles: Sequence[str], sample_rate: int,
                      path: str | os.PathLike, *, n_mels: int = 64, width: int = 720,
                      dynamic_range: float = 80.0) -> Path:
    """One log-mel spectrogram per waveform, stacked, low frequencies at the bottom.

    All share one colour scale: the loudest bin of them all down to ``dynamic_range`` dB
    below it; time runs over ``width`` pixels for the longest waveform.
    """
    specs = [log_mel_spectrogram(w, sample_rate, n_mels=n_mels) for w in waves]
    top = max(float(s.max()) for s in specs)
    frames = max(s.shape[1] for s in specs)
    row_h, label_h = 2 * n_mels, 16
    canvas = Image.new("RGB", (width, len(specs) * (row_h + label_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (spec, title) in enumerate(zip(specs, titles, strict=True)):
        rgb = _colour((spec[::-1] - (top - dynamic_range)) / dynamic_range)
        w = max(1, round(width * spec.shape[1] / frames))
        img = Image.fromarray(rgb).resize((w, row_h), Image.NEAREST)
        y = k * (row_h + label_h)
        canvas.paste(img, (0, y + label_h))
        seconds = len(np.asarray(waves[k]).reshape(-1)) / sample_rate
        draw.text((4, y + 2), f"{title}  ({seconds:.2f} s, 0-{sample_rate // 2} Hz)",
                  fill="black")
    return save_png(canvas, path)
