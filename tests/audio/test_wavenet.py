import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vqvae.audio.spectrogram import log_mel_spectrogram
from vqvae.nets import wavenet_fast
from vqvae.nets.audio import (
    SMOOTH_TERMS,
    AudioEncoder,
    LogMelEncoder,
    LogMelFrames,
    SpectralHead,
    active_frames,
    active_mean,
    cosine_basis,
    normalise_frames,
)
from vqvae.nets.likelihood import LogisticMixtureLikelihood
from vqvae.nets.wavenet import WaveNet, draw


def _net(upsample="repeat", speakers=3, seed=0, likelihood="categorical"):
    torch.manual_seed(seed)
    return WaveNet(6, 10, layers=3, stacks=2, cond_dim=5, hop=4, upsample=upsample,
                   num_speakers=speakers, speaker_dim=3, likelihood=likelihood,
                   mixtures=3).double()


LIKELIHOODS = ["categorical", "logistic_mixture"]


# ---------------------------------------------------------------- encoder
@pytest.mark.parametrize("halvings", [6, 7])
def test_encoder_gives_one_code_per_hop_samples(halvings):
    enc = AudioEncoder(8, 16, halvings)
    z = enc(torch.randn(2, 3 * 2**halvings))
    assert z.shape == (2, 16, 3) and enc.hop == 2**halvings
    strided = [m for m in enc.net if isinstance(m, torch.nn.Conv1d) and m.stride == (2,)]
    assert len(strided) == halvings and all(m.kernel_size == (4,) for m in strided)


def _samples_seen_by_one_code(enc, halvings, codes=16):
    """How many input samples the middle code depends on (all paths kept open)."""
    with torch.no_grad():  # positive weights and inputs: no ReLU closes a path
        for p in enc.parameters():
            p.abs_()
    x = torch.rand(1, codes * 2**halvings, requires_grad=True)
    enc(x)[0, :, codes // 2].sum().backward()
    seen = x.grad[0].nonzero()
    return int(seen.max() - seen.min() + 1)


@pytest.mark.parametrize("residual_layers", [1, 3])
def test_encoder_residual_layers_widen_each_code_by_two_hops_per_layer(residual_layers):
    torch.manual_seed(0)
    plain = _samples_seen_by_one_code(AudioEncoder(4, 5, 3), 3)
    assert plain == 1 + 3 * (2**3 - 1)  # 3 strided convs of width 4
    enc = AudioEncoder(4, 5, 3, residual_layers=residual_layers)
    assert enc(torch.randn(2, 6 * 8)).shape == (2, 5, 6)
    assert _samples_seen_by_one_code(enc, 3) == plain + 2 * 8 * residual_layers


def test_encoder_refuses_a_length_that_is_not_a_whole_number_of_codes():
    with pytest.raises(ValueError, match="divisible by 64"):
        AudioEncoder(8, 16)(torch.randn(1, 100))


@settings(max_examples=20, deadline=None)
@given(halvings=st.integers(2, 8), codes=st.integers(1, 6), batch=st.integers(1, 3))
def test_log_mel_encoder_gives_one_code_per_hop_samples(halvings, codes, batch):
    enc = LogMelEncoder(8, 5, 2**halvings, 8000, n_mels=12)
    assert enc(torch.randn(batch, codes * 2**halvings)).shape == (batch, 5, codes)


def test_log_mel_frames_are_those_of_the_spectrogram_centred_on_each_code():
    # frame j of the encoder is centred on sample j hop + hop / 2: away from the ends it is
    # the frame of torch.stft (vqvae.audio.spectrogram) on the signal shifted by hop / 2
    hop, rate = 64, 8000
    wave = torch.randn(20 * hop, generator=torch.Generator().manual_seed(0)) * 0.3
    frames = LogMelFrames(hop, rate, n_mels=40)
    ours = frames(wave[None])[0] * frames.scale_db + frames.centre_db  # (M, 20) in dB
    theirs = log_mel_spectrogram(wave[hop // 2 :].numpy(), rate, n_mels=40, hop=hop)
    inner = slice(2, 18)  # frames whose window lies inside the signal
    assert torch.allclose(ours[:, inner], torch.from_numpy(theirs)[:, inner], atol=1e-3)


def test_log_mel_codes_see_their_window_and_two_hops_either_side():
    torch.manual_seed(0)
    hop, codes = 16, 24
    enc = LogMelEncoder(4, 5, hop, 8000, n_mels=8, n_fft=64)
    # ReLUs removed so that no dead unit closes a path
    enc.net = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.ReLU) else m
                                    for m in enc.net])
    x = (torch.randn(1, codes * hop) * 0.3).requires_grad_(True)
    enc(x)[0, :, codes // 2].sum().backward()
    seen = x.grad[0].nonzero()
    centre = codes // 2 * hop + hop // 2
    # the window (64 samples) widened by two convolutions of width 3 (2 hops each side)
    assert int(seen.min()) >= centre - 32 - 2 * hop and int(seen.max()) < centre + 32 + 2 * hop
    assert int(seen.max() - seen.min() + 1) > 64 + 2 * hop


@settings(max_examples=15, deadline=None)
@given(codes=st.integers(1, 12), batch=st.integers(1, 3), speakers=st.integers(0, 3))
def test_spectral_head_gives_a_frame_per_code(codes, batch, speakers):
    head = SpectralHead(5, 8, n_mels=12, num_speakers=speakers)
    ids = torch.zeros(batch, dtype=torch.long) if speakers else None
    assert head(torch.randn(batch, 5, codes), ids).shape == (batch, 12, codes)
    frames = LogMelFrames(16, 8000, n_mels=12)
    assert frames(torch.randn(batch, codes * 16)).shape == (batch, 12, codes)


def test_log_mel_encoder_refuses_bad_lengths_and_windows():
    with pytest.raises(ValueError, match="divisible by 64"):
        LogMelEncoder(8, 16, 64, 8000)(torch.randn(1, 100))
    with pytest.raises(ValueError, match="n_fft must be at least the hop"):
        LogMelEncoder(8, 16, 64, 8000, n_fft=32)
    with pytest.raises(ValueError, match="expects \\(B, T\\) waveforms"):
        LogMelFrames(64, 8000)(torch.randn(64))


def _speech_and_silence(seed, bands, speech, silence):
    """(1, bands, speech + silence) scaled frames: loud random frames, then the floor (-2)."""
    g = torch.Generator().manual_seed(seed)
    loud = torch.rand(1, bands, speech, generator=g, dtype=torch.float64)  # all active
    return torch.cat([loud, torch.full((1, bands, silence), -2.0, dtype=torch.float64)], 2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), bands=st.integers(1, 8), speech=st.integers(2, 20),
       silence=st.integers(0, 20), gain=st.floats(-1, 1))
