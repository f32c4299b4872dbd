"""The training loop shared by every model of vqvae (VQ-VAEs, priors, dynamics).

A ``Task`` says what one step computes and what pictures to write; the ``Trainer`` owns what
is common: data order, optimiser, mixed precision, data parallelism, progress bar, metrics,
checkpoints that resume exactly, signals and divergence.

    run_dir/
      run.json                 the resolved configuration of the run
      metrics.csv, tensorboard/
      checkpoints/last/        model + config + optimiser + RNG + data position
      checkpoints/best/        the same, at the best validation loss
      ...                      what the task writes (PNG grids, plots)
"""

from __future__ import annotations

import inspect
import json
import math
import random
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..errors import CheckpointError
from .checkpoint import (
    existing_checkpoint,
    load_trainer_state,
    save_trainer_state,
    write_atomically,
)
from .distributed import DistInfo, all_reduce_mean
from .metrics_log import MetricsLog
from .sampler import ResumableBatches


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel where the parameters' device has one.

    The fused kernel updates every parameter in one pass per tensor (on the CPU, 5x faster
    than the default per-tensor loop for the paper's 10 M-parameter CIFAR-10 model); the
    update rule is the same.  Devices without it get the default implementation.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # no fused kernel for these parameters' device or dtype
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` runs bf16 matrix products natively.

    CUDA devices report it themselves.  On the CPU, oneDNN has bf16 kernels for AVX-512 (and
    AMX); on a CPU with AVX2 only it emulates them, 40-45x slower than fp32 for the convolutions
    and products of these models (AMD EPYC Zen 3, 2026-12-02), so bf16 autocast is no use there.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return True


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """How to train (the model's own sizes live in the model's config)."""

    steps: int = 10_000
    batch_size: int = 32  # global: split over data-parallel processes
    lr: float = 2e-4  # paper: Adam, learning rate 2e-4
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant" or "cosine" (to 0 at the last step)
    warmup_steps: int = 0
    grad_clip: float | None = None
    seed: int = 0
    amp: str = "none"  # "none" or "bf16" (autocast)
    channels_last: bool = False
    num_workers: int = 0
    log_every: int = 50
    image_every: int = 500  # pictures (the task decides what)
    checkpoint_every: int = 500
    val_batches: int = 4  # batches of the validation split per checkpoint
    progress: bool = True

    def __post_init__(self) -> None:
        if self.amp not in ("none", "bf16"):
            raise ValueError(f"amp must be 'none' or 'bf16', got {self.amp!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )
        for name in ("steps", "batch_size", "log_every", "image_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


class Task:
    """What a model trains on.  Subclasses implement ``step``; the rest is optional."""

    model: nn.Module

    def step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """One forward pass: (loss to minimise, scalar metrics to log)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, batches: list[Any]) -> dict[str, float]:
        """Metrics on held-out batches; ``loss`` picks the best checkpoint."""
        totals: dict[str, float] = {}
        for batch in batches:
            loss, metrics = self.step(model, batch)
            for k, v in {"loss": loss.item(), **metrics}.items():
                totals[k] = totals.get(k, 0.0) + v / len(batches)
        return totals

    def pictures(self, model: nn.Module, run_dir: Path, step: int) -> None:
        """Write what a person looks at (grids, plots) for this step."""

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        """Write the end-of-run summaries."""

    def save_model(self, folder: Path) -> None:
        """Write the model's weights and config (``save_pretrained``)."""
        self.model.save_pretrained(folder)

    def load_model(self, folder: Path) -> None:
        """Load weights written by ``save_model`` into ``self.model``, refusing a checkpoint
        whose config differs from the model's."""
        loaded = type(self.model).from_pretrained(folder)
        if loaded.config != self.model.config:
            a, b = loaded.config.to_dict(), self.model.config.to_dict()
            diff = ", ".join(f"{k}: {a[k]!r} vs {b.get(k)!r}" for k in a if a[k] != b.get(k))
            raise CheckpointError(f"{folder / 'config.json'}: the checkpoint's model config "
                                  f"differs from this run's ({diff})")
        self.model.load_state_dict(loaded.state_dict())


def _collate_to(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_collate_to(b, device, channels_last) for b in batch)
    return batch


class Trainer:
    """Runs a ``Task`` for ``config.steps`` steps, resuming from ``run_dir`` if asked."""

    def __init__(
        self,
        task: Task,
        train_data: Dataset,
        config: TrainConfig,
        run_dir: Path,
        *,
        val_data: Dataset | None = None,
        dist_info: DistInfo | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self.info = dist_info or DistInfo()
        self.train_data, self.val_data = train_data, val_data
        self.run_config = run_config or {"train": asdict(config)}
        self.model = task.model.to(self.info.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.wrapped: nn.Module = self.model
        if self.info.world > 1:
            # quantizers keep their own buffers in sync: no buffer broadcast before each forward
            # (the name of that switch changed in torch 2.13)
            no_sync = ("forward_sync_buffers"
                       if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
                       else "broadcast_buffers")
            self.wrapped = DDP(
                self.model,
                device_ids=[self.info.device.index] if self.info.device.type == "cuda" else None,
                **{no_sync: False},
            )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = adam(params, lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.best = math.inf
        self.sampler = ResumableBatches(
            len(train_data),
            config.batch_size,
            seed=config.seed,
            rank=self.info.rank,
            world=self.info.world,
        )
        self._stop_signal: int | None = None

    # ----------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "best": self.best,
            "epoch": self.sampler.epoch,
            "epoch_step": self.sampler.step,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _numpy_state(),
            "python_rng": _python_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.step, self.best = state["step"], state["best"]
        self.sampler.epoch, self.sampler.step = state["epoch"], state["epoch_step"]
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(_numpy_from(state["numpy_rng"]))
        random.setstate(_python_from(state["python_rng"]))
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_checkpoint(self, name: str = "last") -> Path:
        target = self.run_dir / "checkpoints" / name
        if self.info.is_main:
            state = self.state()

            def fill(folder: Path) -> None:
                self.task.save_model(folder)
                save_trainer_state(folder, state)

            write_atomically(target, fill)
        return target

    def resume(self) -> bool:
        """Load ``checkpoints/last`` if there is one; returns whether it did."""
        folder = existing_checkpoint(self.run_dir / "checkpoints" / "last")
        if folder is None:
            return False
        self.task.load_model(folder)
        self.load_state(load_trainer_state(folder))
        return True

    # ----------------------------------------------------------------- loop
    def _lr(self, step: int) -> float:
        c = self.config
        scale = 1.0
        if c.warmup_steps and step < c.warmup_steps:
            scale = (step + 1) / c.warmup_steps
        elif c.lr_schedule == "cosine":
            span = max(1, c.steps - c.warmup_steps)
            scale = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - c.warmup_steps) / span)))
        return c.lr * scale

    def _loader(self) -> DataLoader:
        # its own generator: creating an iterator would otherwise draw from the global RNG,
        # and a resumed run creates one more iterator than a run done in one go
        seed = self.config.seed * 100_003 + self.sampler.epoch
        return DataLoader(
            self.train_data,
            batch_sampler=self.sampler,
            num_workers=self.config.num_workers,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(seed),
        )

    def _val_batches(self) -> list[Any]:
        if self.val_data is None or self.config.val_batches == 0:
            return []
        local = self.config.batch_size // self.info.world
        n = min(len(self.val_data), local * self.config.val_batches)
        # every rank scores the same fixed samples: the mean over ranks is their mean
        loader = DataLoader(torch.utils.data.Subset(self.val_data, range(n)), batch_size=local,
                            generator=torch.Generator())  # leaves the global RNG alone
        return [_collate_to(b, self.info.device, self.config.channels_last) for b in loader]

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_signal = signum

    def fit(self, *, resume: bool = False) -> dict[str, float]:
        """Train until ``config.steps``; returns the last logged metrics."""
        c, info = self.config, self.info
        if resume and not self.resume() and info.is_main:
            tqdm.write(f"no checkpoint in {self.run_dir / 'checkpoints'}; starting from step 0")
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "run.json", "w") as f:
                json.dump(self.run_config, f, indent=2, default=str)
        log = (
            MetricsLog(self.run_dir, resume_step=self.step if resume else None)
            if info.is_main
            else None
        )
        val_batches = self._val_batches()
        old_handlers = {
            s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)
        }
        use_bf16 = c.amp == "bf16"
        if use_bf16 and not native_bf16(info.device):
            use_bf16 = False
            if info.is_main:
                tqdm.write(
                    f"amp 'bf16': {info.device} has no native bf16 matrix units (on a CPU: "
                    "AVX-512 or AMX), so bf16 would run tens of times slower than fp32; "
                    "training in fp32 instead (amp 'none' does the same without this note)"
                )
        autocast = torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=use_bf16)
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            disable=not (c.progress and info.is_main),
            dynamic_ncols=True,
            desc="train",
        )
        last: dict[str, float] = {}
        window: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        try:
            while self.step < c.steps:
                for batch in self._loader():
                    batch = _collate_to(batch, info.device, c.channels_last)
                    for group in self.optimizer.param_groups:
                        group["lr"] = self._lr(self.step)
                    self.wrapped.train()
                    with autocast:
                        loss, metrics = self.task.step(self.wrapped, batch)
                    if not torch.isfinite(loss.detach()).all():
                        raise TrainingDiverged(
                            f"loss became {loss.item()} at step {self.step + 1}; stopped. The last "
                            f"good checkpoint is in {self.run_dir / 'checkpoints' / 'last'}"
                        )
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if c.grad_clip:
                        nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                    self.optimizer.step()
                    self.step += 1
                    self.sampler.advance()
                    for k, v in {"loss": loss.item(), **metrics}.items():
                        window[k] = window.get(k, 0.0) + v
                    count += 1
                    if self.step % c.log_every == 0 or self.step == c.steps:
                        last = all_reduce_mean({k: v / count for k, v in window.items()}, info)
                        last["lr"] = self._lr(self.step - 1)
                        last["steps_per_s"] = count / (time.perf_counter() - t0)
                        window, count, t0 = {}, 0, time.perf_counter()
                        if log is not None:
                            log.log(self.step, last)
                        bar.set_postfix(
                            {
                                k: f"{v:.4g}"
                                for k, v in last.items()
                                if k in ("loss", "nmse", "perplexity", "usage")
                            }
                        )
                    bar.update(1)
                    if info.is_main and (self.step % c.image_every == 0 or self.step == c.steps):
                        self.wrapped.eval()
                        with torch.no_grad(), autocast:
                            self.task.pictures(self.model, self.run_dir, self.step)
                    if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                        self._checkpoint(val_batches, log, autocast)
                    if self._stop_signal is not None:
                        self._checkpoint(val_batches, log, autocast)
                        name = signal.Signals(self._stop_signal).name
                        raise KeyboardInterrupt(
                            f"{name} received: checkpoint saved at step {self.step} in "
                            f"{self.run_dir / 'checkpoints' / 'last'}; continue with --resume"
                        )
                    if self.step >= c.steps:
                        break
            if info.is_main:
                self.wrapped.eval()
                with torch.no_grad(), autocast:
                    self.task.finish(self.model, self.run_dir)
        finally:
            bar.close()
            if log is not None:
                log.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        return last

    def _checkpoint(self, val_batches, log, autocast) -> None:
        if val_batches:
            self.wrapped.eval()
            with torch.no_grad(), autocast:
                val = self.task.validate(self.model, val_batches)
            val = all_reduce_mean(val, self.info)
            if log is not None:
                log.log(self.step, val, prefix="val_")
            if val["loss"] < self.best:
                self.best = val["loss"]
                self.save_checkpoint("best")
        self.save_checkpoint("last")


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": pos,
        "has_gauss": has_gauss,
        "gauss": gauss,
    }


def _numpy_from(s: dict[str, Any]) -> tuple:
    return (s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["gauss"])


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def _python_from(s: dict[str, Any]) -> tuple:
    return (s["version"], tuple(s["internal"]), s["gauss"])
