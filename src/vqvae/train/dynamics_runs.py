"""Training a dynamics prior over a frame tokenizer's codes, as the command line starts it.

    train_dynamics("runs/doom")                      # world: the tokenizer's training data
    train_dynamics("runs/doom", world="worlds/maze")  # or any recorded world of its size
    model = load_dynamics(Path("runs/doom/dynamics"), "runs/doom", tokenizer)

The recorded world's frames are encoded once by the frozen tokenizer and cached beside its
run (``RUN/codes_world_{train,test}.npy``, see ``priors/codes.py``); the dynamics prior then
trains on windows of those codes (``dynamics_task.py``) with the shared ``Trainer``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import ConfigError
from ..data.world import World, load_world
from ..errors import CheckpointError, UsageError
from ..model import VQVAE
from ..priors import DynamicsConfig, DynamicsPrior
from ..priors.codes import cached_codes, checkpoint_weights, file_sha256
from .distributed import setup, teardown
from .dynamics_task import CodeWindows, DynamicsTask, preview_windows
from .loop import TrainConfig, Trainer
from .prior_task import _build, run_settings
from .runs import print_summary, run_data_config

# a recipe of this package's (the paper gives none); pictures are one greedy frame each
DYNAMICS_TRAIN_DEFAULTS: dict[str, Any] = dict(
    steps=20_000, batch_size=32, lr=3e-4, lr_schedule="cosine", warmup_steps=200,
    log_every=50, image_every=1000, checkpoint_every=1000, val_batches=8,
)
FIXED_FIELDS = ("num_codes", "height", "width", "num_actions")  # the tokenizer's and world's


@dataclass
class DynamicsRunConfig:
    """What a dynamics prior's training run is made of; saved as its run.json."""

    vqvae_run: str
    world: str
    dynamics: DynamicsConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"vqvae_run": self.vqvae_run, "world": self.world,
                "dynamics": self.dynamics.to_dict(), "train": dataclasses.asdict(self.train)}


def build_dynamics_config(values: dict[str, Any], tokenizer_config, num_actions: int,
                          source: str) -> DynamicsConfig:
    """The model for the tokenizer's grid and the world's actions, sizes from ``values``."""
    fixed = {**DynamicsConfig.for_vqvae(tokenizer_config).to_dict(), "num_actions": num_actions}
    fixed = {name: fixed[name] for name in FIXED_FIELDS}
    for name, value in fixed.items():
        if name in values and values[name] != value:
            raise ConfigError(f"{source}: dynamics.{name} is {values[name]!r}, but the "
                              f"tokenizer and world have {name} {value}; it cannot be changed")
    try:
        return DynamicsConfig.from_dict({**values, **fixed})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: [dynamics] {error}") from None


def resolve_world(run: Path, world: str | Path | None) -> Path:
    """``world``, else the recorded world the tokenizer in ``run`` was trained on."""
    if world:
        return Path(world)
    data = run_data_config(run)
    if data.get("dataset") == "world" and data.get("path"):
        return Path(data["path"])
    trained_on = data.get("dataset") or "unknown data (no run.json)"
    raise UsageError(f"{run}: the tokenizer was trained on {trained_on}, not on a recorded "
                     "world; pass --world DIR (a folder written by vqvae world record)")


def world_codes(tokenizer: VQVAE, weights_sha256: str, world: World, split: str, run: Path, *,
                device, progress: bool = True, log: Callable[[str], None] = print) -> np.ndarray:
    """The codes (N, h, w) of ``world``'s frames (its ``split``), cached beside ``run``."""
    size = tokenizer.config.image_size
    key = {"world": str(world.folder.resolve()), "size": size,
           "meta": {k: v for k, v in world.meta.items() if k != "shards"}}
    cached = cached_codes(tokenizer, weights_sha256, world.as_images(size, split),
                          f"world_{split}", run, key, device=device, progress=progress, log=log)
    return cached.codes.numpy()


