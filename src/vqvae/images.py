"""Images in and out: tensors in [-0.5, 0.5] <-> PNG files and grids."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.folder import read_image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float in [-0.5, 0.5] -> (N, H, W, C) uint8."""
    x = ((images.detach().float().cpu() + 0.5) * 255.0).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, nrow: int, pad: int = 2) -> Image.Image:
    """(N, C, H, W) in [-0.5, 0.5] -> one PIL image, ``nrow`` images per row, white gaps."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    ncol = max(1, nrow)
    rows = (n + ncol - 1) // ncol
    canvas = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write a PNG atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_comparison(
    originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike, nrow: int = 8
) -> Path:
    """Rows of originals, each followed by the row of their reconstructions."""
    n = originals.shape[0]
    pieces = []
    for s in range(0, n, nrow):
        pieces += [originals[s : s + nrow], reconstructions[s : s + nrow]]
    return save_png(grid(torch.cat(pieces), nrow), path)


def load_images(
    files: Sequence[str | os.PathLike], size: int, channels: int = 3
) -> tuple[torch.Tensor, list[str]]:
    """Image files -> ((N, C, size, size) in [-0.5, 0.5], notes on conversions made).

    Each is centre-cropped to a square and resized (``vqvae.data.fit_image``); errors name
    the file (``DataError``).
    """
    mode = "RGB" if channels == 3 else "L"
    arrays, notes = [], []
    for f in files:
        arr, original_mode = read_image(Path(f), mode=mode, size=size)
        if original_mode != mode:
            notes.append(f"{f}: converted from {original_mode} to {mode}")
        arrays.append(arr.reshape(size, size, channels))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0 - 0.5
    return x, notes
