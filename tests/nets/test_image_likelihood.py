import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vqvae.nets import (
    CategoricalLikelihood,
    GaussianLikelihood,
    LogisticMixtureLikelihood,
    make_likelihood,
)
from vqvae.nets.likelihood import to_bins

ALL_VALUES = (torch.arange(256, dtype=torch.float32) / 255 - 0.5).view(256, 1, 1, 1)


def _sigmoid(t):
    return 1 / (1 + math.exp(-t))


def _phi(t):
    return 0.5 * math.erfc(-t / math.sqrt(2))  # erfc: accurate far in the lower tail


def _probabilities_of_all_values(likelihood, output):
    """output (1, O, 1, 1) for one sub-pixel -> (256,) p(v) for every value v."""
    nll = likelihood.nll(output.expand(256, -1, -1, -1), ALL_VALUES)
    return torch.exp(-nll.double())


def test_scaled_8bit_values_map_back_to_their_bins():
    assert torch.equal(to_bins(ALL_VALUES).view(-1), torch.arange(256))


@pytest.mark.parametrize("bad", [1.0, -0.51, 255.0])
def test_discrete_likelihoods_reject_images_outside_the_scaled_range(bad):
    images = torch.full((1, 1, 2, 2), bad)
    with pytest.raises(ValueError, match=r"\[-0.5, 0.5\]"):
        CategoricalLikelihood().nll(torch.zeros(1, 256, 2, 2), images)


@pytest.mark.parametrize(
    "likelihood, channels",
    [(GaussianLikelihood(), 3), (CategoricalLikelihood(), 768),
     (LogisticMixtureLikelihood(mixtures=5), 45)],
)
def test_output_channels_for_rgb(likelihood, channels):
    assert likelihood.output_channels(3) == channels


def test_uniform_logits_cost_exactly_ln_256_per_subpixel():
    likelihood = CategoricalLikelihood()
    images = torch.rand(2, 3, 4, 5) - 0.5
    output = torch.zeros(2, 3 * 256, 4, 5)
    torch.testing.assert_close(likelihood.nll(output, images),
                               torch.full((2,), 3 * 4 * 5 * math.log(256)))
    torch.testing.assert_close(likelihood.loss(output, images), torch.tensor(math.log(256)))


def test_categorical_logits_of_channel_c_are_outputs_256c_to_256c_plus_255():
    likelihood = CategoricalLikelihood()
    output = torch.zeros(1, 2 * 256, 1, 1)
    output[0, 256 + 40] = math.log(3.0)  # channel 1, value 40 three times as likely
    images = torch.tensor([40.0, 40.0]).view(1, 2, 1, 1) / 255 - 0.5
    expected = math.log(256) - math.log(3 / 258)
    torch.testing.assert_close(likelihood.nll(output, images), torch.tensor([expected]))


def test_categorical_mean_is_the_expected_pixel_value():
    likelihood = CategoricalLikelihood()
    output = torch.zeros(1, 2 * 256, 1, 1)
    output[0, 256 + 200] = 30.0  # channel 1: all mass on value 200
    mean = likelihood.mean(output)
    torch.testing.assert_close(mean, torch.tensor([0.0, 200 / 255 - 0.5]).view(1, 2, 1, 1))


@settings(max_examples=30, deadline=None)
@given(
    logits=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    means=st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    log_scales=st.lists(st.floats(-9, 3), min_size=3, max_size=3),
)
def test_logistic_mixture_probabilities_of_the_256_values_sum_to_one(logits, means, log_scales):
    output = torch.tensor([logits, means, log_scales]).view(1, 9, 1, 1)
    probs = _probabilities_of_all_values(LogisticMixtureLikelihood(mixtures=3), output)
    assert abs(float(probs.sum()) - 1) < 1e-4


@pytest.mark.parametrize("value", [0, 1, 140, 254, 255])
def test_logistic_bin_probability_matches_hand_calculation(value):
    mu, log_s = 0.1, math.log(0.02)
    s, x, h = 0.02, value / 255 - 0.5, 0.5 / 255
    upper = 1.0 if value == 255 else _sigmoid((x + h - mu) / s)
    lower = 0.0 if value == 0 else _sigmoid((x - h - mu) / s)
    output = torch.tensor([0.0, mu, log_s]).view(1, 3, 1, 1)
    images = torch.tensor(x, dtype=torch.float32).view(1, 1, 1, 1)
    nll = LogisticMixtureLikelihood(mixtures=1).nll(output, images)
    torch.testing.assert_close(nll, torch.tensor([-math.log(upper - lower)]), rtol=1e-4, atol=1e-5)


