"""Training a speech VQ-VAE: the step, the spectrograms and sounds, the end-of-run summary."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio.io import write_audio
from ..audio.spectrogram import save_spectrograms
from ..eval.plots import bar_plot
from ..speech_model import SpeechVQVAE
from .loop import Task


@dataclass(frozen=True)
class Preview:
    """A held-out utterance whose reconstruction (and conversion) is written as the run goes."""

    wave: np.ndarray  # (T,) float32 in [-1, 1], at the model's level
    speaker: int
    name: str


class SpeechTask(Task):
    """Minimises ``SpeechVQVAE.forward(wave, targets, speaker).loss`` on crops.

    Logs the reconstruction loss in nats and bits per sample, the accuracy of the most likely
    class, the commitment loss, perplexity and code usage.

    Args:
        model: the speech VQ-VAE.
        preview: the utterance drawn at every ``image_every`` steps: ``audio/`` gets WAVs of
            the original, its reconstruction and (with more than one speaker) a conversion to
            the next speaker; ``reconstructions.png`` their log-mel spectrograms.
        eval_data: crops of the test split scored at the end of the run (``eval.json``,
            ``codebook_usage.png``).
        seed: of the generator that draws the previews' samples.
    """

    def __init__(self, model: SpeechVQVAE, preview: Preview | None = None, eval_data=None,
                 seed: int = 0) -> None:
        self.model, self.preview, self.eval_data, self.seed = model, preview, eval_data, seed
        self.final_metrics: dict[str, float] = {}

    def step(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        wave, targets, speaker = batch
        out = model(wave, targets, speaker if self.model.config.num_speakers else None)
        # a mixture's most likely class costs all 256 of its probabilities: every 16th sample
        every = 16 if self.model.config.likelihood == "logistic_mixture" else 1
        guess = self.model.decoder.class_logits(out.outputs.detach()[..., ::every]).argmax(1)
        accuracy = (guess == targets[..., ::every]).float().mean().item()
        recon = out.recon_loss.item()
        metrics = {
            "recon_loss": recon,
            "bits_per_sample": recon / math.log(2),
            "accuracy": accuracy,
            "commitment": out.commitment_loss.item(),
            "perplexity": out.perplexity.item(),
            "usage": out.usage.item(),
        }
        if self.model.config.spectral_weight > 0:
            metrics["spectral_loss"] = out.spectral_loss.item()
        if self.model.config.adversary_weight > 0:
            metrics["adversary_loss"] = out.adversary_loss.item()
            metrics["adversary_accuracy"] = out.adversary_accuracy.item()
        return out.loss, metrics

    def pictures(self, model: nn.Module, run_dir: Path, step: int) -> None:
        if self.preview is None:
            return
        p, c = self.preview, self.model.config
        device = next(model.parameters()).device
        x = torch.from_numpy(p.wave).to(device)[None]
        generator = torch.Generator(device).manual_seed(self.seed)
        speaker = p.speaker if c.num_speakers else None
        waves = {"original": p.wave,
                 "reconstruction": _numpy(model.convert(x, speaker, source=speaker,
                                                         generator=generator))}
        titles = [f"original {p.name}", "reconstruction"]
        if c.num_speakers > 1:
            target = (p.speaker + 1) % c.num_speakers
            name = c.speaker_names[target] if c.speaker_names else str(target)
            waves[f"as_{name}"] = _numpy(model.convert(x, target, source=speaker,
                                                               generator=generator))
            titles.append(f"converted to speaker {name}")
        for kind, wave in waves.items():  # the original once; the rest at every step
            path = _wav_path(run_dir, step, kind)
            if kind != "original" or not path.exists():
                write_audio(path, wave, c.sample_rate)
        images = list(waves.values())
        save_spectrograms(images, titles, c.sample_rate,
                          run_dir / "reconstructions" / f"step_{step:07d}.png")
        save_spectrograms(images, titles, c.sample_rate, run_dir / "reconstructions.png")

    @torch.no_grad()
    def finish(self, model: nn.Module, run_dir: Path) -> None:
        if self.eval_data is None:
            return
        device = next(model.parameters()).device
        counts = torch.zeros(self.model.config.num_codes, dtype=torch.long)
        nll = correct = total = 0.0
        loader = torch.utils.data.DataLoader(self.eval_data, batch_size=16)
        for wave, targets, speaker in loader:
            wave, targets, speaker = wave.to(device), targets.to(device), speaker.to(device)
            out = model(wave, targets, speaker if self.model.config.num_speakers else None)
            nll += out.recon_loss.item() * targets.numel()
            correct += (self.model.decoder.class_logits(out.outputs).argmax(1)
                        == targets).sum().item()
            total += targets.numel()
            counts += torch.bincount(out.indices.flatten().cpu(), minlength=len(counts))
        probs = counts / counts.sum()
        entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum().item()
        self.final_metrics = {
            "recon_loss": nll / total,
            "bits_per_sample": nll / total / math.log(2),
            "accuracy": correct / total,
            "perplexity": math.exp(entropy),
            "usage": (counts > 0).float().mean().item(),
        }
        usage = sorted(probs.tolist(), reverse=True)
        bar_plot(usage, run_dir / "codebook_usage.png",
                 f"code usage on {total / 1e3:.0f} k test samples, sorted: "
                 f"{int((counts > 0).sum())} of {len(usage)} codes used", ylabel="fraction")
        with open(run_dir / "eval.json", "w") as f:
            json.dump(self.final_metrics, f, indent=2)


def _numpy(wave: torch.Tensor) -> np.ndarray:
    return wave[0].float().cpu().numpy()


def _wav_path(run_dir: Path, step: int, kind: str) -> Path:
    if kind == "original":
        return run_dir / "audio" / "original.wav"
    return run_dir / "audio" / f"step_{step:07d}_{kind}.wav"
