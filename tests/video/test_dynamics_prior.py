"""The dynamics prior: causality within the target frame, conditioning, rollouts, files."""

import json

import pytest
import torch

from vqvae.priors import DynamicsConfig, DynamicsPrior, PixelCNNConfig, PixelCNNPrior
from vqvae.priors.gated import GatedLayer


def tiny(**overrides) -> DynamicsPrior:
    torch.manual_seed(0)
    fields = dict(num_codes=7, height=4, width=4, context_frames=3, num_actions=4,
                  code_embedding=3, context_hidden=8, context_layers=1, cond_channels=4,
                  channels=8, layers=5, kernel_size=3)
    return DynamicsPrior(DynamicsConfig(**{**fields, **overrides})).double()


def test_each_target_latent_depends_on_earlier_target_latents_only_and_on_all_context():
    model = tiny()
    c = model.config
    context = torch.randint(7, (5, 3, 4, 4))
    target = torch.randint(7, (5, 4, 4))
    actions = torch.tensor([0, 1, 2, 3, 4])
    x = model.pixelcnn.embed(target).detach().requires_grad_()  # (5, E, h, w)
    cond = model.condition(context, actions)
    logits = model.pixelcnn.logits_from_embedding(x, cond=cond)
    weights = torch.randn(c.num_codes, dtype=torch.float64)
    for i in range(c.height):
        for j in range(c.width):
            (grad,) = torch.autograd.grad((logits[:4, :, i, j] @ weights).sum(), x,
                                          retain_graph=True)
            assert grad[4].abs().max() == 0, "samples of a batch must not mix"
            seen = grad[:4].abs().sum((0, 1))  # (h, w)
            for i2 in range(c.height):
                for j2 in range(c.width):
                    earlier = (i2, j2) < (i, j)
                    assert (seen[i2, j2] != 0) == earlier, (i, j, i2, j2)


def test_the_prediction_depends_on_every_context_frame_and_on_the_action():
    model = tiny()
    context = torch.randint(7, (2, 3, 4, 4))
    target = torch.randint(7, (2, 4, 4))
    emb = model.code_embedding(context).detach().requires_grad_()

    cond = model.condition_from_embedding(emb, torch.tensor([1, 2]))
    (grad,) = torch.autograd.grad(model.pixelcnn(target, cond=cond).sum(), emb)
    assert (grad.abs().sum((0, 2, 3, 4)) > 0).all()  # each of the 3 context frames
    a = model(context, torch.tensor([2, 2]), target)
    b = model(context, torch.tensor([3, 3]), target)
    assert not torch.allclose(a, b)
    # the action also scales the encoder's features (no effect at initialisation)
    assert model.action_scales.weight.abs().max() == 0
    with torch.no_grad():
        model.action_scales.weight[3].fill_(0.5)
    assert not torch.allclose(model(context, 3, target), b)
    with torch.no_grad():
        model.action_scales.weight.zero_()
    assert torch.equal(model(context, 3, target), b)
    # only the last C frames are read
    longer = torch.cat([torch.randint(7, (2, 2, 4, 4)), context], dim=1)
    assert torch.equal(model(longer, 3, target), b)


def test_a_context_shorter_than_the_model_needs_is_refused_with_its_length():
    model = tiny()
    with pytest.raises(ValueError, match=r"at least 3 context frames, \(B, 3, 4, 4\); got "
                                         r"\(2, 2, 4, 4\)"):
        model(torch.zeros(2, 2, 4, 4, dtype=torch.long), 0, torch.zeros(2, 4, 4).long())


def test_an_action_outside_the_action_set_is_refused_naming_the_allowed_ones():
    model = tiny()
    model.metadata = {"action_names": ["noop", "forward", "turn_left", "turn_right"]}
    context = torch.zeros(1, 3, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"in \[0, 4\) \(0 = noop, 1 = forward.*4 \(unknown\)"):
        model.sample_next(context, 5)
    with pytest.raises(ValueError, match="actions must be"):
        model.rollout(context, torch.tensor([[0, -1]]))


