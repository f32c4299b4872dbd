import dataclasses
import json

import pytest
import torch
from audio_fakes import TINY
from hypothesis import given, settings
from hypothesis import strategies as st

from vqvae.audio import mu_law_encode
from vqvae.errors import CheckpointError, UsageError
from vqvae.nets.audio import reverse_gradient
from vqvae.speech_model import (
    PRESETS,
    SpeechVQVAE,
    SpeechVQVAEConfig,
    SpeechVQVAEOutput,
    noisy_samples,
    time_jitter,
)

SPEAKERS = ("ann", "bob", "cat")


def _tiny(**overrides):
    torch.manual_seed(0)
    settings = TINY | {"num_speakers": 3, "speaker_names": SPEAKERS} | overrides
    return SpeechVQVAE(SpeechVQVAEConfig(**settings))


def _waves(batch, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, length, generator=g) - 0.5) * 0.4


# ---------------------------------------------------------------- config
def test_presets_follow_the_paper_where_it_says_something():
    for c in PRESETS.values():
        assert c.hop == 64 and c.num_codes == 512 and c.beta == 0.25
    assert PRESETS["default"] == SpeechVQVAEConfig() and SpeechVQVAEConfig().sample_rate == 8000
    assert PRESETS["paper-vctk"].sample_rate == 16000
    assert SpeechVQVAEConfig().receptive_field == 511
    assert SpeechVQVAE(PRESETS["default"]).receptive_field == 511


def test_config_survives_json_and_refuses_unknown_or_inconsistent_values():
    c = SpeechVQVAEConfig(num_speakers=2, speaker_names=("x", "y"), beta=1)
    back = SpeechVQVAEConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c and back.speaker_names == ("x", "y") and isinstance(back.beta, float)
    with pytest.raises(ValueError, match="unknown SpeechVQVAEConfig keys: 'hidden'"):
        SpeechVQVAEConfig.from_dict({"hidden": 3})
    with pytest.raises(ValueError, match="2 names for num_speakers=3"):
        SpeechVQVAEConfig(num_speakers=3, speaker_names=("x", "y"))
    with pytest.raises(TypeError, match="layers must be int"):
        SpeechVQVAEConfig(layers=2.5)
    with pytest.raises(ValueError, match="upsample"):
        SpeechVQVAEConfig(upsample="cubic")
    with pytest.raises(ValueError, match="encoder_residual_layers"):
        SpeechVQVAEConfig(encoder_residual_layers=-1)
    with pytest.raises(ValueError, match="jitter"):
        SpeechVQVAEConfig(jitter=1.0)
    with pytest.raises(ValueError, match="input_noise must be >= 0"):
        SpeechVQVAEConfig(input_noise=-0.5)
    with pytest.raises(ValueError, match="frame_norm='mean' needs frontend='log-mel'"):
        SpeechVQVAEConfig(frame_norm="mean")
    with pytest.raises(ValueError, match="frame_norm must be one of none, mean, mean-std"):
        SpeechVQVAEConfig(frontend="log-mel", frame_norm="cmvn")


# ---------------------------------------------------------------- forward, codes, decoding
def test_forward_returns_the_losses_and_a_code_per_hop():
    model = _tiny()
    x = _waves(2, 64)
    out = model(x, speaker=torch.tensor([0, 2]))
    assert isinstance(out, SpeechVQVAEOutput)
    assert out.outputs.shape == (2, 256, 64) and out.indices.shape == (2, 16)
    assert torch.allclose(out.loss, out.recon_loss + out.quantizer_loss)
    targets = mu_law_encode(x)  # the default targets
    assert torch.allclose(out.recon_loss, torch.nn.functional.cross_entropy(out.outputs, targets))
    assert 1 <= out.perplexity.item() <= 16 and 0 < out.usage.item() <= 1


def test_encode_pads_to_whole_codes_and_changes_nothing():
    model = _tiny().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    codes = model.encode(_waves(2, 10))
    assert codes.shape == (2, 3) and codes.dtype == torch.long
    model.train()
    model.encode(_waves(2, 10))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_decode_draws_a_waveform_of_the_asked_length_with_the_named_voice():
    model = _tiny().eval()
    codes = model.encode(_waves(2, 16))
    g = torch.Generator().manual_seed(0)
    y = model.decode(codes, "bob", 13, generator=g)
    assert y.shape == (2, 13) and y.abs().max() <= 1
    y2 = model.decode(codes, ["bob", 1], 13, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)  # a name and its index are the same speaker
    assert model.convert(_waves(1, 20)[0], "cat").shape == (1, 20)


