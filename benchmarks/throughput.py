"""Training throughput of the paper's CIFAR-10 model: vqvae against a plain fp32 implementation.

    python benchmarks/throughput.py [--steps 30] [--reps 5] [--quality-steps 300]

The peer is the same network (paper section 4.1: 32 x 32 -> 8 x 8 x 10 latents, 256 hidden
units, residual blocks of 256, K = 512 per codebook, 256-way softmax per sub-pixel, codebook
learned by the loss, Adam 2e-4) written plainly inside this file in fp32 with a textbook
quantiser (full distance matrix, argmin, ``x + (q - x).detach()``).  vqvae runs
``VQVAE.from_preset("paper-cifar10")`` with the settings given by ``--ours`` (default ``auto``:
bf16 autocast where the CPU runs bf16 natively, AVX-512 or AMX, else fp32) and the library's
optimiser (``vqvae.train.adam``: Adam with the fused kernel).
Both train on the same CIFAR-10 batches of 32; images per second are timed interleaved
(A B A B ...) after a warm-up; then both train ``--quality-steps`` more steps from
the same start and their test-set NMSE is printed, so speed is not bought with quality; beside
them vqvae in fp32 from vqvae's own state before those steps (same weights, same batches), which
isolates what bf16 and the faster kernels change from what a different initialisation does.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F
from torch import nn

from vqvae import VQVAE
from vqvae.data import load_image_dataset
from vqvae.train import adam, native_bf16


class PlainResidual(nn.Module):
    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, ch, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class PlainVQVAE(nn.Module):
    """The paper's CIFAR-10 model, written the obvious way, fp32."""

    def __init__(self, hidden=256, res_hidden=256, layers=2, dim=640, groups=10, codes=512):
        super().__init__()
        self.groups, self.codes = groups, codes
        self.enc = nn.Sequential(
            nn.Conv2d(3, hidden, 4, 2, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            *[PlainResidual(hidden, res_hidden) for _ in range(layers)], nn.ReLU(),
            nn.Conv2d(hidden, dim, 1),
        )
        self.codebook = nn.Parameter(torch.empty(groups, codes, dim // groups).uniform_(
            -1 / codes, 1 / codes))
        self.dec = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, padding=1),
            *[PlainResidual(hidden, res_hidden) for _ in range(layers)], nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 3 * 256, 4, 2, 1),
        )

    def forward(self, x):
        z = self.enc(x)  # (B, D, h, w)
        b, d, h, w = z.shape
        zg = z.permute(0, 2, 3, 1).reshape(-1, self.groups, d // self.groups)  # (N, G, d)
        qs = []
        for g in range(self.groups):
            dist = torch.cdist(zg[:, g], self.codebook[g])  # full (N, K)
            qs.append(self.codebook[g][dist.argmin(1)])
        q = torch.stack(qs, 1)
        vq_loss = F.mse_loss(q, zg.detach()) + 0.25 * F.mse_loss(zg, q.detach())
        q = zg + (q - zg).detach()
        q = q.reshape(b, h, w, d).permute(0, 3, 1, 2)
        logits = self.dec(q).view(b, 3, 256, 32, 32).permute(0, 1, 3, 4, 2)
        target = ((x + 0.5) * 255).round().long()
        nll = F.cross_entropy(logits.reshape(-1, 256), target.reshape(-1))
        recon = (logits.softmax(-1) * torch.arange(256.0)).sum(-1) / 255 - 0.5
        return nll + vq_loss, recon


def ours_step_fn(model, opt, amp: bool, channels_last: bool):
    def step(x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        return out.reconstruction
    return step


def plain_step_fn(model, opt):
    def step(x):
        loss, recon = model(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return recon
    return step


@torch.no_grad()
def test_nmse(model, test_x, variance, ours: bool, amp: bool) -> float:
    model.eval()
    err = 0.0
    for s in range(0, len(test_x), 250):
        x = test_x[s : s + 250]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp and ours):
            recon = model(x).reconstruction if ours else model(x)[1]
        err += (recon.float() - x).pow(2).sum().item()
    model.train()
    return err / test_x.numel() / variance


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed steps per repetition")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quality-steps", type=int, default=300)
    p.add_argument("--ours", default="auto",
                   choices=["auto", "bf16", "bf16+channels_last", "fp32"])
    p.add_argument("--profile", action="store_true",
                   help="after the warm-up, print torch.profiler tables of one vqvae step "
                        "(by operator, then by operator and input shape) and stop")
    args = p.parse_args()
    torch.manual_seed(0)
    train = load_image_dataset("cifar10", split="train")
    test = load_image_dataset("cifar10", split="test")
    images = torch.from_numpy(train.images[:20000]).permute(0, 3, 1, 2)
    test_x = torch.from_numpy(test.images[:2000]).permute(0, 3, 1, 2).float() / 255 - 0.5
    if args.ours == "auto":
        args.ours = "bf16" if native_bf16("cpu") else "fp32"
    amp = args.ours.startswith("bf16")
    cl = "channels_last" in args.ours

    ours = VQVAE.from_preset("paper-cifar10").train()
    plain = PlainVQVAE().train()
    opts = {"vqvae": adam(ours.parameters(), 2e-4),
            "plain-fp32": torch.optim.Adam(plain.parameters(), 2e-4)}
    steps = {
        "vqvae": ours_step_fn(ours, opts["vqvae"], amp, cl),
        "plain-fp32": plain_step_fn(plain, opts["plain-fp32"]),
    }
    g = torch.Generator().manual_seed(0)

    def batch():
        idx = torch.randint(len(images), (32,), generator=g)
        return images[idx].float() / 255 - 0.5

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# benchmarks/throughput.py --ours {args.ours}; torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, commit {commit}, CPU "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16('cpu')}")
    for fn in steps.values():  # warm-up
        for _ in range(2):
            fn(batch())
    if args.profile:
        x = batch()
        with torch.profiler.profile(record_shapes=True) as prof:
            steps["vqvae"](x)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=12))
        return
    times = {k: [] for k in steps}
    for _ in range(args.reps):
        for name, fn in steps.items():
            xs = [batch() for _ in range(args.steps)]
            t0 = time.perf_counter()
            for x in xs:
                fn(x)
            times[name].append(32 * args.steps / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("| implementation | images/s median | min-max | speed-up |")
    print("|---|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.1f} | {min(v):.1f}-{max(v):.1f} | "
              f"{med[k] / med['plain-fp32']:.2f}x |")
    # quality after the same steps, same batches; and vqvae in fp32 from the same state as
    # vqvae at this point, so that the speed-ups' effect is seen apart from the initialisation
    ours_fp32 = copy.deepcopy(ours)
    opt_fp32 = adam(ours_fp32.parameters(), 2e-4)
    opt_fp32.load_state_dict(opts["vqvae"].state_dict())
    quality = {**steps, "vqvae-fp32": ours_step_fn(ours_fp32, opt_fp32, False, False)}
    for _ in range(args.quality_steps):
        x = batch()
        for fn in quality.values():
            fn(x)
    total = 2 + args.steps * args.reps + args.quality_steps
    print(f"test NMSE after {total} steps of batch 32 (2000 test images): vqvae "
          f"{test_nmse(ours, test_x, train.variance, True, amp):.4f}, plain-fp32 "
          f"{test_nmse(plain, test_x, train.variance, False, False):.4f}; vqvae in fp32 from "
          f"vqvae's state after step {total - args.quality_steps}: "
          f"{test_nmse(ours_fp32, test_x, train.variance, True, False):.4f}")


if __name__ == "__main__":
    main()
