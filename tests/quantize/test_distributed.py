"""Two gloo processes on the CPU keep identical codebooks."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vqvae.quantize import VectorQuantizer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    return torch.randn(4, 6, 5, 5, generator=g)  # global batch: rank r gets rows 2r, 2r+1


def _make() -> VectorQuantizer:
    torch.manual_seed(0)
    return VectorQuantizer(16, 6, groups=2, init="kmeans", restart_after=2)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(100 + rank)  # different local RNG: restarts must still agree
    vq = _make()
    for step in range(5):
        vq(_batches(step)[2 * rank : 2 * rank + 2])
    torch.save({k: v.clone() for k, v in vq.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_hold_identical_codebooks(tmp_path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k


def _ema_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 6)
    for step in range(3):
        vq(_batches(step)[2 * rank : 2 * rank + 2])
    torch.save(vq.codebook.clone(), f"{out_dir}/ema{rank}.pt")
    dist.destroy_process_group()


def test_ema_over_two_ranks_equals_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_ema_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    single = VectorQuantizer(16, 6)
    for step in range(3):
        single(_batches(step))
    for r in range(2):
        got = torch.load(tmp_path / f"ema{r}.pt", weights_only=True)
        torch.testing.assert_close(got, single.codebook, rtol=1e-5, atol=1e-6)
