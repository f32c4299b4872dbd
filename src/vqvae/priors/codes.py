"""The codes of an image data set under a frozen VQ-VAE, encoded once and cached on disk.

A prior trains on codes, not images, so each split is encoded once and kept beside the run:

    RUN/codes_{split}.npy        (N, h, w) or (N, G, h, w), int16 (int32 when K > 32767)
    RUN/labels_{split}.npy       (N,) int64, the data set's labels
    RUN/codes_{split}.npy.json   what they were made from: the sha256 of the VQ-VAE's
                                 model.safetensors, the data configuration, K, the grid, N

The cache is reused only if the JSON matches the checkpoint and data now in use; otherwise the
split is encoded again.  The arrays are written first and the JSON last, each through a
temporary file and a rename, so an interrupted write is never taken for a valid cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..data import ImageDataset
from ..model import VQVAE
from ..pretrained import WEIGHTS_NAME, resolve_checkpoint

FORMAT_VERSION = 1


class CodesDataset(Dataset):
    """Code grids with labels: ``dataset[i]`` is ``(codes (h, w) [(G, h, w)] int, label)``."""

    def __init__(self, codes: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str] = ()) -> None:
        assert len(codes) == len(labels)
        self.codes = torch.from_numpy(np.ascontiguousarray(codes))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.class_names = tuple(class_names)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.codes[i], int(self.labels[i])


def checkpoint_weights(run: str | os.PathLike) -> Path:
    """The model.safetensors that ``VQVAE.from_pretrained(run)`` loads."""
    return resolve_checkpoint(Path(run)) / WEIGHTS_NAME


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@torch.no_grad()
def encode_images(vqvae: VQVAE, images: np.ndarray, *, batch_size: int = 256,
                  device: str | torch.device = "cpu", progress: bool = True) -> np.ndarray:
    """uint8 images (N, H, W, C) -> codes (N, h, w) [(N, G, h, w)], in eval mode."""
    vqvae = vqvae.to(device).eval()
    dtype = np.int16 if vqvae.config.num_codes <= np.iinfo(np.int16).max + 1 else np.int32
    out = np.empty((len(images), *vqvae.config.latent_shape), dtype=dtype)
    for s in tqdm(range(0, len(images), batch_size), desc="encode", disable=not progress,
                  leave=False):
        # as ImageDataset.__getitem__: (H, W, C) uint8 -> (C, H, W) in [-0.5, 0.5]
        x = torch.from_numpy(images[s : s + batch_size]).to(device).permute(0, 3, 1, 2)
        x = x.float().div_(255.0).sub_(0.5)
        out[s : s + batch_size] = vqvae.encode(x).cpu().numpy()
    return out


def cached_codes(vqvae: VQVAE, weights_sha256: str, dataset: ImageDataset, split: str,
                 folder: Path, data_key: dict, *, device: str | torch.device = "cpu",
                 progress: bool = True, log: Callable[[str], None] = print) -> CodesDataset:
    """The codes of ``dataset`` (the split ``split``) from ``folder``'s cache, or encoded now.

    Args:
        weights_sha256: ``file_sha256`` of the VQ-VAE's model.safetensors (see
            ``checkpoint_weights``); it keys the cache.
        data_key: the data configuration (source, path, size, options); part of the key.
    """
    folder = Path(folder)
    codes_path = folder / f"codes_{split}.npy"
    labels_path = folder / f"labels_{split}.npy"
    meta_path = folder / f"codes_{split}.npy.json"
    c = vqvae.config
    meta = {
        "format_version": FORMAT_VERSION,
        "vqvae_weights_sha256": weights_sha256,
        "data": json.loads(json.dumps(data_key, default=str)),
        "split": split,
        "count": len(dataset),
        "num_codes": c.num_codes,
        "groups": c.groups,
        "latent_shape": list(c.latent_shape),
        "class_names": list(dataset.class_names),
    }
    reason = _stale(meta, meta_path, codes_path, labels_path)
    if reason is None:
        log(f"{split} codes: reusing {codes_path}")
        codes = np.load(codes_path, allow_pickle=False)
        labels = np.load(labels_path, allow_pickle=False)
    else:
        log(f"{split} codes: encoding {len(dataset)} images ({reason}) -> {codes_path}")
        codes = encode_images(vqvae, dataset.images, device=device, progress=progress)
        labels = dataset.labels.astype(np.int64)
        meta_path.unlink(missing_ok=True)  # no stale description of half-written arrays
        _save_npy(codes_path, codes)
        _save_npy(labels_path, labels)
        tmp = meta_path.with_name(meta_path.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, meta_path)
    return CodesDataset(codes, labels, dataset.class_names)


def _stale(meta: dict, meta_path: Path, codes_path: Path, labels_path: Path) -> str | None:
    """Why the cache cannot be used, or None if it can."""
    if not meta_path.is_file():
        return "no cache yet"
    try:
        old = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{meta_path.name} unreadable"
    if not isinstance(old, dict):
        return f"{meta_path.name} unreadable"
    if old.get("vqvae_weights_sha256") != meta["vqvae_weights_sha256"]:
        return "the cache was made by another checkpoint"
    changed = [k for k in meta if old.get(k) != meta[k]]
    if changed:
        return f"the cache was made with other {', '.join(changed)}"
    try:
        codes = np.load(codes_path, mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return "the cached arrays are missing or unreadable"
    if codes.shape != (meta["count"], *meta["latent_shape"]) or labels.shape != (meta["count"],):
        return "the cached arrays have the wrong shape"
    return None


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
