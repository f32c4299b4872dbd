"""Real-time factor of speech generation: the compiled and the torch cached WaveNet against
naive recomputation.

    python benchmarks/wavenet_rtf.py [--run RUN] [--seconds 1] [--naive-seconds 0.125] [--reps 3]

Decodes codes into audio with the speech VQ-VAE's WaveNet at 8 kHz and at 16 kHz (the same
network at both rates: generation costs the same per sample, so 1 s at 16 kHz is twice the
samples).  Three ways, timed interleaved (fast, cached, naive, fast, ...) after a warm-up:

* fast: ``decode(..., backend="numba")``, the cached steps with the whole sample loop compiled
  (needs numba: ``pip install 'vqvae[fast]'``; left out without it);
* cached: ``decode(..., cache=True, backend="torch")``, per-layer queues of past activations, so
  each sample costs one step of every layer, as some 200 small torch operations;
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

from vqvae.nets import wavenet_fast
from vqvae.speech_model import SpeechVQVAE, SpeechVQVAEConfig


def _decode_seconds(model: SpeechVQVAE, samples: int, way: str, batch: int = 1) -> float:
    """Seconds to decode ``samples`` of ``batch`` utterances the ``way`` "fast", "cached" or
    "naive"."""
    cache, backend = way != "naive", "numba" if way == "fast" else "torch"
    codes = torch.randint(model.config.num_codes, (batch, -(-samples // model.hop)))
    speaker = torch.zeros(batch, dtype=torch.long) if model.config.num_speakers else None
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model.decode(codes, speaker, samples, generator=generator, cache=cache,
                 backend=backend)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", help="a trained speech run (default: the default model, untrained)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio per fast/cached measurement")
    p.add_argument("--naive-seconds", type=float, default=0.125,
                   help="audio per naive measurement")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=8,
                   help="also the RTF per second of audio with this many utterances at once")
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
    ways = ["fast", "cached"] if wavenet_fast.available() else ["cached"]
    if not wavenet_fast.available():
        print("numba is not installed: no fast column (pip install 'vqvae[fast]')")
    rows = []
    for rate in (8000, 16000):
        model = SpeechVQVAE(dataclasses.replace(c, sample_rate=rate)).eval()
        model.load_state_dict(base.state_dict())
        cached_n, naive_n = round(args.seconds * rate), round(args.naive_seconds * rate)
        for way in ways + ["naive"]:  # warm-up (and the first compilation of the fast loop)
            _decode_seconds(model, model.hop * 4, way)
        rtf = {way: [] for way in ways + ["naive"]}
        batched = {way: [] for way in ways}
        for _ in range(args.reps):
            for way in ways:
                rtf[way].append(_decode_seconds(model, cached_n, way) / args.seconds)
            rtf["naive"].append(_decode_seconds(model, naive_n, "naive") / args.naive_seconds)
            for way in ways:
                batched[way].append(_decode_seconds(model, cached_n, way, args.batch)
                                    / (args.seconds * args.batch))
        rows.append((rate, {w: (statistics.median(x), min(x), max(x)) for w, x in rtf.items()},
                     {w: statistics.median(x) for w, x in batched.items()}))
        med = {w: m[0] for w, m in rows[-1][1].items()}
        print(f"{rate} Hz: " + ", ".join(f"{w} RTF {m:.3f}" for w, m in med.items())
              + f"; {args.batch} at once: "
              + ", ".join(f"{w} RTF {m:.3f}" for w, m in rows[-1][2].items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"\ncommit {commit}; RTF = compute seconds per second of audio, median (min-max) of "
          f"{args.reps}, batch 1")
    fast = "fast" in ways
    print("| rate | " + ("fast RTF | " if fast else "") + "cached RTF | naive RTF | cached "
          "speed-up | " + ("fast speed-up over cached | " if fast else "")
          + " | ".join(f"{w} RTF, batch {args.batch}" for w in ways) + " |")
    print("|---" * (4 + 2 * fast + len(ways)) + "|")
    for rate, r, rb in rows:
        cells = [f"{rate // 1000} kHz"]
        cells += [f"{r[w][0]:.3f} ({r[w][1]:.3f}-{r[w][2]:.3f})" for w in ways]
        cells.append(f"{r['naive'][0]:.2f} ({r['naive'][1]:.2f}-{r['naive'][2]:.2f})")
        cells.append(f"{r['naive'][0] / r['cached'][0]:.1f}x")
        if fast:
            cells.append(f"{r['cached'][0] / r['fast'][0]:.1f}x")
        cells += [f"{rb[w]:.3f}" for w in ways]
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
