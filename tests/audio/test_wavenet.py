import pytest
import torch
import torch.nn.functional as F

from vqvae.nets.audio import AudioEncoder
from vqvae.nets.wavenet import WaveNet


def _net(upsample="repeat", speakers=3, seed=0):
    torch.manual_seed(seed)
    return WaveNet(6, 10, layers=3, stacks=2, cond_dim=5, hop=4, upsample=upsample,
                   num_speakers=speakers, speaker_dim=3).double()


# ---------------------------------------------------------------- encoder
@pytest.mark.parametrize("halvings", [6, 7])
def test_encoder_gives_one_code_per_hop_samples(halvings):
    enc = AudioEncoder(8, 16, halvings)
    z = enc(torch.randn(2, 3 * 2**halvings))
    assert z.shape == (2, 16, 3) and enc.hop == 2**halvings
    strided = [m for m in enc.net if isinstance(m, torch.nn.Conv1d) and m.stride == (2,)]
    assert len(strided) == halvings and all(m.kernel_size == (4,) for m in strided)


def test_encoder_refuses_a_length_that_is_not_a_whole_number_of_codes():
    with pytest.raises(ValueError, match="divisible by 64"):
        AudioEncoder(8, 16)(torch.randn(1, 100))


# ---------------------------------------------------------------- WaveNet
@pytest.mark.parametrize("upsample", ["repeat", "transposed"])
def test_output_at_t_depends_only_on_the_receptive_field_before_t(upsample):
    net = _net(upsample)
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


@pytest.mark.parametrize("upsample", ["repeat", "transposed"])
def test_cached_steps_give_the_teacher_forced_logits(upsample):
    net = _net(upsample)
    length = 40  # beyond the receptive field (15): the queues wrap around
    samples = torch.randint(256, (3, length))
    codes = torch.randn(3, 5, length // 4, dtype=torch.double)
    speaker = torch.tensor([2, 0, 1])
    expected = net(samples, codes, speaker)
    state = net.incremental(codes, speaker)
    previous = torch.full((3,), 128)
    for t in range(length):
        torch.testing.assert_close(state.step(previous), expected[:, :, t], rtol=0, atol=1e-10)
        previous = samples[:, t]


def test_cached_and_recomputed_generation_draw_the_same_samples():
    net = _net()
    codes, speaker = torch.randn(2, 5, 10, dtype=torch.double), torch.tensor([1, 1])
    a = net.generate(codes, speaker, generator=torch.Generator().manual_seed(5))
    b = net.generate(codes, speaker, generator=torch.Generator().manual_seed(5), cache=False)
    assert a.shape == (2, 40) and torch.equal(a, b)
    c = net.generate(codes, speaker, 17, generator=torch.Generator().manual_seed(6))
    d = net.generate(codes, speaker, 17, generator=torch.Generator().manual_seed(6), cache=False)
    assert c.shape == (2, 17) and torch.equal(c, d) and not torch.equal(a[:, :17], c)


def test_the_speaker_changes_every_output():
    net = _net()
    samples, codes = torch.randint(256, (1, 16)), torch.randn(1, 5, 4, dtype=torch.double)
    a = net(samples, codes, torch.tensor([0]))
    b = net(samples, codes, torch.tensor([1]))
    assert torch.equal(a, net(samples, codes, torch.tensor([0])))
    assert ((a - b).abs().amax(1) > 1e-6).all()


@pytest.mark.parametrize("upsample", ["repeat", "transposed"])
def test_a_code_changes_its_own_samples_and_later_ones_only(upsample):
    net = _net(upsample)
    samples, codes = torch.randint(256, (1, 32)), torch.randn(1, 5, 8, dtype=torch.double)
    changed = codes.clone()
    changed[:, :, 3] += 1.0
    diff = (net(samples, codes, torch.tensor([0])) - net(samples, changed, torch.tensor([0])))
    diff = diff.abs().amax(1)[0]
    assert (diff[:12] == 0).all() and (diff[12:16] > 0).all()


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
