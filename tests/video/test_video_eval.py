"""Video evaluation: PSNR, SSIM, horizontal shift, per-horizon tables, baselines, GIFs."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from vqvae.data.world import load_world
from vqvae.eval.video import (
    VideoEval,
    action_sensitivity,
    evaluate_video,
    frame_psnr,
    frame_ssim,
    horizontal_shift,
    markdown_table,
    recorded_shift,
    rollout_seconds,
    save_rollout_gif,
)
from vqvae.model import VQVAE, VQVAEConfig
from vqvae.priors import DynamicsConfig, DynamicsPrior
from vqvae.priors.codes import encode_images


def images(n=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) - 0.5


def test_psnr_and_ssim_are_perfect_for_equal_frames_and_lower_for_noisy_ones():
    x = images()
    assert torch.allclose(frame_psnr(x, x), torch.full((4,), 100.0))  # capped, finite
    assert torch.allclose(frame_ssim(x, x), torch.ones(4))
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)))
    psnr, ssim = frame_psnr(noisy, x), frame_ssim(noisy, x)
    assert psnr.shape == ssim.shape == (4,)
    assert (psnr < 25).all() and (ssim < 0.99).all()
    by_hand = 10 * math.log10(1 / (noisy[0] - x[0]).pow(2).mean().item())
    assert math.isclose(psnr[0].item(), by_hand, rel_tol=1e-5)
    assert frame_ssim(x[:, :, :4, :4], x[:, :, :4, :4]).shape == (4,)  # smaller than 11 px


@pytest.mark.parametrize("shift", [-3, 0, 2, 5])
def test_horizontal_shift_finds_how_far_the_content_moved_right(shift):
    base = images(2, size=32)
    moved = torch.roll(base, shifts=shift, dims=-1)
    assert horizontal_shift(base, moved, max_shift=8).tolist() == [shift, shift]


def test_recorded_turns_move_the_view_the_right_way(world_dir):
    world = load_world(world_dir)
    left = recorded_shift(world, world.frames, "turn_left", max_shift=8)
    right = recorded_shift(world, world.frames, "turn_right", max_shift=8)
    assert left > 1 and right < -1  # turning left moves the content right


@pytest.fixture(scope="module")
def untrained(world_dir):
    """(tokenizer, dynamics prior, held-out world, its codes): tiny and untrained."""
    torch.manual_seed(0)
    tokenizer = VQVAE(VQVAEConfig(image_size=32, hidden=8, residual_hidden=4, residual_layers=1,
                                  embedding_dim=8, num_codes=16)).eval()
    dynamics = DynamicsPrior(DynamicsConfig(num_codes=16, height=8, width=8, context_frames=2,
                                            code_embedding=4, context_hidden=8,
                                            context_layers=1, cond_channels=4, channels=8,
                                            layers=2, kernel_size=3)).eval()
    world = load_world(world_dir, "test")
    return tokenizer, dynamics, world, encode_images(tokenizer, world.frames, progress=False)


def test_evaluation_reports_each_method_at_each_horizon_on_held_out_windows(untrained):
    tokenizer, dynamics, world, codes = untrained
    result = evaluate_video(tokenizer, dynamics, world, codes, horizon=3, max_windows=5,
                            batch_size=2)
    assert result.horizon == 3 and result.windows == 5
    for metric in (result.psnr, result.ssim):
        assert set(metric) == {"model", "actions_hidden", "repeat_last", "tokenizer"}
        assert all(len(v) == 3 and all(np.isfinite(v)) for v in metric.values())
    # repeat_last at horizon 1 is the PSNR between consecutive recorded frames
    assert 5 < result.psnr["repeat_last"][0] < 60
    table = markdown_table(result).splitlines()
    assert len(table) == 2 + 3 and table[0].startswith("| horizon | PSNR model")
    assert result.to_dict()["beats_baselines_at"] == result.beats_baselines()
    with pytest.raises(ValueError, match="consecutive"):
        evaluate_video(tokenizer, dynamics, world, codes, horizon=100)


def test_the_model_beats_the_baselines_only_where_it_beats_both_in_psnr_and_ssim():
    r = VideoEval(3, 10, psnr={"model": [30, 20, 10], "actions_hidden": [25, 25, 5],
                               "repeat_last": [20, 15, 5], "tokenizer": [40, 40, 40]},
                  ssim={"model": [0.9, 0.9, 0.1], "actions_hidden": [0.8, 0.8, 0.2],
                        "repeat_last": [0.7, 0.7, 0.05], "tokenizer": [1, 1, 1]})
    assert r.beats_baselines() == [1]


def test_action_sensitivity_and_rollout_time_are_measured(untrained):
    tokenizer, dynamics, world, codes = untrained
    sens = action_sensitivity(tokenizer, dynamics, world, codes, horizon=2, turn_frames=2,
                              max_windows=3)
    assert sens.windows == 3 and 0 <= sens.true_closer <= 1
    assert 0 <= sens.left_right_ordered <= 1
    assert sens.recorded_shift_left > 0 > sens.recorded_shift_right
    seconds = rollout_seconds(dynamics, torch.from_numpy(codes[None, :2]).long(), frames=3)
    assert seconds > 0


def test_gif_shows_context_then_truth_beside_prediction(tmp_path):
    pred, truth, context = images(3), images(3, seed=1), images(2, seed=2)
    path = save_rollout_gif(tmp_path / "r.gif", pred, truth, context, ["forward"] * 3)
    gif = Image.open(path)
    assert gif.n_frames == 5
    alone = Image.open(save_rollout_gif(tmp_path / "p.gif", pred, labels=["a", "b", "c"]))
    assert alone.n_frames == 3
    assert gif.size[0] == 2 * alone.size[0] + 4 and gif.size[1] == alone.size[1]
    assert alone.size[0] >= 128  # small frames are scaled up
    gif.seek(4)
    frame = np.asarray(gif.convert("RGB"))
    assert frame.shape[:2] == (gif.size[1], gif.size[0])
    assert not list(tmp_path.glob(".*.tmp"))
