"""Training an image VQ-VAE: the step, the pictures, the end-of-run summaries."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..eval.plots import bar_plot
from ..eval.reconstruction import evaluate_reconstruction
from ..images import save_comparison
from ..model import VQVAE
from .loop import Task


class VQVAETask(Task):
    """Minimises ``VQVAE.forward(x).loss``; logs NMSE, perplexity and code usage.

    Args:
        model: the VQ-VAE.
        train_variance: variance of the training pixels (NMSE = MSE / variance).
        preview: (N, C, H, W) fixed held-out images for the reconstruction grids.
        eval_data: the split evaluated at the end of the run (usage plot, final metrics).
    """

    def __init__(
        self, model: VQVAE, train_variance: float, preview: torch.Tensor, eval_data=None
    ) -> None:
        self.model = model
        self.variance = train_variance
        self.preview = preview
        self.eval_data = eval_data
        self.final_metrics: dict[str, float] = {}

    def step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, _ = batch
        out = model(x)
        mse = (out.reconstruction.detach().float() - x).pow(2).mean().item()
        return out.loss, {
            "recon_loss": out.recon_loss.item(),
            "commitment": out.commitment_loss.item(),
            "nmse": mse / self.variance,
            "perplexity": out.perplexity.item(),
            "usage": out.usage.item(),
        }

    def pictures(self, model: nn.Module, run_dir: Path, step: int) -> None:
        x = self.preview.to(next(model.parameters()).device)
        recon = model(x).reconstruction
        save_comparison(x, recon, run_dir / "reconstructions" / f"step_{step:07d}.png")
        save_comparison(x, recon, run_dir / "reconstructions.png")

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        if self.eval_data is None:
            return
        device = next(model.parameters()).device
        result = evaluate_reconstruction(
            model, self.eval_data, train_variance=self.variance, device=device, progress=False
        )
        self.final_metrics = result.metrics
        counts = result.counts.sum(0)  # over groups
        usage = sorted((counts / counts.sum()).tolist(), reverse=True)
        used = int((counts > 0).sum())
        bar_plot(
            usage,
            run_dir / "codebook_usage.png",
            f"code usage on the evaluation split, sorted: {used} of {len(usage)} codes used",
            ylabel="fraction",
        )
        with open(run_dir / "eval.json", "w") as f:
            json.dump(self.final_metrics, f, indent=2)
