"""Checkpoints: safetensors for every tensor, JSON for everything else, written atomically.

A checkpoint is a folder:

    model.safetensors, config.json        what ``save_pretrained`` writes (weights + model config)
    trainer.safetensors, trainer.json     optimiser, RNG states, step, data position, ...

It is written into a temporary sibling folder and renamed into place, so a crash or a kill at
any moment leaves either the previous checkpoint or the new one, never a mix.  Nothing is ever
unpickled: nested state (e.g. ``optimizer.state_dict()``) is split into its tensors, stored by
path in safetensors, and the rest, stored as JSON with ``{"__tensor__": path}`` placeholders.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

FORMAT_VERSION = 1


def flatten_state(state: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Nested dicts/lists/tuples with tensors -> (JSON-able skeleton, {path: tensor})."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(obj, dict):
            keys = list(obj.keys())
            return {"__dict__": [[_key(k), walk(obj[k], f"{path}.{k}")] for k in keys]}
        if isinstance(obj, (list, tuple)):
            items = [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]
            return {"__tuple__": items} if isinstance(obj, tuple) else items
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"cannot store {type(obj).__name__} at {path!r} in a checkpoint")

    return walk(state, prefix or "state"), tensors


def _key(k: Any) -> Any:
    if isinstance(k, (int, str)):
        return k
    raise TypeError(f"checkpoint dict keys must be int or str, got {type(k).__name__}")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of ``flatten_state``."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def write_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """Create folder ``target`` by letting ``fill`` write into a temporary folder, then rename.

    The previous ``target``, if any, is moved aside first and removed only after the rename,
    so at every moment one complete version exists (``read`` also looks at ``target.old``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        for f in tmp.iterdir():  # data on disk before the rename makes it visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = target.with_name(target.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def existing_checkpoint(target: Path) -> Path | None:
    """``target`` if complete, else the previous version left by an interrupted write."""
    target = Path(target)
    for p in (target, target.with_name(target.name + ".old")):
        if (p / "trainer.json").is_file():
            return p
    return None


def save_trainer_state(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (nested, with tensors) as trainer.json + trainer.safetensors."""
    skeleton, tensors = flatten_state(state)
    save_file(tensors, str(folder / "trainer.safetensors"))
    with open(folder / "trainer.json", "w") as f:
        json.dump({"format_version": FORMAT_VERSION, "state": skeleton}, f)


def load_trainer_state(folder: Path) -> dict[str, Any]:
    folder = Path(folder)
    meta_path, tensor_path = folder / "trainer.json", folder / "trainer.safetensors"
    for p in (meta_path, tensor_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: missing; the checkpoint folder is incomplete")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format version {meta['format_version']} is newer than this vqvae "
            f"reads ({FORMAT_VERSION}); upgrade vqvae"
        )
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{tensor_path}: corrupt or truncated safetensors file ({e})"
        ) from None
    try:
        return unflatten_state(meta["state"], tensors)
    except KeyError as e:
        raise CheckpointError(
            f"{tensor_path}: tensor {e} named in trainer.json is missing"
        ) from None
