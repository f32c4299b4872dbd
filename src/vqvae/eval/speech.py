"""Speech evaluation (paper section 4.3): reconstruction, intelligibility, conversion, phones.

    log_mel_distance(original, reconstruction, 8000)     # mean |dB difference| of log-mels
    stoi(original, reconstruction, 8000)                 # intelligibility in [-1, 1], ~1 = same
    train_speaker_classifier(...), train_digit_classifier(...)   # judges of voice conversion
    code_phone_accuracy(...)                             # do the codes discover phones?

STOI lives in ``stoi.py``, the classifiers and the phone probe in ``speech_probes.py``.
"""

from __future__ import annotations

import numpy as np

from ..audio.spectrogram import log_mel_spectrogram
from .speech_probes import (
    PhoneProbe,
    UtteranceClassifier,
    code_phone_accuracy,
    spectral_features,
    train_digit_classifier,
    train_speaker_classifier,
    train_utterance_classifier,
)
from .stoi import stoi, third_octave_bands


def log_mel_distance(reference, estimate, sample_rate: int, *, n_mels: int = 64,
                     dynamic_range: float = 80.0) -> float:
    """Mean absolute difference in dB (an L1 distance) of the log-mel spectrograms of two (T,)
    waveforms (NumPy arrays or tensors) at ``sample_rate``, from ``log_mel_spectrogram``.

    The longer waveform is cut to the shorter one.  Both spectrograms are floored at the
    reference's peak minus ``dynamic_range`` dB, so differences deep in silence (down to the
    -100 dB of digital zero) do not dominate.  0 for identical signals.
    """
    x = _numpy(reference)
    y = _numpy(estimate)
    n = min(len(x), len(y))
    if n == 0:
        raise ValueError(f"got waveforms of {len(x)} and {len(y)} samples; need both non-empty")
    ref = log_mel_spectrogram(x[:n], sample_rate, n_mels=n_mels)
    est = log_mel_spectrogram(y[:n], sample_rate, n_mels=n_mels)
    floor = ref.max() - dynamic_range
    return float(np.mean(np.abs(np.maximum(ref, floor) - np.maximum(est, floor))))


def _numpy(wave) -> np.ndarray:
    return np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave,
                      dtype=np.float32).reshape(-1)


__all__ = [
    "PhoneProbe",
    "UtteranceClassifier",
    "code_phone_accuracy",
    "log_mel_distance",
    "spectral_features",
    "stoi",
    "third_octave_bands",
    "train_digit_classifier",
    "train_speaker_classifier",
    "train_utterance_classifier",
]