def test_unknown_speakers_are_refused_with_the_known_ones():
    model = _tiny()
    with pytest.raises(UsageError, match="unknown speaker 'dan'; this model knows ann, bob, cat"):
        model.convert(_waves(1, 8), "dan")
    with pytest.raises(UsageError, match=r"in \[0, 3\)"):
        model(_waves(1, 8), speaker=torch.tensor([3]))
    with pytest.raises(UsageError, match="pass one of: ann, bob, cat"):
        model(_waves(1, 8))


def test_nll_is_per_utterance_and_in_nats_per_sample():
    model = _tiny().eval()
    x = _waves(2, 16)
    nll = model.nll(x, [0, 1])
    out = model(x, speaker=torch.tensor([0, 1]))
    assert nll.shape == (2,) and torch.allclose(nll.mean(), out.recon_loss, atol=1e-5)


# ---------------------------------------------------------------- checkpoints
def test_save_and_load_give_the_same_model(tmp_path):
    model = _tiny(update="ema", init="kmeans", restart_after=5)
    model(_waves(4, 32), speaker=torch.tensor([0, 1, 2, 0]))  # k-means init, EMA update
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config and not loaded.training
    x, spk = _waves(2, 32, seed=1), torch.tensor([1, 2])
    assert torch.equal(loaded(x, speaker=spk).outputs, model(x, speaker=spk).outputs)
    assert torch.equal(loaded.encode(x), model.encode(x))
    data = json.loads((tmp_path / "m" / "config.json").read_text())
    assert data["model"] == "SpeechVQVAE" and data["format_version"] == 1
    assert data["config"]["speaker_names"] == list(SPEAKERS)


def test_loading_something_else_names_the_file(tmp_path):
    _tiny().save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    data["model"] = "VQVAE"
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"config\.json: not a SpeechVQVAE config"):
        SpeechVQVAE.from_pretrained(tmp_path / "m")
    data["model"], data["config"]["layers"] = "SpeechVQVAE", 4
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="missing tensors"):
        SpeechVQVAE.from_pretrained(tmp_path / "m")


