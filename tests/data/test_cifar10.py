import numpy as np
import pytest
from data_fakes import fake_cifar_batch, make_tar_gz, py2_pickle

from vqvae.data import DataError, load_cifar10, load_image_dataset
from vqvae.data import cifar10 as cifar_module


@pytest.mark.parametrize("split", ["train", "test"])
def test_reads_official_batch_folder_in_hwc_order(cifar_batches, split):
    folder, expected = cifar_batches
    ds = load_cifar10(folder, split=split)
    x, y = expected[split]
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.class_names == tuple(f"a{i}" for i in range(10))  # from batches.meta


def test_finds_batch_folder_inside_a_parent_folder(cifar_batches):
    folder, expected = cifar_batches
    ds = load_image_dataset("cifar10", folder.parent, split="test")
    np.testing.assert_array_equal(ds.images, expected["test"][0])


def test_reads_tar_gz_archive_in_place(cifar_batches, tmp_path):
    folder, expected = cifar_batches
    archive = make_tar_gz(folder, tmp_path / "cifar-10-python.tar.gz")
    for source in (archive, archive.parent):  # the file itself or a folder holding it
        ds = load_cifar10(source, split="train")
        np.testing.assert_array_equal(ds.images, expected["train"][0])
        np.testing.assert_array_equal(ds.labels, expected["train"][1])


def test_pixel_layout_is_red_green_blue_planes(tmp_path):
    batch, _, _ = fake_cifar_batch(1, seed=0)
    data = np.zeros((1, 3072), np.uint8)
    data[0, :1024] = 10  # red plane
    data[0, 1024:2048] = 20  # green plane
    data[0, 2048 + 5] = 30  # blue, row 0, column 5
    batch[b"data"] = data
    (tmp_path / "test_batch").write_bytes(py2_pickle(batch))
    img = load_cifar10(tmp_path, split="test").images[0]
    assert img.shape == (32, 32, 3)
    assert (img[..., 0] == 10).all() and (img[..., 1] == 20).all()
    assert img[0, 5, 2] == 30 and img[..., 2].sum() == 30


def test_missing_batch_is_a_data_error_naming_it(cifar_batches):
    folder, _ = cifar_batches
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar10(folder, split="train")


def test_malicious_batch_is_refused_without_running_it(cifar_batches, tmp_path):
    folder, _ = cifar_batches
    marker = tmp_path / "ran"
    payload = (
        b"\x80\x02cposix\nsystem\nq\x00X"
        + len(f"touch {marker}").to_bytes(4, "little")
        + f"touch {marker}".encode()
        + b"\x85R."
    )
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match="refusing to load global posix.system"):
        load_cifar10(folder, split="test")
    assert not marker.exists()


def test_batch_with_wrong_row_length_is_a_data_error(tmp_path):
    batch, _, _ = fake_cifar_batch(2, seed=0)
    batch[b"data"] = np.zeros((2, 100), np.uint8)
    (tmp_path / "test_batch").write_bytes(py2_pickle(batch))
    with pytest.raises(DataError, match="3072"):
        load_cifar10(tmp_path, split="test")


def _write_npz(path, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    np.savez_compressed(path, x=x, y=y, class_names=np.array(cifar_module.CLASS_NAMES))
    return x, y


def test_npz_is_decoded_once_then_read_from_cache(tmp_path, monkeypatch, isolated_cache):
    x, y = _write_npz(tmp_path / "cifar10_train.npz", 5, seed=1)
    first = load_cifar10(tmp_path, split="train")
    np.testing.assert_array_equal(first.images, x)
    assert list((isolated_cache / "arrays").glob("cifar10-train-npz-*.npz"))

    def fail(_):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(cifar_module, "_read_npz", fail)
    second = load_cifar10(tmp_path, split="train")
    np.testing.assert_array_equal(second.images, x)
    np.testing.assert_array_equal(second.labels, y)


def test_changed_npz_is_decoded_again(tmp_path):
    _write_npz(tmp_path / "cifar10_test.npz", 4, seed=1)
    load_cifar10(tmp_path, split="test")
    x2, _ = _write_npz(tmp_path / "cifar10_test.npz", 6, seed=2)
    np.testing.assert_array_equal(load_cifar10(tmp_path, split="test").images, x2)


def test_size_resizes_to_a_square(tmp_path):
    _write_npz(tmp_path / "cifar10_test.npz", 3, seed=1)
    assert load_cifar10(tmp_path, split="test", size=16).images.shape == (3, 16, 16, 3)


def test_folder_without_cifar_data_is_a_data_error_saying_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py") as e:
        load_cifar10(tmp_path, split="train")
    assert str(tmp_path) in str(e.value)
    with pytest.raises(DataError, match="no such file or folder"):
        load_cifar10(tmp_path / "missing")
