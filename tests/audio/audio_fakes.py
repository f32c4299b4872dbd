"""Tiny audio files and models for the speech tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SHARED_DATA = next((p / "shared" / "data" for p in Path(__file__).resolve().parents
                    if (p / "shared" / "data").is_dir()), None)

# a speech VQ-VAE small enough to run a few steps in a fraction of a second
TINY = dict(halvings=2, encoder_channels=8, embedding_dim=4, num_codes=16, residual_channels=8,
            skip_channels=8, layers=3, stacks=1, speaker_dim=4, init="random",
            restart_after=None)


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5,
         channels: int = 1) -> np.ndarray:
    """(T,) or (T, channels) float32 sine; channel c has amplitude / (c + 1)."""
    t = np.arange(round(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return x.astype(np.float32)
    return np.stack([x / (c + 1) for c in range(channels)], 1).astype(np.float32)


def write_tone(path: Path, seconds: float = 0.05, rate: int = 8000, **kwargs) -> Path:
    """A 16-bit WAV or FLAC (by suffix) of ``tone(...)``, samples round(x 32767)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.round(tone(seconds, rate, **kwargs) * 32767).astype(np.int16)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return path
