"""The video commands of the ``vqvae`` command line (paper section 4.4):

vqvae world record DIR [--scenario my_way_home] [--episodes 40] [--steps 500] [--size 84]
vqvae train --preset vizdoom84 --dataset world --data DIR       (the frame tokenizer)
vqvae train-dynamics RUN [--world DIR] [--steps N] [--set dynamics.context_frames=6]
vqvae rollout RUN --context EPISODE[:START] [--actions F,F,L,L,R] [--frames 10] -o out.gif
vqvae evaluate-dynamics RUN [--horizon 10] [--windows 64] [--json FILE]

``rollout`` writes the true frames beside the predicted ones when the truth is known (no
--actions, or the recorded ones), and the prediction alone for a made-up action sequence.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .data.dataset import resize_images
from .data.world import load_world, parse_actions, record_world
from .errors import UsageError, require_positive
from .model import VQVAE
from .priors.codes import checkpoint_weights, encode_images, file_sha256


# ---------------------------------------------------------------------------- world
def cmd_world_record(args) -> int:
    meta = record_world(args.folder, args.scenario, args.episodes, args.steps, args.size,
                        args.seed, shard_episodes=args.shard_episodes)
    print(f"{meta['frames']} frames of {meta['num_episodes']} episodes of {meta['scenario']} "
          f"({meta['size']} x {meta['size']}, seed {meta['seed']}; actions "
          f"{', '.join(meta['action_names'])}) in {args.folder}; held-out episodes "
          f"{meta['test_episodes']}")
    print(f"next: vqvae train --preset vizdoom84 --dataset world --data {args.folder}")
    return 0


# ---------------------------------------------------------------------------- train
def cmd_train_dynamics(args) -> int:
    from .train.dynamics_runs import train_dynamics

    flags = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
             "seed": args.seed}
    train = {k: v for k, v in flags.items() if v is not None}
    if args.no_progress:
        train["progress"] = False
    train_dynamics(args.run, world=args.world, settings={"train": train},
                   assignments=args.set or [], out=args.out, resume=args.resume,
                   device=args.device)
    return 0


# ---------------------------------------------------------------------------- use a model
def _load(args):
    """(tokenizer, dynamics prior, world folder, device) as the arguments say."""
    from .train.dynamics_runs import load_dynamics, resolve_world

    device = args.device or "cpu"
    tokenizer = VQVAE.from_pretrained(args.run, map_location=device)
    folder = Path(args.dynamics) if args.dynamics else Path(args.run) / "dynamics"
    model = load_dynamics(folder, args.run, tokenizer, device)
    world = resolve_world(Path(args.run), args.world or model.metadata.get("world"))
    if args.temperature is not None:
        require_positive("--temperature", args.temperature)
    return tokenizer, model, world, device


def _parse_context(text: str) -> tuple[int, int]:
    episode, _, start = text.partition(":")
    if not episode.strip().isdigit() or (start and not start.strip().isdigit()):
        raise UsageError(f"--context {text!r}: expected EPISODE[:START], two non-negative "
                         "integers, e.g. 36 or 36:120")
    return int(episode), int(start or 0)


def cmd_rollout(args) -> int:
    from .eval.video import frame_psnr, save_rollout_gif

    tokenizer, model, world_dir, device = _load(args)
    world = load_world(world_dir)
    names = world.action_names
    trained = model.metadata.get("action_names")
    if trained and list(trained) != list(names):
        raise UsageError(f"{world_dir}: its actions {list(names)} are not those the dynamics "
                         f"prior was trained with {trained}")
    episode, start = _parse_context(args.context)
    rows = world.episode_index(episode)
    ctx = model.config.context_frames
    if len(rows) < ctx:
        raise UsageError(f"--context {args.context}: episode {episode} has {len(rows)} frames, "
                         f"fewer than the {ctx} context frames the model needs; choose a "
                         "longer episode")
    if start + ctx > len(rows):
        raise UsageError(f"--context {args.context}: episode {episode} has {len(rows)} frames "
                         f"and the model needs {ctx} context frames, so START must be 0 to "
                         f"{len(rows) - ctx}")
    recorded = world.actions[rows[start + ctx - 1 : -1]].tolist()  # those with a true result
    if args.actions:
        actions = parse_actions(args.actions, names)
    else:
        if args.frames < 1:
            raise UsageError(f"--frames must be at least 1, got {args.frames}")
        actions = recorded[: args.frames]
        if not actions:
            raise UsageError(f"--context {args.context}: no recorded frame follows the context "
                             "in this episode; pass --actions or an earlier START")
    truth_known = actions == recorded[: len(actions)]
    size = tokenizer.config.image_size
    frames = resize_images(world.frames[rows], size)  # (T, S, S, 3) uint8 of the episode
    context = torch.from_numpy(encode_images(tokenizer, frames[start : start + ctx],
                                             device=device, progress=False)).long()
    generator = torch.Generator(device).manual_seed(args.seed)
    t0 = time.perf_counter()
    future = model.rollout(context[None].to(device), torch.tensor([actions], device=device),
                           temperature=args.temperature or 1.0,
                           argmax=args.temperature is None, generator=generator)[0]
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        prediction = tokenizer.decode(future)

    def images(uint8: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(uint8).permute(0, 3, 1, 2).float().div(255).sub(0.5)

    truth = None
    if truth_known:
        truth = images(frames[start + ctx : start + ctx + len(actions)]).to(device)
    out = save_rollout_gif(args.output, prediction, truth, images(frames[start : start + ctx]),
                           [names[a] for a in actions])
    how = "greedy" if args.temperature is None else f"temperature {args.temperature}"
    print(f"rolled out {len(actions)} frames in code space from episode {episode}, frames "
          f"{start}-{start + ctx - 1} ({how}) in {seconds:.2f} s on {device}")
    if truth is not None:
        psnr = frame_psnr(prediction, truth).tolist()
        print("PSNR (dB) per horizon: " + ", ".join(f"{p:.2f}" for p in psnr))
        print(f"truth | prediction: {out}")
    else:
        print(f"prediction (made-up actions, no truth to compare with): {out}")
    return 0


def cmd_evaluate_dynamics(args) -> int:
    from .eval.video import action_sensitivity, evaluate_video, markdown_table, rollout_seconds
    from .train.dynamics_runs import world_codes

    tokenizer, model, world_dir, device = _load(args)
    if args.horizon < 1 or args.windows < 1:
        raise UsageError("--horizon and --windows must be at least 1")
    world = load_world(world_dir, "test")
    codes = world_codes(tokenizer, file_sha256(checkpoint_weights(args.run)), world, "test",
                        Path(args.run), device=device, progress=False)
    common = dict(horizon=args.horizon, temperature=args.temperature, seed=args.seed,
                  device=device)
    try:
        result = evaluate_video(tokenizer, model, world, codes, max_windows=args.windows,
                                **common)
        sens = action_sensitivity(tokenizer, model, world, codes,
                                  max_windows=min(args.windows, 32), **common)
    except ValueError as e:  # episodes too short for one window
        raise UsageError(f"{e}; pass a smaller --horizon") from None
    context = torch.from_numpy(codes[: model.config.context_frames][None]).long().to(device)
    seconds = rollout_seconds(model, context, 10, args.temperature)
    how = "greedy" if args.temperature is None else f"temperature {args.temperature}"
    print(f"held-out episodes {world.meta['test_episodes']} of {world_dir}: {result.windows} "
          f"windows, {model.config.context_frames} context frames, {how} rollouts")
    print(markdown_table(result))
    beats = result.beats_baselines()
    print(f"beats both baselines (PSNR and SSIM) at horizons: {beats or 'none'}")
    print(f"actions: PSNR {sens.psnr_true_actions:.2f} dB with the true ones vs "
          f"{sens.psnr_altered_actions:.2f} altered (true closer in {sens.true_closer:.0%} of "
          f"windows); horizontal shift per frame turning left {sens.shift_left:+.2f} px, right "
          f"{sens.shift_right:+.2f} px (recorded: {sens.recorded_shift_left:+.2f}, "
          f"{sens.recorded_shift_right:+.2f}); left > right in {sens.left_right_ordered:.0%}")
    print(f"speed: {seconds:.2f} s to roll out 10 frames on {device} "
          f"({torch.get_num_threads()} threads)")
    out = Path(args.json) if args.json else Path(args.dynamics or Path(args.run) / "dynamics")
    out = out / "eval_video.json" if out.is_dir() else out
    report = {"world": str(world_dir), "prediction": result.to_dict(),
              "actions": sens.to_dict(), "rollout_10_seconds": seconds,
              "threads": torch.get_num_threads(), "temperature": args.temperature}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return 0


# ---------------------------------------------------------------------------- parsers
def add_video_parsers(sub, run_args) -> None:
    """The commands above; ``run_args(parser, out_help)`` adds the shared training options."""
    w = sub.add_parser("world", help="a 3D first-person world (ViZDoom) for video prediction")
    ws = w.add_subparsers(dest="world_command", required=True)
    r = ws.add_parser("record", help="record an exploring agent's frames and actions")
    r.add_argument("folder", help="where to write the shards and world.json")
    r.add_argument("--scenario", default="my_way_home",
                   help="a built-in ViZDoom scenario (default my_way_home) or a .cfg file")
    r.add_argument("--episodes", type=int, default=40, help="default 40")
    r.add_argument("--steps", type=int, default=500, help="frames per episode at most (500)")
    r.add_argument("--size", type=int, default=84, help="frame side in pixels (84)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--shard-episodes", type=int, default=10, help="episodes per shard (10)")
    r.set_defaults(func=cmd_world_record)

    t = sub.add_parser("train-dynamics", help="train a dynamics prior over a frame "
                       "tokenizer's codes: the next frame from earlier frames and the action")
    t.add_argument("run", help="the frame tokenizer's run folder (an image VQ-VAE)")
    t.add_argument("--world", help="a recorded world (default: the tokenizer's training data)")
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="a setting of dynamics or train, e.g. --set dynamics.layers=8")
    run_args(t, out_help="the dynamics prior's run folder (default: RUN/dynamics)")
    t.set_defaults(func=cmd_train_dynamics)

    def model_args(p) -> None:
        p.add_argument("run", help="the frame tokenizer's run folder")
        p.add_argument("--world", help="the recorded world (default: the dynamics prior's)")
        p.add_argument("--dynamics", metavar="DIR", help="default: RUN/dynamics")
        p.add_argument("--temperature", type=float,
                       help="sample at this temperature (default: greedy, the likeliest codes)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", help="cpu (default) or cuda")

    o = sub.add_parser("rollout", help="predict an episode's next frames in code space -> GIF")
    model_args(o)
    o.add_argument("--context", required=True, metavar="EPISODE[:START]",
                   help="the episode and the step of its first context frame (default 0)")
    o.add_argument("--actions", help="comma-separated: F forward, L turn_left, R turn_right, "
                   "N noop (or full names; ACTION*COUNT repeats); default: the recorded ones")
    o.add_argument("--frames", type=int, default=10,
                   help="frames to predict with the recorded actions (default 10)")
    o.add_argument("-o", "--output", required=True, help="the .gif to write")
    o.set_defaults(func=cmd_rollout)

    e = sub.add_parser("evaluate-dynamics", help="PSNR/SSIM per horizon beside the baselines, "
                       "action sensitivity, rollout speed (held-out episodes)")
    model_args(e)
    e.add_argument("--horizon", type=int, default=10, help="frames rolled out (10)")
    e.add_argument("--windows", type=int, default=64, help="held-out windows at most (64)")
    e.add_argument("--json", help="the report (default: DYNAMICS/eval_video.json)")
    e.set_defaults(func=cmd_evaluate_dynamics)
