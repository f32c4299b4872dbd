"""A model saved as its config in JSON beside its weights in safetensors (no pickle anywhere).

    DIR/config.json        {"format_version": 1, "model": NAME, "config": {...}[, "metadata": ..]}
    DIR/model.safetensors  the state dict; format_version and torch's module versions

``VQVAE``, ``SpeechVQVAE`` and ``PixelCNNPrior`` get their ``save_pretrained`` and
``from_pretrained`` from ``Pretrained``, which calls the functions of the same names here.  A
checkpoint that cannot be loaded raises ``CheckpointError`` naming the file at fault.  The
config dataclasses check their fields with ``check_field_types``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError

FORMAT_VERSION = 1  # of config.json and model.safetensors; bump when either changes
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


# ---------------------------------------------------------------------- config dataclasses
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_PLURALS = {"int": "ints", "float": "floats", "str": "strings", "bool": "bools"}


def check_field_types(config) -> None:
    """Checks every field of the (frozen) dataclass ``config`` against its annotation.

    Annotations (strings, under ``from __future__ import annotations``): 'int', 'float',
    'str', 'bool', 'X | None' and 'tuple[X, ...]'.  An int is not a bool (nor a bool an
    int); an int given for a float becomes a float, and a list for a tuple a tuple (what JSON
    gives back).  Raises ``TypeError`` naming the field.
    """
    for field in dataclasses.fields(config):
        name, annotation, value = field.name, field.type, getattr(config, field.name)
        if annotation.startswith("tuple["):
            base = annotation.removeprefix("tuple[").removesuffix(", ...]")
            if isinstance(value, list):
                value = tuple(value)
            ok = isinstance(value, tuple) and all(_is(v, base) for v in value)
            kind = f"a list of {_PLURALS[base]}"
        else:
            base, _, optional = annotation.partition(" | ")
            ok = (optional == "None" and value is None) or _is(value, base)
            kind = base + (" or None" if optional else "")
            if base == "float" and ok and value is not None:
                value = float(value)
        if not ok:
            raise TypeError(f"{type(config).__name__}.{name} must be {kind}, got {value!r}")
        object.__setattr__(config, name, value)


def _is(value, base: str) -> bool:
    return isinstance(value, _TYPES[base]) and (base == "bool" or not isinstance(value, bool))


def config_from_dict(cls, data: dict):
    """``cls(**data)`` for a config dataclass; unknown keys are rejected, missing ones take
    defaults (the inverse of its ``to_dict``)."""
    if not isinstance(data, dict):
        raise TypeError(f"a {cls.__name__} is read from a dict, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(map(repr, unknown))}")
    return cls(**data)


# ---------------------------------------------------------------------- models
class Pretrained:
    """``save_pretrained`` and ``from_pretrained`` for an ``nn.Module`` built from its
    ``config`` alone, ``cls(config)``:

        class VQVAE(Pretrained, nn.Module, name="VQVAE", config=VQVAEConfig): ...

    ``name`` is saved in config.json and checked on loading; ``config`` is the config class
    (with ``to_dict`` and ``from_dict``).  A model with a ``metadata`` attribute (a JSON-able
    dict) has it saved and loaded too.
    """

    model_name: ClassVar[str]
    config_class: ClassVar[type]

    def __init_subclass__(cls, name: str | None = None, config: type | None = None,
                          **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:  # else inherited
            cls.model_name, cls.config_class = name, config

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Writes ``config.json`` and ``model.safetensors`` into ``directory`` (created)."""
        save_pretrained(self, directory, model_name=self.model_name,
                        config=self.config.to_dict(), metadata=getattr(self, "metadata", None))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> Self:
        """Rebuilds the model from ``config.json``, loads ``model.safetensors``; eval mode.

        ``directory`` is a folder written by ``save_pretrained`` or a training run folder, whose
        ``checkpoints/best`` (else ``checkpoints/last``) is then loaded.
        """
        model, metadata = load_pretrained(cls, directory, map_location, model_name=cls.model_name,
                                          config_from_dict=cls.config_class.from_dict)
        if hasattr(model, "metadata"):
            model.metadata = metadata
        return model


