"""How long the gated PixelCNN prior takes to sample 64 code grids, cached against recomputed.

    python benchmarks/prior_sampling.py [--n 64] [--reps 2] [--no-recomputed]

The default prior sizes (15 layers, 128 channels, kernel 5, K = 512), untrained (the time
does not depend on the weights), for the grids of the paper's models: 8 x 8, 8 x 8 x 10
(CIFAR-10, 10 codebooks per position) and 32 x 32 (ImageNet 128 x 128).  ``sample(cache=True)``
computes each row's vertical stacks once and one column per latent; the recomputed reference
(8 x 8 only: at 32 x 32 it takes hours) runs the network on rows 0 .. i for every latent of row
i.  Median (min-max) of ``--reps``, interleaved, after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch

from vqvae.priors import PixelCNNConfig, PixelCNNPrior


def _seconds(prior: PixelCNNPrior, n: int, cache: bool) -> float:
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    prior.sample(n, generator=generator, cache=cache)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--no-recomputed", action="store_true", help="skip the slow reference")
    args = p.parse_args()
    torch.manual_seed(0)
    grids = [("8 x 8", dict(height=8, width=8)), ("8 x 8 x 10", dict(height=8, width=8, groups=10)),
             ("32 x 32", dict(height=32, width=32))]
    rows = []
    for name, shape in grids:
        prior = PixelCNNPrior(PixelCNNConfig(num_codes=512, **shape)).eval()
        recompute = name == "8 x 8" and not args.no_recomputed
        tiny = PixelCNNPrior(PixelCNNConfig(num_codes=512, **shape)).eval()
        _seconds(tiny, 2, True)  # warm-up
        cached, slow = [], []
        for _ in range(args.reps):
            cached.append(_seconds(prior, args.n, True))
            if recompute:
                slow.append(_seconds(prior, args.n, False))
        c = statistics.median(cached)
        s = statistics.median(slow) if slow else None
        rows.append((name, c, min(cached), max(cached), s))
        print(f"{name}: {args.n} samples cached {c:.2f} s"
              + (f", recomputed {s:.1f} s ({s / c:.0f}x)" if s else ""), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"\ncommit {commit}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.n} samples in one batch, median (min-max) of {args.reps}")
    print("| grid | cached s | recomputed s | speed-up |")
    print("|---|---|---|---|")
    for name, c, cmin, cmax, s in rows:
        slow = f"{s:.1f} | {s / c:.0f}x" if s else "not run | "
        print(f"| {name} | {c:.2f} ({cmin:.2f}-{cmax:.2f}) | {slow} |")


if __name__ == "__main__":
    main()