def test_normalised_frames_lose_the_level_and_the_long_term_spectrum(seed, bands, speech,
                                                                      silence, gain):
    frames = _speech_and_silence(seed, bands, speech, silence)
    zeros = torch.zeros(1, bands, dtype=torch.float64)
    mean = normalise_frames(frames, "mean")[..., :speech]
    assert torch.allclose(mean.mean(dim=2), zeros, atol=1e-9)
    spread = frames[..., :speech].std(dim=2, unbiased=False)
    std = normalise_frames(frames, "mean-std")[..., :speech]
    expected = torch.where(spread > 0.1, 1.0, spread / 0.1)  # the divisor is at least eps
    assert torch.allclose(std.std(dim=2, unbiased=False), expected, atol=1e-6)
    # smooth-mean: what is left of the mean has nothing on the first 4 cosines, and the rest
    # of it (the finer detail) is kept
    basis = cosine_basis(bands, SMOOTH_TERMS, frames)
    left = normalise_frames(frames, "smooth-mean")[..., :speech].mean(dim=2)  # (1, M)
    assert torch.allclose(left @ basis.T, torch.zeros(1, len(basis), dtype=torch.float64),
                          atol=1e-9)
    average = frames[..., :speech].mean(dim=2)  # (1, M)
    assert torch.allclose(left, average - (average @ basis.T) @ basis, atol=1e-9)
    for mode in ("mean", "mean-std", "smooth-mean"):
        # the same with the silence (or a batch's padding) cut off, and at another level
        alone = normalise_frames(frames[..., :speech] + gain, mode)
        assert torch.allclose(normalise_frames(frames, mode)[..., :speech], alone, atol=1e-9)
    assert normalise_frames(frames, "none") is frames


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), bands=st.integers(16, 40),
       weights=st.lists(st.floats(-1, 1), min_size=SMOOTH_TERMS, max_size=SMOOTH_TERMS))
