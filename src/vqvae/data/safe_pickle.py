"""A restricted unpickler for the official CIFAR-10 python batches.

The batches are Python 2 pickles of dicts holding byte strings, lists of ints/strings and one
uint8 numpy array. A pickle can call any importable function, so ``pickle.load`` on a
downloaded file can run code. ``load_restricted`` resolves only the three globals a pickled
numpy array needs, and maps each to a stand-in written here, never to numpy's own callables:

* ``numpy.core.multiarray._reconstruct`` (``numpy._core`` in NumPy 2) -> ``_ArrayStub``
* ``numpy.ndarray`` -> a marker that is only accepted as ``_reconstruct``'s first argument
* ``numpy.dtype`` -> ``np.dtype`` for plain numeric types only (no object/structured dtypes)

``_ArrayStub`` rebuilds the array from raw bytes with ``np.frombuffer`` after checking shape,
dtype and byte count. Every other global (``os.system``, ``builtins.eval``,
``_codecs.encode``, ...) raises ``pickle.UnpicklingError``.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np

_RECONSTRUCT_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


class _NDArrayMarker:
    """Stands for ``numpy.ndarray`` in a pickle; calling it fails."""

    def __init__(self, *args: Any) -> None:
        raise pickle.UnpicklingError("refusing to call numpy.ndarray from a pickle")


class _ArrayStub:
    """What ``_reconstruct`` returns; the BUILD opcode then fills it via ``__setstate__``."""

    def __init__(self, subtype: Any, shape: Any = (0,), typecode: Any = b"b") -> None:
        if subtype is not _NDArrayMarker:
            raise pickle.UnpicklingError("refusing _reconstruct of a type other than ndarray")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # numpy's ndarray state: (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("unexpected numpy array state")
        shape, dtype, fortran, raw = state[-4:]
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.fields is not None:
            raise pickle.UnpicklingError(f"refusing numpy dtype {dtype!r}")
        if not (isinstance(shape, tuple) and all(type(s) is int and s >= 0 for s in shape)):
            raise pickle.UnpicklingError(f"bad numpy array shape {shape!r}")
        if isinstance(raw, str):  # a Python 2 str read with encoding="latin1"
            raw = raw.encode("latin1")
        if not isinstance(raw, bytes | bytearray):
            raise pickle.UnpicklingError("numpy array data is not a byte string")
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise pickle.UnpicklingError(
                f"numpy array of shape {shape} {dtype} needs "
                f"{math.prod(shape) * dtype.itemsize} bytes, got {len(raw)}"
            )
        flat = np.frombuffer(bytearray(raw), dtype=dtype)
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _numeric_dtype(name: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if isinstance(name, bytes):
        name = name.decode("latin1")
    if not isinstance(name, str):
        raise pickle.UnpicklingError(f"refusing numpy dtype spec {name!r}")
    try:
        dtype = np.dtype(name, bool(align), True)  # a copy: BUILD then sets its byte order
    except TypeError as e:
        raise pickle.UnpicklingError(f"bad numpy dtype {name!r}") from e
    if dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"refusing non-numeric numpy dtype {name!r}")
    return dtype


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles builtin containers and plain numeric numpy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module in _RECONSTRUCT_MODULES and name == "_reconstruct":
            return _ArrayStub
        if module == "numpy" and name == "ndarray":
            return _NDArrayMarker
        if module == "numpy" and name == "dtype":
            return _numeric_dtype
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _finish(obj: Any) -> Any:
    """Replace array stubs by their arrays and byte-string dict keys by str."""
    if isinstance(obj, _ArrayStub):
        array = getattr(obj, "array", None)  # unset if built by NEWOBJ, which skips __init__
        if array is None:
            raise pickle.UnpicklingError("numpy array without data")
        return array
    if isinstance(obj, dict):
        return {
            (k.decode("latin1") if isinstance(k, bytes) else k): _finish(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_finish(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v) for v in obj)
    return obj


def load_restricted(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 or 3 pickle) without running code from it.

    Raises ``pickle.UnpicklingError`` for any global outside the numpy-array allow list, and
    the usual ``pickle``/``EOFError`` errors for a damaged stream. Python 2 strings come back
    as ``str`` (latin-1), dict keys always as ``str``.
    """
    obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    return _finish(obj)
