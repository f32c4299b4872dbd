"""Evaluating video prediction in code space (paper section 4.4) and writing rollouts as GIFs.

From windows of held-out episodes: the codes of C context frames and the true actions; the
dynamics prior rolls out N frames in code space, the tokenizer decodes them, and each is
compared with the true frame at horizons 1 .. N (PSNR, SSIM), beside

* ``repeat_last``: the last context frame (the true pixels) repeated, and
* ``actions_hidden``: the same predictor told "unknown" instead of each action,

and, for reference, ``tokenizer``: the true frame's own codes decoded (the best any
prediction in code space can do).  Images are (B, C, H, W) in [-0.5, 0.5] throughout, so the
PSNR peak is 1, as in ``reconstruction.py``.

    result = evaluate_video(tokenizer, dynamics, world, codes, horizon=10)
    print(markdown_table(result))
    sens = action_sensitivity(tokenizer, dynamics, world, codes)

Horizontal shift: turning left swings the view so that its content moves right (a positive
shift in ``horizontal_shift``), turning right moves it left.  ``action_sensitivity`` measures
it on rollouts under "always left" and "always right" and, as a reference, on the recorded
frames.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..data.dataset import resize_images
from ..data.world import World, window_starts
from ..images import to_uint8
from ..model import VQVAE
from ..priors import DynamicsPrior

METHODS = ("model", "actions_hidden", "repeat_last", "tokenizer")
BASELINES = ("actions_hidden", "repeat_last")
# each action replaced by another: the "altered" actions of the sensitivity test
ALTERED = {"noop": "forward", "forward": "noop", "turn_left": "turn_right",
           "turn_right": "turn_left"}


# ---------------------------------------------------------------------- frame metrics
MAX_PSNR = 100.0  # dB, for equal frames (a no-op often repeats a frame exactly)


def frame_psnr(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x 2 in [-0.5, 0.5] -> (B,) PSNR in dB (peak 1), at most ``MAX_PSNR``
    (equal frames), so that a mean over frames stays finite."""
    mse = (pred.float() - truth.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp(min=10 ** (-MAX_PSNR / 10)))