# ---------------------------------------------------------------- learning
def test_a_few_dozen_steps_on_a_synthetic_signal_lower_the_loss():
    torch.manual_seed(0)
    config = SpeechVQVAEConfig(**(TINY | {"num_speakers": 2, "layers": 4, "residual_channels": 16,
                                          "skip_channels": 16}))
    model = SpeechVQVAE(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    t = torch.arange(256)
    # speaker 0: a 500 Hz tone, speaker 1: a 1 kHz tone (at 8 kHz), random phases
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        phase = torch.rand(8, 1, generator=g) * 6.28
        speaker = torch.arange(8) % 2
        freq = torch.where(speaker == 0, 500.0, 1000.0)[:, None]
        x = 0.8 * torch.sin(2 * torch.pi * freq * t / 8000 + phase)
        out = model(x, speaker=speaker)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.recon_loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.85 * first, losses  # about 0.78 measured


def test_a_model_saved_before_the_likelihood_option_loads_as_a_softmax(tmp_path):
    model = _tiny()
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    for key in ("likelihood", "logistic_mixtures"):
        del data["config"][key]
    path.write_text(json.dumps(data))
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m")
    assert loaded.config.likelihood == "categorical" and loaded.decoder.mixtures == 0
    x, spk = _waves(2, 32), torch.tensor([0, 1])
    assert torch.equal(loaded(x, speaker=spk).outputs, model(x, speaker=spk).outputs)


def test_a_logistic_mixture_decoder_learns_survives_saving_and_generates(tmp_path):
    torch.manual_seed(0)
    model = _tiny(likelihood="logistic_mixture", logistic_mixtures=4)
    assert model.decoder.head[-1].out_channels == 12
    x = torch.sin(torch.arange(4 * 128) * 0.3).reshape(4, 128) * 0.5
    spk = torch.tensor([0, 1, 2, 0])
    out = model(x, speaker=spk)
    assert out.outputs.shape == (4, 12, 128)
    torch.testing.assert_close(out.recon_loss,
                               model.decoder.nll(out.outputs, mu_law_encode(x)).mean())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        out = model(x, speaker=spk)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.recon_loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # 0.80 measured
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m")
    assert loaded.config.likelihood == "logistic_mixture" and loaded.config.logistic_mixtures == 4
    assert torch.equal(loaded(x, speaker=spk).outputs, model(x, speaker=spk).outputs)
    wave = loaded.convert(x[:2], "bob", generator=torch.Generator().manual_seed(0))
    assert wave.shape == (2, 128) and wave.abs().max() <= 1
    with pytest.raises(ValueError, match="likelihood must be one of categorical"):
        SpeechVQVAEConfig(likelihood="gaussian")


@pytest.mark.parametrize("frame_norm", ["none", "mean-std", "smooth-mean", "speaker-mean"])
def test_the_log_mel_front_end_learns_and_survives_saving(tmp_path, frame_norm):
    model = _tiny(frontend="log-mel", n_mels=16, frame_norm=frame_norm)
    assert type(model.encoder).__name__ == "LogMelEncoder"
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    spk = torch.tensor([0, 1, 2, 0])
    x = _waves(4, 64)
    if frame_norm == "speaker-mean":
        model.encoder.fit_speaker_means([w * (1 + s) for w, s in zip(x, spk, strict=True)], spk)
    first = model(x, speaker=spk)
    first.loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    for _ in range(10):
        opt.zero_grad()
        out = model(x, speaker=spk)
        out.loss.backward()
        opt.step()
    assert out.recon_loss < first.recon_loss
    model.eval()
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m")
    assert loaded.config.frontend == "log-mel" and loaded.config.frame_norm == frame_norm
    assert torch.equal(loaded.encode(x, spk), model.encode(x, spk))
    if frame_norm == "speaker-mean":  # the voices' means are saved, and encoding needs one
        assert torch.equal(loaded.encoder.speaker_means, model.encoder.speaker_means)
        with pytest.raises(UsageError, match="pass the input's speaker, one of: ann, bob, cat"):
            model.encode(x)
        ann, cat = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
        assert not torch.allclose(model.encoder(x, ann), model.encoder(x, cat))
    with pytest.raises(ValueError, match="frontend must be one of waveform, log-mel"):
        SpeechVQVAEConfig(frontend="mfcc")


def test_the_spectral_head_adds_its_weighted_error_and_trains_the_encoder(tmp_path):
    model = _tiny(spectral_weight=2.0, n_mels=8).eval()  # eval: no jitter, no EMA update
    x, spk = _waves(2, 64), torch.tensor([0, 2])
    out = model(x, speaker=spk)
    assert torch.allclose(out.loss, out.recon_loss + out.quantizer_loss + 2.0 * out.spectral_loss)
    z_q = model.quantizer.frozen(model.encoder(x)).quantized
    frames = model.spectral_frames(x)  # (B, M, N): one log-mel frame per code
    assert frames.shape == (2, 8, 16)
    expected = torch.nn.functional.mse_loss(model.spectral_head(z_q, spk), frames)
    assert torch.allclose(out.spectral_loss, expected)
    # the head's error alone reaches the encoder through the straight-through codes
    out.spectral_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    # and it knows the speaker
    other = model.spectral_head(z_q.detach(), torch.tensor([1, 1]))
    assert not torch.allclose(other, model.spectral_head(z_q.detach(), spk))
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(loaded(x, speaker=spk).spectral_loss, out.spectral_loss)


def test_conditioning_on_the_heads_frames_feeds_the_wavenet_what_the_head_predicts(tmp_path):
    model = _tiny(spectral_weight=1.0, n_mels=8, condition="codes+frames").eval()
    assert model.decoder.cond_dim == 4 + 8  # D codes + M frames
    x, spk = _waves(2, 64), torch.tensor([0, 2])
    out = model(x, speaker=spk)
    z_q = model.quantizer.frozen(model.encoder(x)).quantized  # (B, D, N)
    predicted = model.spectral_head(z_q, spk)  # (B, M, N), never the input's own frames
    expected = model.decoder(mu_law_encode(x), torch.cat([z_q, predicted], 1), spk)
    assert torch.allclose(out.outputs, expected, atol=1e-6)
    # the WaveNet's loss reaches the head through the frames it reads
    out.recon_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.spectral_head.parameters())
    # another speaker changes the frames, so the voice reaches the WaveNet through them too
    other = model.conditioning(z_q, torch.tensor([1, 1]))
    assert torch.equal(other[:, :4], z_q) and not torch.allclose(other[:, 4:], predicted)
    # generation conditions as training did: cached samples are those the net scores best
    codes = model.encode(x)
    g = torch.Generator().manual_seed(3)
    y = model.decode(codes, spk, 64, generator=g, backend="torch")
    y2 = model.decode(codes, spk, 64, generator=torch.Generator().manual_seed(3), cache=False)
    assert torch.equal(y, y2)
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.condition == "codes+frames"
    assert torch.equal(loaded(x, speaker=spk).outputs, out.outputs)
    with pytest.raises(ValueError, match="condition='codes\\+frames' needs spectral_weight > 0"):
        SpeechVQVAEConfig(condition="codes+frames")
    with pytest.raises(ValueError, match="condition must be one of codes, codes\\+frames"):
        SpeechVQVAEConfig(condition="frames")


