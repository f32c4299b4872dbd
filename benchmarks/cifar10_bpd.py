"""CIFAR-10 bits/dim of the paper (section 4.1) within a stated budget, with its curve.

    python benchmarks/cifar10_bpd.py --out runs/bpd --vq-steps 20000 --prior-steps 20000 \\
        --every 2000 [--prior-every N] [--batch-size 128] [--amp bf16] [--curve-images 1000] \\
        [--vq-set model.KEY=VALUE] [--set prior.KEY=VALUE]

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
import json
import math
import time
from pathlib import Path

import torch

from vqvae.config import RunConfig, apply_override
from vqvae.data import load_image_dataset
from vqvae.eval import line_plot
from vqvae.eval.reconstruction import evaluate_reconstruction
from vqvae.model import VQVAE
from vqvae.train.runs import train_prior, train_vqvae


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/cifar10-bpd")
    p.add_argument("--vq-steps", type=int, default=20_000)
    p.add_argument("--prior-steps", type=int, default=20_000)
    p.add_argument("--every", type=int, default=2000, help="VQ-VAE steps between measurements")
    p.add_argument("--prior-every", type=int, default=None,
                   help="prior steps between measurements (default: --every)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--prior-batch-size", type=int, default=64)
    p.add_argument("--amp", default="bf16", choices=["none", "bf16"])
    p.add_argument("--curve-images", type=int, default=1000,
                   help="test images for the intermediate VQ-VAE points (the last uses all)")
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: shared data)")
    p.add_argument("--vq-set", action="append", default=[], metavar="model.KEY=VALUE",
                   help="VQ-VAE settings over the paper-cifar10 preset, e.g. model.update=ema")
    p.add_argument("--set", action="append", default=[], metavar="prior.KEY=VALUE",
                   help="prior settings, e.g. prior.channels=64 for a smaller prior")
    args = p.parse_args()
    prior_every = args.prior_every or args.every
    out = Path(args.out)
    subset = load_image_dataset("cifar10", args.data, "test")
    subset.images, subset.labels = subset.images[: args.curve_images], subset.labels[
        : args.curve_images]
    train_variance = load_image_dataset("cifar10", args.data, "train").variance
    rows: list[tuple[str, int, float, int, float]] = []
    t0 = time.perf_counter()

    for steps in range(args.every, args.vq_steps + 1, args.every):
        final = steps + args.every > args.vq_steps
        data = {
            "preset": "paper-cifar10",
            "train": {"steps": steps, "batch_size": args.batch_size, "amp": args.amp,
                      "checkpoint_every": args.every, "image_every": args.every,
                      "progress": False},
            "data": {"dataset": "cifar10", "path": args.data},
        }
        for assignment in args.vq_set:
            apply_override(data, assignment)
        config = RunConfig.from_dict(data, source="--vq-set")
        train_vqvae(config, out, resume=steps > args.every, evaluate=final)
        if final:  # train_vqvae measured the whole test split
            m = json.loads((out / "eval.json").read_text())
        else:
            model = VQVAE.from_pretrained(out / "checkpoints" / "last")
            m = evaluate_reconstruction(model, subset, train_variance=train_variance,
                                        progress=False).metrics
        rows.append(("vq-vae, uniform prior", steps, time.perf_counter() - t0, int(m["images"]),
                     m["bpd_uniform_prior"]))
        print(f"vq-vae step {steps}: test bpd (uniform prior) {m['bpd_uniform_prior']:.4f}, "
              f"nmse {m['nmse']:.4f} on {int(m['images'])} images", flush=True)
    vq_wall = time.perf_counter() - t0

    # -log p(x | z_q) does not depend on the prior: the final VQ-VAE's, on the whole test split
    vq_eval = json.loads((out / "eval.json").read_text())
    model = VQVAE.from_pretrained(out / "checkpoints" / "last")
    cfg = model.config
    dims = cfg.image_channels * cfg.image_size * cfg.image_size
    latents = cfg.groups * (cfg.image_size // cfg.downsample) ** 2
    t1 = time.perf_counter()
    for steps in range(prior_every, args.prior_steps + 1, prior_every):
        settings = {"train": {"steps": steps, "batch_size": args.prior_batch_size,
                              "checkpoint_every": prior_every, "image_every": prior_every,
                              "progress": False}}
        train_prior(out, settings=settings, assignments=args.set, resume=steps > prior_every)
        # the prior's run measured -log p(z_q) per latent on the cached test codes
        nll_z = json.loads((out / "prior" / "eval.json").read_text())["test_nll_per_latent"]
        bpd = (vq_eval["nll_x_nats"] + latents * nll_z) / (dims * math.log(2))
        rows.append(("+ PixelCNN prior", steps, time.perf_counter() - t1,
                     int(vq_eval["images"]), bpd))
        print(f"prior step {steps}: test bpd {bpd:.4f} (nll_z {nll_z:.4f} nats per latent vs "
              f"ln K = {math.log(cfg.num_codes):.4f})", flush=True)

    print(f"\nVQ-VAE stage {vq_wall:.0f} s, prior stage {time.perf_counter() - t1:.0f} s")
    print("\n| stage | steps | wall s | test images | test bpd |")
    print("|---|---|---|---|---|")
    for stage, steps, wall, images, bpd in rows:
        print(f"| {stage} | {steps} | {wall:.0f} | {images} | {bpd:.4f} |")
    vq = [(s, b) for st, s, *_, b in rows if st.startswith("vq")]
    pr = [(args.vq_steps + s, b) for st, s, *_, b in rows if st.startswith("+")]
    xs, ys = zip(*(vq + pr), strict=True)
    line_plot(xs, ys, out / "bpd_curve.png",
              f"CIFAR-10 test bits/dim: VQ-VAE steps 1-{args.vq_steps} (uniform prior), then "
              "prior steps", xlabel="steps", ylabel="bpd")
    print(f"curve: {out / 'bpd_curve.png'}; torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