def test_smooth_mean_removes_a_smooth_filter_and_keeps_a_narrow_one(seed, bands, weights):
    frames = _speech_and_silence(seed, bands, 12, 4)
    basis = cosine_basis(bands, SMOOTH_TERMS, frames)
    smooth = torch.tensor(weights, dtype=torch.float64) @ basis  # (M,)
    smooth = 0.1 * smooth / smooth.abs().max().clamp(min=1e-9)  # keeps every frame active
    plain = normalise_frames(frames, "smooth-mean")
    assert torch.allclose(normalise_frames(frames + smooth[:, None], "smooth-mean"), plain,
                          atol=1e-9)
    narrow = torch.zeros(bands, dtype=torch.float64)
    narrow[bands // 2] = 0.1  # one band of 16+ louder: mostly not smooth, so mostly kept
    moved = normalise_frames(frames + narrow[:, None], "smooth-mean") - plain
    assert moved[0, bands // 2, 0] > 0.05


def test_frame_normalisation_takes_a_filter_out_of_what_the_encoder_reads():
    torch.manual_seed(0)
    wave = torch.randn(1, 64 * 20) * 0.3
    louder = wave * 4  # +12 dB in every band: the same codes, normalised
    for norm, same in (("none", False), ("mean", True), ("mean-std", True),
                       ("smooth-mean", True)):
        enc = LogMelEncoder(8, 5, 64, 8000, n_mels=12, frame_norm=norm)
        assert torch.allclose(enc(wave), enc(louder), atol=1e-4) == same
    with pytest.raises(ValueError, match="frame_norm must be one of none, mean, mean-std, smooth"):
        LogMelEncoder(8, 5, 64, 8000, frame_norm="cmvn")
    with pytest.raises(ValueError, match="smooth-mean, speaker-mean, got 'x'"):
        normalise_frames(torch.zeros(1, 2, 3), "x")


def test_speaker_mean_takes_out_each_voices_long_term_spectrum_and_keeps_the_words():
    torch.manual_seed(0)
    words = [torch.randn(64 * n) * 0.3 for n in (12, 20, 16)]
    # speaker 1 says the same words through a +12 dB filter: the same codes, normalised
    waves, speakers = words + [4 * w for w in words], [0, 0, 0, 1, 1, 1]
    enc = LogMelEncoder(8, 5, 64, 8000, n_mels=12, frame_norm="speaker-mean", num_speakers=2)
    means = enc.fit_speaker_means(waves, speakers)  # (S, M)
    frames = [enc.frames(w[None])[0] for w in words]  # (M, N) each
    active = [active_frames(f[None])[0] for f in frames]
    total = sum((f * a).sum(1) for f, a in zip(frames, active, strict=True))
    expected = total / sum(a.sum() for a in active)
    assert torch.allclose(means[0], expected, atol=1e-5)
    assert torch.allclose(means[1] - means[0], torch.full((12,), 20 * math.log10(4) / 30),
                          atol=1e-3)  # +12 dB in the frames' units (no band at the floor)
    for w in words:
        spk0, spk1 = torch.tensor([0]), torch.tensor([1])
        assert torch.allclose(enc(w[None], spk0), enc(4 * w[None], spk1), atol=1e-4)
        assert not torch.allclose(enc(w[None], spk0), enc(4 * w[None], spk0), atol=1e-2)
        # unlike "mean", what the word itself adds to the voice's mean stays
        kept = normalise_frames(enc.frames(w[None]), "speaker-mean", speaker_means=means[:1])
        assert torch.allclose(kept, enc.frames(w[None]) - means[0][:, None])
    with pytest.raises(ValueError, match="whose voice is it"):
        enc(words[0][None])
    with pytest.raises(ValueError, match="needs num_speakers >= 1"):
        LogMelEncoder(8, 5, 64, 8000, frame_norm="speaker-mean")
    with pytest.raises(ValueError, match="only frame_norm='speaker-mean' keeps speaker means"):
        LogMelEncoder(8, 5, 64, 8000, frame_norm="mean").fit_speaker_means(words, [0, 0, 0])
    with pytest.raises(ValueError, match="needs each utterance's speaker means"):
        normalise_frames(torch.zeros(1, 2, 3), "speaker-mean")


def test_the_nearest_speaker_is_the_one_whose_long_term_spectrum_is_closest():
    torch.manual_seed(0)
    words = [torch.randn(64 * n) * 0.3 for n in (12, 20, 16)]
    enc = LogMelEncoder(8, 5, 64, 8000, n_mels=12, frame_norm="speaker-mean", num_speakers=3)
    # three voices: the same words at 0, +12 and +24 dB
    enc.fit_speaker_means([g * w for g in (1, 4, 16) for w in words], [0] * 3 + [1] * 3 + [2] * 3)
    unseen = torch.randn(3, 64 * 14) * 0.3 * torch.tensor([[16.0], [1.0], [5.0]])
    assert enc.nearest_speaker(unseen).tolist() == [2, 0, 1]  # 5x is +14 dB: nearest +12
    frames = enc.frames(unseen)
    assert torch.allclose(active_mean(frames)[1],
                          (frames[1] * active_frames(frames[1:2])[0]).sum(1)
                          / active_frames(frames[1:2]).sum())
    with pytest.raises(ValueError, match="only frame_norm='speaker-mean' keeps speaker means"):
        LogMelEncoder(8, 5, 64, 8000, frame_norm="mean").nearest_speaker(unseen)


# ---------------------------------------------------------------- WaveNet
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("upsample", ["repeat", "transposed", "linear"])
def test_output_at_t_depends_only_on_the_receptive_field_before_t(upsample, likelihood):
    net = _net(upsample, likelihood=likelihood)
    length = 24
    rf = net.receptive_field
    assert rf == 2 * (1 + 2 + 4) + 1
    x = F.one_hot(torch.randint(256, (2, length)), 256).transpose(1, 2).double()
    x.requires_grad_(True)
    codes, speaker = torch.randn(2, 5, length // 4, dtype=torch.double), torch.tensor([0, 2])
    logits = net(x, codes, speaker)
    for t in range(length):
        (grad,) = torch.autograd.grad(logits[:, :, t].sum(), x, retain_graph=True)
        reach = grad.abs().sum((0, 1))  # (T,)
        assert (reach[t:] == 0).all(), f"position {t} sees the present or the future"
        assert (reach[: max(0, t - rf)] == 0).all(), f"position {t} sees beyond its field"
        if t > 0:
            assert reach[t - 1] > 0
        if t >= rf:
            assert reach[t - rf] > 0


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("upsample", ["repeat", "transposed", "linear"])
def test_cached_steps_give_the_teacher_forced_logits(upsample, likelihood):
    net = _net(upsample, likelihood=likelihood)
    length = 40  # beyond the receptive field (15): the queues wrap around
    samples = torch.randint(256, (3, length))
    codes = torch.randn(3, 5, length // 4, dtype=torch.double)
    speaker = torch.tensor([2, 0, 1])
    expected = net.class_logits(net(samples, codes, speaker))
    state = net.incremental(codes, speaker)
    previous = torch.full((3,), 128)
    for t in range(length):
        torch.testing.assert_close(state.step(previous), expected[:, :, t], rtol=0, atol=1e-10)
        previous = samples[:, t]


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("upsample", ["repeat", "linear"])
def test_cached_and_recomputed_generation_draw_the_same_samples(upsample, likelihood):
    net = _net(upsample, likelihood=likelihood)
    codes, speaker = torch.randn(2, 5, 10, dtype=torch.double), torch.tensor([1, 1])
    a = net.generate(codes, speaker, generator=torch.Generator().manual_seed(5), backend="torch")
    b = net.generate(codes, speaker, generator=torch.Generator().manual_seed(5), cache=False)
    assert a.shape == (2, 40) and torch.equal(a, b)
    c = net.generate(codes, speaker, 17, generator=torch.Generator().manual_seed(6),
                     backend="torch")
    d = net.generate(codes, speaker, 17, generator=torch.Generator().manual_seed(6), cache=False)
    assert c.shape == (2, 17) and torch.equal(c, d) and not torch.equal(a[:, :17], c)


def test_the_speaker_changes_every_output():
    net = _net()
    samples, codes = torch.randint(256, (1, 16)), torch.randn(1, 5, 4, dtype=torch.double)
    a = net(samples, codes, torch.tensor([0]))
    b = net(samples, codes, torch.tensor([1]))
    assert torch.equal(a, net(samples, codes, torch.tensor([0])))
    assert ((a - b).abs().amax(1) > 1e-6).all()


@pytest.mark.parametrize("upsample", ["repeat", "transposed", "linear"])
def test_a_code_changes_its_own_samples_and_later_ones_only(upsample):
    net = _net(upsample)
    samples, codes = torch.randint(256, (1, 32)), torch.randn(1, 5, 8, dtype=torch.double)
    changed = codes.clone()
    changed[:, :, 3] += 1.0
    diff = (net(samples, codes, torch.tensor([0])) - net(samples, changed, torch.tensor([0])))
    diff = diff.abs().amax(1)[0]
    first = 10 if upsample == "linear" else 12  # interpolation: from the previous block's middle
    assert (diff[:first] == 0).all() and (diff[first:16] > 0).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 6), hop=st.sampled_from([1, 2, 4, 5, 64]),
       start=st.integers(0, 6), size=st.integers(1, 6))
def test_linear_upsampling_glides_between_code_centres_and_parts_match_the_whole(
        seed, n, hop, start, size):
    torch.manual_seed(seed)
    net = WaveNet(2, 3, layers=1, stacks=2, cond_dim=3, hop=hop, upsample="linear").double()
    codes = torch.randn(1, 3, n, dtype=torch.double)
    whole = net.local_conditioning(codes)  # (1, L, 2R, n hop)
    assert whole.shape == (1, 2, 4, n * hop)
    c = net.cond(codes)  # at the code rate
    centre = (torch.arange(n * hop, dtype=torch.double) + 0.5) / hop - 0.5  # in codes
    lo = centre.floor().clamp(0, n - 1).long()
    hi = (lo + 1).clamp(max=n - 1)
    w = (centre - lo).clamp(0, 1)
    expected = c[..., lo] * (1 - w) + c[..., hi] * w
    torch.testing.assert_close(whole.flatten(1, 2), expected, rtol=0, atol=1e-12)
    start, stop = min(start, n - 1), min(start + size, n)
    part = net.local_conditioning(codes, start, stop)
    torch.testing.assert_close(part, whole[..., start * hop : stop * hop], rtol=0, atol=1e-12)


def test_conditioning_that_is_missing_or_not_wanted_is_refused():
    net = _net()
    samples, codes = torch.randint(256, (1, 8)), torch.randn(1, 5, 2, dtype=torch.double)
    with pytest.raises(ValueError, match="speaker"):
        net(samples, codes)
    with pytest.raises(ValueError, match="do not cover"):
        net(samples, torch.randn(1, 5, 3, dtype=torch.double), torch.tensor([0]))
    plain = WaveNet(4, 4, layers=2, stacks=1)
    with pytest.raises(ValueError, match="no local conditioning"):
        plain(samples, codes)
    assert plain.generate(length=5, batch=2).shape == (2, 5)


# ---------------------------------------------------------------- the logistic mixture
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), mixtures=st.integers(1, 5), spread=st.floats(0.1, 4.0))
def test_a_mixture_gives_every_class_a_probability_and_scores_targets_by_them(seed, mixtures,
                                                                            spread):
    net = WaveNet(4, 4, layers=1, stacks=1, likelihood="logistic_mixture", mixtures=mixtures)
    g = torch.Generator().manual_seed(seed)
    outputs = torch.randn(2, 3 * mixtures, 7, generator=g, dtype=torch.float64) * spread
    targets = torch.randint(256, (2, 7), generator=g)
    table = net.class_logits(outputs, chunk=3)  # chunks of 3 steps: 3 + 3 + 1
    assert table.shape == (2, 256, 7)
    torch.testing.assert_close(table.logsumexp(1), torch.zeros(2, 7, dtype=torch.float64),
                               rtol=0, atol=1e-9)
    nll = net.nll(outputs, targets)
    torch.testing.assert_close(nll, -table.gather(1, targets[:, None])[:, 0], rtol=0, atol=1e-9)
    # written out: P(c) = sum_m pi_m (F_m(upper edge) - F_m(lower edge)), F_m the logistic CDF,
    # the edges c / 255 - 0.5 +- 1 / 510, the outer two at -+inf
    weights, means, log_scales = outputs.unflatten(1, (3, mixtures)).unbind(1)  # (B, M, T)
    scales = log_scales.clamp(-9.0, 10.0).exp()
    values = torch.arange(256, dtype=torch.float64) / 255 - 0.5
    upper = torch.cat([values[:-1] + 1 / 510, torch.tensor([float("inf")])])
    lower = torch.cat([torch.tensor([-float("inf")]), values[1:] - 1 / 510])

    def cdf(edges):  # (Q,) -> (B, M, Q, T)
        return torch.sigmoid((edges[:, None] - means[:, :, None]) / scales[:, :, None])

    probs = (weights.softmax(1)[:, :, None] * (cdf(upper) - cdf(lower))).sum(1)  # (B, Q, T)
    reference = probs.gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(nll.exp().reciprocal(), reference, rtol=1e-6, atol=1e-12)
    # the image decoder's mixture is the same distribution, a class being a pixel value,
    # but for its wider floor on the log-scales (-7)
    if (log_scales > -7).all():
        image = LogisticMixtureLikelihood(mixtures).nll(outputs[:, :, None],
                                                        targets[:, None, None] / 255 - 0.5)
        torch.testing.assert_close(nll.sum(1).float(), image, rtol=1e-5, atol=1e-4)


