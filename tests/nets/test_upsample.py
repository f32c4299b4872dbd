import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from vqvae.nets.upsample import ConvTranspose2x, phase_matrix, subpixel_conv_transpose


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach()).norm() / b.detach().norm())


@settings(max_examples=15, deadline=None)
@given(c_in=st.integers(1, 9), c_out=st.integers(1, 9), h=st.integers(1, 6), w=st.integers(1, 6),
       batch=st.integers(1, 3))
def test_bf16_subpixel_route_matches_the_transposed_convolution(c_in, c_out, h, w, batch):
    torch.manual_seed(c_in * 100 + c_out * 10 + h)
    layer = ConvTranspose2x(c_in, c_out)
    x = torch.randn(batch, c_in, h, w, requires_grad=True)
    grad = torch.randn(batch, c_out, 2 * h, 2 * w)
    # the reference sees what the bf16 route sees: inputs and incoming gradient rounded to bf16
    rounded = [t.detach().bfloat16().float().requires_grad_() for t in (x, *layer.parameters())]
    expected = nn.functional.conv_transpose2d(*rounded, stride=2, padding=1)
    want = torch.autograd.grad(expected, rounded, grad.bfloat16().float())
    out = subpixel_conv_transpose(x, layer.weight, layer.bias, torch.bfloat16)
    assert out.shape == (batch, c_out, 2 * h, 2 * w) and out.dtype == torch.bfloat16
    got = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad)
    # what remains is fp32 accumulation order and rounding the results to bf16 (2^-9)
    assert _relative(out, expected) < 1e-2
    for g, wg in zip(got, want, strict=True):
        assert g.dtype == torch.float32 and g.shape == wg.shape
        assert _relative(g, wg) < 1e-2


def test_fp32_route_is_the_plain_transposed_convolution():
    torch.manual_seed(0)
    layer = ConvTranspose2x(4, 3)
    plain = nn.ConvTranspose2d(4, 3, kernel_size=4, stride=2, padding=1)
    plain.load_state_dict(layer.state_dict())  # same parameters, same keys
    x = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(layer(x), plain(x), rtol=0, atol=0)


def test_phase_matrix_in_fp32_reproduces_the_transposed_convolution_exactly():
    torch.manual_seed(0)
    layer = ConvTranspose2x(3, 2)
    x = torch.randn(1, 3, 4, 4)
    padded = nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))
    patches = torch.cat([padded[:, i:i + 5, j:j + 5] for i in (0, 1) for j in (0, 1)], -1)
    phases = (patches @ phase_matrix(layer.weight.detach())).view(1, 5, 5, 2, 2, 2)
    expected = nn.functional.conv_transpose2d(x, layer.weight.detach(), None, 2, 1)
    for a in (0, 1):
        for c in (0, 1):
            torch.testing.assert_close(phases[:, a:a + 4, c:c + 4, a, c].permute(0, 3, 1, 2),
                                       expected[:, :, a::2, c::2])


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_widening_layer_under_bf16_autocast_takes_the_subpixel_route(memory_format):
    layer = ConvTranspose2x(5, 6)
    x = torch.randn(2, 5, 3, 4).contiguous(memory_format=memory_format)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)  # the product's layout
    assert out.grad_fn.name() != "ConvolutionBackward0"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ConvTranspose2x(6, 6)(torch.randn(2, 6, 3, 4)).grad_fn.name() == \
            "ConvolutionBackward0"
