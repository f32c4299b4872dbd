import math

import numpy as np
import pytest
import torch

from vqvae.audio import SILENCE_CLASS, mu_law_decode, mu_law_encode


def test_every_class_survives_decode_then_encode():
    classes = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(classes)), classes)


def test_encode_picks_the_nearest_class_in_the_companded_domain():
    x = torch.linspace(-1, 1, 100_001, dtype=torch.float64)
    c = mu_law_encode(x)

    def compand(v):
        return torch.sign(v) * torch.log1p(255 * v.abs()) / math.log(256)

    error = (compand(mu_law_decode(c, dtype=torch.float64)) - compand(x)).abs()
    assert error.max() <= 1 / 255 + 1e-12  # half of the step 2 / 255
    centres = mu_law_decode(torch.arange(256), dtype=torch.float64)
    # in amplitude, within one step of the neighbouring centres
    lo, hi = centres[(c - 1).clamp(min=0)], centres[(c + 1).clamp(max=255)]
    assert ((lo - 1e-12 <= x) & (x <= hi + 1e-12)).all()


def test_silence_and_extremes_map_to_the_middle_and_the_ends():
    c = mu_law_encode(torch.tensor([0.0, -1.0, 1.0, -3.0, 3.0]))
    assert c.tolist() == [SILENCE_CLASS, 0, 255, 0, 255]
    assert mu_law_decode(torch.tensor([0, 255])).tolist() == [-1.0, 1.0]


def test_steps_are_fine_near_zero_and_coarse_near_full_scale():
    steps = mu_law_decode(torch.arange(256), dtype=torch.float64).diff()
    assert steps[127] < 1e-3 < 0.02 < steps[-1]
    assert (steps > 0).all()


def test_numpy_in_numpy_out():
    x = np.linspace(-1, 1, 11)
    c = mu_law_encode(x)
    assert isinstance(c, np.ndarray) and c.dtype == np.int64
    assert isinstance(mu_law_decode(c), np.ndarray)
    assert np.allclose(mu_law_decode(c), x, atol=0.02)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int64])
def test_integer_samples_are_refused_with_a_hint(dtype):
    with pytest.raises(TypeError, match="32768"):
        mu_law_encode(torch.tensor([0, 1], dtype=dtype))
