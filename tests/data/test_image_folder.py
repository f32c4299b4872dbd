import warnings

import numpy as np
import pytest
from PIL import Image

from vqvae.data import DataError, DataWarning, load_image_dataset, load_image_folder
from vqvae.data.folder import in_test_split, list_images


def _save(path, array, mode=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path, **kw)


def _rgb(value, h=8, w=8):
    return np.full((h, w, 3), value, dtype=np.uint8)


@pytest.fixture
def image_tree(tmp_path):
    """cats/ (PNG, JPEG), dogs/ (WebP, nested PNG), all 8x8 RGB."""
    root = tmp_path / "images"
    _save(root / "cats" / "a.png", _rgb(10))
    _save(root / "cats" / "b.jpg", _rgb(128), quality=95)
    _save(root / "dogs" / "c.webp", _rgb(200), lossless=True)
    _save(root / "dogs" / "deep" / "d.png", _rgb(250))
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(b"junk")  # hidden: skipped, so no error
    return root


def test_reads_png_jpeg_webp_recursively_with_sorted_first_level_classes(image_tree):
    ds = load_image_folder(image_tree, split="all")
    assert ds.class_names == ("cats", "dogs")
    assert ds.images.shape == (4, 8, 8, 3)
    assert list(ds.labels) == [0, 0, 1, 1]
    means = ds.images.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(means, [10, 128, 200, 250], atol=3)  # JPEG is lossy


def test_images_in_the_root_form_class_zero(tmp_path):
    _save(tmp_path / "z.png", _rgb(1))
    _save(tmp_path / "a" / "y.png", _rgb(2))
    ds = load_image_folder(tmp_path, split="all")
    assert ds.class_names == (".", "a")
    assert ds.labels[ds.images[:, 0, 0, 0] == 1].tolist() == [0]


def test_grayscale_and_palette_images_are_converted_with_one_warning_naming_a_file(image_tree):
    _save(image_tree / "cats" / "gray.png", np.full((8, 8), 77, np.uint8))
    _save(image_tree / "dogs" / "pal.png", _rgb(30))
    Image.open(image_tree / "dogs" / "pal.png").convert("P").save(image_tree / "dogs" / "pal.png")
    with pytest.warns(DataWarning) as record:
        ds = load_image_folder(image_tree, split="all")
    assert len(record) == 1
    message = str(record[0].message)
    assert "2 of 6" in message and "gray.png" in message and "mode L" in message
    gray = ds.images[(ds.images[..., 0] == 77).all(axis=(1, 2))]
    assert gray.shape == (1, 8, 8, 3) and (gray == 77).all()


def test_rgb_folder_loads_without_warnings(image_tree):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(image_tree, split="all")


def test_rgba_image_loses_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 90, 255
    _save(tmp_path / "a.png", rgba)
    with pytest.warns(DataWarning, match="RGBA"):
        ds = load_image_folder(tmp_path, split="all")
    assert ds.images.shape == (1, 4, 4, 3) and (ds.images[..., 0] == 90).all()


def test_grayscale_mode_gives_one_channel(image_tree):
    with pytest.warns(DataWarning):
        ds = load_image_folder(image_tree, split="all", mode="L")
    assert ds.images.shape == (4, 8, 8, 1)


def test_truncated_image_is_a_data_error_naming_the_file(image_tree):
    big = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    _save(image_tree / "cats" / "broken.jpg", big)
    path = image_tree / "cats" / "broken.jpg"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="broken.jpg") as e:
        load_image_folder(image_tree, split="all")
    assert "truncated" in str(e.value)


def test_non_image_bytes_with_image_extension_is_a_data_error(image_tree):
    (image_tree / "dogs" / "fake.png").write_bytes(b"hello")
    with pytest.raises(DataError, match="fake.png"):
        load_image_folder(image_tree, split="all")


def test_size_policy_crops_the_centre_square_then_resizes(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)  # 40 wide: left quarter red, right quarter blue
    a[:, :10, 0] = 255
    a[:, 30:, 2] = 255
    a[:, 10:30] = 120  # the centre square
    _save(tmp_path / "wide.png", a)
    ds = load_image_folder(tmp_path, split="all", size=10)
    assert ds.images.shape == (1, 10, 10, 3)
    assert (np.abs(ds.images.astype(int) - 120) <= 1).all()


def test_mixed_sizes_without_size_is_a_data_error(tmp_path):
    _save(tmp_path / "a.png", _rgb(1, 8, 8))
    _save(tmp_path / "b.png", _rgb(1, 9, 8))
    with pytest.raises(DataError, match="pass size"):
        load_image_folder(tmp_path, split="all")
    assert load_image_folder(tmp_path, split="all", size=6).images.shape == (2, 6, 6, 3)


def test_splits_are_disjoint_cover_everything_and_hold_out_about_a_tenth(tmp_path):
    for i in range(200):
        _save(tmp_path / f"c{i % 2}" / f"{i:03d}.png", _rgb(i, 2, 2))
    train = load_image_dataset("folder", tmp_path, "train")
    test = load_image_dataset("folder", tmp_path, "test")
    train_ids = set(train.images[:, 0, 0, 0].tolist())
    test_ids = set(test.images[:, 0, 0, 0].tolist())
    assert not train_ids & test_ids
    assert len(train) + len(test) == 200
    assert 8 <= len(test) <= 35
    again = load_image_dataset("folder", tmp_path, "test")
    np.testing.assert_array_equal(again.images, test.images)


def test_split_of_a_file_depends_only_on_its_relative_path():
    names = [f"c/{i}.png" for i in range(1000)]
    held = [n for n in names if in_test_split(n, 0.1)]
    assert held == [n for n in names if in_test_split(n, 0.1)]
    assert 60 <= len(held) <= 140
    assert not any(in_test_split(n, 0.0) for n in names)


def test_list_images_skips_hidden_and_other_files(image_tree):
    rels = [rel for rel, _ in list_images(image_tree)]
    assert rels == ["cats/a.png", "cats/b.jpg", "dogs/c.webp", "dogs/deep/d.png"]


def test_empty_or_missing_folder_is_a_data_error_naming_the_path(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="found none") as e:
        load_image_folder(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(DataError, match="no such folder"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="needs path"):
        load_image_dataset("folder")


def test_cached_folder_is_not_decoded_again(image_tree, monkeypatch):
    first = load_image_folder(image_tree, split="all", cache=True)
    monkeypatch.setattr("vqvae.data.folder.read_image", None)  # any decode would now fail
    second = load_image_folder(image_tree, split="all", cache=True)
    np.testing.assert_array_equal(first.images, second.images)
