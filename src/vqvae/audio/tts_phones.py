"""Synthetic speech with exact phone timings: the shared ``tts_phones.npz``.

5 voices (kal, ked, slt, awb, rms) read the same 70 CMU ARCTIC prompts: 350 utterances at
16 kHz, with the synthesizer's own phone segmentation (41 symbols, ``pau`` first; see
``shared/data/README.md``, section 5).  The voices do not share one phone sequence per sentence
(each has its own lexicon), so the labels are read per utterance, never per sentence.

* Split by sentence, so no text is on both sides: sentences with ``sentence_id % test_every ==
  test_every - 1`` are the test set (7 of 70 by default, every voice), the rest training.
* ``corpus.phones`` holds the segments: ``segments(u)``, ``sample_labels(u)`` (one phone index
  per sample) and ``frame_labels(u, hop)`` (one per code of ``hop`` samples).  Resampling
  (``sample_rate=8000``) rescales the boundaries with the audio.
* Per-utterance labels: ``sentence_id``.  ``names`` are "VOICE_arctic_XNNNN".
* The labels are the synthesizer's planned timing, 10-20 ms off the audio for the Festival
  voices (README); allow that tolerance when scoring at finer frame rates.

The file is LZMA-compressed (about 2 s to decode), so the decoded arrays are cached on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.errors import DataError
from ..data.paths import cached_arrays, default_data_dir
from .corpus import PhoneSegments, SpeechCorpus, check_split

TTS_FILE = "tts_phones.npz"
_ARRAYS = ("audio", "offsets", "sample_rate", "speaker", "speaker_names", "sentence_id",
           "sentence_arctic_id", "phone_symbols", "seg_phone", "seg_start", "seg_end",
           "seg_offsets")


def load_tts_phones(path: str | Path | None = None, split: str = "train", *,
                    sample_rate: int | None = None, level: str = "peak", cache: bool = True,
                    test_every: int = 10) -> SpeechCorpus:
    """``tts_phones.npz`` as a ``SpeechCorpus`` with ``phones`` (see the module docstring).

    Args:
        path: the file, or a folder holding it; None: the shared data folder.
        split: "train", "test" or "all".
        sample_rate: resample to this rate (None: the native 16000 Hz).
        level: per-utterance level normalisation (``levels.py``).
        cache: keep the decoded (and resampled) arrays in the on-disk cache.
        test_every: every ``test_every``-th sentence is held out for testing.
    """
    check_split(split, "tts_phones")
    if test_every < 2:
        raise DataError(f"tts_phones: test_every must be at least 2, got {test_every}")
    path = Path(path) if path is not None else default_data_dir() / TTS_FILE
    if path.is_dir():
        path = path / TTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; expected the shared {TTS_FILE}")
    arrays = cached_arrays([path], "tts_phones", lambda: _read(path), cache)
    corpus = _corpus(arrays, str(path), level)
    if split != "all":
        test = corpus.labels["sentence_id"] % test_every == test_every - 1
        corpus = corpus.subset(test == (split == "test"))
    if sample_rate is not None and sample_rate != corpus.sample_rate:
        build = lambda: corpus.resampled(sample_rate).arrays()  # noqa: E731
        tag = f"tts_phones-{split}-{test_every}-{sample_rate}"
        corpus = SpeechCorpus.from_arrays(cached_arrays([path], tag, build, cache), str(path),
                                          level)
    return corpus


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in _ARRAYS}
    except KeyError as e:
        raise DataError(f"{path}: not a tts_phones file, missing the array {e}") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable .npz file ({e})") from e


def _corpus(a: dict[str, np.ndarray], source: str, level: str) -> SpeechCorpus:
    phones = PhoneSegments(a["seg_phone"].astype(np.int64), a["seg_start"].astype(np.int64),
                           a["seg_end"].astype(np.int64), a["seg_offsets"].astype(np.int64),
                           tuple(a["phone_symbols"].tolist()))
    lengths = np.diff(a["offsets"])
    last = phones.offsets[1:] - 1
    if not np.array_equal(phones.end[last], lengths) or (phones.start[phones.offsets[:-1]] != 0
                                                         ).any():
        raise DataError(f"{source}: the phone segments do not tile the utterances")
    names = [f"{a['speaker_names'][s]}_{a['sentence_arctic_id'][i]}"
             for s, i in zip(a["speaker"], a["sentence_id"], strict=True)]
    return SpeechCorpus(a["audio"], a["offsets"], a["speaker"], tuple(a["speaker_names"].tolist()),
                        int(a["sample_rate"]), tuple(names), source=source, level=level,
                        labels={"sentence_id": a["sentence_id"]}, phones=phones)
