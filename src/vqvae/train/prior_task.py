"""Training a prior over the codes of a frozen VQ-VAE: the step, the sample grids, the summary.

The run folder (default RUN/prior) is an ordinary ``Trainer`` run:

    RUN/prior/run.json             vqvae_run, prior (a PixelCNNConfig), train, data
    RUN/prior/checkpoints/{best,last}/   the prior (config.json + model.safetensors) + trainer
    RUN/prior/samples.png          decoded samples (one row per class when class-conditional)
    RUN/prior/eval.json            the test split's nll per latent at the end

The loss is the prior's nll in nats per latent; the validation loss is the same on the test
split's codes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, DataConfig, apply_override
from ..eval.bits_per_dim import prior_nll_per_latent
from ..images import grid, save_png
from ..model import VQVAE
from ..priors import PixelCNNConfig, PixelCNNPrior
from .loop import Task, TrainConfig

# the training recipe of a prior (the VQ-VAE paper gives none); sampling for the pictures
# costs about a forward pass of 64-128 grids, so they are rarer than the VQ-VAE's
PRIOR_TRAIN_DEFAULTS: dict[str, Any] = dict(
    steps=10_000, batch_size=64, lr=3e-4, log_every=50, image_every=1000,
    checkpoint_every=1000, val_batches=8,
)
GRID_FIELDS = ("num_codes", "groups", "height", "width")  # the VQ-VAE's, never set by hand
MAX_CLASS_ROWS = 16  # sample grids show at most this many classes


@dataclass
class PriorRunConfig:
    """What a prior's training run is made of; saved as its run.json."""

    vqvae_run: str
    prior: PixelCNNConfig
    train: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict[str, Any]:
        return {"vqvae_run": self.vqvae_run, "prior": self.prior.to_dict(),
                "train": dataclasses.asdict(self.train), "data": dataclasses.asdict(self.data)}


def apply_prior_override(data: dict[str, Any], assignment: str,
                         sections: tuple[str, ...] = ("prior", "train", "data")) -> None:
    """``SECTION.KEY=VALUE`` with SECTION one of ``sections``, into ``data``."""
    key, sep, raw = assignment.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or section not in sections:
        raise ConfigError(f"--set {assignment!r}: expected SECTION.KEY=VALUE with SECTION one "
                          f"of {', '.join(sections)}")
    parsed: dict[str, Any] = {}
    apply_override(parsed, f"train.{name}={raw}")  # the same value syntax as vqvae train
    data.setdefault(section, {})[name] = parsed["train"][name]


def run_settings(out: Path, resume: bool, settings: dict[str, dict[str, Any]] | None,
                 assignments, fresh: dict[str, Any],
                 sections: tuple[str, ...] = ("prior", "train", "data")) -> tuple[dict, str]:
    """The sections of a run's configuration and where they came from: ``out``'s run.json
    when resuming (else ``fresh``), updated by ``settings``, then by the ``SECTION.KEY=VALUE``
    ``assignments``."""
    run_json = out / "run.json"
    resumed = resume and run_json.is_file()
    data = json.loads(run_json.read_text()) if resumed else fresh
    for section, values in (settings or {}).items():
        data.setdefault(section, {}).update(values)
    for assignment in assignments:
        apply_prior_override(data, assignment, sections)
    return data, str(run_json) if resumed else "flags"


def build_data_config(values: dict[str, Any], source: str) -> DataConfig:
    return _build(DataConfig, values, "data", source)


def build_train_config(values: dict[str, Any], source: str) -> TrainConfig:
    return _build(TrainConfig, {**PRIOR_TRAIN_DEFAULTS, **values}, "train", source)


