import dataclasses
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from vqvae.model import (
    PRESETS,
    VQVAE,
    CheckpointError,
    VQVAEConfig,
    VQVAEOutput,
)

TINY = {"hidden": 16, "residual_hidden": 8}


def _images(batch, size, channels=3, seed=0):
    """8-bit images scaled to [-0.5, 0.5]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, size, size), generator=g) / 255 - 0.5


def _tiny(**overrides):
    torch.manual_seed(0)
    settings_ = {"image_size": 16, "hidden": 16, "residual_hidden": 8, "embedding_dim": 8,
                 "num_codes": 32} | overrides
    return VQVAE(VQVAEConfig(**settings_))


# ---------------------------------------------------------------- presets and shapes
def test_presets_follow_their_sources():
    paper, sonnet, imagenet = (PRESETS[n] for n in ("paper-cifar10", "sonnet-cifar10",
                                                     "imagenet128"))
    assert paper.latent_shape == (10, 8, 8) and paper.num_codes == 512
    assert paper.hidden == 256 and paper.likelihood == "categorical"
    assert (sonnet.hidden, sonnet.residual_layers, sonnet.residual_hidden) == (128, 2, 32)
    assert (sonnet.embedding_dim, sonnet.num_codes, sonnet.update, sonnet.decay) == (
        64, 512, "ema", 0.99)
    assert imagenet.latent_shape == (32, 32) and imagenet.image_size == 128
    assert PRESETS["default"] == VQVAEConfig() and VQVAEConfig().latent_shape == (16, 16)
    assert all(c.beta == 0.25 for c in PRESETS.values())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_full_size_preset_maps_one_image_to_its_latent_grid_and_back(name):
    config = PRESETS[name]
    model = VQVAE(config)
    images = _images(1, config.image_size)
    with torch.no_grad():
        out = model(images)
    size = config.image_size
    assert out.indices.shape == (1, *config.latent_shape)
    assert out.reconstruction.shape == (1, 3, size, size)
    assert out.decoder_output.shape == (1, model.likelihood.output_channels(3), size, size)
    assert out.reconstruction.abs().max() <= 0.5
    assert torch.isfinite(out.loss) and out.loss.shape == ()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_trains_one_step_at_reduced_width(name):
    model = VQVAE.from_preset(name, **TINY)
    out = model(_images(2, model.config.image_size))
    out.loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------- forward, encode, decode
@pytest.mark.parametrize("overrides", [
    {}, {"groups": 2, "likelihood": "categorical"}, {"likelihood": "logistic_mixture",
                                                     "logistic_mixtures": 3},
])
def test_encode_then_decode_reproduces_forward(overrides):
    model = _tiny(init="random", **overrides).eval()
    images = _images(2, 16)
    with torch.no_grad():
        out = model(images)
        indices = model.encode(images)
        assert torch.equal(indices, out.indices)
        torch.testing.assert_close(model.decode(indices), out.reconstruction)


def test_loss_is_reconstruction_plus_codebook_plus_beta_commitment():
    model = _tiny(update="loss", init="random", beta=0.5)
    out = model(_images(2, 16))
    assert out.codebook_loss > 0
    torch.testing.assert_close(out.loss, out.recon_loss + out.codebook_loss
                               + 0.5 * out.commitment_loss)
    torch.testing.assert_close(out.recon_loss, torch.mean(
        (out.decoder_output - _images(2, 16)) ** 2))


def test_encode_and_nll_change_no_state_even_in_training_mode():
    model = _tiny(gaussian_std=0.1)  # kmeans init, EMA, restarts
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model.encode(_images(2, 16))
    model.nll(_images(2, 16))
    assert model.quantizer.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model(_images(2, 16))  # forward in training mode does initialise the codebook
    assert not torch.equal(before["quantizer.codebook"], model.quantizer.codebook)


def test_straight_through_passes_decoder_gradient_to_encoder():
    model = _tiny(update="loss", init="random")
    out = model(_images(2, 16))
    out.recon_loss.backward()  # no commitment term: only the straight-through path
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.quantizer.codebook.grad is None or not model.quantizer.codebook.grad.any()


def test_nll_is_the_likelihood_of_the_eval_forward():
    model = _tiny(likelihood="categorical", init="random").eval()
    images = _images(3, 16)
    with torch.no_grad():
        out = model(images)
        nll = model.nll(images)
    assert nll.shape == (3,)
    torch.testing.assert_close(nll, model.likelihood.nll(out.decoder_output, images))
    torch.testing.assert_close(nll.mean() / (3 * 16 * 16), out.recon_loss)
    bits_per_dim = nll / (3 * 16 * 16 * math.log(2))
    assert (bits_per_dim > 0).all() and (bits_per_dim < 9).all()  # untrained: about 8


def test_gaussian_model_has_nll_only_with_a_fixed_std():
    images = _images(1, 16)
    with pytest.raises(NotImplementedError):
        _tiny().nll(images)
    assert _tiny(gaussian_std=0.1).nll(images).shape == (1,)


def test_images_that_do_not_fit_the_model_are_rejected():
    model = _tiny()
    with pytest.raises(ValueError, match="divisible"):
        model(_images(1, 18))
    with pytest.raises(ValueError, match="expects"):
        model(_images(1, 16, channels=1))


def test_channels_last_model_matches_the_contiguous_one():
    model = _tiny(init="random").eval()
    images = _images(2, 16)
    with torch.no_grad():
        expected = model(images)
        model = model.to(memory_format=torch.channels_last)
        got = model(images.contiguous(memory_format=torch.channels_last))
    assert torch.equal(got.indices, expected.indices)
    torch.testing.assert_close(got.reconstruction, expected.reconstruction, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("likelihood", ["gaussian", "categorical", "logistic_mixture"])
def test_bf16_autocast_trains_with_fp32_losses(likelihood):
    model = _tiny(likelihood=likelihood, logistic_mixtures=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(_images(2, 16))
    out.loss.backward()
    assert out.decoder_output.dtype == torch.bfloat16
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.encoder.parameters())


def test_short_training_on_structured_images_reduces_the_loss():
    torch.manual_seed(0)
    # 16 x 16 images made of 4 x 4 blocks of 4 colours: structure that 4x4 latents can hold
    blocks = torch.randint(0, 4, (64, 1, 4, 4))
    palette = torch.tensor([[30, 30, 30], [220, 40, 40], [40, 200, 60], [240, 240, 240]])
    images = palette[blocks.squeeze(1)].permute(0, 3, 1, 2).float()
    images = images.repeat_interleave(4, 2).repeat_interleave(4, 3) / 255 - 0.5
    model = _tiny(num_codes=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(150):
        batch = images[(step * 16) % 64:][:16]
        out = model(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.recon_loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)  # about 0.3 * first; predicting the mean: 1.0


# ---------------------------------------------------------------- config
def test_config_round_trips_through_json():
    config = PRESETS["paper-cifar10"]
    again = VQVAEConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@settings(max_examples=25, deadline=None)
@given(
    exponent=st.integers(0, 4),
    groups=st.sampled_from([1, 2, 4]),
    beta=st.floats(0, 2),
    restart_after=st.one_of(st.none(), st.integers(1, 10_000)),
    likelihood=st.sampled_from(["gaussian", "categorical", "logistic_mixture"]),
)
def test_any_valid_config_round_trips(exponent, groups, beta, restart_after, likelihood):
    config = VQVAEConfig(downsample=2**exponent, image_size=16 * 2**exponent, groups=groups,
                         beta=beta, restart_after=restart_after, likelihood=likelihood)
    assert VQVAEConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_config_keys_are_rejected_by_name():
    with pytest.raises(ValueError, match="'hiden'"):
        VQVAEConfig.from_dict({"hiden": 64, "beta": 0.25})


@pytest.mark.parametrize("field, value", [
    ("hidden", "64"), ("hidden", True), ("beta", "0.25"), ("restart_after", 1.5),
    ("likelihood", None),
])
def test_config_values_of_the_wrong_type_are_rejected(field, value):
    with pytest.raises(TypeError, match=field):
        VQVAEConfig(**{field: value})


@pytest.mark.parametrize("overrides, message", [
    ({"downsample": 3}, "power of two"),
    ({"likelihood": "poisson"}, "likelihood"),
    ({"groups": 10}, "divisible by groups"),
    ({"image_size": 60, "downsample": 8}, "image_size"),
    ({"decay": 1.0}, "decay"),
    ({"hidden": 0}, "hidden"),
    ({"stage_residual_layers": -1}, "stage_residual_layers"),
    ({"stage_residual_hidden": 0}, "stage_residual_hidden"),
])
def test_invalid_config_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        VQVAEConfig(**overrides)


def test_presets_cannot_be_changed_in_place():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["default"].hidden = 1
    assert VQVAEConfig.from_preset("default", hidden=32).hidden == 32
    assert PRESETS["default"].hidden == 64


# ---------------------------------------------------------------- checkpoints
def _saved(tmp_path, **overrides):
    model = _tiny(**overrides)
    model(_images(4, 16))  # initialises the codebook and moves the EMA statistics
    model.save_pretrained(tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def test_save_and_load_give_identical_outputs(tmp_path):
    model, path = _saved(tmp_path, likelihood="categorical")
    loaded = VQVAE.from_pretrained(path)
    assert not loaded.training and loaded.config == model.config
    assert bool(loaded.quantizer.initialized)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    model.eval()
    images = _images(2, 16, seed=1)
    with torch.no_grad():
        a, b = model(images), loaded(images)
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.decoder_output, b.decoder_output)
    assert torch.equal(model.nll(images), loaded.nll(images))


def test_checkpoint_is_json_and_safetensors_only(tmp_path):
    model, path = _saved(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((path / "config.json").read_text())
    assert saved["format_version"] == 1 and saved["config"] == model.config.to_dict()
    assert set(load_file(path / "model.safetensors")) == set(model.state_dict())


def test_channels_last_model_saves_and_loads(tmp_path):
    model = _tiny().to(memory_format=torch.channels_last)
    model.save_pretrained(tmp_path)
    loaded = VQVAE.from_pretrained(tmp_path)
    assert torch.equal(loaded.encoder.net[0].weight, model.encoder.net[0].weight)


def test_missing_checkpoint_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint or run directory"):
        VQVAE.from_pretrained(tmp_path / "nowhere")
    _, path = _saved(tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        VQVAE.from_pretrained(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="neither a checkpoint.*nor a run folder"):
        VQVAE.from_pretrained(path)


def test_a_run_folder_loads_its_best_checkpoint(tmp_path):
    model = _tiny()
    model(_images(4, 16))
    model.save_pretrained(tmp_path / "run" / "checkpoints" / "best")
    loaded = VQVAE.from_pretrained(tmp_path / "run")
    for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_weights_are_named(tmp_path, damage):
    _, path = _saved(tmp_path)
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    damaged = {"garbage": b"\x00\xffnot safetensors" * 10, "truncated": data[: len(data) - 100],
               "empty": b""}[damage]
    weights.write_bytes(damaged)
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        VQVAE.from_pretrained(path)


@pytest.mark.parametrize("text, message", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "not a VQVAE config"),
    ('{"format_version": 2, "config": {}}', "newer"),
    ('{"format_version": 1, "config": {"hiden": 3}}', "'hiden'"),
    ('{"format_version": 1, "config": {"hidden": "wide"}}', "hidden"),
])
def test_bad_config_json_is_named(tmp_path, text, message):
    _, path = _saved(tmp_path)
    (path / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=f"config.json: .*{message}"):
        VQVAE.from_pretrained(path)


def _rewrite_config(path, **changes):
    saved = json.loads((path / "config.json").read_text())
    saved["config"].update(changes)
    (path / "config.json").write_text(json.dumps(saved))


def test_weights_from_another_config_name_the_tensor_and_both_shapes(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite_config(path, hidden=32)
    with pytest.raises(CheckpointError) as error:
        VQVAE.from_pretrained(path)
    message = str(error.value)
    assert "model.safetensors" in message and "config.json" in message
    assert "'encoder.net.0.weight'" in message
    assert "(16, 3, 4, 4)" in message and "(32, 3, 4, 4)" in message


def test_weights_missing_tensors_for_the_config_are_named(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite_config(path, residual_layers=3)
    with pytest.raises(CheckpointError, match="missing tensors .*layers.2"):
        VQVAE.from_pretrained(path)
    _rewrite_config(path, residual_layers=1, update="loss")
    with pytest.raises(CheckpointError, match="unexpected tensors"):
        VQVAE.from_pretrained(path)


@pytest.mark.parametrize("metadata, message", [
    ({"format_version": "2"}, "format_version 2 is newer"),
    ({"module_versions": '{"quantizer": 2}'}, "newer than this VectorQuantizer"),
])
def test_weights_from_a_newer_vqvae_are_refused(tmp_path, metadata, message):
    _, path = _saved(tmp_path)
    weights = path / "model.safetensors"
    save_file(load_file(weights), weights, metadata={"format": "pt"} | metadata)
    with pytest.raises(CheckpointError, match=f"(?s)model.safetensors: .*{message}"):
        VQVAE.from_pretrained(path)


def test_outputs_dataclass_has_fixed_fields():
    names = [f.name for f in dataclasses.fields(VQVAEOutput)]
    assert names == ["reconstruction", "decoder_output", "indices", "loss", "recon_loss",
                     "quantizer_loss", "commitment_loss", "codebook_loss", "perplexity", "usage"]