def test_a_residual_head_moves_converted_frames_by_exactly_the_speakers_means(tmp_path):
    model = _tiny(frontend="log-mel", n_mels=8, frame_norm="speaker-mean", spectral_weight=1.0,
                  condition="codes+frames", head_residual=True).eval()
    torch.manual_seed(1)
    model.encoder.speaker_means.copy_(torch.randn(3, 8))
    x, ann, cat = _waves(2, 64), torch.tensor([0, 0]), torch.tensor([2, 2])
    z_q = model.quantizer.frozen(model.encoder(x, ann)).quantized  # (B, D, N)
    means = model.encoder.speaker_means
    # the head's net sees the codes; the speaker's mean is added after it
    expected = model.spectral_head(z_q, cat) + means[2][None, :, None]
    assert torch.allclose(model.predict_frames(z_q, cat), expected)
    # training's loss and the WaveNet's conditioning use the shifted frames
    out = model(x, speaker=ann)
    frames = model.predict_frames(z_q, ann)
    assert torch.allclose(out.spectral_loss,
                          torch.nn.functional.mse_loss(frames, model.spectral_frames(x)))
    assert torch.allclose(model.conditioning(z_q, ann)[:, 4:], frames)
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.head_residual
    assert torch.equal(loaded(x, speaker=ann).outputs, out.outputs)
    with pytest.raises(ValueError, match="head_residual needs frame_norm='speaker-mean'"):
        SpeechVQVAEConfig(frontend="log-mel", spectral_weight=1.0, head_residual=True)
    with pytest.raises(ValueError, match="head_residual needs"):
        SpeechVQVAEConfig(frontend="log-mel", frame_norm="speaker-mean", num_speakers=2,
                          head_residual=True)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.0, 10.0), seed=st.integers(0, 1000))
def test_reverse_gradient_keeps_the_value_and_flips_the_gradient(scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    w = torch.randn(2, 3, 4, generator=g)
    y = reverse_gradient(x, scale)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -scale * w, atol=1e-6)


def test_the_speaker_adversary_learns_the_speaker_and_pushes_the_encoder_away(tmp_path):
    model = _tiny(adversary_weight=0.5).eval()  # eval: no EMA update
    x, spk = _waves(2, 64), torch.tensor([0, 2])
    out = model(x, speaker=spk)
    assert torch.allclose(out.loss, out.recon_loss + out.quantizer_loss + out.adversary_loss)
    z_q = model.quantizer.frozen(model.encoder(x)).quantized  # straight-through codes
    guess = model.adversary(z_q)  # (B, S, N): one guess per code
    assert guess.shape == (2, 3, 16)
    truth = spk[:, None].expand(2, 16)
    assert torch.allclose(out.adversary_loss, torch.nn.functional.cross_entropy(guess, truth))
    assert out.adversary_accuracy == (guess.argmax(1) == truth).float().mean()
    # the classifier descends its cross-entropy; the encoder gets -0.5 times that gradient
    torch.nn.functional.cross_entropy(guess, truth).backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    out.adversary_loss.backward()
    for name, p in model.adversary.named_parameters():
        assert torch.allclose(p.grad, plain[f"adversary.{name}"], atol=1e-6)
    for name, p in model.encoder.named_parameters():
        assert p.grad.abs().sum() > 0
        assert torch.allclose(p.grad, -0.5 * plain[f"encoder.{name}"], atol=1e-6)
    assert all(p.grad is None for p in model.decoder.parameters())
    model.save_pretrained(tmp_path / "m")
    loaded = SpeechVQVAE.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(loaded(x, speaker=spk).adversary_loss, out.adversary_loss)


