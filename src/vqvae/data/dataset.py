"""The common image dataset, the resize policy and a deterministic DataLoader.

Every source (CIFAR-10, MNIST, a folder, ViZDoom frames) ends as an ``ImageDataset`` over a
uint8 array (N, H, W, C). Items are float tensors (C, H, W) in [-0.5, 0.5] = x / 255 - 0.5,
the scaling of the VQ-VAE paper's image experiments.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .errors import DataError


class ImageDataset(Dataset):
    """Images (N, H, W, C) uint8 with integer labels (N,).

    Args:
        images: uint8 array (N, H, W, C), C in {1, 3}.
        labels: integer array (N,); class index, or another per-image integer the source
            documents (the action taken for ViZDoom frames).
        class_names: name of each label value.
        source: where the data came from, for messages.

    ``dataset[i]`` is ``(x, label)``: x a float32 tensor (C, H, W) = image / 255 - 0.5.
    ``variance`` is the variance of all scaled pixel values of this dataset (a float), the
    denominator of NMSE = MSE / variance; use the *training* split's value for test NMSE.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        class_names: Sequence[str] = (),
        source: str = "",
    ) -> None:
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(
                f"{source or 'images'}: expected uint8 (N, H, W, 1|3), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.shape != images.shape[:1] or labels.dtype.kind not in "iu":
            raise DataError(
                f"{source or 'labels'}: expected integer labels of shape ({len(images)},), "
                f"got {labels.dtype} {labels.shape}"
            )
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.class_names = tuple(class_names)
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        # (H, W, C) uint8 -> (C, H, W) float in [-0.5, 0.5]
        x = torch.tensor(self.images[i]).permute(2, 0, 1).float().div_(255.0).sub_(0.5)
        return x, int(self.labels[i])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one item."""
        _, h, w, c = self.images.shape
        return (c, h, w)

    @cached_property
    def variance(self) -> float:
        """Variance of all pixel values scaled to [-0.5, 0.5], exact (from a histogram)."""
        if len(self.images) == 0:
            raise DataError(f"{self.source}: no images, so no variance")
        counts = np.zeros(256, dtype=np.float64)
        for start in range(0, len(self.images), 1024):  # bincount makes an int64 copy: chunk it
            counts += np.bincount(self.images[start : start + 1024].reshape(-1), minlength=256)
        values = np.arange(256) / 255.0 - 0.5
        mean = (counts @ values) / counts.sum()
        return float(counts @ (values - mean) ** 2 / counts.sum())

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"ImageDataset({self.source!r}, n={len(self)}, shape=({c}, {h}, {w}), "
            f"classes={len(self.class_names)})"
        )


def check_split(split: str, allowed: Sequence[str] = ("train", "test")) -> None:
    if split not in allowed:
        raise DataError(f"split must be one of {', '.join(map(repr, allowed))}, got {split!r}")


def fit_image(img: Image.Image, size: int) -> Image.Image:
    """Resize policy: centre-crop the largest square, then resize it to ``size`` x ``size``.

    The crop comes first, so no pixel outside the square leaks in through the filter. Bicubic
    resampling (Pillow widens the kernel when shrinking, so there is no aliasing). An image
    already ``size`` x ``size`` is returned unchanged.
    """
    if img.size == (size, size):
        return img
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = img.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.BICUBIC)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Apply ``fit_image`` to every image of a uint8 array (N, H, W, C) -> (N, size, size, C)."""
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, size, size, c), dtype=np.uint8)
    for i, im in enumerate(images):
        pil = Image.fromarray(im[..., 0] if c == 1 else im)
        out[i] = np.asarray(fit_image(pil, size)).reshape(size, size, c)
    return out


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling and worker seeds follow ``seed``.

    Two loaders made with the same arguments yield the same batches in the same order, epoch
    after epoch (each epoch draws a new permutation from the seeded generator). Workers' torch,
    numpy and ``random`` seeds are drawn by torch from the same generator, so random
    augmentations in workers are reproducible too, and differ between workers.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
