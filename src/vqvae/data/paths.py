"""Where data is found and where decoded copies are cached.

* Data: ``VQVAE_DATA`` if set, else the first ``shared/data`` folder found walking up from the
  current directory, then from this package's location.
* Cache: ``VQVAE_CACHE`` if set, else ``$XDG_CACHE_HOME/vqvae``, else ``~/.cache/vqvae``.

Decoded arrays are cached as uncompressed ``.npz`` files keyed by the source files' absolute
paths, sizes and modification times, so an edited or replaced source is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the meaning of cached arrays changes


def default_data_dir() -> Path:
    """The folder holding the shared ``.npz`` datasets (see the module docstring)."""
    env = os.environ.get("VQVAE_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"VQVAE_DATA={env!r}: expected a folder of data files, found none")
        return path
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate
    raise DataError(
        "no default data folder: expected a 'shared/data' folder above the current directory "
        f"({Path.cwd()}) or the package; set VQVAE_DATA or pass path=..."
    )


def cache_dir() -> Path:
    """The root of the on-disk cache (not created here)."""
    env = os.environ.get("VQVAE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vqvae"


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` uncompressed to ``path`` via a temporary file and ``os.replace``.

    Readers never see a half-written file, and concurrent writers of the same file are safe.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fingerprint(sources: Iterable[Path], tag: str) -> str:
    h = hashlib.sha1(f"{CACHE_FORMAT}|{tag}".encode())
    for src in sources:
        st = src.stat()
        h.update(f"|{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_arrays(
    sources: list[Path],
    tag: str,
    build: Callable[[], dict[str, np.ndarray]],
    use_cache: bool = True,
) -> dict[str, np.ndarray]:
    """Arrays decoded from ``sources`` by ``build``, cached on disk under ``cache_dir()/arrays``.

    ``tag`` names what is built from the sources (e.g. ``"cifar10-train"``); it is part of the
    cache key and of the file name. A cache that cannot be written is skipped with a log line.
    """
    if not use_cache:
        return build()
    path = cache_dir() / "arrays" / f"{tag}-{_fingerprint(sources, tag)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:  # a damaged cache file: rebuild it
            log.warning("ignoring unreadable cache file %s: %s", path, e)
    arrays = build()
    try:
        save_npz_atomic(path, arrays)
        log.info("cached decoded %s at %s", tag, path)
    except OSError as e:
        log.warning("could not write cache file %s: %s", path, e)
    return arrays


def codes_meta_path(codes: Path) -> Path:
    """Where the metadata of a codes file is: ``codes.npy`` -> ``codes.npy.json``."""
    return codes.with_name(codes.name + ".json")


def read_codes_file(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """A codes array written by ``vqvae encode`` (never unpickled) and its metadata ({} when
    the .json beside it is missing); a DataError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such codes file")
    try:
        codes = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npy array ({e})") from None
    meta_path = codes_meta_path(path)
    if not meta_path.is_file():
        return codes, {}
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{meta_path}: invalid JSON ({e})") from None
    return codes, meta if isinstance(meta, dict) else {}