def build_prior_config(values: dict[str, Any], vqvae_config, classes: int,
                       source: str) -> PixelCNNConfig:
    """The prior for ``vqvae_config``'s code grid; class-conditional when ``classes`` >= 2.

    ``values`` may set the sizes, and ``num_classes`` to 0 (unconditional); the grid fields
    are the VQ-VAE's and may only repeat them.
    """
    full = PixelCNNConfig.for_vqvae(vqvae_config).to_dict()
    grid = {name: full[name] for name in GRID_FIELDS}
    for name in GRID_FIELDS:
        if name in values and values[name] != grid[name]:
            raise ConfigError(f"{source}: prior.{name} is {values[name]!r}, but the VQ-VAE's "
                              f"codes have {name} {grid[name]}; it cannot be changed")
    default_classes = classes if classes >= 2 else 0
    wanted = values.get("num_classes", default_classes)
    if wanted not in (0, default_classes):
        raise ConfigError(f"{source}: prior.num_classes is {wanted!r}; the data has "
                          f"{classes} classes, so it must be {default_classes} or 0")
    try:
        return PixelCNNConfig.from_dict({**values, **grid, "num_classes": wanted})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: [prior] {error}") from None


def _build(cls, values: dict[str, Any], section: str, source: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown [{section}] keys {unknown}; expected some of "
                          f"{sorted(names)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: [{section}] {error}") from None


class PriorTask(Task):
    """Minimises the prior's nll of the VQ-VAE's codes, in nats per latent.

    Args:
        model: the prior.
        vqvae: the frozen VQ-VAE whose codes it models (decodes the sample grids).
        class_names: the classes, when the prior is class-conditional.
        eval_data: the test split's codes, scored in full at the end of the run.
        metadata: saved with every checkpoint of the prior (where its codes came from).
        seed: of the sample grids (the same latents at every step; the global RNG is left
            alone, so a resumed run follows the same trajectory).
    """

    def __init__(self, model: PixelCNNPrior, vqvae: VQVAE, *, class_names=(), eval_data=None,
                 metadata: dict | None = None, seed: int = 0) -> None:
        mismatch = model.config.grid_mismatch(vqvae.config)
        assert mismatch is None, mismatch
        self.model = model
        self.model.metadata = dict(metadata or {})
        self.vqvae = vqvae.eval().requires_grad_(False)
        self.class_names = tuple(class_names)
        self.eval_data = eval_data
        self.seed = seed
        self.final_metrics: dict[str, float] = {}

    @property
    def conditional(self) -> bool:
        return self.model.config.num_classes > 0

    def step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        codes, labels = batch
        codes = codes.long()
        logits = model(codes, labels if self.conditional else None)
        loss = F.cross_entropy(logits.float(), codes)  # mean over latents: nats per latent
        return loss, {"bits_per_latent": loss.item() / math.log(2)}

    def sample_images(self, model: PixelCNNPrior) -> tuple[torch.Tensor, int]:
        """Decoded samples (N, C, H, W) and the images per row of their grid."""
        device = next(model.parameters()).device
        generator = torch.Generator(device).manual_seed(self.seed)
        if self.conditional:
            classes = min(model.config.num_classes, MAX_CLASS_ROWS)
            labels = torch.arange(classes, device=device).repeat_interleave(8)
            codes = model.sample(len(labels), labels, generator=generator)
        else:
            codes = model.sample(64, generator=generator)
        return self.vqvae.to(device).decode(codes), 8

    def pictures(self, model: nn.Module, run_dir: Path, step: int) -> None:
        images, nrow = self.sample_images(model)
        picture = grid(images, nrow)
        save_png(picture, run_dir / "samples" / f"step_{step:07d}.png")
        save_png(picture, run_dir / "samples.png")

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        if self.eval_data is None:
            return
        device = next(model.parameters()).device
        nats = prior_nll_per_latent(model, self.eval_data, device=device)
        self.final_metrics = {
            "test_nll_per_latent": nats,
            "test_bits_per_latent": nats / math.log(2),
            "uniform_nll_per_latent": math.log(model.config.num_codes),
        }
        with open(run_dir / "eval.json", "w") as f:
            json.dump(self.final_metrics, f, indent=2)
