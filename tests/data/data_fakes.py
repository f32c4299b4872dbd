"""Writers of tiny fake data sets for the data tests (a unique name: imported by tests)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, like the official CIFAR-10 batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle in the form Python 2 + NumPy 1 wrote (``numpy.core.multiarray``)."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def fake_cifar_batch(n: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """A batch dict as in the official files, with its images (n, 32, 32, 3) and labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    batch = {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n, 3072)),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return batch, images, labels


def make_tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def idx_bytes(a: np.ndarray) -> bytes:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[a.dtype.type]
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, a: np.ndarray, gz: bool) -> Path:
    blob = idx_bytes(a)
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path
