"""Short-Time Objective Intelligibility (Taal, Hendriks, Heusdens and Jensen, 2011).

STOI compares the short-time temporal envelopes of a clean and a processed signal in
one-third-octave bands; 1 means identical envelopes, values near 0 mean unrelated ones:

    score = stoi(clean, processed, 8000)

Steps, with the paper's constants:
1. resample both signals to 10 kHz;
2. cut into 256-sample Hann frames with 50% overlap and drop the frames of the clean signal
   more than 40 dB below its loudest frame (the same frames of both signals), then rebuild the
   signals by overlap-add;
3. STFT (the same frames, zero-padded to 512 points) and group the power of the bins into 15
   one-third-octave bands whose lowest centre is 150 Hz; a band's envelope is the square root
   of its power in every frame;
4. for every segment of 30 consecutive frames (384 ms) and every band: scale the processed
   envelope to the clean one's energy, clip it to at most (1 + 10^(-beta / 20)) times the clean
   envelope (beta = -15 dB, the signal-to-distortion floor), and take the correlation
   coefficient of the two envelopes;
5. average over bands and segments.
"""

from __future__ import annotations

import numpy as np

from ..audio.resample import resample

RATE = 10_000  # Hz, the rate STOI is defined at
FRAME = 256  # samples per frame (25.6 ms)
FFT = 512  # zero-padded FFT size
BANDS = 15  # one-third-octave bands
LOWEST_CENTRE = 150.0  # Hz, centre of the first band
SEGMENT = 30  # frames per segment (384 ms)
BETA = -15.0  # dB, lower bound of the signal-to-distortion ratio after clipping
DYNAMIC_RANGE = 40.0  # dB, frames this far below the loudest clean frame are silent


def stoi(clean, processed, sample_rate: int) -> float:
    """STOI of ``processed`` against ``clean``, two (T,) waveforms at ``sample_rate`` Hz.

    Accepts NumPy arrays or torch tensors.  Signals of different lengths are cut to the shorter
    one.  Raises ValueError when fewer than 30 non-silent frames (about 0.4 s of sound) remain,
    because no segment can then be formed.
    """
    x = _mono(clean, "clean")
    y = _mono(processed, "processed")
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    if sample_rate != RATE:
        x, y = resample(np.stack([x, y]), int(sample_rate), RATE)
    x, y = _remove_silent_frames(x, y)
    bands = third_octave_bands()
    x_env = _band_envelopes(x, bands)  # (BANDS, frames)
    y_env = _band_envelopes(y, bands)
    frames = x_env.shape[1]
    if frames < SEGMENT:
        raise ValueError(f"STOI needs at least {SEGMENT} non-silent frames of {FRAME} samples "
                         f"at {RATE} Hz (about 0.4 s); got {frames} from {n} samples at "
                         f"{sample_rate} Hz")
    # (S, BANDS, SEGMENT): every segment of SEGMENT frames ending at frame m, m = SEGMENT..frames
    x_seg = np.lib.stride_tricks.sliding_window_view(x_env, SEGMENT, axis=1).transpose(1, 0, 2)
    y_seg = np.lib.stride_tricks.sliding_window_view(y_env, SEGMENT, axis=1).transpose(1, 0, 2)
    eps = np.finfo(np.float64).eps
    scale = np.linalg.norm(x_seg, axis=2, keepdims=True) / (
        np.linalg.norm(y_seg, axis=2, keepdims=True) + eps)
    clip = 1.0 + 10.0 ** (-BETA / 20.0)
    y_prime = np.minimum(y_seg * scale, x_seg * clip)
    x_c = x_seg - x_seg.mean(axis=2, keepdims=True)
    y_c = y_prime - y_prime.mean(axis=2, keepdims=True)
    corr = (x_c * y_c).sum(axis=2) / (
        np.linalg.norm(x_c, axis=2) * np.linalg.norm(y_c, axis=2) + eps)
    return float(corr.mean())


def third_octave_bands(rate: int = RATE, fft: int = FFT, bands: int = BANDS,
                       lowest_centre: float = LOWEST_CENTRE) -> np.ndarray:
    """(bands, fft // 2 + 1) 0/1 matrix: band k sums the bins from the one nearest to
    lowest_centre 2^((2k - 1) / 6) Hz up to (not including) the one nearest to
    lowest_centre 2^((2k + 1) / 6) Hz, so neighbouring bands share no bin."""
    freqs = np.linspace(0.0, rate / 2, fft // 2 + 1)
    k = np.arange(bands)
    low = lowest_centre * 2.0 ** ((2 * k - 1) / 6)
    high = lowest_centre * 2.0 ** ((2 * k + 1) / 6)
    matrix = np.zeros((bands, len(freqs)))
    for b in range(bands):
        lo = int(np.argmin(np.abs(freqs - low[b])))
        hi = int(np.argmin(np.abs(freqs - high[b])))
        matrix[b, lo:hi] = 1.0
    return matrix


def _mono(wave, name: str) -> np.ndarray:
    x = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave, dtype=np.float64)
    x = np.squeeze(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one (T,) waveform, got shape {tuple(np.shape(wave))}")
    return x


def _window() -> np.ndarray:
    # a Hann window without its zero end points (as in the authors' MATLAB code)
    return np.hanning(FRAME + 2)[1:-1]


def _frames(x: np.ndarray) -> np.ndarray:
    """(T,) -> (frames, FRAME) windowed frames every FRAME // 2 samples (the tail that does not
    fill a frame is dropped)."""
    hop = FRAME // 2
    if len(x) < FRAME:
        return np.zeros((0, FRAME))
    idx = np.arange(0, len(x) - FRAME + 1, hop)[:, None] + np.arange(FRAME)
    return x[idx] * _window()


def _remove_silent_frames(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the frames of x (and the same of y) more than DYNAMIC_RANGE dB below x's loudest
    frame, then overlap-add the kept windowed frames back into two signals."""
    xf, yf = _frames(x), _frames(y)
    if len(xf) == 0:
        return np.zeros(0), np.zeros(0)
    energy = 20.0 * np.log10(np.linalg.norm(xf, axis=1) + np.finfo(np.float64).eps)
    keep = energy > energy.max() - DYNAMIC_RANGE
    return _overlap_add(xf[keep]), _overlap_add(yf[keep])


def _overlap_add(frames: np.ndarray) -> np.ndarray:
    hop = FRAME // 2
    out = np.zeros((len(frames) + 1) * hop)
    for i, frame in enumerate(frames):
        out[i * hop : i * hop + FRAME] += frame
    return out


def _band_envelopes(x: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """(T,) -> (BANDS, frames) sqrt of the one-third-octave band powers of the STFT."""
    spec = np.fft.rfft(_frames(x), n=FFT, axis=1)  # (frames, FFT // 2 + 1)
    return np.sqrt(bands @ (np.abs(spec) ** 2).T)
