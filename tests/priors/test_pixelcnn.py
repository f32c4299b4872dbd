"""The gated PixelCNN prior: causality (by gradients), shapes, classes, sampling, nll, files."""

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F

from vqvae.errors import CheckpointError
from vqvae.priors import PixelCNNConfig, PixelCNNPrior


def tiny(groups=1, num_classes=0, **overrides) -> PixelCNNPrior:
    torch.manual_seed(0)
    fields = dict(num_codes=7, groups=groups, height=4, width=4, channels=12, layers=5,
                  kernel_size=3, num_classes=num_classes)
    return PixelCNNPrior(PixelCNNConfig(**{**fields, **overrides})).double()


@pytest.mark.parametrize("groups", [1, 3])
def test_each_latent_depends_on_every_earlier_latent_and_on_no_later_one(groups):
    """Gradients of the logits of each latent with respect to the embedded input codes.

    Order: raster over positions, groups 0 .. G-1 within a position.  Zero gradient at the
    latent itself and every later one; nonzero at *every* earlier one (no blind spot: with
    5 layers of 3 x 3 stacks the receptive field covers the whole 4 x 4 grid).
    """
    prior = tiny(groups, num_classes=2, channels=24)  # 4 channels of each group's own
    c = prior.config
    codes = torch.randint(c.num_codes, (9, *c.latent_shape))
    x = prior.embed(codes).detach().requires_grad_()  # (9, G E, h, w)
    logits = prior.logits_from_embedding(x, torch.arange(9) % 2)
    logits = logits[:, :, None] if groups == 1 else logits  # (9, K, G, h, w)
    weights = torch.randn(c.num_codes, dtype=torch.float64)  # no accidental cancellation
    order = list(itertools.product(range(c.height), range(c.width), range(groups)))
    for rank, (i, j, g) in enumerate(order):
        # the first 8 samples' logits; a ReLU may be off for one input, not for all 8
        (grad,) = torch.autograd.grad((logits[:8, :, g, i, j] @ weights).sum(), x,
                                      retain_graph=True)
        assert grad[8].abs().max() == 0, "samples of a batch must not mix"
        dependence = grad[:8].view(8, groups, c.embedding_dim, c.height, c.width).abs()
        dependence = dependence.sum((0, 2))  # (G, h, w)
        for other, (i2, j2, g2) in enumerate(order):
            depends = dependence[g2, i2, j2].item() != 0
            assert depends == (other < rank), (
                f"logits of (row {i}, col {j}, group {g}) "
                f"{'depend' if depends else 'do not depend'} on (row {i2}, col {j2}, group {g2})"
            )


def test_a_too_shallow_network_has_a_limited_receptive_field_but_stays_causal():
    prior = tiny(layers=1)
    x = prior.embed(torch.randint(7, (1, 4, 4))).detach().requires_grad_()
    (grad,) = torch.autograd.grad(prior.logits_from_embedding(x)[0, :, 3, 3].sum(), x)
    seen = grad[0].abs().sum(0) != 0
    # one layer: the vertical stack's k // 2 + 1 rows, shifted down one row, so rows 1-2 and
    # columns 2-4 (4 is outside the grid), and the left neighbour through the horizontal stack
    assert seen.nonzero().tolist() == [[1, 2], [1, 3], [2, 2], [2, 3], [3, 2]]


@pytest.mark.parametrize("groups", [1, 3])
def test_logits_have_one_k_way_distribution_per_latent(groups):
    prior = tiny(groups)
    codes = torch.randint(7, (5, *prior.config.latent_shape))
    expected = (5, 7, 4, 4) if groups == 1 else (5, 7, 3, 4, 4)
    assert prior(codes).shape == expected
    assert prior.nll(codes).shape == (5,)
    with pytest.raises(ValueError, match=r"codes must be \(B, "):
        prior(torch.zeros(5, 4, 5, dtype=torch.long))


def test_class_conditioning_changes_the_output_and_labels_are_checked():
    prior = tiny(num_classes=3)
    codes = torch.randint(7, (2, 4, 4))
    a, b = prior(codes, torch.tensor([0, 0])), prior(codes, torch.tensor([1, 2]))
    assert not torch.allclose(a, b)
    assert torch.equal(prior(codes, 1), prior(codes, torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="class-conditional"):
        prior(codes)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        prior(codes, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="unconditional"):
        tiny()(codes, torch.tensor([0, 0]))


@pytest.mark.parametrize("groups", [1, 3])
def test_sampling_is_seeded_in_range_and_leaves_the_global_rng_alone(groups):
    prior = tiny(groups, num_classes=2)
    rng = torch.get_rng_state()
    a = prior.sample(6, labels=torch.arange(6) % 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), rng)
    b = prior.sample(6, labels=torch.arange(6) % 2, generator=torch.Generator().manual_seed(3))
    c = prior.sample(6, labels=torch.arange(6) % 2, generator=torch.Generator().manual_seed(4))
    assert a.shape == (6, *prior.config.latent_shape) and a.dtype == torch.long
    assert a.min() >= 0 and a.max() < 7
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("groups", [1, 3])
def test_cached_sampling_draws_what_recomputing_the_network_draws(groups):
    prior = tiny(groups, num_classes=2)
    labels = torch.tensor([0, 1, 1, 0])
    fast = prior.sample(4, labels, generator=torch.Generator().manual_seed(5))
    slow = prior.sample(4, labels, generator=torch.Generator().manual_seed(5), cache=False)
    assert torch.equal(fast, slow)


