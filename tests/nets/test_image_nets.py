import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vqvae import VQVAE, VQVAEConfig
from vqvae.nets import ImageDecoder, ImageEncoder, ResidualStack, num_halvings
from vqvae.nets.blocks import ResidualBlock


def _nets(factor, channels=3, dim=6, out_channels=5):
    encoder = ImageEncoder(channels, hidden=8, residual_layers=1, residual_hidden=4,
                           out_dim=dim, downsample=factor)
    decoder = ImageDecoder(dim, hidden=8, residual_layers=1, residual_hidden=4,
                           out_channels=out_channels, upsample=factor)
    return encoder, decoder


@settings(max_examples=25, deadline=None)
@given(
    exponent=st.integers(0, 3),
    rows=st.integers(1, 3),
    cols=st.integers(1, 3),
    batch=st.integers(1, 2),
    channels=st.integers(1, 3),
)
def test_encoder_divides_and_decoder_multiplies_the_grid_by_the_factor(
    exponent, rows, cols, batch, channels
):
    factor = 2**exponent
    encoder, decoder = _nets(factor, channels=channels)
    images = torch.randn(batch, channels, rows * factor, cols * factor)
    latents = encoder(images)
    assert latents.shape == (batch, 6, rows, cols)
    assert decoder(latents).shape == (batch, 5, rows * factor, cols * factor)


@pytest.mark.parametrize("factor, halvings", [(1, 0), (2, 1), (4, 2), (8, 3), (16, 4)])
def test_one_strided_layer_per_halving(factor, halvings):
    encoder, decoder = _nets(factor)
    strided = [m for m in encoder.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    transposed = [m for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert num_halvings(factor) == halvings
    assert len(strided) == halvings and len(transposed) == halvings
    assert all(m.kernel_size == (4, 4) for m in strided + transposed)


def _layer_kinds(net):
    kinds = ((nn.Conv2d, "conv"), (nn.ConvTranspose2d, "convT"), (nn.ReLU, "relu"),
             (ResidualStack, "residual"))
    out = []
    for m in net.net:
        kind = next(name for cls, name in kinds if isinstance(m, cls))
        if kind in ("conv", "convT"):
            kind += f"{m.kernel_size[0]}s{m.stride[0]}"
        out.append(kind)
    return out


def test_layers_follow_the_paper_order():
    encoder, decoder = _nets(8)
    assert _layer_kinds(encoder) == ["conv4s2", "relu"] * 3 + ["conv3s1", "residual", "conv1s1"]
    assert _layer_kinds(decoder) == ["conv3s1", "residual", "convT4s2", "relu", "convT4s2",
                                     "relu", "convT4s2"]
    encoder, decoder = _nets(1)
    assert _layer_kinds(encoder) == ["conv3s1", "residual", "conv1s1"]
    assert _layer_kinds(decoder) == ["conv3s1", "residual", "conv3s1"]


def test_stage_residual_stacks_sit_between_the_strided_layers_only():
    encoder = ImageEncoder(3, hidden=8, residual_layers=1, residual_hidden=4, out_dim=6,
                           downsample=8, stage_layers=2)
    decoder = ImageDecoder(6, hidden=8, residual_layers=1, residual_hidden=4, out_channels=5,
                           upsample=8, stage_layers=2)
    stage = ["relu", "residual"]
    assert _layer_kinds(encoder) == (["conv4s2", *stage] * 2 + ["conv4s2", "relu", "conv3s1",
                                                                "residual", "conv1s1"])
    assert _layer_kinds(decoder) == ["conv3s1", "residual", "convT4s2", *stage, "convT4s2",
                                     *stage, "convT4s2"]
    assert all(len(m.layers) == 2 for m in encoder.net[2:6:3])
    images = torch.randn(2, 3, 16, 24)
    assert decoder(encoder(images)).shape == (2, 5, 16, 24)
    # one halving: no intermediate resolution, so the networks are the paper's
    for stage_layers in (0, 3):
        encoder = ImageEncoder(3, 8, 1, 4, 6, downsample=2, stage_layers=stage_layers)
        assert _layer_kinds(encoder) == ["conv4s2", "relu", "conv3s1", "residual", "conv1s1"]


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_negative_stage_layers_are_refused_at_every_factor(factor):
    with pytest.raises(ValueError, match="stage_layers"):
        ImageEncoder(3, 8, 1, 4, 6, downsample=factor, stage_layers=-1)
    with pytest.raises(ValueError, match="stage_layers"):
        ImageDecoder(6, 8, 1, 4, 3, upsample=factor, stage_layers=-1)


def test_stage_residual_blocks_take_their_own_width():
    def widths(net):  # channels inside each residual block, in order
        return [m.branch[1].out_channels for m in net.modules() if isinstance(m, ResidualBlock)]

    kw = dict(hidden=8, residual_layers=2, residual_hidden=4, downsample=4, stage_layers=1)
    encoder = ImageEncoder(3, out_dim=6, stage_hidden=16, **kw)
    assert widths(encoder) == [16, 4, 4]
    kw["upsample"] = kw.pop("downsample")
    decoder = ImageDecoder(6, out_channels=3, stage_hidden=16, **kw)
    assert widths(decoder) == [4, 4, 16]
    assert widths(ImageDecoder(6, out_channels=3, **kw)) == [4, 4, 4]
    model = VQVAE(VQVAEConfig(image_size=16, stage_residual_layers=1, stage_residual_hidden=16))
    assert widths(model.encoder)[0] == widths(model.decoder)[-1] == 16
    assert model(torch.rand(2, 3, 16, 16) - 0.5).reconstruction.shape == (2, 3, 16, 16)


def test_decoder_last_layer_produces_the_output_channels():
    _, decoder = _nets(4, out_channels=768)
    assert decoder.net[-1].out_channels == 768
    assert isinstance(decoder.net[-1], nn.ConvTranspose2d)


@pytest.mark.parametrize("factor", [0, 3, 6, 12, -4, True, 2.0])
def test_factor_that_is_not_a_power_of_two_is_rejected(factor):
    with pytest.raises(ValueError, match="power of two"):
        ImageEncoder(3, 8, 1, 4, 6, downsample=factor)
    with pytest.raises(ValueError, match="power of two"):
        ImageDecoder(6, 8, 1, 4, 3, upsample=factor)


def test_image_size_not_divisible_by_the_factor_is_rejected():
    encoder, _ = _nets(4)
    with pytest.raises(ValueError, match="divisible .* 4, got 18 x 16"):
        encoder(torch.randn(1, 3, 18, 16))


def test_wrong_channel_count_is_rejected():
    encoder, decoder = _nets(2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 6, h, w\)"):
        decoder(torch.randn(1, 5, 4, 4))


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    encoder, decoder = _nets(4)
    images = torch.randn(2, 3, 16, 16)
    expected = decoder(encoder(images))
    encoder, decoder = (m.to(memory_format=torch.channels_last) for m in (encoder, decoder))
    got = decoder(encoder(images.contiguous(memory_format=torch.channels_last)))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_runs_in_bf16_and_stays_close():
    torch.manual_seed(0)
    encoder, decoder = _nets(4)
    images = torch.randn(2, 3, 16, 16)
    expected = decoder(encoder(images))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = decoder(encoder(images))
    assert got.dtype == torch.bfloat16
    assert (got.float() - expected).abs().max() < 0.05 * expected.abs().max()
