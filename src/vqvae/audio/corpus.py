"""A speech corpus in memory: utterances as int16 samples, speakers, optional phone labels.

Every source (FSDD, a folder of WAV/FLAC files, VCTK, the synthetic ``tts_phones``) ends as a
``SpeechCorpus``: all utterances concatenated in one int16 array (2 bytes a sample, so VCTK at
16 kHz fits in about 5 GB), the offsets where each starts, a speaker index per utterance and the
speaker names.  ``waveform(u)`` gives utterance u as float32 in [-1, 1] at the corpus' level
(``levels.py``): the per-utterance gain is computed once when the corpus is built.

``PhoneSegments`` holds timed phone labels (segments that tile each utterance), readable as
segments, as one label per sample, or as one label per frame of ``hop`` samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.errors import DataError
from .levels import LEVELS, level_gain
from .resample import resample

INT16_SCALE = 32768.0


def to_int16(wave: np.ndarray) -> np.ndarray:
    """Floats in [-1, 1] -> int16 (x 32768, rounded, clipped)."""
    return np.clip(np.round(np.asarray(wave, np.float64) * INT16_SCALE), -32768, 32767).astype(
        np.int16)


def check_split(split: str, source: str) -> None:
    if split not in ("train", "test", "all"):
        raise DataError(f"{source}: split must be 'train', 'test' or 'all', got {split!r}")


@dataclass(frozen=True)
class PhoneSegments:
    """Phone segments of U utterances: segment i is ``symbols[phone[i]]`` on samples
    ``start[i]:end[i]`` of its utterance; utterance u owns segments ``offsets[u]:offsets[u+1]``.
    """

    phone: np.ndarray  # (N,) int64 index into ``symbols``
    start: np.ndarray  # (N,) int64, samples from the utterance's start
    end: np.ndarray  # (N,) int64, exclusive
    offsets: np.ndarray  # (U + 1,) int64
    symbols: tuple[str, ...]

    def segments(self, u: int) -> list[tuple[str, int, int]]:
        """Utterance u's segments as (phone symbol, start, end) in samples."""
        s = slice(self.offsets[u], self.offsets[u + 1])
        return [(self.symbols[p], int(a), int(b))
                for p, a, b in zip(self.phone[s], self.start[s], self.end[s], strict=True)]

    def sample_labels(self, u: int) -> np.ndarray:
        """(T_u,) int64: the phone index of every sample of utterance u."""
        s = slice(self.offsets[u], self.offsets[u + 1])
        return np.repeat(self.phone[s], self.end[s] - self.start[s])

    def frame_labels(self, u: int, hop: int) -> np.ndarray:
        """(ceil(T_u / hop),) int64: the phone at the centre sample of each frame of ``hop``
        samples (frame j covers samples j hop .. (j + 1) hop - 1, e.g. one VQ-VAE code)."""
        labels = self.sample_labels(u)
        centres = np.minimum(np.arange(0, len(labels), hop) + hop // 2, len(labels) - 1)
        return labels[centres]

    def subset(self, utterances: np.ndarray) -> PhoneSegments:
        parts = [np.arange(self.offsets[u], self.offsets[u + 1]) for u in utterances]
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        counts = np.array([len(p) for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return PhoneSegments(self.phone[idx], self.start[idx], self.end[idx], offsets,
                             self.symbols)

    def rescaled(self, ratio: float, lengths: np.ndarray) -> PhoneSegments:
        """Boundaries x ``ratio`` (rounded; for a resampled corpus); each utterance's last
        segment then ends at its new length ``lengths[u]``."""
        start = np.round(self.start * ratio).astype(np.int64)
        end = np.round(self.end * ratio).astype(np.int64)
        last = self.offsets[1:] - 1
        end[last] = lengths
        start[1:] = end[:-1]
        start[self.offsets[:-1]] = 0
        return PhoneSegments(self.phone, start, np.maximum(end, start), self.offsets,
                             self.symbols)


@dataclass
class SpeechCorpus:
    """U utterances, concatenated (see the module docstring).

    Attributes:
        audio: (S,) int16, all utterances; utterance u is ``audio[offsets[u]:offsets[u+1]]``.
        offsets: (U + 1,) int64.
        speaker: (U,) int64, index into ``speaker_names``.
        speaker_names: the name of each speaker index (shared by the splits of a source).
        sample_rate: Hz.
        names: (U,) a name per utterance (its file name, or an id).
        source: where it came from, for messages.
        level: "peak", "rms" or "none": how ``waveform`` scales each utterance.
        labels: other per-utterance integer arrays of the source (e.g. FSDD "digit").
        phones: timed phone labels, where the source has them.
    """

    audio: np.ndarray
    offsets: np.ndarray
    speaker: np.ndarray
    speaker_names: tuple[str, ...]
    sample_rate: int
    names: tuple[str, ...]
    source: str = ""
    level: str = "peak"
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    phones: PhoneSegments | None = None

    def __post_init__(self) -> None:
        self.audio = np.asarray(self.audio)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.speaker = np.asarray(self.speaker, dtype=np.int64)
        self.speaker_names = tuple(str(s) for s in self.speaker_names)
        self.names = tuple(str(n) for n in self.names)
        src = self.source or "speech corpus"
        u = len(self.speaker)
        if self.audio.dtype != np.int16 or self.audio.ndim != 1:
            raise DataError(f"{src}: expected int16 samples (S,), got {self.audio.dtype} "
                            f"{self.audio.shape}")
        if (self.offsets.shape != (u + 1,) or (u and (self.offsets[0] != 0
                                                      or self.offsets[-1] != len(self.audio)))):
            raise DataError(f"{src}: offsets must be ({u + 1},) from 0 to {len(self.audio)}")
        if u and (np.diff(self.offsets) <= 0).any():
            bad = int(np.argmax(np.diff(self.offsets) <= 0))
            raise DataError(f"{src}: utterance {bad} ({self.names[bad]}) has no samples")
        if len(self.names) != u:
            raise DataError(f"{src}: {len(self.names)} names for {u} utterances")
        if u and (self.speaker.min() < 0 or self.speaker.max() >= len(self.speaker_names)):
            raise DataError(f"{src}: speaker indices must lie in [0, {len(self.speaker_names)})")
        if self.level not in LEVELS:
            raise DataError(f"{src}: level must be one of {', '.join(LEVELS)}, "
                            f"got {self.level!r}")
        self.gain = np.array([level_gain(self._raw(i), self.level) for i in range(u)],
                             dtype=np.float32)

    @classmethod
    def from_waves(cls, waves: Sequence[np.ndarray], speaker: Sequence[int],
                   speaker_names: Sequence[str], sample_rate: int, names: Sequence[str],
                   **kwargs) -> SpeechCorpus:
        """From float waveforms in [-1, 1] (stored as int16)."""
        lengths = [len(w) for w in waves]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        audio = to_int16(np.concatenate(waves)) if waves else np.zeros(0, np.int16)
        return cls(audio, offsets, np.asarray(speaker, np.int64), tuple(speaker_names),
                   sample_rate, tuple(names), **kwargs)

    def __len__(self) -> int:
        return len(self.speaker)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    def __str__(self) -> str:
        return (f"{self.source}: {len(self)} utterances, {self.seconds / 60:.1f} min at "
                f"{self.sample_rate} Hz, {len(set(self.speaker.tolist()))} of "
                f"{len(self.speaker_names)} speakers")

    def _raw(self, u: int) -> np.ndarray:
        return self.audio[self.offsets[u] : self.offsets[u + 1]].astype(np.float32) / INT16_SCALE

    def waveform(self, u: int) -> np.ndarray:
        """(T_u,) float32 in [-1, 1]: utterance u at the corpus' level."""
        return np.clip(self._raw(u) * self.gain[u], -1.0, 1.0)

    def subset(self, utterances) -> SpeechCorpus:
        """The utterances at ``utterances`` (indices or a boolean mask), in that order."""
        idx = np.asarray(utterances)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
        parts = [self.audio[self.offsets[u] : self.offsets[u + 1]] for u in idx]
        lengths = [len(p) for p in parts]
        return dataclasses.replace(
            self,
            audio=np.concatenate(parts) if parts else np.zeros(0, np.int16),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            speaker=self.speaker[idx],
            names=tuple(self.names[u] for u in idx),
            labels={k: v[idx] for k, v in self.labels.items()},
            phones=None if self.phones is None else self.phones.subset(idx),
        )

    def resampled(self, sample_rate: int) -> SpeechCorpus:
        """The corpus at another sample rate (every utterance resampled; phones rescaled)."""
        if sample_rate == self.sample_rate:
            return self
        waves = [resample(self._raw(u), self.sample_rate, sample_rate) for u in range(len(self))]
        lengths = np.array([len(w) for w in waves], dtype=np.int64)
        phones = self.phones
        if phones is not None:
            phones = phones.rescaled(sample_rate / self.sample_rate, lengths)
        new = SpeechCorpus.from_waves(
            waves, self.speaker, self.speaker_names, sample_rate, self.names,
            source=self.source, level=self.level, labels=self.labels, phones=phones,
        )
        return new

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as plain arrays (for the on-disk cache); ``from_arrays`` inverts it."""
        out = {
            "audio": self.audio, "offsets": self.offsets, "speaker": self.speaker,
            "speaker_names": np.array(self.speaker_names, dtype=str),
            "names": np.array(self.names, dtype=str),
            "sample_rate": np.array(self.sample_rate),
        }
        out |= {f"label_{k}": v for k, v in self.labels.items()}
        if self.phones is not None:
            p = self.phones
            out |= {"phone": p.phone, "phone_start": p.start, "phone_end": p.end,
                    "phone_offsets": p.offsets, "phone_symbols": np.array(p.symbols, dtype=str)}
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], source: str, level: str) -> SpeechCorpus:
        phones = None
        if "phone" in a:
            phones = PhoneSegments(a["phone"].astype(np.int64), a["phone_start"].astype(np.int64),
                                   a["phone_end"].astype(np.int64),
                                   a["phone_offsets"].astype(np.int64),
                                   tuple(a["phone_symbols"].tolist()))
        return cls(a["audio"], a["offsets"], a["speaker"], tuple(a["speaker_names"].tolist()),
                   int(a["sample_rate"]), tuple(a["names"].tolist()), source=source, level=level,
                   labels={k[6:]: v for k, v in a.items() if k.startswith("label_")},
                   phones=phones)
