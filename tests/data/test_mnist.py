import gzip

import numpy as np
import pytest
from data_fakes import idx_bytes, write_idx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vqvae.data import DataError, load_image_dataset, load_mnist, read_idx


def _fake_mnist(folder, split, n, gz, seed=0):
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte", x, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, gz)
    return x, y


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_reads_idx_files_plain_and_gzipped(tmp_path, gz, split):
    x, y = _fake_mnist(tmp_path, split, 7, gz)
    ds = load_mnist(tmp_path, split=split)
    assert ds.images.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(ds.images[..., 0], x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.class_names == tuple("0123456789")


def test_finds_idx_files_in_torchvision_raw_layout(tmp_path):
    x, _ = _fake_mnist(tmp_path / "MNIST" / "raw", "test", 3, gz=True)
    np.testing.assert_array_equal(load_image_dataset("mnist", tmp_path, "test").images[..., 0], x)


def test_reads_npz_with_x_and_y(tmp_path):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.savez(tmp_path / "mnist_test.npz", x=x, y=np.array([3, 4]))
    ds = load_mnist(tmp_path, split="test", size=32)
    assert ds.images.shape == (2, 32, 32, 1)
    assert list(ds.labels) == [3, 4]


def test_wrong_magic_is_a_data_error_naming_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(DataError, match="not an IDX file") as e:
        read_idx(bad)
    assert str(bad) in str(e.value)


def test_truncated_idx_is_a_data_error(tmp_path):
    blob = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "t.idx").write_bytes(gzip.compress(blob[:-10]))
    with pytest.raises(DataError, match="needs"):
        read_idx(tmp_path / "t.idx")


def test_missing_files_are_a_data_error_saying_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, split="test")


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32]),
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    ),
    st.booleans(),
)
def test_idx_round_trip(tmp_path_factory, a, gz):
    path = tmp_path_factory.mktemp("idx") / "a-idx"
    out = read_idx(write_idx(path, a, gz))
    assert out.shape == a.shape and out.dtype == a.dtype
    np.testing.assert_array_equal(out, a)
