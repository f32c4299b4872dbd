"""DeepMind Sonnet's VQ-VAE example on CIFAR-10, as published and with vqvae's improvements.

    python benchmarks/cifar10_sonnet.py --recipe published [--steps 10000]
    python benchmarks/cifar10_sonnet.py --recipe vqvae     [--steps 10000] [--lr PEAK]
        [--set model.KEY=VALUE ...] [--average DECAY] [--device cuda]

Protocol of Sonnet's ``vqvae_example.ipynb``: images scaled to [-0.5, 0.5]; encoder/decoder of
128 hidden units with 2 residual layers of 32; D = 64; K = 512; beta = 0.25; EMA decay 0.99;
Adam 3e-4; batch 32; 10k steps; loss = MSE / variance(train) + VQ loss; NMSE = MSE / variance of
the training data.  Both recipes train the same number of steps at the same batch size and are
scored on the 10,000 CIFAR-10 *test* images: NMSE, PSNR, perplexity, fraction of codes used.

``--recipe vqvae`` changes only what the issue allows: codebook initialised by k-means++ on the
first batch, dead codes restarted, a warm-up and cosine learning-rate schedule with a higher
peak, wider residual blocks (64 instead of 32), and bf16 autocast for speed (the quantiser's
search and EMA stay fp32).  ``--recipe vqvae-wide`` also doubles the hidden units to 256, the
paper's width (D = 64 and K = 512 unchanged, so the code rate is the same).  ``--recipe
vqvae-deep``: peak lr 1.5e-3, EMA decay 0.95, 8 residual blocks of 128 at the latent resolution
and 2 more at 16 x 16 in both networks (same D, K and code rate).  ``--recipe vqvae-deep-wide``,
the best found so far, is the same with 192 hidden units instead of 128.  bf16
only where the device runs it natively (else fp32, said in the header).  Prints one markdown
row per run.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import time

import torch
from torch import nn

from vqvae import VQVAE, VQVAEConfig
from vqvae.config import apply_override
from vqvae.data import load_image_dataset
from vqvae.eval import evaluate_reconstruction
from vqvae.nets.blocks import ResidualBlock
from vqvae.train import adam, native_bf16

RECIPES = {
    "published": dict(model=dict(init="random", restart_after=None), lr=3e-4, schedule="constant",
                      warmup=0, amp=False),
    "vqvae": dict(model=dict(init="kmeans++", restart_after=100, residual_hidden=64),
                  lr=7e-4, schedule="cosine", warmup=500, amp=True),
    "vqvae-wide": dict(model=dict(init="kmeans++", restart_after=100, hidden=256,
                                  residual_hidden=64),
                       lr=7e-4, schedule="cosine", warmup=500, amp=True),
    "vqvae-deep": dict(model=dict(init="kmeans++", restart_after=100, decay=0.95,
                                  residual_layers=8, residual_hidden=128, stage_residual_layers=2),
                       lr=1.5e-3, schedule="cosine", warmup=500, amp=True),
}
# vqvae-deep with 192 hidden units instead of 128
RECIPES["vqvae-deep-wide"] = RECIPES["vqvae-deep"] | dict(
    model=RECIPES["vqvae-deep"]["model"] | dict(hidden=192))


def lr_at(step: int, steps: int, peak: float, schedule: str, warmup: int) -> float:
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="published")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, help="peak learning rate instead of the recipe's")
    p.add_argument("--zero-init-residual", action="store_true",
                   help="start every residual block as the identity (its last conv zeroed)")
    p.add_argument("--average", type=float, metavar="DECAY",
                   help="also score an exponential moving average of the weights with this decay "
                        "(e.g. 0.999), updated after every step; the codebook stays the model's")
    p.add_argument("--set", action="append", default=[], metavar="model.KEY=VALUE",
                   help="a model setting over the recipe's, e.g. model.decay=0.95")
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: shared data)")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    args = p.parse_args()
    if args.average is not None and not 0 < args.average < 1:
        p.error(f"--average takes a decay in (0, 1), got {args.average}")
    recipe = dict(RECIPES[args.recipe])
    if args.lr is not None:
        recipe["lr"] = args.lr
    settings = {"model": dict(recipe["model"])}
    for assignment in args.set:
        apply_override(settings, assignment)
    if set(settings) != {"model"}:
        p.error("--set takes model settings only (model.KEY=VALUE)")
    recipe["model"] = settings["model"]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bf16_note = ""
    if recipe["amp"] and not native_bf16(device):
        recipe["amp"] = False
        bf16_note = f"; fp32, not the recipe's bf16: {device} has no native bf16"

    torch.manual_seed(args.seed)
    train = load_image_dataset("cifar10", args.data, "train")
    test = load_image_dataset("cifar10", args.data, "test")
    variance = train.variance
    images = torch.from_numpy(train.images).permute(0, 3, 1, 2)  # (N, 3, 32, 32) uint8
    config = VQVAEConfig.from_preset("sonnet-cifar10", **recipe["model"])
    model = VQVAE(config).to(device).train()
    if args.zero_init_residual:
        for block in model.modules():
            if isinstance(block, ResidualBlock):
                nn.init.zeros_(block.branch[-1].weight)
                nn.init.zeros_(block.branch[-1].bias)
    opt = adam(model.parameters(), lr=recipe["lr"])
    params = list(model.parameters())
    average = [q.detach().clone() for q in params] if args.average else None
    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(images), generator=gen)
    pos = 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# {args.recipe}: {config}; peak lr {recipe['lr']}"
          f"{'; residual blocks start as the identity' if args.zero_init_residual else ''}"
          f"{bf16_note}")
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"cpu {torch.backends.cpu.get_cpu_capability()}, "
                  f"threads {torch.get_num_threads()}")
    print(f"# torch {torch.__version__}, {where}, commit {commit}, "
          f"train variance {variance:.5f}")
    t0 = time.perf_counter()
    # sums over the last 1000 steps, kept on the device (no synchronisation per step)
    window = {k: torch.zeros((), dtype=torch.float64, device=device)
              for k in ("nmse", "perplexity")}
    for step in range(args.steps):
        if pos + args.batch_size > len(order):
            order, pos = torch.randperm(len(images), generator=gen), 0
        x = images[order[pos : pos + args.batch_size]].to(device).float().div_(255).sub_(0.5)
        pos += args.batch_size
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, recipe["lr"], recipe["schedule"], recipe["warmup"])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe["amp"]):
            out = model(x)
        loss = out.recon_loss / variance + out.quantizer_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if average is not None:
            torch._foreach_lerp_(average, [q.detach() for q in params], 1 - args.average)
        window["nmse"] += out.recon_loss.detach() / variance
        window["perplexity"] += out.perplexity.detach()
        if (step + 1) % 1000 == 0:
            print(f"step {step + 1:6d}  train nmse {window['nmse'].item() / 1000:.4f}  "
                  f"perplexity {window['perplexity'].item() / 1000:6.1f}  "
                  f"{time.perf_counter() - t0:6.0f}s", flush=True)
            window = {k: torch.zeros_like(v) for k, v in window.items()}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    rows = [(args.recipe, evaluate_reconstruction(model, test, train_variance=variance,
                                                  device=device, progress=False).metrics)]
    if average is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, average)
        rows.append((f"{args.recipe}, weights averaged ({args.average})",
                     evaluate_reconstruction(model, test, train_variance=variance,
                                             device=device, progress=False).metrics))
    print("| recipe | steps | batch | test NMSE | test PSNR dB | test perplexity | codes used "
          "| wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in rows:
        print(f"| {name} | {args.steps} | {args.batch_size} | {m['nmse']:.4f} | "
              f"{m['psnr']:.2f} | {m['perplexity']:.1f} | {m['codes_used']:.1%} | {wall:.0f} |")


if __name__ == "__main__":
    main()
