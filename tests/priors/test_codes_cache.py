"""Codes are encoded once per split and reused until the checkpoint or the data change."""

import numpy as np
import torch

from vqvae.data import ImageDataset
from vqvae.model import VQVAE, VQVAEConfig
from vqvae.priors.codes import cached_codes, checkpoint_weights, file_sha256


def test_codes_are_cached_and_encoded_again_when_the_checkpoint_or_data_change(tmp_path):
    torch.manual_seed(0)
    vqvae = VQVAE(VQVAEConfig(image_size=8, hidden=8, residual_layers=1, residual_hidden=4,
                              embedding_dim=8, num_codes=16, init="random")).eval()
    vqvae.save_pretrained(tmp_path / "checkpoints" / "best")
    weights = checkpoint_weights(tmp_path)
    rng = np.random.default_rng(0)
    data = ImageDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
                        np.array([0, 1, 0, 1, 0, 1]), ("a", "b"))
    x = torch.stack([data[i][0] for i in range(6)])
    key = {"dataset": "folder", "path": "x"}
    said = []

    def codes():
        return cached_codes(vqvae, file_sha256(weights), data, "train", tmp_path, key,
                            progress=False, log=said.append)

    first = codes()
    assert "encoding 6 images (no cache yet)" in said[-1]
    assert torch.equal(first.codes.long(), vqvae.encode(x))
    assert first[1][0].shape == (2, 2) and first[1][1] == 1
    assert torch.equal(codes().codes, first.codes) and "reusing" in said[-1]
    key["path"] = "y"
    codes()
    assert "other data" in said[-1]
    with torch.no_grad():
        vqvae.quantizer.codebook.copy_(vqvae.quantizer.codebook.flip(1))  # another checkpoint
    vqvae.save_pretrained(tmp_path / "checkpoints" / "best")
    again = codes()
    assert "another checkpoint" in said[-1]
    assert torch.equal(again.codes.long(), vqvae.encode(x))
    assert not torch.equal(again.codes, first.codes)
