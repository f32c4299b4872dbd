"""Real-time factor of speech generation: the cached WaveNet against naive recomputation.

    python benchmarks/wavenet_rtf.py [--run RUN] [--seconds 1] [--naive-seconds 0.125] [--reps 3]

Decodes codes into audio with the speech VQ-VAE's WaveNet at 8 kHz and at 16 kHz (the same
network at both rates: generation costs the same per sample, so 1 s at 16 kHz is twice the
samples).  Two ways, timed interleaved (cached, naive, cached, ...) after a warm-up:

* cached: ``decode(..., cache=True)``, per-layer queues of past activations, so each sample
  costs one step of every layer;
* naive: ``cache=False``, the whole network over the receptive field for every sample.

The naive way is timed on ``--naive-seconds`` of audio (it is slow) and its rate per sample is
compared with the cached one's.  RTF = seconds of compute per second of audio (below 1: faster
than real time).  ``--run``: a trained speech run (default: the untrained default model; speed
does not depend on the weights).  Batch 1 (one utterance), as a user converting one file, and
``--batch`` utterances at once (RTF per second of audio made), as an evaluation does.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import time

import torch

from vqvae.speech_model import SpeechVQVAE, SpeechVQVAEConfig


def _decode_seconds(model: SpeechVQVAE, samples: int, cache: bool, batch: int = 1) -> float:
    codes = torch.randint(model.config.num_codes, (batch, -(-samples // model.hop)))
    speaker = torch.zeros(batch, dtype=torch.long) if model.config.num_speakers else None
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model.decode(codes, speaker, samples, generator=generator, cache=cache)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", help="a trained speech run (default: the default model, untrained)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio per cached measurement")
    p.add_argument("--naive-seconds", type=float, default=0.125,
                   help="audio per naive measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=8,
                   help="also the cached RTF per second of audio with this many utterances at once")
    args = p.parse_args()
    torch.manual_seed(0)
    if args.run:
        base = SpeechVQVAE.from_pretrained(args.run)
    else:
        base = SpeechVQVAE(SpeechVQVAEConfig(num_speakers=6)).eval()
    c = base.config
    print(f"WaveNet: {c.stacks} stacks x {c.layers} layers, {c.residual_channels} residual / "
          f"{c.skip_channels} skip channels, receptive field {base.receptive_field} samples; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for rate in (8000, 16000):
        model = SpeechVQVAE(dataclasses.replace(c, sample_rate=rate)).eval()
        model.load_state_dict(base.state_dict())
        cached_n, naive_n = round(args.seconds * rate), round(args.naive_seconds * rate)
        _decode_seconds(model, model.hop * 4, True)  # warm-up
        _decode_seconds(model, model.hop * 4, False)
        cached, naive, batched = [], [], []
        for _ in range(args.reps):
            cached.append(_decode_seconds(model, cached_n, True) / args.seconds)
            naive.append(_decode_seconds(model, naive_n, False) / args.naive_seconds)
            batched.append(_decode_seconds(model, cached_n, True, args.batch)
                           / (args.seconds * args.batch))
        rc, rn, rb = (statistics.median(x) for x in (cached, naive, batched))
        rows.append((rate, rc, min(cached), max(cached), rn, min(naive), max(naive), rn / rc,
                     rb))
        print(f"{rate} Hz: cached RTF {rc:.3f}, naive RTF {rn:.2f}, cached {rn / rc:.1f}x "
              f"faster; {args.batch} at once: RTF {rb:.3f} per second of audio", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"\ncommit {commit}; RTF = compute seconds per second of audio, median (min-max) of "
          f"{args.reps}, batch 1")
    print(f"| rate | cached RTF | naive RTF | cached speed-up | cached RTF, batch {args.batch} |")
    print("|---|---|---|---|---|")
    for rate, rc, cmin, cmax, rn, nmin, nmax, ratio, rb in rows:
        print(f"| {rate // 1000} kHz | {rc:.3f} ({cmin:.3f}-{cmax:.3f}) | {rn:.2f} "
              f"({nmin:.2f}-{nmax:.2f}) | {ratio:.1f}x | {rb:.3f} |")


if __name__ == "__main__":
    main()
