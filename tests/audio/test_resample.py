import math

import numpy as np
import pytest
import torch

from vqvae.audio import resample


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


@pytest.mark.parametrize("orig,new", [(16000, 8000), (8000, 16000), (44100, 16000),
                                      (16000, 22050), (48000, 16000)])
def test_a_sine_keeps_its_frequency_and_the_length_scales(orig, new):
    n = orig // 2 + 7
    t = np.arange(n) / orig
    x = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    y = resample(x, orig, new)
    assert len(y) == math.ceil(n * new / orig) and y.dtype == np.float32
    assert abs(_peak_hz(y, new) - 440.0) <= new / len(y)
    ty = np.arange(len(y)) / new
    middle = slice(len(y) // 8, -len(y) // 8)
    assert np.abs(y - np.sin(2 * np.pi * 440.0 * ty))[middle].max() < 1e-3


def test_downsampling_removes_what_lies_above_the_new_nyquist_frequency():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 6000.0 * t)  # would alias to 2 kHz at 8 kHz
    y = resample(x, 16000, 8000)
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 1e-3


def test_a_constant_stays_constant_away_from_the_ends():
    y = resample(torch.full((2, 3000), 0.25), 44100, 16000)
    assert y.shape == (2, math.ceil(3000 * 16000 / 44100))
    assert torch.allclose(y[:, 50:-50], torch.tensor(0.25), atol=1e-5)


def test_rows_are_resampled_independently():
    x = torch.randn(3, 1000)
    y = resample(x, 8000, 12000)
    assert torch.allclose(y[1], resample(x[1], 8000, 12000))


def test_same_rate_returns_a_copy():
    x = np.arange(5, dtype=np.float32)
    y = resample(x, 8000, 8000)
    assert np.array_equal(x, y) and y is not x


@pytest.mark.parametrize("rate", [0, -8000, 8000.0, True])
def test_rates_must_be_positive_integers(rate):
    with pytest.raises(ValueError, match="rate"):
        resample(np.zeros(10), rate, 16000)