# ---------------------------------------------------------------------- saving
def save_pretrained(module: nn.Module, directory: str | os.PathLike, *, model_name: str,
                    config: dict, metadata: dict | None = None) -> None:
    """Writes ``config.json`` and ``model.safetensors`` into ``directory`` (created).

    Each file is written under a temporary name and then renamed, so a crash never leaves a
    half-written one; ``metadata`` (free-form JSON) is saved in config.json when given.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = module.state_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    versions = {k: m["version"] for k, m in state._metadata.items() if "version" in m}
    tmp = directory / (WEIGHTS_NAME + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "format_version": str(FORMAT_VERSION),
                                           "module_versions": json.dumps(versions)})
    os.replace(tmp, directory / WEIGHTS_NAME)
    saved = {"format_version": FORMAT_VERSION, "model": model_name, "config": config}
    if metadata is not None:
        saved["metadata"] = metadata
    tmp = directory / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(saved, indent=2) + "\n")
    os.replace(tmp, directory / CONFIG_NAME)


# ---------------------------------------------------------------------- loading
def load_pretrained(build: Callable[[Any], nn.Module], directory: str | os.PathLike,
                    map_location: str | torch.device, *, model_name: str,
                    config_from_dict: Callable[[dict], Any]) -> tuple[nn.Module, dict]:
    """(``build(config)`` with the weights loaded, in eval mode on ``map_location``, metadata)
    from ``directory``, a checkpoint or a run folder (see ``resolve_checkpoint``)."""
    directory = resolve_checkpoint(Path(directory))
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    config, metadata = read_model_config(config_path, model_name, config_from_dict)
    model = build(config)
    state = read_weights(weights_path)
    check_tensors(model.state_dict(), state, weights_path, config_path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{weights_path}: {error}") from error
    return model.to(map_location).eval(), metadata


def resolve_checkpoint(directory: Path) -> Path:
    """The folder holding the weights: ``directory`` itself, or a run's best/last checkpoint."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint or run directory")
    if (directory / WEIGHTS_NAME).is_file() or (directory / CONFIG_NAME).is_file():
        return directory
    for name in ("best", "last", "last.old"):
        candidate = directory / "checkpoints" / name
        if (candidate / WEIGHTS_NAME).is_file():
            return candidate
    raise CheckpointError(f"{directory}: neither a checkpoint ({CONFIG_NAME} + {WEIGHTS_NAME}) "
                          "nor a run folder with checkpoints/best or checkpoints/last")


def read_model_config(path: Path, model_name: str,
                      from_dict: Callable[[dict], Any]) -> tuple[Any, dict]:
    """(config, metadata) of a ``model_name`` saved in ``path`` (a config.json), the config
    rebuilt by ``from_dict``; or a CheckpointError naming the file."""
    _check_exists(path)
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: invalid JSON ({error})") from error
    # the first VQ-VAE checkpoints did not name their model
    found = data.get("model", "VQVAE") if isinstance(data, dict) else None
    if found != model_name or "config" not in data:
        raise CheckpointError(f"{path}: not a {model_name} config (expected 'model': "
                              f"'{model_name}' and a 'config', found model {found!r})")
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, "
                              f"got {version!r}")
    _check_version(path, version)
    try:
        config = from_dict(data["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from error
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: 'metadata' must be an object, got {metadata!r}")
    return config, metadata


def read_weights(path: Path) -> OrderedDict:
    """The tensors of a safetensors file on the CPU, with torch's state-dict metadata."""
    _check_exists(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            state = OrderedDict((key, f.get_tensor(key)) for key in f.keys())
        versions = json.loads(metadata.get("module_versions", "{}"))
        version = int(metadata.get("format_version", FORMAT_VERSION))
    except Exception as error:  # safetensors raises its own error types for a corrupt file
        raise CheckpointError(f"{path}: not a readable safetensors file "
                              f"({type(error).__name__}: {error})") from error
    _check_version(path, version)
    state._metadata = OrderedDict((k, {"version": v}) for k, v in versions.items())
    return state


def check_tensors(expected: dict, found: dict, weights_path: Path, config_path: Path) -> None:
    """Names the first tensor that is missing, unexpected or of the wrong shape."""
    def names(keys):
        keys = sorted(keys)
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing:
        raise CheckpointError(f"{weights_path}: missing tensors {names(missing)} that the model "
                              f"of {config_path} needs; were they saved with another config?")
    if unexpected:
        raise CheckpointError(f"{weights_path}: unexpected tensors {names(unexpected)} for the "
                              f"model of {config_path}; were they saved with another config?")
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape:
            raise CheckpointError(
                f"{weights_path}: tensor {key!r} has shape {tuple(found[key].shape)}, but the "
                f"model of {config_path} expects {tuple(tensor.shape)}; were they saved with "
                "another config?"
            )
        if found[key].is_floating_point() != tensor.is_floating_point():
            raise CheckpointError(f"{weights_path}: tensor {key!r} has dtype {found[key].dtype}, "
                                  f"but the model expects {tensor.dtype}")


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a checkpoint holds {CONFIG_NAME} and "
                              f"{WEIGHTS_NAME})")


def _check_version(path: Path, version: int) -> None:
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version} is newer than this vqvae "
                              f"supports ({FORMAT_VERSION}); upgrade vqvae")