def test_rollout_shapes_and_each_predicted_frame_feeds_the_next():
    model = tiny()
    context = torch.randint(7, (3, 5, 4, 4))
    actions = torch.randint(5, (3, 4))
    g = torch.Generator().manual_seed(0)
    out = model.rollout(context, actions, generator=g)
    assert out.shape == (3, 4, 4, 4) and out.dtype == torch.long
    assert out.min() >= 0 and out.max() < 7
    again = model.rollout(context, actions, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    # greedy: frame n + 1 is the greedy prediction from the context that ends with frame n
    greedy = model.rollout(context, actions, argmax=True)
    second = model.sample_next(torch.cat([context[:, -2:], greedy[:, :1]], 1), actions[:, 1],
                               argmax=True)
    assert torch.equal(greedy[:, 1], second)
    logits = model(context, actions[:, 0], greedy[:, 0])
    assert torch.equal(logits.argmax(1), greedy[:, 0])  # argmax at every position
    assert model.rollout(context, actions[:, :0]).shape == (3, 0, 4, 4)


def test_cached_sampling_with_a_conditioning_map_draws_what_recomputing_draws():
    torch.manual_seed(0)
    prior = PixelCNNPrior(PixelCNNConfig(num_codes=7, height=4, width=4, channels=8, layers=3,
                                         kernel_size=3, num_classes=2, cond_channels=3))
    cond = torch.randn(4, 3, 4, 4)
    labels = torch.tensor([0, 1, 1, 0])
    fast = prior.sample(4, labels, generator=torch.Generator().manual_seed(5), cond=cond)
    slow = prior.sample(4, labels, generator=torch.Generator().manual_seed(5), cond=cond,
                        cache=False)
    assert torch.equal(fast, slow)
    with pytest.raises(ValueError, match=r"conditioned on a map \(4, 3, 4, 4\), got none"):
        prior.sample(4, labels)


def test_priors_without_a_map_keep_their_weights_and_config_files():
    """Old checkpoints: no cond_channels in config.json, no cond_map tensors."""
    config = PixelCNNConfig(num_codes=7, height=4, width=4, channels=8, layers=2, kernel_size=3)
    prior = PixelCNNPrior(config)
    assert not any("cond_map" in k for k in prior.state_dict())
    data = config.to_dict()
    del data["cond_channels"]
    assert PixelCNNConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="takes no conditioning map"):
        prior(torch.zeros(1, 4, 4).long(), cond=torch.zeros(1, 1, 4, 4))
    layer = GatedLayer(torch.zeros(4).long(), torch.zeros(4).long(), 3, 0, first=True)
    assert layer.cond_map is None and layer.map_bias(None) == (0, 0)


def test_save_and_load_round_trip(tmp_path):
    model = tiny().float()
    model.metadata = {"action_names": ["a", "b", "c", "d"]}
    model.save_pretrained(tmp_path / "d")
    loaded = DynamicsPrior.from_pretrained(tmp_path / "d")
    assert loaded.config == model.config and loaded.metadata == model.metadata
    context, target = torch.randint(7, (2, 3, 4, 4)), torch.randint(7, (2, 4, 4))
    assert torch.equal(loaded(context, 1, target), model.eval()(context, 1, target))
    saved = json.loads((tmp_path / "d" / "config.json").read_text())
    assert saved["model"] == "DynamicsPrior" and saved["config"]["context_frames"] == 3


def test_config_checks_its_fields_and_the_tokenizer_grid():
    from vqvae.model import PRESETS

    config = DynamicsConfig.for_vqvae(PRESETS["vizdoom84"])
    assert (config.num_codes, config.height, config.width) == (512, 21, 21)
    assert config.context_frames == 6 and config.unknown_action == 4
    assert config.grid_mismatch(PRESETS["vizdoom84"]) is None
    assert "21 x 21" in config.grid_mismatch(PRESETS["default"])
    with pytest.raises(ValueError, match="groups=10"):
        DynamicsConfig.for_vqvae(PRESETS["paper-cifar10"])
    with pytest.raises(ValueError, match="action_dropout"):
        DynamicsConfig(action_dropout=1.0)
    with pytest.raises(ValueError, match="kernel_size"):
        DynamicsConfig(kernel_size=4)
