import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vqvae.data import (
    DataError,
    ImageDataset,
    default_data_dir,
    fit_image,
    load_image_dataset,
    make_loader,
)
from vqvae.data.paths import cache_dir


def _dataset(n=20, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 4, 5, channels), dtype=np.uint8)
    return ImageDataset(x, np.arange(n) % 3, ["a", "b", "c"], source="test")


def test_items_are_channel_first_floats_scaled_to_minus_half_half():
    ds = _dataset()
    x, label = ds[7]
    assert x.shape == (3, 4, 5) and x.dtype == torch.float32
    assert label == 7 % 3
    expected = torch.from_numpy(ds.images[7]).permute(2, 0, 1).double() / 255 - 0.5
    torch.testing.assert_close(x.double(), expected)
    black_white = ImageDataset(np.array([0, 255], np.uint8).reshape(2, 1, 1, 1), np.zeros(2, int))
    assert black_white[0][0].item() == -0.5 and black_white[1][0].item() == 0.5


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**31), st.sampled_from([1, 3]))
def test_variance_equals_numpy_variance_of_scaled_pixels(n, seed, channels):
    ds = _dataset(n, seed, channels)
    expected = np.var(ds.images.astype(np.float64) / 255 - 0.5)
    assert ds.variance == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_wrong_dtype_or_label_count_is_a_data_error():
    with pytest.raises(DataError, match="uint8"):
        ImageDataset(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, int))
    with pytest.raises(DataError, match="labels"):
        ImageDataset(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, int))


def _order(loader):
    return [labels.tolist() for _, labels in loader]


def test_loader_with_same_seed_repeats_the_same_shuffled_batches():
    ds = ImageDataset(np.zeros((40, 2, 2, 1), np.uint8), np.arange(40))
    a, b = make_loader(ds, 8, seed=3), make_loader(ds, 8, seed=3)
    first = _order(a)
    assert first == _order(b)
    assert _order(a) == _order(b)  # second epochs agree too
    assert sorted(sum(first, [])) == list(range(40)) and sum(first, []) != list(range(40))
    assert first != _order(make_loader(ds, 8, seed=4))


def test_loader_with_workers_is_deterministic():
    ds = ImageDataset(np.zeros((24, 2, 2, 1), np.uint8), np.arange(24))
    a = _order(make_loader(ds, 6, seed=1, num_workers=2))
    assert a == _order(make_loader(ds, 6, seed=1, num_workers=2))
    assert a == _order(make_loader(ds, 6, seed=1, num_workers=0))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 24), st.sampled_from(["L", "RGB"]))
def test_fit_image_always_gives_the_requested_square(w, h, size, mode):
    out = fit_image(Image.new(mode, (w, h)), size)
    assert out.size == (size, size) and out.mode == mode


def test_unknown_data_set_name_is_a_data_error():
    with pytest.raises(DataError, match="cifar10, mnist, folder, vizdoom"):
        load_image_dataset("imagenet")
    with pytest.raises(DataError, match="split"):
        load_image_dataset("mnist", split="valid")


def test_default_data_dir_follows_env_var_then_walks_up(tmp_path, monkeypatch):
    monkeypatch.setenv("VQVAE_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.setenv("VQVAE_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="VQVAE_DATA"):
        default_data_dir()
    monkeypatch.delenv("VQVAE_DATA")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert default_data_dir() == tmp_path / "shared" / "data"


def test_cache_dir_follows_env_vars(tmp_path, monkeypatch):
    monkeypatch.setenv("VQVAE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VQVAE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "vqvae"


class _NumpyRandomDataset(torch.utils.data.Dataset):
    """Items drawn from numpy's global generator, as a random augmentation would."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return float(np.random.random())


def test_loader_workers_get_distinct_reproducible_numpy_seeds():
    def draws():
        return [b.tolist() for b in make_loader(_NumpyRandomDataset(), 4, False, 2, num_workers=2)]

    first = draws()
    assert first == draws()
    assert first[0] != first[1]  # batch 0 comes from worker 0, batch 1 from worker 1
