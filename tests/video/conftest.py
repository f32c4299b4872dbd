"""Fixtures for the video tests: a tiny recorded world, a tiny tokenizer and dynamics prior."""

from __future__ import annotations

import pytest

pytest.importorskip("vizdoom")

from vqvae.cli import main  # noqa: E402
from vqvae.data.world import record_world  # noqa: E402

TINY_TOKENIZER = [
    "--set", "model.hidden=8", "--set", "model.residual_hidden=4",
    "--set", "model.residual_layers=1", "--set", "model.embedding_dim=8",
    "--set", "model.num_codes=16", "--set", "train.val_batches=1",
    "--set", "train.warmup_steps=0", "--batch-size", "4", "--no-progress",
]
TINY_DYNAMICS = [
    "--set", "dynamics.context_frames=2", "--set", "dynamics.layers=2",
    "--set", "dynamics.channels=8", "--set", "dynamics.kernel_size=3",
    "--set", "dynamics.context_hidden=8", "--set", "dynamics.context_layers=1",
    "--set", "dynamics.cond_channels=4", "--set", "dynamics.code_embedding=4",
    "--set", "train.val_batches=1", "--set", "train.warmup_steps=0",
    "--set", "train.log_every=1", "--set", "train.checkpoint_every=2",
    "--set", "train.image_every=2", "--batch-size", "4", "--no-progress",
]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test writes its cache under its own tmp folder, never to ~/.cache."""
    monkeypatch.setenv("VQVAE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    """3 episodes of at most 24 frames of 32 x 32 (episode 2 held out), 2 per shard."""
    folder = tmp_path_factory.mktemp("world") / "maze"
    record_world(folder, "my_way_home", num_episodes=3, steps_per_episode=24, size=32, seed=3,
                 shard_episodes=2, log=lambda _: None)
    return folder


@pytest.fixture(scope="session")
def trained(tmp_path_factory, world_dir):
    """A tokenizer (32 x 32 -> 8 x 8 codes, K = 16) trained 2 steps on the world, and a
    dynamics prior (2 context frames) trained 4 steps in run/dynamics."""
    run = tmp_path_factory.mktemp("run") / "r"
    assert main(["train", "--dataset", "world", "--data", str(world_dir), "--steps", "2",
                 "--out", str(run), *TINY_TOKENIZER]) == 0
    assert main(["train-dynamics", str(run), "--steps", "4", *TINY_DYNAMICS]) == 0
    return run
