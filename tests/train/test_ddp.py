"""Data-parallel training: two gloo processes on the CPU against one process."""

import csv
import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from vqvae import VQVAE, VQVAEConfig
from vqvae.data import ImageDataset
from vqvae.train import TrainConfig, Trainer
from vqvae.train.distributed import setup, teardown
from vqvae.train.vqvae_task import VQVAETask


def _data() -> ImageDataset:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 16)[None, None, :, None]
    images = (ramp * rng.uniform(0.2, 1, size=(64, 1, 1, 3))
              + rng.normal(0, 8, size=(64, 16, 16, 3))).clip(0, 255).astype(np.uint8)
    return ImageDataset(images, np.zeros(64, dtype=np.int64), source="synthetic")


def _model(init: str, restart_after) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(image_size=16, hidden=8, residual_hidden=4, residual_layers=1,
                             embedding_dim=8, num_codes=16, init=init,
                             restart_after=restart_after))


def _train(run_dir: str, init: str, restart_after) -> VQVAE:
    info = setup("cpu")
    data = _data()
    model = _model(init, restart_after)
    task = VQVAETask(model, data.variance, preview=torch.stack([data[i][0] for i in range(4)]))
    config = TrainConfig(steps=5, batch_size=8, lr=1e-2, log_every=1, image_every=100,
                         checkpoint_every=100, val_batches=0, progress=False)
    Trainer(task, data, config, run_dir, dist_info=info).fit()
    return model


def _worker(rank: int, port: int, root: str, init: str, restart_after) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    model = _train(f"{root}/ddp", init, restart_after)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, f"{root}/rank{rank}.pt")
    teardown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run_dir) -> list[float]:
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _spawn(root, init, restart_after):
    mp.spawn(_worker, args=(_free_port(), str(root), init, restart_after), nprocs=2, join=True)
    return (torch.load(root / "rank0.pt", weights_only=True),
            torch.load(root / "rank1.pt", weights_only=True))


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    s0, s1 = _spawn(tmp_path, "random", None)
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    single = _train(str(tmp_path / "single"), "random", None)
    np.testing.assert_allclose(_losses(tmp_path / "ddp"), _losses(tmp_path / "single"),
                               rtol=2e-4)
    torch.testing.assert_close(s0["quantizer.codebook"], single.quantizer.codebook,
                               rtol=1e-4, atol=1e-5)


def test_codebooks_stay_identical_with_data_init_and_restarts(tmp_path):
    s0, s1 = _spawn(tmp_path, "kmeans", 1)
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    assert (tmp_path / "ddp" / "metrics.csv").is_file()
    assert not (tmp_path / "ddp" / "rank1").exists()