def test_a_narrow_mixture_puts_its_mass_on_the_class_of_its_mean():
    net = WaveNet(4, 4, layers=1, stacks=1, likelihood="logistic_mixture", mixtures=2)

    def probs(log_scale):
        outputs = torch.tensor([[5.0, -5.0,  # weights: the first component
                                 37 / 255 - 0.5, 0.3,  # means: class 37's value, then elsewhere
                                 log_scale, 0.0]])[..., None]
        return net.class_logits(outputs)[0, :, 0].exp()

    # the narrowest logistic allowed (scale e^-9) holds all but 2e-7 of its mass in its class
    narrowest = probs(-12.0)  # clamped to -9
    assert narrowest.argmax() == 37 and narrowest[37] > 0.9999
    torch.testing.assert_close(narrowest, probs(-9.0))
    # at the image decoder's floor (e^-7) the class would hold only 79 %, its neighbours the rest
    wider = probs(-7.0)
    assert 0.78 < wider[37] < 0.8 and wider[36] + wider[37] + wider[38] > 0.99


def test_a_mixture_wavenet_has_3m_outputs_and_refuses_what_it_cannot_model():
    net = WaveNet(4, 4, layers=2, stacks=1, likelihood="logistic_mixture", mixtures=4)
    assert net(torch.randint(256, (1, 9))).shape == (1, 12, 9)
    with pytest.raises(ValueError, match="likelihood must be one of categorical"):
        WaveNet(4, 4, likelihood="gaussian")
    with pytest.raises(ValueError, match="needs 256 classes and mixtures >= 1"):
        WaveNet(4, 4, classes=64, likelihood="logistic_mixture")
    with pytest.raises(ValueError, match="needs 256 classes and mixtures >= 1"):
        WaveNet(4, 4, likelihood="logistic_mixture", mixtures=0)


