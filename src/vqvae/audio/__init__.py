"""Speech data for the VQ-VAE (paper section 4.3): transforms, files, corpora and crops.

    corpus = load_speech_corpus("fsdd", split="train")          # shared fsdd.npz, 8 kHz
    corpus = load_speech_corpus("tts_phones", sample_rate=8000)  # with corpus.phones
    corpus = load_speech_corpus("vctk", "~/VCTK-Corpus", sample_rate=16000)
    ds = CropDataset(corpus, crop=2048, seed=0)                  # (wave, mu-law, speaker)

Transforms: ``mu_law_encode``/``mu_law_decode`` (8 bits), ``resample`` (windowed sinc),
``normalize_level`` (per utterance), ``log_mel_spectrogram``.  Files: ``read_audio`` and
``write_audio`` (WAV/FLAC via soundfile; errors are ``vqvae.data.DataError`` naming the file).
"""

from __future__ import annotations

from pathlib import Path

from ..data.errors import DataError
from .corpus import PhoneSegments, SpeechCorpus
from .crops import CropDataset
from .fsdd import load_fsdd
from .io import AUDIO_EXTENSIONS, AudioFile, read_audio, write_audio
from .levels import LEVELS, level_gain, normalize_level
from .mu_law import MU_LAW_CLASSES, SILENCE_CLASS, mu_law_decode, mu_law_encode
from .resample import resample
from .spectrogram import log_mel_spectrogram, save_spectrograms
from .speech_folder import load_speech_folder
from .tts_phones import load_tts_phones

SPEECH_DATASETS = ("fsdd", "tts_phones", "vctk", "folder")


def load_speech_corpus(name: str, path: str | Path | None = None, split: str = "train",
                       **options) -> SpeechCorpus:
    """The speech data set ``name`` in {"fsdd", "tts_phones", "vctk", "folder"}.

    Args:
        name: the source ("vctk" and "folder" are the same reader; it finds VCTK's audio).
        path: where it is; None: the shared data folder (fsdd, tts_phones).  Required for
            "vctk" and "folder".
        split: "train", "test" or "all".
        **options: passed to the loader: ``sample_rate``, ``level``, ``cache`` (all), and
            ``test_fraction``, ``mic``, ``min_samples`` (folder), ``test_every`` (tts_phones).
    """
    if name not in SPEECH_DATASETS:
        raise DataError(f"unknown speech data set {name!r}; expected one of "
                        f"{', '.join(SPEECH_DATASETS)}")
    if name in ("vctk", "folder"):
        if path is None:
            raise DataError(f"the {name!r} data set needs path=<folder of WAV/FLAC files>")
        return load_speech_folder(path, split, **options)
    loader = load_fsdd if name == "fsdd" else load_tts_phones
    return loader(path, split, **options)


__all__ = [
    "AUDIO_EXTENSIONS",
    "LEVELS",
    "MU_LAW_CLASSES",
    "SILENCE_CLASS",
    "SPEECH_DATASETS",
    "AudioFile",
    "CropDataset",
    "PhoneSegments",
    "SpeechCorpus",
    "level_gain",
    "load_fsdd",
    "load_speech_corpus",
    "load_speech_folder",
    "load_tts_phones",
    "log_mel_spectrogram",
    "mu_law_decode",
    "mu_law_encode",
    "normalize_level",
    "read_audio",
    "resample",
    "save_spectrograms",
    "write_audio",
]
