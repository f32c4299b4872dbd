"""CIFAR-10 bits/dim of the paper (section 4.1) within a stated budget, with its curve.

    python benchmarks/cifar10_bpd.py --out runs/bpd --vq-steps 20000 --prior-steps 20000 \\
        --every 2000 [--batch-size 128] [--amp bf16] [--test-images 10000]

1. Trains the ``paper-cifar10`` VQ-VAE (8 x 8 x 10 latents, 256 hidden units, 256-way softmax
   per sub-pixel, Adam 2e-4) in stages of ``--every`` steps; each stage resumes the same run,
   so the stages are exactly one run, and after each the test bits/dim with the uniform prior
   (-log p(z) = L ln K) is measured.
2. Trains the gated PixelCNN prior over the codes of the final VQ-VAE the same way, measuring
   the test bits/dim with the prior after each stage:

       bpd = (-log p(x | z_q) - log p(z_q)) / (3072 ln 2)

Prints a table (steps, wall time, bpd) and writes ``OUT/bpd_curve.png``.  Paper (250k steps,
batch 128): VAE 4.51, VQ-VAE 4.67, VIMCO 5.14.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from vqvae.config import RunConfig
from vqvae.data import load_image_dataset
from vqvae.eval import line_plot
from vqvae.eval.bits_per_dim import bits_per_dim
from vqvae.eval.reconstruction import evaluate_reconstruction
from vqvae.model import VQVAE
from vqvae.train.runs import load_prior, train_prior, train_vqvae


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/cifar10-bpd")
    p.add_argument("--vq-steps", type=int, default=20_000)
    p.add_argument("--prior-steps", type=int, default=20_000)
    p.add_argument("--every", type=int, default=2000, help="steps between measurements")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--amp", default="bf16", choices=["none", "bf16"])
    p.add_argument("--test-images", type=int, default=10_000)
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: shared data)")
    p.add_argument("--set", action="append", default=[], metavar="prior.KEY=VALUE",
                   help="prior settings, e.g. prior.channels=64 for a smaller prior")
    args = p.parse_args()
    out = Path(args.out)
    test = load_image_dataset("cifar10", args.data, "test")
    if args.test_images < len(test):
        test.images, test.labels = test.images[: args.test_images], test.labels[: args.test_images]
    train_variance = load_image_dataset("cifar10", args.data, "train").variance
    rows: list[tuple[str, int, float, float]] = []
    t0 = time.perf_counter()

    for steps in range(args.every, args.vq_steps + 1, args.every):
        config = RunConfig.from_dict({
            "preset": "paper-cifar10",
            "train": {"steps": steps, "batch_size": args.batch_size, "amp": args.amp,
                      "checkpoint_every": args.every, "image_every": args.every,
                      "progress": False},
            "data": {"dataset": "cifar10", "path": args.data},
        })
        train_vqvae(config, out, resume=steps > args.every)
        model = VQVAE.from_pretrained(out / "checkpoints" / "last")
        m = evaluate_reconstruction(model, test, train_variance=train_variance,
                                    progress=False).metrics
        rows.append(("vq-vae, uniform prior", steps, time.perf_counter() - t0,
                     m["bpd_uniform_prior"]))
        print(f"vq-vae step {steps}: test bpd (uniform prior) {m['bpd_uniform_prior']:.4f}, "
              f"nmse {m['nmse']:.4f}", flush=True)

    model = VQVAE.from_pretrained(out / "checkpoints" / "last")
    t1 = time.perf_counter()
    for steps in range(args.every, args.prior_steps + 1, args.every):
        settings = {"train": {"steps": steps, "checkpoint_every": args.every,
                              "image_every": args.every, "progress": False}}
        train_prior(out, settings=settings, assignments=args.set, resume=steps > args.every)
        prior = load_prior(out / "prior" / "checkpoints" / "last", out, model)
        r = bits_per_dim(model, prior, test)
        rows.append(("+ PixelCNN prior", steps, time.perf_counter() - t1, r.bpd))
        print(f"prior step {steps}: test bpd {r.bpd:.4f} (nll_z {r.nll_z_per_latent:.4f} nats "
              f"per latent vs ln K = {math.log(r.num_codes):.4f})", flush=True)

    print("\n| stage | steps | wall s | test bpd |")
    print("|---|---|---|---|")
    for stage, steps, wall, bpd in rows:
        print(f"| {stage} | {steps} | {wall:.0f} | {bpd:.4f} |")
    vq = [(s, b) for st, s, _, b in rows if st.startswith("vq")]
    pr = [(args.vq_steps + s, b) for st, s, _, b in rows if st.startswith("+")]
    xs, ys = zip(*(vq + pr), strict=True)
    line_plot(xs, ys, out / "bpd_curve.png",
              f"CIFAR-10 test bits/dim: VQ-VAE steps 1-{args.vq_steps} (uniform prior), then "
              "prior steps", xlabel="steps", ylabel="bpd")
    print(f"curve: {out / 'bpd_curve.png'}; torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