# ---------------------------------------------------------------- drawing
def test_draw_follows_the_softmax_and_never_draws_an_impossible_class():
    logits = torch.tensor([[0.0, float("-inf"), 1.0, 2.0, float("-inf")]])
    probs = torch.softmax(logits / 0.5, -1)[0]
    n = 10_000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # an even grid: counts are n p
    drawn = draw(logits.expand(n, -1), u, 0.5)
    counts = torch.bincount(drawn, minlength=5).double()
    torch.testing.assert_close(counts / n, probs.double(), rtol=0, atol=1.5 / n)
    edge = torch.tensor([0.0, 1 - 2**-53], dtype=torch.float64)
    assert draw(logits.expand(2, -1), edge, 0.5).tolist() == [0, 3]


def test_compiled_draw_picks_the_same_classes_as_the_torch_draw():
    pytest.importorskip("numba")
    torch.manual_seed(0)
    logits, u = torch.randn(500, 256) * 3, torch.rand(500, dtype=torch.float64)
    logits[:, 7] = float("-inf")
    for temperature in (1.0, 0.3):
        work = torch.empty(256, dtype=torch.float64).numpy()
        compiled = [wavenet_fast._inverse_cdf(row.numpy(), float(v), temperature, work)
                    for row, v in zip(logits, u, strict=True)]
        assert compiled == draw(logits, u, temperature).tolist()


