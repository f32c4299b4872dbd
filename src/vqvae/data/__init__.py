"""Image data for the VQ-VAE: one loader per source, all ending in an ``ImageDataset``.

    ds = load_image_dataset("cifar10", split="train")     # shared data, cached after 1st load
    ds[0]            # (tensor (3, 32, 32) in [-0.5, 0.5], label)
    ds.variance      # for NMSE = MSE / variance
    loader = make_loader(ds, batch_size=128, seed=0)

Sources: ``cifar10`` (``cifar10.py``), ``mnist`` (``mnist.py``), ``folder`` (``folder.py``),
``vizdoom`` (``vizdoom_frames.py``: rendered locally, needs no download), ``world`` (a
folder written by ``vqvae world record``, ``world.py``).
"""

from __future__ import annotations

from pathlib import Path

from .cifar10 import load_cifar10
from .dataset import ImageDataset, fit_image, make_loader, resize_images
from .errors import DataError, DataWarning
from .folder import load_image_folder
from .mnist import load_mnist, read_idx
from .paths import cache_dir, default_data_dir
from .vizdoom_frames import ACTION_NAMES, load_vizdoom, record_episodes, vizdoom_recording
from .world import load_world, load_world_dataset, record_world

_LOADERS = {
    "cifar10": load_cifar10,
    "mnist": load_mnist,
    "folder": load_image_folder,
    "vizdoom": load_vizdoom,
    "world": load_world_dataset,
}


def load_image_dataset(
    name: str,
    path: str | Path | None = None,
    split: str = "train",
    size: int | None = None,
    **options,
) -> ImageDataset:
    """Load the image data set ``name`` in {"cifar10", "mnist", "folder", "vizdoom", "world"}.

    Args:
        name: the source.
        path: where it is; ``None``: the shared data folder (cifar10, mnist), the generated
            cache (vizdoom). Required for "folder" and "world" (a recorded world's folder).
        split: "train" or "test" ("all" too for folder and vizdoom).
        size: side length to resize to (centre square crop, then resize); ``None``: native
            (cifar10 32, mnist 28, vizdoom 64; folder images must then share one size).
        **options: passed to the source's loader, e.g. ``cache`` (cifar10, folder),
            ``mode``/``test_fraction`` (folder), ``seed``/``scenario``/``num_episodes``
            (vizdoom).
    """
    if name not in _LOADERS:
        raise DataError(f"unknown image data set {name!r}; expected one of {', '.join(_LOADERS)}")
    if name == "folder" and path is None:
        raise DataError("the 'folder' data set needs path=<folder of images>")
    return _LOADERS[name](path, split=split, size=size, **options)


__all__ = [
    "ACTION_NAMES",
    "DataError",
    "DataWarning",
    "ImageDataset",
    "cache_dir",
    "default_data_dir",
    "fit_image",
    "load_cifar10",
    "load_image_dataset",
    "load_image_folder",
    "load_mnist",
    "load_world",
    "load_world_dataset",
    "load_vizdoom",
    "make_loader",
    "read_idx",
    "record_episodes",
    "record_world",
    "resize_images",
    "vizdoom_recording",
]