def test_logistic_mixture_weights_components_by_softmax_of_logits():
    x, h = 100 / 255 - 0.5, 0.5 / 255
    mus, s = (-0.2, 0.3), 0.1

    def p(mu):
        return _sigmoid((x + h - mu) / s) - _sigmoid((x - h - mu) / s)

    weights = (1 / (1 + math.e), math.e / (1 + math.e))  # softmax of logits (0, 1)
    expected = -math.log(weights[0] * p(mus[0]) + weights[1] * p(mus[1]))
    # layout per channel: (3, M) = logits, means, log-scales
    output = torch.tensor([0.0, 1.0, *mus, math.log(s), math.log(s)]).view(1, 6, 1, 1)
    images = torch.tensor(x, dtype=torch.float32).view(1, 1, 1, 1)
    nll = LogisticMixtureLikelihood(mixtures=2).nll(output, images)
    torch.testing.assert_close(nll, torch.tensor([expected]), rtol=1e-4, atol=1e-5)


def test_logistic_nll_and_gradients_stay_finite_for_extreme_parameters():
    output = torch.tensor([[0.0, 5.0, -20.0], [0.0, -5.0, 50.0]]).view(2, 3, 1, 1)
    output.requires_grad_(True)
    images = torch.tensor([0.1, 0.0]).view(2, 1, 1, 1)
    nll = LogisticMixtureLikelihood(mixtures=1).nll(output, images)
    nll.sum().backward()
    assert torch.isfinite(nll).all() and torch.isfinite(output.grad).all()
    assert nll[0] > 100  # a sharp logistic far from the pixel: very unlikely


def test_logistic_mean_is_the_weighted_mean_of_the_components():
    output = torch.tensor([0.0, math.log(3.0), 0.4, -0.2, -3.0, -3.0]).view(1, 6, 1, 1)
    mean = LogisticMixtureLikelihood(mixtures=2).mean(output)
    torch.testing.assert_close(mean, torch.tensor(0.25 * 0.4 + 0.75 * -0.2).view(1, 1, 1, 1))


def test_gaussian_loss_is_mse_and_mean_is_the_clamped_output():
    likelihood = GaussianLikelihood()
    output = torch.tensor([0.2, 0.9, -0.7]).view(1, 3, 1, 1)
    images = torch.tensor([0.0, 0.5, -0.5]).view(1, 3, 1, 1)
    torch.testing.assert_close(likelihood.loss(output, images),
                               torch.tensor((0.04 + 0.16 + 0.04) / 3))
    torch.testing.assert_close(likelihood.mean(output),
                               torch.tensor([0.2, 0.5, -0.5]).view(1, 3, 1, 1))


def test_gaussian_without_a_fixed_std_has_no_nll():
    with pytest.raises(NotImplementedError, match="gaussian_std"):
        GaussianLikelihood().nll(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1))


