"""What the WaveNet's mixture of logistics costs against its 256-way softmax: a training step
and generation, in the same run.

    python benchmarks/wavenet_likelihood_speed.py [--reps 5] [--seconds 0.5] [--mixtures 10]

Two speech VQ-VAEs of the default size (8 kHz, 6 speakers), one per
``SpeechVQVAEConfig.likelihood``, timed interleaved (categorical, mixture, categorical, ...)
after a warm-up:

* a training step (forward, backward, Adam) on 16 crops of 2048 samples, as ``vqvae train
  --modality speech`` takes them;
* generation of ``--seconds`` of audio for one utterance, with the compiled loop where numba
  is installed (``backend="auto"``), else the torch steps.

Prints the median (min-max) of ``--reps`` repetitions of each and the mixture's time as a
ratio of the softmax's.  The weights are untrained: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time

import torch

from vqvae.nets import wavenet_fast
from vqvae.speech_model import SpeechVQVAE, SpeechVQVAEConfig

LIKELIHOODS = ("categorical", "logistic_mixture")


def _step_seconds(model: SpeechVQVAE, opt: torch.optim.Optimizer, wave: torch.Tensor,
                  speaker: torch.Tensor) -> float:
    t0 = time.perf_counter()
    out = model(wave, speaker=speaker)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    return time.perf_counter() - t0


def _generate_seconds(model: SpeechVQVAE, samples: int) -> float:
    codes = torch.randint(model.config.num_codes, (1, -(-samples // model.hop)))
    t0 = time.perf_counter()
    model.decode(codes, 0, samples, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.5, help="audio per generation")
    p.add_argument("--mixtures", type=int, default=10)
    args = p.parse_args()
    torch.manual_seed(0)
    models, opts = {}, {}
    for name in LIKELIHOODS:
        models[name] = SpeechVQVAE(SpeechVQVAEConfig(num_speakers=6, likelihood=name,
                                                     logistic_mixtures=args.mixtures))
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    wave = (torch.rand(16, 2048, generator=g) - 0.5) * 0.5
    speaker = torch.arange(16) % 6
    samples = round(args.seconds * 8000)
    for name in LIKELIHOODS:  # warm-up, and the compilation of the generation loop
        models[name].train()
        _step_seconds(models[name], opts[name], wave, speaker)
        models[name].eval()
        _generate_seconds(models[name], models[name].hop * 4)
    steps = {n: [] for n in LIKELIHOODS}
    gens = {n: [] for n in LIKELIHOODS}
    for _ in range(args.reps):
        for name in LIKELIHOODS:
            models[name].train()
            steps[name].append(_step_seconds(models[name], opts[name], wave, speaker))
        for name in LIKELIHOODS:
            models[name].eval()
            gens[name].append(_generate_seconds(models[name], samples) / args.seconds)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    backend = "compiled" if wavenet_fast.available() else "torch steps"
    print(f"commit {commit}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{_cpu()}; generation: {backend}; median (min-max) of {args.reps}")
    print(f"| | categorical | logistic mixture (M = {args.mixtures}) | ratio |")
    print("|---|---|---|---|")
    for label, table in (("training step, s", steps), ("generation RTF, batch 1", gens)):
        cells = [f"{statistics.median(table[n]):.3f} ({min(table[n]):.3f}-{max(table[n]):.3f})"
                 for n in LIKELIHOODS]
        ratio = statistics.median(table[LIKELIHOODS[1]]) / statistics.median(table[LIKELIHOODS[0]])
        print(f"| {label} | {cells[0]} | {cells[1]} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
