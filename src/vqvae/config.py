"""The configuration of a run: model, training and data, as dataclasses.

Read from TOML, YAML or JSON files with the sections ``[model]``, ``[train]``, ``[data]``
(and optionally ``preset = "..."`` at the top), overridden by command-line flags, and saved
resolved as ``run.json`` in the run folder, from which ``--resume`` and the other commands
rebuild it.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import PRESETS, VQVAEConfig
from .train.loop import TrainConfig


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; names the file or key."""


@dataclass
class DataConfig:
    """Which images to train on (see ``vqvae.data.load_image_dataset``)."""

    dataset: str = "vizdoom"  # cifar10 | mnist | folder | vizdoom | world
    path: str | None = None  # None: the shared data folder or the generated cache
    size: int | None = None  # side to resize to; None: the data's own (or the model's)
    options: dict[str, Any] = field(default_factory=dict)  # passed to the loader


# the training recipe that goes with each model preset
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        steps=3000,
        batch_size=32,
        lr=1e-3,
        lr_schedule="cosine",
        warmup_steps=100,
        log_every=25,
        image_every=500,
        checkpoint_every=500,
    ),
    "paper-cifar10": dict(steps=250_000, batch_size=128, lr=2e-4),
    "sonnet-cifar10": dict(steps=10_000, batch_size=32, lr=3e-4),
    "imagenet128": dict(steps=100_000, batch_size=32, lr=2e-4),
    "vizdoom84": dict(steps=10_000, batch_size=32, lr=1e-3, lr_schedule="cosine",
                      warmup_steps=100, image_every=1000, checkpoint_every=1000),
}
DATA_PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(dataset="vizdoom"),
    "paper-cifar10": dict(dataset="cifar10"),
    "sonnet-cifar10": dict(dataset="cifar10"),
    "imagenet128": dict(dataset="folder", size=128),
    "vizdoom84": dict(dataset="world", size=84),
}


@dataclass
class RunConfig:
    preset: str = "default"
    model: VQVAEConfig = field(default_factory=VQVAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "model": self.model.to_dict(),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """Preset defaults, then the sections of ``data``; unknown keys are refused by name."""
        return run_config_from_dict(
            cls, data, source, PRESETS, TRAIN_PRESETS, DATA_PRESETS, DataConfig
        )


def run_config_from_dict(
    cls,
    data: dict[str, Any],
    source: str,
    model_presets: dict,
    train_presets: dict,
    data_presets: dict,
    data_type: type,
):
    """``cls(preset, model, train, data)``: a run's configuration (image or speech) from the
    sections of ``data`` over the defaults of its preset, looked up in the three ``*_presets``
    (the model's presets are config instances, e.g. ``VQVAEConfig``; the others dicts).

    Raises ``ConfigError`` naming ``source`` and the unknown section, preset or key.
    """
    unknown = sorted(set(data) - {"preset", "model", "train", "data"})
    if unknown:
        raise ConfigError(f"{source}: unknown sections {unknown}; expected model, train, data")
    preset = data.get("preset", "default")
    if preset not in model_presets:
        raise ConfigError(
            f"{source}: unknown preset {preset!r}; expected one of {', '.join(model_presets)}"
        )
    model = {**model_presets[preset].to_dict(), **data.get("model", {})}
    train = {**train_presets[preset], **data.get("train", {})}
    dataset = {**data_presets[preset], **data.get("data", {})}
    try:
        return cls(
            preset=preset,
            model=type(model_presets[preset]).from_dict(model),
            train=_build(TrainConfig, train, "train"),
            data=_build(data_type, dataset, "data"),
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None


def _build(cls, values: dict[str, Any], section: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown [{section}] keys {unknown}; expected some of {sorted(names)}")
    return cls(**values)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML (.toml), YAML (.yaml/.yml) or JSON (.json) file as nested dicts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    f"{path}: reading YAML needs PyYAML (pip install pyyaml)"
                ) from None
            return yaml.safe_load(text) or {}
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: cannot parse ({e})") from None
    raise ConfigError(f"{path}: unknown config format {path.suffix!r}; use .toml, .yaml or .json")


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """``section.key=value`` (value parsed as TOML, else taken as a string) into ``data``."""
    key, sep, raw = assignment.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or section not in ("model", "train", "data"):
        raise ConfigError(
            f"--set {assignment!r}: expected SECTION.KEY=VALUE with SECTION one "
            "of model, train, data"
        )
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if raw.strip() in ("none", "None", "null"):
        value = None
    data.setdefault(section, {})[name] = value
