"""The Free Spoken Digit Dataset: 3000 recordings, 6 speakers x 10 digits x 50, 8 kHz.

Read from the shared ``fsdd.npz`` (``shared/data/README.md``, section 2), or from the original
repository's ``recordings/{digit}_{speaker}_{index}.wav`` files.  The official split: index
0-4 is the test set (300 recordings), 5-49 the training set (2700).  Speakers are sorted by
name (george, jackson, lucas, nicolas, theo, yweweler), in both forms, and are shared by the
splits.  Per-utterance labels: ``digit`` and ``index``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data.errors import DataError
from ..data.paths import cached_arrays, default_data_dir
from .corpus import SpeechCorpus, check_split
from .io import read_audio, warn_notes

FSDD_FILE = "fsdd.npz"
FSDD_RATE = 8000
TEST_INDICES = 5  # recordings with index < 5 are the official test set
_NAME = re.compile(r"^(\d)_([^_]+)_(\d+)\.wav$")


def load_fsdd(path: str | Path | None = None, split: str = "train", *,
              sample_rate: int | None = None, level: str = "peak",
              cache: bool = True) -> SpeechCorpus:
    """FSDD as a ``SpeechCorpus``.

    Args:
        path: ``fsdd.npz``, a folder holding it, the repository folder (with ``recordings/``)
            or the recordings folder itself; None: the shared data folder.
        split: "train" (index 5-49), "test" (index 0-4) or "all".
        sample_rate: resample to this rate (None: the native 8000 Hz).
        level: per-utterance level normalisation (``levels.py``).
        cache: keep decoded WAV folders and resampled audio in the on-disk cache.
    """
    check_split(split, "fsdd")
    path = Path(path) if path is not None else default_data_dir() / FSDD_FILE
    if path.is_dir() and (path / FSDD_FILE).is_file():
        path = path / FSDD_FILE
    if path.is_file():
        corpus = _from_npz(path, level)
    elif path.is_dir():
        folder = path / "recordings" if (path / "recordings").is_dir() else path
        corpus = _from_folder(folder, level, cache)
    else:
        raise DataError(f"{path}: not found; expected {FSDD_FILE} or a folder of FSDD "
                        "recordings ({digit}_{speaker}_{index}.wav)")
    if split != "all":
        corpus = corpus.subset((corpus.labels["index"] < TEST_INDICES) == (split == "test"))
    if sample_rate is not None and sample_rate != corpus.sample_rate:
        build = lambda: corpus.resampled(sample_rate).arrays()  # noqa: E731
        tag = f"fsdd-{split}-{sample_rate}"
        corpus = SpeechCorpus.from_arrays(cached_arrays([path], tag, build, cache),
                                          corpus.source, level)
    return corpus


def _from_npz(path: Path, level: str) -> SpeechCorpus:
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in ("audio", "offsets", "speaker", "speaker_names", "digit",
                                   "index", "filenames", "sample_rate")}
    except KeyError as e:
        raise DataError(f"{path}: not an FSDD file, missing the array {e}") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable .npz file ({e})") from e
    return SpeechCorpus(a["audio"], a["offsets"], a["speaker"], tuple(a["speaker_names"]),
                        int(a["sample_rate"]), tuple(a["filenames"]), source=str(path),
                        level=level, labels={"digit": a["digit"], "index": a["index"]})


def _from_folder(folder: Path, level: str, cache: bool) -> SpeechCorpus:
    files = sorted(p for p in folder.iterdir() if _NAME.match(p.name))
    if not files:
        raise DataError(f"{folder}: no FSDD recordings named {{digit}}_{{speaker}}_{{index}}.wav")
    parsed = [_NAME.match(p.name).groups() for p in files]
    speakers = sorted({s for _, s, _ in parsed})
    # the npz's order: speaker name, then digit, then index
    order = sorted(range(len(files)),
                   key=lambda i: (parsed[i][1], int(parsed[i][0]), int(parsed[i][2])))

    def build() -> dict[str, np.ndarray]:
        waves, notes = [], []
        for i in order:
            f = read_audio(files[i], FSDD_RATE)
            waves.append(f.wave)
            notes += f.notes
        c = SpeechCorpus.from_waves(
            waves, [speakers.index(parsed[i][1]) for i in order], speakers, FSDD_RATE,
            [files[i].name for i in order],
            labels={"digit": np.array([int(parsed[i][0]) for i in order]),
                    "index": np.array([int(parsed[i][2]) for i in order])})
        return c.arrays() | {"notes": np.array(notes, dtype=str)}

    arrays = cached_arrays(files, "fsdd-folder", build, cache)
    warn_notes(arrays.pop("notes").tolist(), str(folder))
    return SpeechCorpus.from_arrays(arrays, str(folder), level)

