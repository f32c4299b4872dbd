"""Reading and writing audio files (WAV, FLAC) with soundfile.

``read_audio`` returns mono float32 in [-1, 1] at the sample rate asked for:

* more than one channel: the channels are averaged (a note says so);
* another sample rate: resampled with ``resample`` (a note says so);
* a missing, unreadable, corrupt or empty file, or one shorter than ``min_samples`` after
  resampling, raises ``DataError`` naming the file.

Notes are returned, not printed, so that a data set can report them once for all its files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..data.errors import DataError, DataWarning
from .resample import resample

AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclass(frozen=True)
class AudioFile:
    """One decoded file."""

    wave: np.ndarray  # (T,) float32 in [-1, 1], mono, at ``sample_rate``
    sample_rate: int
    file_rate: int  # the sample rate stored in the file
    channels: int  # channels stored in the file (averaged to one)
    notes: tuple[str, ...]  # the conversions made, one line each, naming the file


def read_audio(path: str | os.PathLike, sample_rate: int | None = None, *,
               min_samples: int = 0, why: str = "") -> AudioFile:
    """Decode ``path`` to mono float32 at ``sample_rate`` (None: the file's own rate).

    ``min_samples``: the fewest samples accepted (after resampling); ``why`` says in the error
    what needs them, e.g. "the model's receptive field".
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError, ...
        raise DataError(f"{path}: unreadable or corrupt audio file, expected WAV or FLAC "
                        f"({type(e).__name__}: {e})") from e
    frames, channels = data.shape
    if frames == 0 or channels == 0:
        raise DataError(f"{path}: empty audio file (0 samples)")
    notes = []
    wave = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    if channels > 1:
        notes.append(f"{path}: {channels} channels averaged to mono")
    target = rate if sample_rate is None else sample_rate
    if rate != target:
        wave = resample(wave, rate, target)
        notes.append(f"{path}: resampled from {rate} Hz to {target} Hz")
    if len(wave) < min_samples:
        raise DataError(
            f"{path}: {len(wave)} samples ({len(wave) / target:.3f} s at {target} Hz) is too "
            f"short: at least {min_samples} samples are needed"
            + (f" ({why})" if why else "")
        )
    wave = np.clip(np.ascontiguousarray(wave, dtype=np.float32), -1.0, 1.0)
    return AudioFile(wave, target, rate, channels, tuple(notes))


def write_audio(path: str | os.PathLike, wave, sample_rate: int) -> Path:
    """Write mono ``wave`` (floats in [-1, 1], clipped) as 16-bit PCM, atomically.

    The format follows the suffix: .wav or .flac.
    """
    path = Path(path)
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if path.suffix.lower() not in formats:
        raise DataError(f"{path}: cannot write audio with suffix {path.suffix!r}; "
                        "use .wav or .flac")
    x = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), x, sample_rate, subtype="PCM_16", format=formats[path.suffix.lower()])
    os.replace(tmp, path)
    return path


def warn_notes(notes: list[str], source: str) -> None:
    """One ``DataWarning`` per kind of conversion made while reading ``source``'s files."""
    for kind in ("averaged to mono", "resampled"):
        found = [n for n in notes if kind in n]
        if found:
            warnings.warn(f"{source}: {len(found)} file(s) converted, e.g. {found[0]}",
                          DataWarning, stacklevel=3)
