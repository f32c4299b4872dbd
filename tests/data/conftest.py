"""Fixtures for the data tests: an isolated cache and a fake CIFAR-10 batch folder."""

from __future__ import annotations

import numpy as np
import pytest
from data_fakes import fake_cifar_batch, py2_pickle


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test writes its cache under its own tmp folder, never to ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VQVAE_CACHE", str(cache))
    return cache


@pytest.fixture
def cifar_batches(tmp_path):
    """Write a fake ``cifar-10-batches-py/`` (2 images per training batch, 3 for test).

    Returns (folder, {"train": (images, labels), "test": (images, labels)}).
    """
    folder = tmp_path / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        batch, x, y = fake_cifar_batch(2, seed=i)
        (folder / f"data_batch_{i}").write_bytes(py2_pickle(batch))
        train_x.append(x)
        train_y.append(y)
    batch, test_x, test_y = fake_cifar_batch(3, seed=9)
    (folder / "test_batch").write_bytes(py2_pickle(batch))
    names = [b"a0", b"a1", b"a2", b"a3", b"a4", b"a5", b"a6", b"a7", b"a8", b"a9"]
    meta = {b"num_cases_per_batch": 2, b"label_names": names, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    expected = {
        "train": (np.concatenate(train_x), np.concatenate(train_y)),
        "test": (test_x, test_y),
    }
    return folder, expected