def train_dynamics(
    run: str | Path,
    *,
    world: str | Path | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    assignments: Sequence[str] = (),
    out: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
) -> Path:
    """Train a dynamics prior over the codes the tokenizer in ``run`` makes of ``world``.

    ``settings``: {"dynamics"|"train": {key: value}} over the defaults; ``assignments``:
    ``SECTION.KEY=VALUE`` strings applied after them.  ``out`` defaults to RUN/dynamics.
    Returns the run folder.
    """
    run = Path(run)
    out = Path(out) if out else run / "dynamics"
    if not resume and (out / "checkpoints").exists():
        raise UsageError(f"{out} already holds a dynamics prior; pass --resume to continue it "
                         "or choose another --out")
    tokenizer = VQVAE.from_pretrained(run)
    data, source = run_settings(out, resume, settings, assignments, {},
                                sections=("dynamics", "train"))
    world_dir = resolve_world(run, world or data.get("world"))
    train_world, test_world = load_world(world_dir, "train"), load_world(world_dir, "test")
    try:
        model_cfg = build_dynamics_config(data.get("dynamics", {}), tokenizer.config,
                                          len(train_world.action_names), source)
    except ValueError as error:  # a tokenizer with several codebooks per position
        raise UsageError(f"{run}: {error}") from None
    train_cfg = _build(TrainConfig, {**DYNAMICS_TRAIN_DEFAULTS, **data.get("train", {})},
                       "train", source)

    info = setup(device)
    try:
        log = print if info.is_main else (lambda _: None)
        sha = file_sha256(checkpoint_weights(run))

        def windows(world: World, split: str) -> CodeWindows:
            codes = world_codes(tokenizer, sha, world, split, run, device=info.device,
                                progress=train_cfg.progress, log=log)
            return CodeWindows(codes, world.actions, world.episodes, world.steps,
                               model_cfg.context_frames)

        if info.is_main:  # the other ranks then find the cache
            train_windows, test_windows = windows(train_world, "train"), windows(test_world, "test")
        if info.world > 1:
            torch.distributed.barrier()
        if not info.is_main:
            train_windows, test_windows = windows(train_world, "train"), windows(test_world, "test")
        if len(train_windows) < train_cfg.batch_size:
            raise UsageError(f"{world_dir}: {len(train_windows)} training windows of "
                             f"{model_cfg.context_frames + 1} frames, fewer than one batch of "
                             f"{train_cfg.batch_size}; record longer episodes or pass a smaller "
                             "--batch-size")
        config = DynamicsRunConfig(str(run), str(world_dir), model_cfg, train_cfg)
        torch.manual_seed(train_cfg.seed)
        model = DynamicsPrior(model_cfg)
        metadata = {
            "vqvae_run": str(run),
            "vqvae_weights_sha256": sha,
            "vqvae_config": tokenizer.config.to_dict(),
            "world": str(world_dir),
            "scenario": train_world.meta.get("scenario"),
            "action_names": list(train_world.action_names),
        }
        task = DynamicsTask(model, tokenizer, preview=preview_windows(test_windows),
                            eval_data=test_windows, metadata=metadata)
        if info.is_main:
            c = model_cfg
            print(f"dynamics prior: {c.context_frames} context frames + action -> gated "
                  f"PixelCNN ({c.layers} layers of {c.channels}) over {c.height} x {c.width} "
                  f"codes of K={c.num_codes}, "
                  f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; "
                  f"{len(train_windows)} training / {len(test_windows)} held-out windows; "
                  f"run folder {out}")
        trainer = Trainer(task, train_windows, train_cfg, out, val_data=test_windows,
                          dist_info=info, run_config=config.to_dict())
        last = trainer.fit(resume=resume)
    finally:
        teardown()
    if info.is_main:
        then = (f"vqvae rollout {run} --context {int(test_world.episodes[0])} -o rollout.gif; "
                f"vqvae evaluate-dynamics {run}")
        print_summary(trainer, last, "held-out windows", task.final_metrics,
                      {"predictions": "predictions.png"}, then)
    return out


def load_dynamics(folder: Path, run: str | Path, tokenizer: VQVAE,
                  device: str = "cpu") -> DynamicsPrior:
    """The dynamics prior in ``folder``, refused unless it models ``tokenizer``'s codes."""
    if not folder.exists():
        raise UsageError(f"{folder}: no dynamics prior here; train one with: "
                         f"vqvae train-dynamics {run}")
    model = DynamicsPrior.from_pretrained(folder, map_location=device)
    mismatch = model.config.grid_mismatch(tokenizer.config)
    if mismatch:
        raise CheckpointError(f"{folder}: this dynamics prior was trained on another "
                              f"tokenizer's codes ({mismatch} in {run})")
    trained_on = model.metadata.get("vqvae_weights_sha256")
    if trained_on and trained_on != file_sha256(checkpoint_weights(run)):
        print(f"warning: {folder} was trained on the codes of another checkpoint of a "
              f"tokenizer of this shape ({model.metadata.get('vqvae_run', '?')}); the codes "
              "may mean other things to it", file=sys.stderr)
    return model
