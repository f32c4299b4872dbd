"""The loaders on the real files in shared/data (skipped where that folder is absent)."""

from pathlib import Path

import numpy as np
import pytest

from vqvae.data import load_image_dataset

SHARED_DATA = next(
    (
        p / "shared" / "data"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data").is_dir()
    ),
    None,
)
pytestmark = pytest.mark.skipif(SHARED_DATA is None, reason="shared/data not found")


def test_mnist_npz_train_and_test_match_the_readme():
    train = load_image_dataset("mnist", SHARED_DATA, "train")
    test = load_image_dataset("mnist", SHARED_DATA, "test")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert train.variance == pytest.approx((78.56748998339798 / 255) ** 2, rel=1e-6)


def test_cifar10_test_npz_matches_the_readme():
    ds = load_image_dataset("cifar10", SHARED_DATA, "test")
    assert ds.images.shape == (10000, 32, 32, 3)
    assert ds.class_names[:3] == ("airplane", "automobile", "bird")
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    np.testing.assert_allclose(
        ds.images.mean(axis=(0, 1, 2)) / 255, [0.4941, 0.4851, 0.4504], atol=5e-4
    )


def test_default_path_finds_shared_data(monkeypatch):
    monkeypatch.delenv("VQVAE_DATA", raising=False)
    assert len(load_image_dataset("mnist", split="test")) == 10000
