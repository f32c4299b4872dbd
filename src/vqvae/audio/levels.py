"""Level normalisation per utterance.

Recordings differ a lot in loudness (in FSDD the peak |sample| is 6742 for one speaker and
32767 for another), and 8-bit mu-law spends its classes on the loud part of [-1, 1], so each
utterance is scaled before training:

* ``"peak"``: its peak |x| becomes ``PEAK`` (0.9);
* ``"rms"``: its root mean square becomes ``RMS`` (0.1, -20 dBFS), then clipped to [-1, 1];
* ``"none"``: unchanged.

A silent (all-zero) utterance is left as it is.
"""

from __future__ import annotations

import numpy as np

LEVELS = ("peak", "rms", "none")
PEAK = 0.9
RMS = 0.1


def level_gain(wave: np.ndarray, level: str) -> float:
    """The factor that brings ``wave`` (floats in [-1, 1]) to the level ``level``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "none" or wave.size == 0:
        return 1.0
    x = np.asarray(wave, dtype=np.float64)
    ref = np.abs(x).max() if level == "peak" else np.sqrt(np.mean(x * x))
    return 1.0 if ref == 0 else float((PEAK if level == "peak" else RMS) / ref)


def normalize_level(wave: np.ndarray, level: str = "peak") -> np.ndarray:
    """``wave`` (float, [-1, 1]) scaled to ``level`` and clipped to [-1, 1]; float32."""
    out = np.asarray(wave, dtype=np.float32) * np.float32(level_gain(wave, level))
    return np.clip(out, -1.0, 1.0)
