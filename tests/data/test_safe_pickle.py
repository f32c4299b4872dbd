import os
import pickle

import numpy as np
import pytest
from data_fakes import py2_pickle
from hypothesis import given, settings
from hypothesis import strategies as st

from vqvae.data.safe_pickle import load_restricted


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_refuses_pickle_that_would_run_a_shell_command(tmp_path):
    marker = tmp_path / "ran"
    blob = pickle.dumps({"data": _RunsCommand(marker)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_restricted(blob)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_refuses_builtin_eval_at_every_protocol(protocol):
    with pytest.raises(pickle.UnpicklingError, match=r"builtin\w*\.eval"):
        load_restricted(pickle.dumps([_CallsEval()], protocol=protocol))


def test_refuses_object_arrays():
    blob = pickle.dumps(np.array([1, "a"], dtype=object), protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="dtype"):
        load_restricted(blob)


def test_refuses_array_whose_byte_count_does_not_match_its_shape():
    blob = py2_pickle({b"data": np.zeros((2, 3), np.uint8)})
    # shrink the declared shape (2, 3) -> (2, 2); the 6 data bytes no longer fit
    bad = blob.replace(b"K\x02K\x03\x86", b"K\x02K\x02\x86")
    assert bad != blob
    with pytest.raises(pickle.UnpicklingError, match="needs 4 bytes"):
        load_restricted(bad)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "<i8", ">f4", "float64", "bool"])
def test_numeric_arrays_round_trip_from_python2_pickles(dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    out = load_restricted(py2_pickle({b"x": a, b"f": np.asfortranarray(a)}))
    assert out["x"].dtype == a.dtype
    np.testing.assert_array_equal(out["x"], a)
    np.testing.assert_array_equal(out["f"], a)


def test_python3_protocol4_array_round_trips():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(load_restricted(pickle.dumps({"a": a}, protocol=4))["a"], a)


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=50, deadline=None)
@given(plain)
def test_builtin_containers_round_trip(obj):
    assert load_restricted(pickle.dumps(obj, protocol=4)) == obj


def test_damaged_stream_raises_a_pickle_error():
    blob = py2_pickle({b"data": np.zeros(10, np.uint8)})
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        load_restricted(blob[: len(blob) // 2])
