"""Training a dynamics prior on the codes of a recorded world: the windows, the step, pictures.

The training examples are windows of C + 1 consecutive frames of one episode (a window never
crosses into the next episode): the codes of the first C frames, the action taken at the
C-th, and the codes of the last frame, the target.  The loss is the target's nll in nats per
latent (teacher forcing); the action of a fraction ``action_dropout`` of the examples is
hidden behind the "unknown" action, so the model also learns to predict without it.

The run folder (default RUN/dynamics) is an ordinary ``Trainer`` run:

    RUN/dynamics/run.json               vqvae_run, world, dynamics (a DynamicsConfig), train
    RUN/dynamics/checkpoints/{best,last}/   the model (config.json + model.safetensors) + trainer
    RUN/dynamics/predictions.png        rows: last context frame, true next frame, prediction
    RUN/dynamics/eval.json              the held-out windows' nll, with and without actions
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.world import window_starts
from ..images import grid, save_png
from ..model import VQVAE
from ..priors import DynamicsPrior
from .loop import Task


class CodeWindows(Dataset):
    """Windows of one episode's consecutive frames, as codes.

    Args:
        codes: (N, h, w) int, the frames' codes in recording order.
        actions, episodes, steps: (N,) int, as in a ``World``.
        context_frames: C; each window is C + 1 frames long.

    ``dataset[i]`` is ``(context (C, h, w), action, target (h, w))``: ``action`` is the one
    taken at the last context frame, which leads to the target.
    """

    def __init__(self, codes: np.ndarray, actions: np.ndarray, episodes: np.ndarray,
                 steps: np.ndarray, context_frames: int) -> None:
        assert len(codes) == len(actions) == len(episodes) == len(steps)
        self.codes = torch.from_numpy(np.ascontiguousarray(codes))
        self.actions = torch.from_numpy(np.asarray(actions, dtype=np.int64))
        self.context_frames = context_frames
        self.starts = window_starts(np.asarray(episodes), np.asarray(steps), context_frames + 1)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        s, c = int(self.starts[i]), self.context_frames
        return self.codes[s : s + c], int(self.actions[s + c - 1]), self.codes[s + c]


class DynamicsTask(Task):
    """Minimises the dynamics prior's nll of the next frame's codes, in nats per latent.

    Args:
        model: the dynamics prior.
        tokenizer: the frozen frame VQ-VAE (decodes the pictures).
        preview: a few held-out windows ``(context, actions, target)`` for the pictures.
        eval_data: held-out ``CodeWindows``, scored in full at the end of the run.
        metadata: saved with every checkpoint (tokenizer, world, action names).
    """

    def __init__(self, model: DynamicsPrior, tokenizer: VQVAE, *, preview=None,
                 eval_data: Dataset | None = None, metadata: dict | None = None) -> None:
        mismatch = model.config.grid_mismatch(tokenizer.config)
        assert mismatch is None, mismatch
        self.model = model
        self.model.metadata = dict(metadata or {})
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.preview = preview
        self.eval_data = eval_data
        self.final_metrics: dict[str, float] = {}

    def step(self, model: nn.Module, batch, hide: float | None = None):
        """One batch's loss; ``hide``: the fraction of actions hidden (default: the config's
        ``action_dropout`` in training mode, none in eval mode)."""
        context, actions, target = batch
        config = self.model.config
        actions = actions.long()
        if hide is None:
            hide = config.action_dropout if model.training else 0.0
        if hide >= 1:
            actions = torch.full_like(actions, config.unknown_action)
        elif hide > 0:
            # from the global RNG, which the Trainer's checkpoints restore: resumes exactly
            hidden = torch.rand(actions.shape).to(actions.device) < hide
            actions = actions.masked_fill(hidden, config.unknown_action)
        target = target.long()
        logits = model(context.long(), actions, target)
        loss = F.cross_entropy(logits.float(), target)  # mean over latents: nats per latent
        return loss, {"bits_per_latent": loss.item() / math.log(2)}

    def validate(self, model: nn.Module, batches: list) -> dict[str, float]:
        """``loss`` with the true actions; ``loss_actions_hidden`` without them."""
        totals = {"loss": 0.0, "loss_actions_hidden": 0.0}
        for batch in batches:
            totals["loss"] += self.step(model, batch, hide=0.0)[0].item() / len(batches)
            hidden = self.step(model, batch, hide=1.0)[0].item()
            totals["loss_actions_hidden"] += hidden / len(batches)
        return totals

    def pictures(self, model: nn.Module, run_dir: Path, step: int) -> None:
        if self.preview is None:
            return
        device = next(model.parameters()).device
        context, actions, target = (t.to(device) for t in self.preview)
        predicted = model.sample_next(context, actions, argmax=True)
        codes = torch.cat([context[:, -1].long(), target.long(), predicted])
        picture = grid(self.tokenizer.to(device).decode(codes), len(target))
        save_png(picture, run_dir / "predictions" / f"step_{step:07d}.png")
        save_png(picture, run_dir / "predictions.png")

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        if self.eval_data is None or len(self.eval_data) == 0:
            return
        device = next(model.parameters()).device
        true = hidden = 0.0
        count = 0
        for batch in DataLoader(self.eval_data, batch_size=64, generator=torch.Generator()):
            batch = [t.to(device) for t in batch]
            n = batch[2].numel()
            true += self.step(model, batch, hide=0.0)[0].item() * n
            hidden += self.step(model, batch, hide=1.0)[0].item() * n
            count += n
        self.final_metrics = {
            "test_nll_per_latent": true / count,
            "test_nll_per_latent_actions_hidden": hidden / count,
            "uniform_nll_per_latent": math.log(model.config.num_codes),
            "test_windows": float(len(self.eval_data)),
        }
        with open(run_dir / "eval.json", "w") as f:
            json.dump(self.final_metrics, f, indent=2)


def preview_windows(windows: CodeWindows, count: int = 8) -> tuple[torch.Tensor, ...] | None:
    """``count`` windows spread evenly over ``windows``, stacked: (context, actions, target)."""
    if len(windows) == 0:
        return None
    picks = np.unique(np.linspace(0, len(windows) - 1, min(count, len(windows))).astype(int))
    items = [windows[int(i)] for i in picks]
    return (torch.stack([c for c, _, _ in items]).long(),
            torch.tensor([a for _, a, _ in items]),
            torch.stack([t for _, _, t in items]).long())
