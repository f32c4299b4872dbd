"""Whole training runs, as the command line starts them: data, model, task, trainer.

    train_vqvae(RunConfig(...), "runs/mine")        # an image VQ-VAE
    train_prior("runs/mine")                         # a PixelCNN over its codes

Each prints where its pictures, metrics and checkpoints are, and returns the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data import load_image_dataset
from ..errors import CheckpointError, UsageError
from ..model import VQVAE
from ..priors import PixelCNNPrior
from ..priors.codes import cached_codes, checkpoint_weights, file_sha256
from .distributed import setup, teardown
from .loop import Trainer
from .prior_task import (
    PriorRunConfig,
    PriorTask,
    build_data_config,
    build_prior_config,
    build_train_config,
    run_settings,
)
from .vqvae_task import VQVAETask


def run_data_config(run: str | Path) -> dict[str, Any]:
    """The [data] section a VQ-VAE run was trained with ({} if it has no run.json)."""
    p = Path(run) / "run.json"
    return json.loads(p.read_text()).get("data", {}) if p.is_file() else {}


def latents_text(shape) -> str:
    """(G, h, w) -> "h x w x G"; (h, w) -> "h x w"."""
    return " x ".join(map(str, (*shape[1:], shape[0]) if len(shape) == 3 else shape))


def print_summary(
    trainer: Trainer,
    last: dict[str, float],
    split: str,
    final: dict[str, float],
    files: dict[str, str],
    then: str = "",
) -> None:
    """What a finished run says: ``last`` (the last logged metrics), ``final`` (those of the
    test ``split``), where its ``files`` (label: name in the run folder), metrics and
    checkpoints are, and ``then``, what to run next."""

    def values(metrics: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    print(f"\ntrained {trainer.step} steps; last logged: {values(last)}")
    if final:
        print(f"{split}: {values(final)}")
    out = trainer.run_dir
    rows = {label: out / name for label, name in files.items()}
    rows["metrics"] = f"{out / 'metrics.csv'} (TensorBoard: {out / 'tensorboard'})"
    rows["checkpoint"] = f"{out / 'checkpoints' / 'best'} (and last)"
    if then:
        rows["next"] = then
    width = max(map(len, rows)) + 2
    for label, where in rows.items():
        print(f"  {label:<{width}}{where}")


def train_vqvae(
    config: RunConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    evaluate: bool = True,
) -> Path:
    """Train an image VQ-VAE as ``config`` says, in run folder ``out``; returns the folder.

    ``out`` defaults to runs/DATE-TIME-DATASET; ``resume`` continues the run already there.
    ``evaluate``: measure the whole test split at the end (eval.json, code-usage plot).
    Under torchrun every process calls this with the same ``out``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not out:
        raise UsageError(
            "with torchrun, pass --out DIR: every process must use the same run folder"
        )
    info = setup(device)
    out = Path(out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{config.data.dataset}")
    if not resume and (out / "checkpoints").exists():
        raise UsageError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    d = config.data
    with warnings.catch_warnings():
        warnings.simplefilter("once")
        train = load_image_dataset(d.dataset, d.path, "train", d.size, **d.options)
        test = load_image_dataset(d.dataset, d.path, "test", d.size, **d.options)
    c, h, w = train.image_shape
    model_cfg = config.model
    if (c, h) != (model_cfg.image_channels, model_cfg.image_size) or h != w:
        model_cfg = dataclasses.replace(model_cfg, image_channels=c, image_size=h)
        config.model = model_cfg
    if info.is_main:
        print(
            f"data: {train} / test {len(test)} images; model: {config.preset} preset, "
            f"{sum(p.numel() for p in VQVAE(model_cfg).parameters()) / 1e6:.2f} M parameters; "
            f"run folder: {out}"
        )
    torch.manual_seed(config.train.seed)
    model = VQVAE(model_cfg)
    g = torch.Generator().manual_seed(1234)
    preview_idx = torch.randperm(len(test), generator=g)[:16].tolist()
    preview = torch.stack([test[i][0] for i in preview_idx])
    task = VQVAETask(model, train.variance, preview, eval_data=test if evaluate else None)
    trainer = Trainer(
        task, train, config.train, out, val_data=test, dist_info=info, run_config=config.to_dict()
    )
    try:
        last = trainer.fit(resume=resume)
    finally:
        teardown()
    if info.is_main:
        files = {"reconstructions": "reconstructions.png"}
        if evaluate:
            files["code usage plot"] = "codebook_usage.png"
        print_summary(trainer, last, "test split", task.final_metrics, files)
    return out


def train_prior(
    run: str | Path,
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    assignments: Sequence[str] = (),
    out: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
) -> Path:
    """Train a PixelCNN prior over the codes of the VQ-VAE in ``run``; returns its folder.

    ``settings``: {"data"|"train"|"prior": {key: value}} over the run's data and the defaults;
    ``assignments``: ``SECTION.KEY=VALUE`` strings applied after them.  ``out`` defaults to
    RUN/prior.  The codes of both splits are encoded once and cached beside the run.
    """
    run = Path(run)
    out = Path(out) if out else run / "prior"
    if not resume and (out / "checkpoints").exists():
        raise UsageError(
            f"{out} already holds a prior; pass --resume to continue it or choose another --out"
        )
    vqvae = VQVAE.from_pretrained(run)
    weights = checkpoint_weights(run)
    data, source = run_settings(out, resume, settings, assignments,
                                {"data": run_data_config(run)})
    if not data.get("data", {}).get("dataset"):
        raise UsageError(
            f"{run}: no run.json saying which data it was trained on; pass --dataset (and --data)"
        )
    d = build_data_config(data["data"], source)
    train_cfg = build_train_config(data.get("train", {}), source)

    info = setup(device)
    try:
        size = d.size or vqvae.config.image_size
        with warnings.catch_warnings():
            warnings.simplefilter("once")
            train = load_image_dataset(d.dataset, d.path, "train", size, **d.options)
            test = load_image_dataset(d.dataset, d.path, "test", size, **d.options)
        key = {**dataclasses.asdict(d), "size": size}
        prior_cfg = build_prior_config(
            data.get("prior", {}), vqvae.config, len(train.class_names), source
        )
        if len(train) < train_cfg.batch_size:
            raise UsageError(
                f"{d.dataset} train split: {len(train)} images, fewer than "
                f"one batch of {train_cfg.batch_size}; pass a smaller --batch-size"
            )
        log = print if info.is_main else (lambda _: None)
        sha = file_sha256(weights)

        def codes(split, dataset):
            return cached_codes(
                vqvae,
                sha,
                dataset,
                split,
                run,
                key,
                device=info.device,
                progress=train_cfg.progress,
                log=log,
            )

        if info.is_main:  # the other ranks then find the cache
            train_codes, test_codes = codes("train", train), codes("test", test)
        if info.world > 1:
            torch.distributed.barrier()
        if not info.is_main:
            train_codes, test_codes = codes("train", train), codes("test", test)
        config = PriorRunConfig(str(run), prior_cfg, train_cfg, d)
        torch.manual_seed(train_cfg.seed)
        prior = PixelCNNPrior(prior_cfg)
        metadata = {
            "vqvae_run": str(run),
            "vqvae_weights_sha256": sha,
            "vqvae_config": vqvae.config.to_dict(),
            "class_names": list(train.class_names) if prior_cfg.num_classes else [],
        }
        task = PriorTask(
            prior,
            vqvae,
            class_names=metadata["class_names"],
            eval_data=test_codes,
            metadata=metadata,
            seed=train_cfg.seed,
        )
        if info.is_main:
            kind = (
                f"class-conditional ({prior_cfg.num_classes} classes)"
                if prior_cfg.num_classes
                else "unconditional"
            )
            print(
                f"prior: gated PixelCNN, {kind}, {prior_cfg.layers} layers of "
                f"{prior_cfg.channels} channels, "
                f"{sum(p.numel() for p in prior.parameters()) / 1e6:.2f} M parameters, over "
                f"{latents_text(prior_cfg.latent_shape)} codes of K={prior_cfg.num_codes}; "
                f"{len(train_codes)} training / {len(test_codes)} test grids; run folder {out}"
            )
        trainer = Trainer(
            task,
            train_codes,
            train_cfg,
            out,
            val_data=test_codes,
            dist_info=info,
            run_config=config.to_dict(),
        )
        last = trainer.fit(resume=resume)
    finally:
        teardown()
    if info.is_main:
        then = f"vqvae sample {run} -o samples.png; vqvae evaluate {run} --prior"
        print_summary(
            trainer, last, "test codes", task.final_metrics, {"samples": "samples.png"}, then
        )
    return out


def load_prior(
    prior_dir: Path, run: str | Path, vqvae: VQVAE, device: str = "cpu"
) -> PixelCNNPrior:
    """The prior in ``prior_dir``, refused unless it models ``vqvae``'s codes."""
    if not prior_dir.exists():
        raise UsageError(f"{prior_dir}: no prior here; train one with: vqvae train-prior {run}")
    prior = PixelCNNPrior.from_pretrained(prior_dir, map_location=device)
    mismatch = prior.config.grid_mismatch(vqvae.config)
    if mismatch:
        raise CheckpointError(
            f"{prior_dir}: this prior was trained on another VQ-VAE's codes "
            f"({mismatch} in {run}); train one for it with: "
            f"vqvae train-prior {run}"
        )
    trained_on = prior.metadata.get("vqvae_weights_sha256")
    if trained_on and trained_on != file_sha256(checkpoint_weights(run)):
        print(
            f"warning: {prior_dir} was trained on the codes of another checkpoint of a "
            f"VQ-VAE of this shape ({prior.metadata.get('vqvae_run', '?')}); the codes may "
            "mean other things to it",
            file=sys.stderr,
        )
    return prior