def frame_ssim(pred: torch.Tensor, truth: torch.Tensor, window: int = 11,
               sigma: float = 1.5) -> torch.Tensor:
    """(B, C, H, W) x 2 in [-0.5, 0.5] -> (B,) mean SSIM (Wang et al. 2004) over positions
    and channels: a Gaussian window (11, sigma 1.5; smaller for frames under 11 pixels),
    K1 = 0.01, K2 = 0.03, dynamic range 1, no padding."""
    x, y = pred.float() + 0.5, truth.float() + 0.5
    b, c, h, w = x.shape
    k = min(window, h, w)
    t = torch.arange(k, dtype=torch.float32, device=x.device) - (k - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(c, 1, k, k)

    def blur(z):
        return F.conv2d(z, kernel, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def horizontal_shift(a: torch.Tensor, b: torch.Tensor, max_shift: int) -> torch.Tensor:
    """(B, C, H, W) x 2 -> (B,) the shift s in [-max_shift, max_shift] pixels that best
    maps ``a`` onto ``b`` (b[..., x + s] ~ a[..., x], least mean squared difference over the
    overlap): positive when the content moved right from ``a`` to ``b``."""
    ga, gb = a.float().mean(1), b.float().mean(1)  # (B, H, W) grey
    w = ga.shape[-1]
    max_shift = min(max_shift, w - 1)
    errors = []
    for s in range(-max_shift, max_shift + 1):
        if s >= 0:
            d = gb[..., s:] - ga[..., : w - s]
        else:
            d = gb[..., : w + s] - ga[..., -s:]
        errors.append(d.pow(2).flatten(1).mean(1))
    return torch.stack(errors, 1).argmin(1) - max_shift


# ---------------------------------------------------------------------- evaluation
@dataclass
class VideoEval:
    """Mean PSNR and SSIM of each method at horizons 1 .. N over ``windows`` windows."""

    horizon: int
    windows: int
    psnr: dict[str, list[float]] = field(default_factory=dict)  # METHODS -> N values
    ssim: dict[str, list[float]] = field(default_factory=dict)

    def beats_baselines(self) -> list[int]:
        """The horizons (1-based) at which the model's PSNR and SSIM beat both baselines."""
        return [n + 1 for n in range(self.horizon)
                if all(m["model"][n] > m[b][n] for m in (self.psnr, self.ssim)
                       for b in BASELINES)]

    def to_dict(self) -> dict:
        return {**asdict(self), "beats_baselines_at": self.beats_baselines()}


def _frames(world: World, size: int) -> np.ndarray:
    """The world's frames at the tokenizer's size, (N, size, size, 3) uint8."""
    return resize_images(world.frames, size)


def _images(frames: np.ndarray, device) -> torch.Tensor:
    """(..., H, W, C) uint8 -> (..., C, H, W) in [-0.5, 0.5]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).float().div_(255).sub_(0.5)
    return x.movedim(-1, -3)


def evaluation_windows(world: World, length: int, max_windows: int) -> np.ndarray:
    """Up to ``max_windows`` starts of ``length``-frame windows, spread evenly over ``world``."""
    starts = window_starts(world.episodes, world.steps, length)
    if len(starts) > max_windows:
        starts = starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
    return starts


def _decode(tokenizer: VQVAE, codes: torch.Tensor) -> torch.Tensor:
    """(B, N, h, w) -> (B, N, C, H, W)."""
    return tokenizer.decode(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])


def _rollouts(dynamics: DynamicsPrior, context: torch.Tensor, actions: torch.Tensor,
              temperature: float | None, seed: int) -> torch.Tensor:
    generator = torch.Generator(context.device).manual_seed(seed)
    return dynamics.rollout(context, actions, temperature=temperature or 1.0,
                            argmax=temperature is None, generator=generator)


@torch.no_grad()
def evaluate_video(tokenizer: VQVAE, dynamics: DynamicsPrior, world: World, codes: np.ndarray,
                   *, horizon: int = 10, max_windows: int = 64, batch_size: int = 16,
                   temperature: float | None = None, seed: int = 0,
                   device: str | torch.device = "cpu") -> VideoEval:
    """PSNR and SSIM at each horizon over windows of ``world`` (use held-out episodes).

    Args:
        codes: (N, h, w) the tokenizer's codes of ``world.frames``.
        temperature: None: greedy rollouts (the most likely code each time); else sampled.
    """
    tokenizer, dynamics = tokenizer.to(device).eval(), dynamics.to(device).eval()
    ctx = dynamics.config.context_frames
    starts = evaluation_windows(world, ctx + horizon, max_windows)
    if len(starts) == 0:
        raise ValueError(f"{world.folder}: no episode has the {ctx} + {horizon} consecutive "
                         "frames one window needs")
    frames = _frames(world, tokenizer.config.image_size)
    sums = {m: torch.zeros(2, horizon, dtype=torch.float64) for m in METHODS}  # psnr, ssim
    for i in range(0, len(starts), batch_size):
        s = starts[i : i + batch_size, None]
        context = torch.from_numpy(codes[s + np.arange(ctx)]).to(device).long()
        actions = torch.from_numpy(world.actions[s + ctx - 1 + np.arange(horizon)]).to(device)
        truth = _images(frames[s + ctx + np.arange(horizon)], device)  # (B, N, C, H, W)
        future = torch.from_numpy(codes[s + ctx + np.arange(horizon)]).to(device).long()
        hidden = torch.full_like(actions, dynamics.config.unknown_action)
        outputs = {
            "model": _decode(tokenizer, _rollouts(dynamics, context, actions, temperature, seed)),
            "actions_hidden": _decode(
                tokenizer, _rollouts(dynamics, context, hidden, temperature, seed)),
            "repeat_last": _images(frames[s + ctx - 1], device).expand_as(truth),
            "tokenizer": _decode(tokenizer, future),
        }
        for method, pred in outputs.items():
            for n in range(horizon):
                sums[method][0, n] += frame_psnr(pred[:, n], truth[:, n]).double().sum().cpu()
                sums[method][1, n] += frame_ssim(pred[:, n], truth[:, n]).double().sum().cpu()
    means = {m: (v / len(starts)).tolist() for m, v in sums.items()}
    return VideoEval(horizon, len(starts), {m: v[0] for m, v in means.items()},
                     {m: v[1] for m, v in means.items()})


@dataclass
class ActionSensitivity:
    """Does the rollout follow the actions?  PSNRs are means over horizons and windows."""

    psnr_true_actions: float
    psnr_altered_actions: float  # each action replaced by ALTERED's
    true_closer: float  # fraction of windows whose true-action rollout is closer to the truth
    shift_left: float  # mean shift (pixels per frame) rolling out "turn_left" only
    shift_right: float
    left_right_ordered: float  # fraction of contexts with shift_left > shift_right
    recorded_shift_left: float  # the same measured on recorded turn_left frames
    recorded_shift_right: float
    windows: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def action_sensitivity(tokenizer: VQVAE, dynamics: DynamicsPrior, world: World,
                       codes: np.ndarray, *, horizon: int = 10, turn_frames: int = 3,
                       max_windows: int = 32, batch_size: int = 16,
                       temperature: float | None = None, seed: int = 0,
                       device: str | torch.device = "cpu") -> ActionSensitivity:
    """Rollouts from the same contexts under the true, altered, all-left and all-right
    actions, compared with the truth and by the horizontal shift between frames."""
    tokenizer, dynamics = tokenizer.to(device).eval(), dynamics.to(device).eval()
    names = list(world.action_names)
    ctx = dynamics.config.context_frames
    starts = evaluation_windows(world, ctx + horizon, max_windows)
    if len(starts) == 0:
        raise ValueError(f"{world.folder}: no window of {ctx} + {horizon} frames")
    frames = _frames(world, tokenizer.config.image_size)
    width = frames.shape[2]
    max_shift = max(2, width // 4)
    altered_of = torch.tensor([names.index(ALTERED.get(n, n)) for n in names], device=device)
    true_psnr, altered_psnr, closer, left, right, ordered = [], [], [], [], [], []
    for i in range(0, len(starts), batch_size):
        s = starts[i : i + batch_size, None]
        context = torch.from_numpy(codes[s + np.arange(ctx)]).to(device).long()
        actions = torch.from_numpy(world.actions[s + ctx - 1 + np.arange(horizon)]).to(device)
        truth = _images(frames[s + ctx + np.arange(horizon)], device)
        scores = []
        for acts in (actions, altered_of[actions]):
            pred = _decode(tokenizer, _rollouts(dynamics, context, acts, temperature, seed))
            scores.append(frame_psnr(pred.flatten(0, 1), truth.flatten(0, 1))
                          .view(len(s), horizon).mean(1))
        true_psnr.append(scores[0])
        altered_psnr.append(scores[1])
        closer.append((scores[0] > scores[1]).float())
        start = tokenizer.decode(context[:, -1])[:, None]  # (B, 1, C, H, W)
        shifts = []
        for name in ("turn_left", "turn_right"):
            acts = torch.full((len(s), turn_frames), names.index(name), device=device)
            seq = torch.cat([start, _decode(tokenizer, _rollouts(dynamics, context, acts,
                                                                 temperature, seed))], 1)
            per_frame = [horizontal_shift(seq[:, n], seq[:, n + 1], max_shift).float()
                         for n in range(turn_frames)]
            shifts.append(torch.stack(per_frame, 1).mean(1))
        left.append(shifts[0])
        right.append(shifts[1])
        ordered.append((shifts[0] > shifts[1]).float())

    def mean(parts):
        return torch.cat(parts).mean().item()

    return ActionSensitivity(
        psnr_true_actions=mean(true_psnr), psnr_altered_actions=mean(altered_psnr),
        true_closer=mean(closer), shift_left=mean(left), shift_right=mean(right),
        left_right_ordered=mean(ordered),
        recorded_shift_left=recorded_shift(world, frames, "turn_left", max_shift),
        recorded_shift_right=recorded_shift(world, frames, "turn_right", max_shift),
        windows=len(starts))


def recorded_shift(world: World, frames: np.ndarray, action: str, max_shift: int,
                   max_pairs: int = 256) -> float:
    """Mean horizontal shift from frame t to t + 1 over recorded steps taking ``action``
    (nan if there is none)."""
    pairs = window_starts(world.episodes, world.steps, 2)
    pairs = pairs[world.actions[pairs] == world.action_names.index(action)][:max_pairs]
    if len(pairs) == 0:
        return math.nan
    a, b = _images(frames[pairs], "cpu"), _images(frames[pairs + 1], "cpu")
    return horizontal_shift(a, b, max_shift).float().mean().item()


def rollout_seconds(dynamics: DynamicsPrior, context: torch.Tensor, frames: int = 10,
                    temperature: float | None = None) -> float:
    """Seconds to roll out ``frames`` frames (in code space) from ``context`` (B, C, h, w)."""
    actions = torch.zeros(context.shape[0], frames, dtype=torch.long, device=context.device)
    t0 = time.perf_counter()
    _rollouts(dynamics.eval(), context, actions, temperature, 0)
    if context.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def markdown_table(result: VideoEval) -> str:
    """One row per horizon: PSNR (dB) and SSIM of each method."""
    heads = {"model": "model", "actions_hidden": "actions hidden",
             "repeat_last": "repeat last", "tokenizer": "tokenizer (bound)"}
    cols = [f"PSNR {heads[m]}" for m in METHODS] + [f"SSIM {heads[m]}" for m in METHODS]
    lines = ["| horizon | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for n in range(result.horizon):
        psnr = [f"{result.psnr[m][n]:.2f}" for m in METHODS]
        ssim = [f"{result.ssim[m][n]:.3f}" for m in METHODS]
        lines.append(f"| {n + 1} | " + " | ".join(psnr + ssim) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- GIF
def save_rollout_gif(path: str | os.PathLike, prediction: torch.Tensor,
                     truth: torch.Tensor | None = None, context: torch.Tensor | None = None,
                     labels: list[str] | None = None, duration_ms: int = 300,
                     min_width: int = 128) -> Path:
    """An animated GIF: the context frames, then each predicted frame; beside the truth
    (truth | prediction) when ``truth`` is given.

    Args:
        prediction: (N, C, H, W) in [-0.5, 0.5]; truth: the same shape or None.
        context: (T, C, H, W) shown first, in both panels, labelled "context".
        labels: one caption per predicted frame (e.g. the action that led to it).
        min_width: panels are scaled up (nearest) to at least this many pixels wide.
    """
    n, _, h, w = prediction.shape
    scale = max(1, math.ceil(min_width / w))
    panels = 1 if truth is None else 2
    gap, top, bottom = 4, 14, 14
    size = (panels * w * scale + (panels - 1) * gap, top + h * scale + bottom)
    titles = ["truth", "prediction"] if truth is not None else ["prediction"]

    def page(images: list[np.ndarray], caption: str) -> Image.Image:
        canvas = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(canvas)
        for k, (im, title) in enumerate(zip(images, titles, strict=True)):
            x = k * (w * scale + gap)
            big = Image.fromarray(im).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(big, (x, top))
            draw.text((x + 2, 1), title, fill="black")
        draw.text((2, top + h * scale + 1), caption, fill="black")
        return canvas

    pages = []
    if context is not None:
        for t, im in enumerate(to_uint8(context)):
            pages.append(page([im] * panels, f"context {t + 1}/{len(context)}"))
    pred = to_uint8(prediction)
    true = to_uint8(truth) if truth is not None else None
    for i in range(n):
        caption = f"t+{i + 1}" + (f" {labels[i]}" if labels else "")
        pages.append(page([true[i], pred[i]] if true is not None else [pred[i]], caption))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pages[0].save(tmp, format="GIF", save_all=True, append_images=pages[1:],
                  duration=duration_ms, loop=0)
    os.replace(tmp, path)
    return path
