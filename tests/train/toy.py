"""A tiny VQ autoencoder task for testing the training loop."""

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import TensorDataset

from vqvae.quantize import VectorQuantizer
from vqvae.train import Task


class ToyVQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv1d(2, 4, 3, padding=1)
        self.vq = VectorQuantizer(8, 4, restart_after=2)
        self.dec = nn.Conv1d(4, 2, 3, padding=1)

    def forward(self, x):
        q = self.vq(self.enc(x))
        return self.dec(q.quantized), q


class ToyTask(Task):
    def __init__(self, nan_at: int | None = None, signal_at: int | None = None):
        torch.manual_seed(0)
        self.model = ToyVQ()
        self.calls = 0
        self.nan_at, self.signal_at = nan_at, signal_at

    def step(self, model, batch):
        self.calls += 1
        (x,) = batch
        recon, q = model(x)
        loss = (recon - x).pow(2).mean() + q.loss
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        if self.signal_at is not None and self.calls == self.signal_at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
        return loss, {"perplexity": q.perplexity.item()}

    def save_model(self, folder: Path) -> None:
        save_file(
            {k: v.contiguous() for k, v in self.model.state_dict().items()},
            str(Path(folder) / "model.safetensors"),
        )

    def load_model(self, folder: Path) -> None:
        self.model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))


def toy_data(n: int = 64) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 2, 10, generator=g))