def test_the_spectral_head_and_the_adversary_are_off_by_default_and_refuse_negative_weights():
    model = _tiny()
    out = model(_waves(1, 64), speaker=0)
    for part, prefix in (("spectral_head", "spectral"), ("adversary", "adversary")):
        assert not hasattr(model, part)
        assert not any(k.startswith(prefix) for k in model.state_dict())
        with pytest.raises(ValueError, match=f"{prefix}_weight must be >= 0"):
            SpeechVQVAEConfig(**{f"{prefix}_weight": -1.0})
    assert out.spectral_loss.item() == 0.0 and out.adversary_loss.item() == 0.0
    assert out.adversary_accuracy.item() == 0.0
    with pytest.raises(ValueError, match="2 or more speakers, this one has 1"):
        _tiny(adversary_weight=1.0, num_speakers=1, speaker_names=("ann",))


def test_replacing_fields_keeps_the_config_checked():
    with pytest.raises(ValueError, match="num_speakers"):
        dataclasses.replace(SpeechVQVAEConfig(), num_speakers=-1)


# ---------------------------------------------------------------- time jitter
@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 3), dim=st.integers(1, 4), n=st.integers(1, 40),
       p=st.floats(0, 0.99), seed=st.integers(0, 2**16))
def test_time_jitter_hands_each_position_itself_or_a_neighbour(batch, dim, n, p, seed):
    torch.manual_seed(seed)
    latents = torch.randn(batch, dim, n)
    out = time_jitter(latents, p)
    assert out.shape == latents.shape
    for b in range(batch):
        for j in range(n):
            sources = [k for k in (j - 1, j, j + 1) if 0 <= k < n]
            assert any(torch.equal(out[b, :, j], latents[b, :, k]) for k in sources)


def test_time_jitter_moves_about_the_given_fraction_and_none_at_zero():
    latents = torch.arange(4000.0).view(1, 1, -1)
    torch.manual_seed(0)
    moved = (time_jitter(latents, 0.3) != latents).float().mean().item()
    assert 0.27 < moved < 0.33
    assert torch.equal(time_jitter(latents, 0.0), latents)


def _twins_in_training(**option):
    """A tiny model and its copy with ``option``, the same weights, each run once in training
    mode on the same batch from the same seed: (plain, other, x, ids, plain's, other's)."""
    plain, other = _tiny(init="kmeans"), _tiny(init="kmeans", **option)
    other.load_state_dict(plain.state_dict())
    x = _waves(2, 8 * 64)
    ids = torch.tensor([0, 1])
    torch.manual_seed(1)
    a = plain(x, speaker=ids)  # training mode: codebooks set from this batch, the same in both
    torch.manual_seed(1)
    return plain, other, x, ids, a, other(x, speaker=ids)


def test_jitter_acts_in_training_only():
    plain, jittered, x, ids, a, b = _twins_in_training(jitter=0.9)
    assert torch.equal(a.indices, b.indices) and len(a.indices.unique()) > 1
    assert not torch.allclose(b.outputs, a.outputs)
    plain.eval(), jittered.eval()
    torch.testing.assert_close(jittered(x, speaker=ids).outputs, plain(x, speaker=ids).outputs)


# ---------------------------------------------------------------- input noise
@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(1, 300), std=st.floats(0, 20),
       classes=st.integers(2, 256), seed=st.integers(0, 2**16))
def test_noisy_samples_stay_classes_of_the_same_type(batch, length, std, classes, seed):
    torch.manual_seed(seed)
    x = torch.randint(0, classes, (batch, length))
    y = noisy_samples(x, std, classes)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert int(y.min()) >= 0 and int(y.max()) <= classes - 1


def test_noisy_samples_move_by_about_the_deviation_and_not_at_zero():
    x = torch.full((1, 20000), 128)
    torch.manual_seed(0)
    moved = (noisy_samples(x, 2.0, 256) - x).float()
    assert moved.mean().abs() < 0.05 and 1.9 < moved.std() < 2.1  # rounding adds 1/12
    assert torch.equal(moved, moved.round())
    assert torch.equal(noisy_samples(x, 0.0, 256), x)


def test_input_noise_moves_the_past_in_training_only_and_never_the_targets():
    plain, noisy, x, ids, a, b = _twins_in_training(input_noise=3.0)
    assert torch.equal(a.indices, b.indices)
    assert not torch.allclose(b.outputs, a.outputs)
    # scored against the clean samples: the loss is the outputs' nll of mu_law(x)
    torch.testing.assert_close(b.recon_loss, noisy.decoder.nll(b.outputs, mu_law_encode(x)).mean())
    # the first sample's outputs read only the silent start, which no noise reaches
    torch.testing.assert_close(b.outputs[..., 0], a.outputs[..., 0])
    plain.eval(), noisy.eval()
    torch.testing.assert_close(noisy(x, speaker=ids).outputs, plain(x, speaker=ids).outputs)
