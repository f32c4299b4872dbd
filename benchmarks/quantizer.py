"""Speed and peak memory of the VQ bottleneck against vector-quantize-pytorch and the floor.

    python benchmarks/quantizer.py [--workloads W1,W2,W3] [--reps 5]

Each step is forward + backward + EMA update in training mode.  Contenders, timed interleaved
in one process after a warm-up (median, min-max over repetitions):
  vqvae        VectorQuantizer(K, D) on a (B, D, H, W) channels-last tensor (as a channels-last
               encoder emits it; the (N, D) view is free)
  vqvae-nchw   the same on a standard contiguous NCHW tensor (one transpose copy more)
  vqvae-bf16   rerank=8: bfloat16 search, exact fp32 choice among the 8 best candidates
  peer         vector_quantize_pytorch.VectorQuantize(dim, codebook_size, decay=0.99,
               commitment_weight=0.25, rotation_trick=False) on (B, N, D)
  floor        the bare search: for chunks of 4096 rows, addmm(|e|^2, z, E^T, alpha=-2).argmin(1)
  search       vqvae.quantize.nearest_code alone (the floor with a faster exact argmin)
Peak memory: each contender alone in a fresh subprocess, the resident high-water mark during
two steps minus the resident size after imports and inputs.  The peer needs the
``vector_quantize_pytorch`` package (1.32.0), installed in the benchmark's own environment
only; without it the peer is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

WORKLOADS = {  # name: (vectors N, dim D, codes K, batch B) ; N = B * 32 * 32
    "W1": (131072, 64, 512, 128),
    "W2": (65536, 256, 8192, 64),
    "W3": (65536, 256, 65536, 64),
}
PEER_MEMORY_LIMIT = 22 * 2**30  # the machine has 24 GiB; the peer is stopped beyond this


def make_step(name: str, n: int, d: int, k: int, b: int):
    """Returns a zero-argument function running one training step of contender ``name``."""
    torch.manual_seed(0)
    hw = n // b
    side = int(hw**0.5)
    if name in ("floor", "search"):
        from vqvae.quantize import nearest_code

        z = torch.randn(n, d)
        codebook = torch.randn(k, d)
        if name == "search":
            return lambda: nearest_code(z, codebook)

        def floor():
            sqnorm = codebook.pow(2).sum(1)
            out = torch.empty(n, dtype=torch.long)
            for s in range(0, n, 4096):
                scores = torch.addmm(sqnorm, z[s : s + 4096], codebook.t(), alpha=-2.0)
                torch.argmin(scores, 1, out=out[s : s + 4096])
            return out

        return floor
    if name.startswith("vqvae"):
        from vqvae.quantize import VectorQuantizer

        vq = VectorQuantizer(k, d, rerank=8 if name == "vqvae-bf16" else 0).train()
        x = torch.randn(b, d, side, side)
        if name != "vqvae-nchw":
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        grad = torch.randn_like(x)

        def step():
            x.grad = None
            out = vq(x)
            torch.autograd.backward([out.quantized, out.loss], [grad, None])

        return step
    if name == "peer":
        from vector_quantize_pytorch import VectorQuantize

        vq = VectorQuantize(
            dim=d, codebook_size=k, decay=0.99, commitment_weight=0.25, rotation_trick=False
        ).train()
        x = torch.randn(b, hw, d, requires_grad=True)
        grad = torch.randn_like(x)

        def step():
            x.grad = None
            quantized, _, loss = vq(x)
            torch.autograd.backward([quantized, loss], [grad, None])

        return step
    raise ValueError(name)


def _rss_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (high-water mark) of this process, in kB."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":"))


def child(name: str, workload: str, steps: int) -> None:
    """Peak memory of one contender alone in this process; prints JSON.

    ru_maxrss is not used: after fork it starts at the parent's resident size.  The kernel's
    high-water mark (VmHWM) is reset after the set-up, so the figure is what the steps add.
    """
    if name == "peer":
        resource.setrlimit(resource.RLIMIT_AS, (PEER_MEMORY_LIMIT, PEER_MEMORY_LIMIT))
    n, d, k, b = WORKLOADS[workload]
    step = make_step(name, n, d, k, b)
    base = _rss_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    try:
        for _ in range(steps):
            step()
        peak = _rss_kb("VmHWM")
        print(json.dumps({"peak_mb": (peak - base) / 1024}))
    except (RuntimeError, MemoryError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {str(e)[:80]}"}))


def peak_memory(name: str, workload: str) -> str:
    cmd = [sys.executable, __file__, "--child", name, workload]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "timed out"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return f"failed (exit {res.returncode})"
    out = json.loads(lines[-1])
    return f"{out['peak_mb']:.0f} MB" if "peak_mb" in out else out["error"]


def index_agreement(n: int, d: int, k: int, b: int) -> float:
    """Fraction of vectors where the bf16 search with fp32 re-rank differs from exact fp32."""
    from vqvae.quantize import nearest_code

    torch.manual_seed(1)
    # encoder-like data: vectors near the codes, so that near-ties are common
    codebook = torch.randn(k, d)
    z = codebook[torch.randint(k, (n,))] + 0.5 * torch.randn(n, d)
    exact = nearest_code(z, codebook)
    fast = nearest_code(z, codebook, rerank=8)
    return (exact != fast).float().mean().item()


def have_peer() -> bool:
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--child", nargs=2, metavar=("CONTENDER", "WORKLOAD"))
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], steps=2)
        return

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cpu = platform.processor() or "unknown"
    if os.path.exists("/proc/cpuinfo"):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")
            ),
            cpu,
        )
    print(f"# {' '.join(sys.argv)}")
    print(
        f"# date {time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, cpu {cpu}, commit {commit}"
    )
    peer = have_peer()
    for wl in args.workloads.split(","):
        n, d, k, b = WORKLOADS[wl]
        names = ["floor", "search", "vqvae", "vqvae-nchw", "vqvae-bf16"]
        if peer and wl != "W3":
            names.append("peer")
        reps = args.reps if wl == "W1" else max(2, args.reps // 2)
        steps = {nm: make_step(nm, n, d, k, b) for nm in names}
        for fn in steps.values():  # warm-up
            fn()
        times: dict[str, list[float]] = {nm: [] for nm in names}
        for _ in range(reps):  # interleaved: A B C A B C ...
            for nm, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                times[nm].append(time.perf_counter() - t0)
        del steps
        med = {nm: statistics.median(ts) for nm, ts in times.items()}
        print(f"\n## {wl}: N={n} D={d} K={k}, {reps} reps")
        print("| contender | median s | min-max s | vs floor | peer / this | peak memory |")
        print("|---|---|---|---|---|---|")
        mem_names = names + (["peer"] if peer and wl == "W3" else [])
        for nm in mem_names:
            mem = peak_memory(nm, wl)
            if nm not in times:
                print(f"| {nm} | not timed | | | | {mem} |")
                continue
            ts = times[nm]
            speedup = f"{med['peer'] / med[nm]:.1f}x" if "peer" in med else "n/a"
            print(
                f"| {nm} | {med[nm]:.3f} | {min(ts):.3f}-{max(ts):.3f} | "
                f"{med[nm] / med['floor']:.2f} | {speedup} | {mem} |"
            )
        diff = index_agreement(min(n, 32768), d, k, b)
        print(f"indices differing, bf16 search + fp32 re-rank vs exact fp32: {diff:.4%}")


if __name__ == "__main__":
    main()