@pytest.mark.parametrize("value", [0, 77, 128, 255])
def test_discretised_gaussian_matches_hand_calculation(value):
    mu, s, x, h = 0.05, 0.03, value / 255 - 0.5, 0.5 / 255
    if value == 255:
        p = _phi((mu - (x - h)) / s)  # 1 - Phi(b) = Phi(-b)
    else:
        p = _phi((x + h - mu) / s) - (0.0 if value == 0 else _phi((x - h - mu) / s))
    output = torch.tensor(mu).view(1, 1, 1, 1)
    images = torch.tensor(x, dtype=torch.float32).view(1, 1, 1, 1)
    nll = GaussianLikelihood(std=s).nll(output, images)
    torch.testing.assert_close(nll, torch.tensor([-math.log(p)]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mu", [-0.6, -0.1, 0.0, 0.3, 0.55])
def test_discretised_gaussian_probabilities_sum_to_one(mu):
    probs = _probabilities_of_all_values(GaussianLikelihood(std=0.05),
                                         torch.tensor(mu).view(1, 1, 1, 1))
    assert abs(float(probs.sum()) - 1) < 1e-4


@pytest.mark.parametrize("name", ["gaussian", "categorical", "logistic_mixture"])
def test_decoder_output_of_the_wrong_shape_is_rejected(name):
    likelihood = make_likelihood(name, mixtures=2)
    with pytest.raises(ValueError, match="must have shape"):
        likelihood.loss(torch.zeros(1, 7, 2, 2), torch.zeros(1, 3, 2, 2))


def test_unknown_likelihood_name_is_rejected():
    with pytest.raises(ValueError, match="'poisson'"):
        make_likelihood("poisson")


def test_channels_last_output_gives_the_same_nll():
    torch.manual_seed(0)
    images = to_bins(torch.rand(2, 3, 4, 4) - 0.5).float() / 255 - 0.5
    for likelihood in (CategoricalLikelihood(), LogisticMixtureLikelihood(mixtures=2)):
        output = torch.randn(2, likelihood.output_channels(3), 4, 4)
        expected = likelihood.nll(output, images)
        got = likelihood.nll(output.contiguous(memory_format=torch.channels_last),
                             images.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(got, expected)


def test_channels_last_categorical_gives_the_same_loss_mean_and_gradient():
    torch.manual_seed(0)
    images = to_bins(torch.rand(2, 3, 4, 5) - 0.5).float() / 255 - 0.5
    likelihood = CategoricalLikelihood()
    results = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        output = torch.randn(2, 3 * 256, 4, 5, generator=torch.Generator().manual_seed(1))
        output = output.contiguous(memory_format=memory_format).requires_grad_()
        loss, mean = likelihood.loss_and_mean(output, images)
        loss.backward()
        results.append((loss, mean, output.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_loss_and_mean_equal_loss_and_mean_separately():
    from vqvae.nets.likelihood import make_likelihood

    torch.manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 4, 4)).float() / 255 - 0.5
    for name, channels in (("categorical", 3 * 256), ("gaussian", 3), ("logistic_mixture", 90)):
        lik = make_likelihood(name)
        out = torch.randn(2, channels, 4, 4)
        loss, mean = lik.loss_and_mean(out, images)
        torch.testing.assert_close(loss, lik.loss(out, images))
        torch.testing.assert_close(mean, lik.mean(out))


def _categorical_reference(output, images):
    """The textbook categorical likelihood: log-softmax, gather, expected value (fp32)."""
    c = images.shape[1]
    logp = torch.log_softmax(output.float().unflatten(1, (c, 256)), dim=2)  # (B, C, 256, H, W)
    nats = -logp.gather(2, to_bins(images).unsqueeze(2)).squeeze(2)
    mean = (logp.exp() * ALL_VALUES.view(1, 1, 256, 1, 1)).sum(2)
    return nats, mean


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
    chunk=st.integers(1, 40), channels_last=st.booleans(), seed=st.integers(0, 2**16),
)
def test_categorical_fused_pass_matches_log_softmax(b, c, h, w, chunk, channels_last, seed):
    """Loss, nll, mean and the gradients of both (through either output) equal the textbook
    computation, in any chunking and either memory layout."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, c, h, w), generator=g).float() / 255 - 0.5
    output = 3 * torch.randn(b, c * 256, h, w, generator=g)
    if channels_last:
        output = output.contiguous(memory_format=torch.channels_last)
    w_nats, w_mean = torch.randn(b, c, h, w, generator=g), torch.randn(b, c, h, w, generator=g)
    likelihood = CategoricalLikelihood()
    likelihood.chunk_rows = chunk  # an instance attribute: rows per chunk on the CPU

    ours = output.clone().requires_grad_()
    loss, mean = likelihood.loss_and_mean(ours, images)
    (loss * 7 + (mean * w_mean).sum()).backward()
    ref = output.clone().requires_grad_()
    ref_nats, ref_mean = _categorical_reference(ref, images)
    (ref_nats.mean() * 7 + (ref_mean * w_mean).sum()).backward()
    torch.testing.assert_close(loss, ref_nats.mean())
    torch.testing.assert_close(mean, ref_mean.clamp(-0.5, 0.5))
    torch.testing.assert_close(ours.grad, ref.grad)

    ours.grad = ref.grad = None
    (likelihood.nll(ours, images) * w_nats.flatten(1).sum(1)).sum().backward()
    ref_nats, _ = _categorical_reference(ref, images)
    (ref_nats.flatten(1).sum(1) * w_nats.flatten(1).sum(1)).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad)
    torch.testing.assert_close(likelihood.mean(output), ref_mean.clamp(-0.5, 0.5))


def test_categorical_bf16_logits_give_fp32_results_and_a_bf16_gradient():
    """The bf16 decoder's logits are read as they are (no fp32 copy kept); the gradient comes
    back in bf16 and agrees with the fp32 computation on the same values."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 4, 4), generator=g).float() / 255 - 0.5
    output = (3 * torch.randn(2, 768, 4, 4, generator=g)).to(torch.bfloat16)
    output = output.contiguous(memory_format=torch.channels_last).requires_grad_()
    loss, mean = CategoricalLikelihood().loss_and_mean(output, images)
    assert loss.dtype == mean.dtype == torch.float32
    loss.backward()
    assert output.grad.dtype == torch.bfloat16
    ref = output.detach().float().requires_grad_()
    ref_nats, ref_mean = _categorical_reference(ref, images)
    ref_nats.mean().backward()
    torch.testing.assert_close(loss, ref_nats.mean())
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(output.grad.float(), ref.grad, rtol=1e-2, atol=1e-7)
