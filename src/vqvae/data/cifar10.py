"""CIFAR-10: the shared ``.npz`` copy or the official python batches (folder or archive).

Sources, with ``path`` a file or a folder (``None``: the shared data folder):

* ``cifar10_{train,test}.npz``: arrays ``x`` (N, 32, 32, 3) uint8, ``y``, ``class_names``.
  The shared copy is JPEG-decoded (lossy); the train file is LZMA-packed and slow to open.
* ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) or the
  ``cifar-10-python.tar.gz`` archive, read in place. These are exact. They are pickles and are
  read with ``safe_pickle.load_restricted``, which cannot run code from the file.

A folder holding several of these prefers the official batches. Decoded arrays are cached on
disk (``paths.cached_arrays``), so only the first load of a split is slow.
"""

from __future__ import annotations

import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from .dataset import ImageDataset, check_split, resize_images
from .errors import DataError
from .paths import cached_arrays, default_data_dir
from .safe_pickle import load_restricted

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
BATCH_DIR = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def _find_source(path: Path, split: str) -> tuple[str, Path]:
    """(kind, path) with kind in {"npz", "batches", "archive"}."""
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".npz"):
            return "npz", path
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return "archive", path
        raise DataError(f"{path}: expected a .npz file or a .tar.gz archive of CIFAR-10")
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder (expected CIFAR-10 data)")
    if (path / BATCHES[split][0]).is_file():
        return "batches", path
    if (path / BATCH_DIR).is_dir():
        return "batches", path / BATCH_DIR
    if (path / ARCHIVE).is_file():
        return "archive", path / ARCHIVE
    if (path / f"cifar10_{split}.npz").is_file():
        return "npz", path / f"cifar10_{split}.npz"
    raise DataError(
        f"{path}: expected CIFAR-10 data: {BATCH_DIR}/, {ARCHIVE}, {BATCHES[split][0]} or "
        f"cifar10_{split}.npz, found none"
    )


def _parse_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (n, 32, 32, 3) uint8, labels (n,) int64."""
    try:
        d = load_restricted(blob)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{where}: not a readable CIFAR-10 python batch: {e}") from e
    data = d.get("data") if isinstance(d, dict) else None
    labels = d.get("labels") if isinstance(d, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{where}: expected 'data' as a uint8 array (n, 3072), found {data!r:.80}")
    if data.shape[1] != 3 * 32 * 32 or not isinstance(labels, list | np.ndarray):
        raise DataError(f"{where}: expected 'data' (n, 3072) and a 'labels' list")
    y = np.asarray(labels)
    if y.shape != (len(data),) or y.dtype.kind not in "iu" or (y.size and not 0 <= y.min()):
        raise DataError(f"{where}: expected {len(data)} integer labels, found {y.shape} {y.dtype}")
    if y.size and y.max() >= len(CLASS_NAMES):
        raise DataError(f"{where}: label {y.max()} out of range 0..9")
    # rows are 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y.astype(np.int64)


def _class_names(blob: bytes | None, where: str) -> np.ndarray:
    names = CLASS_NAMES
    if blob is not None:
        try:
            meta = load_restricted(blob)
            names = tuple(str(n) for n in meta["label_names"])
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as e:
            raise DataError(f"{where}: not a readable CIFAR-10 batches.meta: {e}") from e
    return np.array(names)


def _join(parts: list[tuple[np.ndarray, np.ndarray]], names: np.ndarray) -> dict:
    return {
        "x": np.concatenate([p[0] for p in parts]),
        "y": np.concatenate([p[1] for p in parts]),
        "class_names": names,
    }


def _read_batches(folder: Path, split: str) -> dict[str, np.ndarray]:
    parts = []
    for name in BATCHES[split]:
        f = folder / name
        if not f.is_file():
            raise DataError(f"{f}: missing CIFAR-10 batch (expected {', '.join(BATCHES[split])})")
        parts.append(_parse_batch(f.read_bytes(), str(f)))
    meta = folder / "batches.meta"
    return _join(parts, _class_names(meta.read_bytes() if meta.is_file() else None, str(meta)))


def _read_archive(archive: Path, split: str) -> dict[str, np.ndarray]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            wanted = {*BATCHES[split], "batches.meta"}
            blobs = {}
            for member in tar:  # one pass: a .tar.gz cannot seek back cheaply
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: not a readable tar archive: {e}") from e
    missing = [n for n in BATCHES[split] if n not in blobs]
    if missing:
        raise DataError(f"{archive}: expected CIFAR-10 batches {missing} in the archive")
    parts = [_parse_batch(blobs[n], f"{archive}:{n}") for n in BATCHES[split]]
    return _join(parts, _class_names(blobs.get("batches.meta"), f"{archive}:batches.meta"))


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y")}
            arrays["class_names"] = (
                f["class_names"] if "class_names" in f else np.array(CLASS_NAMES)
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{file}: expected a .npz with arrays x, y (class_names): {e}") from e
    x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3 or y.shape != x.shape[:1]:
        raise DataError(
            f"{file}: expected x uint8 (N, H, W, 3) and y (N,), got {x.shape} {y.shape}"
        )
    return arrays


def load_cifar10(
    path: str | Path | None = None,
    split: str = "train",
    size: int | None = None,
    cache: bool = True,
) -> ImageDataset:
    """CIFAR-10 ``split`` ("train": 50000, "test": 10000 images) as an ``ImageDataset``.

    Args:
        path: a folder or file as in the module docstring; ``None``: ``default_data_dir()``.
        size: resize to ``size`` x ``size`` (``dataset.fit_image``); ``None`` keeps 32.
        cache: cache decoded arrays on disk (``paths.cache_dir()``).
    """
    check_split(split)
    kind, src = _find_source(Path(path) if path is not None else default_data_dir(), split)
    if kind == "npz":
        arrays = cached_arrays([src], f"cifar10-{split}-npz", lambda: _read_npz(src), cache)
    elif kind == "archive":
        arrays = cached_arrays(
            [src], f"cifar10-{split}-tar", lambda: _read_archive(src, split), cache
        )
    else:
        files = [src / n for n in BATCHES[split] if (src / n).is_file()]
        arrays = cached_arrays(
            files or [src], f"cifar10-{split}-batches", lambda: _read_batches(src, split), cache
        )
    x = arrays["x"] if size is None else resize_images(arrays["x"], size)
    names = [str(n) for n in arrays["class_names"]]
    return ImageDataset(x, arrays["y"], names, source=f"cifar10 {split} ({src})")