def test_temperature_sharpens_and_must_be_positive():
    prior = tiny()
    with torch.no_grad():
        prior.logits.bias.zero_()
        prior.logits.bias[2] = 3.0  # code 2 is the most likely everywhere
    cold = prior.sample(8, temperature=0.05, generator=torch.Generator().manual_seed(0))
    hot = prior.sample(8, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert (cold == 2).float().mean() > (hot == 2).float().mean()
    with pytest.raises(ValueError, match="temperature"):
        prior.sample(1, temperature=0)


@pytest.mark.parametrize("groups", [1, 3])
def test_nll_is_the_summed_cross_entropy_computed_by_hand(groups):
    prior = tiny(groups, num_classes=2)
    codes = torch.randint(7, (3, *prior.config.latent_shape))
    labels = torch.tensor([0, 1, 0])
    logits = prior(codes, labels)
    logp = logits.log_softmax(1)  # over K
    by_hand = -logp.gather(1, codes[:, None]).flatten(1).sum(1)
    assert torch.allclose(prior.nll(codes, labels).double(), by_hand)
    per_latent = F.cross_entropy(logits, codes).item()
    assert math.isclose(by_hand.mean().item() / codes[0].numel(), per_latent, rel_tol=1e-9)


def test_save_and_load_round_trip(tmp_path):
    prior = tiny(3, num_classes=2).float()
    prior.metadata = {"vqvae_sha256": "abc"}
    prior.save_pretrained(tmp_path / "p")
    loaded = PixelCNNPrior.from_pretrained(tmp_path / "p")
    assert loaded.config == prior.config and loaded.metadata == {"vqvae_sha256": "abc"}
    codes = torch.randint(7, (2, 3, 4, 4))
    assert torch.equal(loaded(codes, 1), prior(codes, 1))
    # a run folder resolves to its best checkpoint
    prior.save_pretrained(tmp_path / "run" / "checkpoints" / "best")
    assert PixelCNNPrior.from_pretrained(tmp_path / "run").config == prior.config
    assert json.loads((tmp_path / "p" / "config.json").read_text())["model"] == "PixelCNNPrior"


def test_loading_errors_name_the_file(tmp_path):
    prior = tiny()
    prior.save_pretrained(tmp_path)
    config = tmp_path / "config.json"
    data = json.loads(config.read_text())
    data["config"]["channels"] = 16
    config.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="model.safetensors.*shape"):
        PixelCNNPrior.from_pretrained(tmp_path)
    config.write_text(json.dumps({**data, "model": "VQVAE"}))
    with pytest.raises(CheckpointError, match="config.json: not a PixelCNNPrior"):
        PixelCNNPrior.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        PixelCNNPrior.from_pretrained(tmp_path / "nowhere")


def test_config_round_trips_and_refuses_bad_values():
    c = PixelCNNConfig(num_codes=16, groups=2, height=3, width=5, channels=8, num_classes=4)
    assert PixelCNNConfig.from_dict(c.to_dict()) == c
    assert c.latent_shape == (2, 3, 5)
    with pytest.raises(ValueError, match="unknown PixelCNNConfig keys: 'colour'"):
        PixelCNNConfig.from_dict({"colour": 3})
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        PixelCNNConfig(kernel_size=4)
    with pytest.raises(ValueError, match="channels must be at least"):
        PixelCNNConfig(groups=10, channels=8)
    with pytest.raises(TypeError, match="layers must be int"):
        PixelCNNConfig(layers=2.0)


def test_training_on_structured_codes_lowers_the_nll():
    """Group 0 follows a diagonal pattern shifted by the class; group 1 copies group 0.

    Both are learnable only through the right dependencies: the pattern through earlier
    positions (and the class), the copy through the within-position group mask.
    """
    torch.manual_seed(0)
    k, n = 8, 64
    prior = PixelCNNPrior(PixelCNNConfig(num_codes=k, groups=2, height=4, width=4, channels=16,
                                         layers=3, kernel_size=3, num_classes=2))
    labels = torch.arange(n) % 2
    start = torch.randint(k, (n, 1, 1))
    grid = torch.arange(4)[:, None] + torch.arange(4)[None, :]
    first = (start + grid + 3 * labels[:, None, None]) % k
    codes = torch.stack([first, first], dim=1)  # (n, 2, 4, 4)
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = prior.nll(codes, labels).mean() / codes[0].numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.8 * math.log(k)
    # only the first latent (its start) is random: ln 8 / 32 latents ~ 0.07 nats per latent
    assert losses[-1] < 0.25 * losses[0]
