"""Bits/dim with a prior: (-log p(x | z_q) - log p(z_q)) / (C H W ln 2), checked by hand."""

import math

import numpy as np
import pytest
import torch

from vqvae.data import ImageDataset
from vqvae.eval.bits_per_dim import bits_per_dim, prior_nll_per_latent
from vqvae.eval.reconstruction import evaluate_reconstruction
from vqvae.model import VQVAE, VQVAEConfig
from vqvae.priors import PixelCNNConfig, PixelCNNPrior


def tiny_vqvae(likelihood="categorical") -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(image_size=8, hidden=8, residual_layers=1, residual_hidden=4,
                             embedding_dim=8, num_codes=16, groups=2, init="random",
                             restart_after=None, likelihood=likelihood)).eval()


def tiny_prior(vqvae: VQVAE, num_classes=2) -> PixelCNNPrior:
    return PixelCNNPrior(PixelCNNConfig.for_vqvae(vqvae.config, channels=8, layers=2,
                                                  kernel_size=3, num_classes=num_classes))


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    return ImageDataset(x, np.array([0, 1, 1, 0, 1]), ("a", "b"))


def test_bits_per_dim_matches_a_hand_calculation(images):
    vqvae = tiny_vqvae()
    prior = tiny_prior(vqvae)
    r = bits_per_dim(vqvae, prior, images, batch_size=2, progress=False)
    x = torch.stack([images[i][0] for i in range(len(images))])
    labels = torch.from_numpy(images.labels)
    with torch.no_grad():
        nll_x = vqvae.nll(x)  # (5,) nats
        nll_z = prior.nll(vqvae.encode(x), labels)  # (5,) nats
    by_hand = ((nll_x + nll_z) / (3 * 8 * 8 * math.log(2))).mean().item()
    assert r.images == 5 and r.dims == 192 and r.latents == 2 * 2 * 2
    assert r.bpd == pytest.approx(by_hand, rel=1e-5)
    assert r.nll_z_per_latent == pytest.approx(nll_z.mean().item() / 8, rel=1e-5)
    assert r.bpd_uniform_prior == pytest.approx(
        (nll_x.mean().item() + 8 * math.log(16)) / (192 * math.log(2)), rel=1e-5)


def test_a_prior_of_uniform_logits_gives_the_uniform_prior_figure(images):
    vqvae = tiny_vqvae()
    prior = tiny_prior(vqvae, num_classes=0)
    with torch.no_grad():
        prior.logits.weight.zero_()
        prior.logits.bias.zero_()  # every code has probability 1 / K
    r = bits_per_dim(vqvae, prior, images, progress=False)
    assert r.nll_z == pytest.approx(8 * math.log(16), rel=1e-6)
    assert r.bpd == pytest.approx(r.bpd_uniform_prior, rel=1e-6)
    reference = evaluate_reconstruction(vqvae, images, train_variance=1.0, progress=False)
    assert r.bpd_uniform_prior == pytest.approx(reference.metrics["bpd_uniform_prior"], rel=1e-6)


def test_prior_nll_per_latent_averages_over_latents(images):
    vqvae = tiny_vqvae()
    prior = tiny_prior(vqvae)
    codes = torch.randint(16, (4, 2, 2, 2))
    labels = torch.tensor([0, 1, 0, 1])
    data = torch.utils.data.TensorDataset(codes, labels)
    expected = prior.nll(codes, labels).sum().item() / codes.numel()
    assert prior_nll_per_latent(prior, data, batch_size=3) == pytest.approx(expected, rel=1e-6)


def test_without_a_discrete_likelihood_only_the_prior_is_scored(images):
    vqvae = tiny_vqvae(likelihood="gaussian")
    r = bits_per_dim(vqvae, tiny_prior(vqvae), images, progress=False)
    assert r.bpd is None and r.bpd_uniform_prior is None and r.nll_z > 0


def test_a_prior_of_another_grid_is_refused(images):
    vqvae = tiny_vqvae()
    other = PixelCNNPrior(PixelCNNConfig(num_codes=32, groups=2, height=2, width=2, channels=8,
                                         layers=1, kernel_size=3))
    with pytest.raises(ValueError, match="K=32 codes on a 2 x 2 x 2 grid.*K=16"):
        bits_per_dim(vqvae, other, images, progress=False)
