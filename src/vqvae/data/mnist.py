"""MNIST: the original IDX files (gzipped or not) or the shared ``mnist_{train,test}.npz``.

``path`` is a folder (``None``: the shared data folder) or one ``.npz`` file. In a folder the
IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` are looked for first (also
with ``.idx`` spelt with a dot, and in ``raw/`` or ``MNIST/raw/`` below it), then
``mnist_{split}.npz`` with arrays ``x`` (N, 28, 28) uint8 and ``y`` (N,).
Images are (N, 28, 28, 1): 0 = background, 255 = ink.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from .dataset import ImageDataset, check_split, resize_images
from .errors import DataError
from .paths import default_data_dir

CLASS_NAMES = tuple(str(d) for d in range(10))
_PREFIX = {"train": "train", "test": "t10k"}
# IDX type byte -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(file: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped, detected from its first bytes) into an array."""
    file = Path(file)
    try:
        blob = file.read_bytes()
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
    except (OSError, EOFError) as e:
        raise DataError(f"{file}: cannot read IDX file: {e}") from e
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_DTYPES:
        raise DataError(f"{file}: not an IDX file (expected magic 00 00 <type> <ndim>)")
    ndim = blob[3]
    dtype = np.dtype(_IDX_DTYPES[blob[2]])
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{file}: IDX header needs {header} bytes, file has {len(blob)}")
    shape = tuple(int(d) for d in np.frombuffer(blob, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(blob) != expected:
        raise DataError(f"{file}: IDX shape {shape} needs {expected} bytes, file has {len(blob)}")
    return np.frombuffer(blob, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, split: str, kind: str) -> Path | None:
    p = _PREFIX[split]
    names = [f"{p}-{kind}-ubyte", f"{p}-{kind.replace('-', '.')}-ubyte"]
    for sub in (folder, folder / "raw", folder / "MNIST" / "raw"):
        for name in names:
            for candidate in (sub / name, sub / (name + ".gz")):
                if candidate.is_file():
                    return candidate
    return None


def _read_npz(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{file}: expected a .npz with arrays x (N, 28, 28) and y: {e}") from e
    return x, y


def load_mnist(
    path: str | Path | None = None, split: str = "train", size: int | None = None
) -> ImageDataset:
    """MNIST ``split`` ("train": 60000, "test": 10000) as an ``ImageDataset`` (C = 1).

    Args:
        path: a folder or ``.npz`` file as in the module docstring; ``None``: the shared folder.
        size: resize to ``size`` x ``size`` (``dataset.fit_image``); ``None`` keeps 28.
    """
    check_split(split)
    path = Path(path) if path is not None else default_data_dir()
    if path.is_file():
        x, y = _read_npz(path)
        src = path
    elif path.is_dir():
        images, labels = (
            _find_idx(path, split, "images-idx3"),
            _find_idx(path, split, "labels-idx1"),
        )
        npz = path / f"mnist_{split}.npz"
        if images and labels:
            x, y, src = read_idx(images), read_idx(labels), images
        elif npz.is_file():
            x, y = _read_npz(npz)
            src = npz
        else:
            p = _PREFIX[split]
            raise DataError(
                f"{path}: expected MNIST {split} data: {p}-images-idx3-ubyte[.gz] with "
                f"{p}-labels-idx1-ubyte[.gz], or mnist_{split}.npz; found neither"
            )
    else:
        raise DataError(f"{path}: no such file or folder (expected MNIST data)")
    if x.dtype != np.uint8 or x.ndim != 3 or y.shape != x.shape[:1]:
        raise DataError(
            f"{src}: expected uint8 images (N, H, W) and N labels, got {x.dtype} {x.shape} "
            f"and {y.shape}"
        )
    x = x[..., None]
    if size is not None:
        x = resize_images(x, size)
    return ImageDataset(x, y, CLASS_NAMES, source=f"mnist {split} ({src})")