def test_bisecting_a_mixtures_cdf_draws_the_class_the_full_table_draws():
    pytest.importorskip("numba")
    net = WaveNet(4, 4, layers=1, stacks=1, likelihood="logistic_mixture", mixtures=5)
    g = torch.Generator().manual_seed(0)
    outputs = torch.randn(400, 15, 1, generator=g, dtype=torch.float64) * 2
    outputs[:200, 10:] -= 4  # narrow components too
    u = torch.rand(400, generator=g, dtype=torch.float64)
    expected = draw(net.class_logits(outputs)[..., 0], u, 1.0)
    work = torch.empty(3, 5, dtype=torch.float64).numpy()
    got = [wavenet_fast._mixture_inverse_cdf(row[:, 0].numpy(), float(v), 256, work)
           for row, v in zip(outputs, u, strict=True)]
    assert got == expected.tolist()
    assert len(set(got)) > 50  # the draws do spread over the classes


# ---------------------------------------------------------------- the compiled loop
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("upsample", ["repeat", "transposed", "linear"])
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_steps_give_the_teacher_forced_and_cached_logits(upsample, batch, likelihood,
                                                                  monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(wavenet_fast, "_CHUNK", 8)  # several chunks of two codes
    net = _net(upsample, likelihood=likelihood)
    length = 38  # beyond the receptive field (15), not a whole number of codes
    samples = torch.randint(256, (batch, length))
    codes = torch.randn(batch, 5, 10, dtype=torch.double)
    speaker = torch.tensor([2, 0, 1][:batch])
    out, logits = wavenet_fast.run(net, codes, speaker, batch, length, forced=samples,
                                   keep_logits=True)
    assert torch.equal(out, samples) and logits.shape == (batch, 256, length)
    expected = net.class_logits(net(F.pad(samples, (0, 2), value=128), codes, speaker))
    torch.testing.assert_close(logits, expected[..., :length], rtol=0, atol=1e-10)
    state = net.incremental(codes, speaker)
    previous = torch.full((batch,), 128)
    for t in range(length):
        torch.testing.assert_close(logits[..., t], state.step(previous), rtol=0, atol=1e-10)
        previous = samples[:, t]


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_compiled_steps_of_a_float32_net_without_conditioning_match_it(likelihood):
    pytest.importorskip("numba")
    torch.manual_seed(1)
    net = WaveNet(4, 6, layers=1, stacks=1, likelihood=likelihood)  # no residual output
    samples = torch.randint(256, (2, 9))
    _, logits = wavenet_fast.run(net, None, None, 2, 9, forced=samples, keep_logits=True)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, net.class_logits(net(samples)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_and_torch_generation_draw_the_same_samples(batch, likelihood, dtype):
    pytest.importorskip("numba")
    net = _net("transposed", likelihood=likelihood).to(dtype)
    codes = torch.randn(batch, 5, 9, dtype=dtype)
    speaker = torch.tensor([1, 2, 0][:batch])
    for temperature in (1.0, 0.7):
        a = net.generate(codes, speaker, 35, temperature=temperature,
                         generator=torch.Generator().manual_seed(3), backend="numba")
        b = net.generate(codes, speaker, 35, temperature=temperature,
                         generator=torch.Generator().manual_seed(3), backend="torch")
        assert a.shape == (batch, 35) and torch.equal(a, b)


def test_compiled_generation_at_a_low_temperature_takes_the_most_likely_class():
    pytest.importorskip("numba")
    net = _net()
    codes, speaker = torch.randn(3, 5, 10, dtype=torch.double), torch.tensor([0, 1, 2])
    greedy = net.generate(codes, speaker, temperature=1e-12, backend="numba")
    assert torch.equal(net(greedy, codes, speaker).argmax(1), greedy)
    assert greedy.unique().numel() > 3  # the samples do vary


def test_compiled_generation_repeats_itself_for_the_same_seed():
    pytest.importorskip("numba")
    net = _net()
    codes, speaker = torch.randn(2, 5, 10, dtype=torch.double), torch.tensor([1, 0])
    a, b, c = (net.generate(codes, speaker, generator=torch.Generator().manual_seed(seed),
                            backend="numba") for seed in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert net.generate(codes, speaker, generator=torch.Generator().manual_seed(4)).equal(a)


def test_without_the_compiled_loop_generation_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(wavenet_fast, "available", lambda: False)
    net = _net()
    codes, speaker = torch.randn(2, 5, 3, dtype=torch.double), torch.tensor([1, 0])
    a = net.generate(codes, speaker, generator=torch.Generator().manual_seed(2))
    b = net.generate(codes, speaker, generator=torch.Generator().manual_seed(2), cache=False)
    assert a.shape == (2, 12) and torch.equal(a, b)
    with pytest.raises(ValueError, match="numba is not installed"):
        net.generate(codes, speaker, backend="numba")
    with pytest.raises(ValueError, match="backend must be one of"):
        net.generate(codes, speaker, backend="jax")
