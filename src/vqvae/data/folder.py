"""Any folder of images (PNG, JPEG, WebP), searched recursively.

* Class: the name of the first-level subfolder an image lies under, classes sorted by name.
  Images directly in the root form a class named "." that comes first (class 0).
* Size policy (``size`` given): centre-crop the largest square, then resize to ``size`` x
  ``size`` (``dataset.fit_image``). ``size=None``: every image must already share one size.
* Colour: images are converted to ``mode`` ("RGB" or "L"). Grayscale, palette, CMYK or RGBA
  images in an RGB dataset are converted (alpha is dropped), with one ``DataWarning`` per
  dataset naming the first such file. EXIF orientation is applied.
* Split: a file is in "test" when a hash of its path relative to the root falls below
  ``test_fraction`` (default 10 %), so the split is stable across machines and does not move
  when files are added. ``split="all"`` takes every image.
* Hidden files and folders (name starting with ".") and other extensions are skipped. A file
  that cannot be decoded raises ``DataError`` naming it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .dataset import ImageDataset, check_split, fit_image
from .errors import DataError, DataWarning
from .paths import cached_arrays

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
ROOT_CLASS = "."


def list_images(root: Path) -> list[tuple[str, str]]:
    """(relative posix path, class name) of every image under ``root``, sorted by path."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                cls = rel.parts[0] if rel.parts else ROOT_CLASS
                found.append(((rel / name).as_posix(), cls))
    return sorted(found)


def in_test_split(relpath: str, test_fraction: float) -> bool:
    """Whether the image at ``relpath`` (posix, relative to the root) is held out for test."""
    h = int.from_bytes(hashlib.sha1(relpath.encode()).digest()[:8], "big")
    return h / 2**64 < test_fraction


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    if im.mode.startswith("I"):  # 16/32-bit grayscale: scale to 8 bits, do not clip
        a = np.asarray(im).astype(np.float64)
        im = Image.fromarray(np.round(a * (255 / 65535) if a.max() > 255 else a).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # Pillow asks for this step for palette transparency
    return im.convert(mode)


def read_image(file: Path, mode: str = "RGB", size: int | None = None) -> tuple[np.ndarray, str]:
    """Decode one image to uint8 (H, W, C) in ``mode``; also returns its original mode."""
    try:
        with Image.open(file) as im:
            im.load()  # decode now, so a truncated file fails here
            original = im.mode
            im = ImageOps.exif_transpose(im)
            if im.mode != mode:
                im = _to_mode(im, mode)
            if size is not None:
                im = fit_image(im, size)
            a = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # Pillow raises many kinds (OSError, SyntaxError, struct.error, ...)
        raise DataError(f"{file}: unreadable or truncated image ({type(e).__name__}: {e})") from e
    return (a[..., None] if a.ndim == 2 else a), original


def _decode_all(root: Path, rels: list[str], mode: str, size: int | None) -> np.ndarray:
    images, converted = [], []
    for rel in rels:
        a, original = read_image(root / rel, mode, size)
        if images and a.shape != images[0].shape:
            raise DataError(
                f"{root / rel}: image is {a.shape[1]}x{a.shape[0]}, expected "
                f"{images[0].shape[1]}x{images[0].shape[0]} like {root / rels[0]}; "
                "pass size=... to resize"
            )
        if original != mode:
            converted.append((rel, original))
        images.append(a)
    if converted:
        rel, original = converted[0]
        warnings.warn(
            f"{root}: {len(converted)} of {len(rels)} images were not {mode} and were converted "
            f"to {mode}, e.g. {root / rel} (mode {original})",
            DataWarning,
            stacklevel=2,
        )
    return np.stack(images)


def load_image_folder(
    path: str | Path,
    split: str = "train",
    size: int | None = None,
    mode: str = "RGB",
    test_fraction: float = 0.1,
    cache: bool = False,
) -> ImageDataset:
    """The images under ``path`` as an ``ImageDataset`` (policy in the module docstring).

    Args:
        path: the root folder.
        split: "train", "test" or "all".
        size: output side length; ``None`` requires all images to share one size.
        mode: "RGB" (C = 3) or "L" (grayscale, C = 1).
        test_fraction: share of files (by path hash) held out as "test".
        cache: cache the decoded arrays on disk (keyed by every file's path, size and mtime).
    """
    check_split(split, ("train", "test", "all"))
    if mode not in ("RGB", "L"):
        raise DataError(f"mode must be 'RGB' or 'L', got {mode!r}")
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected a folder of images)")
    entries = list_images(root)
    if not entries:
        raise DataError(
            f"{root}: expected image files ({', '.join(IMAGE_EXTENSIONS)}) in the folder or its "
            "subfolders, found none"
        )
    class_names = sorted({c for _, c in entries})  # ROOT_CLASS "." sorts first among usual names
    if ROOT_CLASS in class_names:
        class_names = [ROOT_CLASS] + [c for c in class_names if c != ROOT_CLASS]
    index = {c: i for i, c in enumerate(class_names)}
    if split != "all":
        entries = [e for e in entries if in_test_split(e[0], test_fraction) == (split == "test")]
        if not entries:
            raise DataError(
                f"{root}: no images fall in the {split!r} split (test_fraction={test_fraction}); "
                "use split='all' for a folder this small"
            )
    rels = [rel for rel, _ in entries]
    tag = f"folder-{split}-{size}-{mode}-{test_fraction}"
    arrays = cached_arrays(
        [root / r for r in rels], tag, lambda: {"x": _decode_all(root, rels, mode, size)}, cache
    )
    labels = np.array([index[c] for _, c in entries], dtype=np.int64)
    return ImageDataset(arrays["x"], labels, class_names, source=f"folder {split} ({root})")
