"""Any folder of WAV/FLAC files, the speaker of a file being the folder that holds it.

This covers VCTK: given the VCTK root, its audio folder is used, ``wav48_silence_trimmed``
(VCTK 0.92: ``p225/p225_001_mic1.flac`` and ``..._mic2.flac``) or ``wav48`` (VCTK 0.80:
``p225/p225_001.wav``).  VCTK 0.92 has every utterance from two microphones; ``mic="mic1"``
(the default) keeps one of them, ``mic=None`` keeps both.

* Speaker: the name of the folder holding the file (files in the root itself: the root's
  name).  Speaker indices follow the sorted names of the whole folder, so both splits share them.
* Split: a file is in "test" when a hash of its path relative to the root falls below
  ``test_fraction`` (``vqvae.data.folder.in_test_split``: stable across machines, unchanged when
  files are added); ``split="all"`` takes every file.
* Conversions: stereo files are averaged to mono and files at another rate are resampled,
  with one ``DataWarning`` per kind naming a first example.  A corrupt or empty file raises
  ``DataError`` naming it; files shorter than ``min_samples`` are skipped, with a warning.
* Hidden files and folders (name starting with ".") and other extensions are skipped.  The
  decoded audio is cached (``vqvae.data.paths.cached_arrays``) keyed by the files' paths, sizes
  and modification times.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from ..data.errors import DataError, DataWarning
from ..data.folder import in_test_split
from ..data.paths import cached_arrays
from .corpus import SpeechCorpus, check_split
from .io import AUDIO_EXTENSIONS, read_audio, warn_notes

VCTK_AUDIO = ("wav48_silence_trimmed", "wav48")
MICS = ("mic1", "mic2")


def audio_root(path: Path) -> Path:
    """``path``, or its VCTK audio folder when it is a VCTK root."""
    for name in VCTK_AUDIO:
        if (path / name).is_dir():
            return path / name
    return path


def list_speech_files(root: Path, mic: str | None = "mic1") -> list[tuple[str, str]]:
    """(relative posix path, speaker) of every WAV/FLAC file under ``root``, sorted by path."""
    if mic is not None and mic not in MICS:
        raise DataError(f"mic must be one of {', '.join(MICS)} or None, got {mic!r}")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        speaker = rel.name if rel.parts else root.resolve().name
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(AUDIO_EXTENSIONS):
                continue
            stem = name.rsplit(".", 1)[0]
            if mic is not None and any(stem.endswith("_" + m) for m in MICS if m != mic):
                continue
            found.append(((rel / name).as_posix(), speaker))
    return sorted(found)


def load_speech_folder(path: str | Path, split: str = "train", *,
                       sample_rate: int | None = None, level: str = "peak", cache: bool = True,
                       test_fraction: float = 0.1, mic: str | None = "mic1",
                       min_samples: int = 0) -> SpeechCorpus:
    """The audio files under ``path`` as a ``SpeechCorpus`` (see the module docstring).

    ``sample_rate`` None: the rate of the first file (in path order).
    """
    check_split(split, str(path))
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder of audio files")
    root = audio_root(path)
    listing = list_speech_files(root, mic)
    if not listing:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
    speakers = sorted({s for _, s in listing})
    chosen = [(rel, s) for rel, s in listing
              if split == "all" or in_test_split(rel, test_fraction) == (split == "test")]
    if not chosen:
        raise DataError(f"{root}: the {split} split is empty ({len(listing)} files, "
                        f"test_fraction={test_fraction})")
    if sample_rate is None:
        try:
            sample_rate = int(sf.info(str(root / listing[0][0])).samplerate)
        except Exception as e:
            raise DataError(f"{root / listing[0][0]}: unreadable or corrupt audio file "
                            f"({type(e).__name__}: {e})") from e
    files = [root / rel for rel, _ in chosen]

    def build() -> dict[str, np.ndarray]:
        waves, ids, names, notes, short = [], [], [], [], []
        for (rel, speaker), file in zip(chosen, files, strict=True):
            f = read_audio(file, sample_rate)
            notes += f.notes
            if len(f.wave) < min_samples:
                short.append(f"{file} ({len(f.wave)} samples)")
                continue
            waves.append(f.wave)
            ids.append(speakers.index(speaker))
            names.append(rel)
        if not waves:
            raise DataError(f"{root}: every file of the {split} split is shorter than "
                            f"min_samples={min_samples}")
        corpus = SpeechCorpus.from_waves(waves, ids, speakers, sample_rate, names)
        return corpus.arrays() | {"notes": np.array(notes, dtype=str),
                                  "short": np.array(short, dtype=str)}

    tag = f"speech-folder-{split}-{sample_rate}-{mic}-{test_fraction}-{min_samples}"
    arrays = cached_arrays(files, tag, build, cache)
    warn_notes(arrays.pop("notes").tolist(), str(root))
    short = arrays.pop("short").tolist()
    if short:
        warnings.warn(f"{root}: {len(short)} file(s) shorter than {min_samples} samples "
                      f"skipped, e.g. {short[0]}", DataWarning, stacklevel=2)
    return SpeechCorpus.from_arrays(arrays, str(root), level)
