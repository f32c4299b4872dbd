"""Video prediction in code space from actions, in a 3D first-person world (paper section 4.4).

    python benchmarks/video_rollout.py --out runs/video --tokenizer-steps 10000 \\
        --dynamics-steps 20000 [--episodes 40] [--episode-steps 500] [--size 84] \\
        [--vq-set model.KEY=VALUE] [--set dynamics.KEY=VALUE] [--horizon 10] [--threads N]

1. Records a ViZDoom world (``vqvae world record``; reused when OUT/world already holds the
   same recording): an exploring agent in ``my_way_home``, frames and actions, the last 10 %
   of the episodes held out.
2. Trains the frame tokenizer, the ``vizdoom84`` VQ-VAE (84 x 84 -> 21 x 21 codes, K = 512),
   in OUT/tokenizer; an existing run there is resumed up to the given steps.
3. Trains the dynamics prior (6 context frames + action -> gated PixelCNN over the next frame's
   codes) in OUT/tokenizer/dynamics, likewise resumed.
4. Evaluates on the held-out episodes (``vqvae evaluate-dynamics``): PSNR and SSIM of the
   decoded prediction at horizons 1 .. 10 beside repeating the last context frame and the
   same predictor with the actions hidden; action sensitivity (true vs altered actions, the
   horizontal shift of left vs right turns); seconds to roll out 10 frames on
   ``--timing-threads`` CPU threads.
5. Writes GIFs (``vqvae rollout``): truth | prediction for held-out episodes, and made-up
   turns left and right from the same context.

Prints a markdown table and writes it with the numbers to OUT/results.md and results.json.
Target: the model beats both baselines at every horizon.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vqvae.cli import main as vqvae
from vqvae.config import RunConfig, apply_override
from vqvae.data.world import load_world, record_world
from vqvae.eval.video import VideoEval, markdown_table
from vqvae.train.dynamics_runs import train_dynamics
from vqvae.train.runs import train_vqvae


def run(command: list[str]) -> None:
    if vqvae(command) != 0:
        raise SystemExit(f"vqvae {' '.join(command)} failed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/video")
    p.add_argument("--world", help="a recorded world to use (default: record OUT/world)")
    p.add_argument("--scenario", default="my_way_home")
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--episode-steps", type=int, default=500, help="frames per episode at most")
    p.add_argument("--size", type=int, default=84, help="frame side (84: 21 x 21 codes)")
    p.add_argument("--seed", type=int, default=0, help="of the recording")
    p.add_argument("--tokenizer-steps", type=int, default=10_000)
    p.add_argument("--dynamics-steps", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=32, help="of the tokenizer")
    p.add_argument("--dynamics-batch-size", type=int, default=32)
    p.add_argument("--vq-set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="tokenizer settings over the vizdoom84 preset, e.g. model.hidden=64")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="dynamics or train settings, e.g. dynamics.layers=8")
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--windows", type=int, default=64, help="held-out windows evaluated")
    p.add_argument("--gifs", type=int, default=3, help="held-out episodes drawn as GIFs")
    p.add_argument("--threads", type=int, help="torch threads for training (default: torch's)")
    p.add_argument("--timing-threads", type=int, default=2,
                   help="torch threads for the evaluation and the rollout timing (2)")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    world = Path(args.world) if args.world else out / "world"
    if not args.world:
        record_world(world, args.scenario, args.episodes, args.episode_steps, args.size,
                     args.seed)
    times["record"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tokenizer = out / "tokenizer"
    data = {"preset": "vizdoom84",
            "train": {"steps": args.tokenizer_steps, "batch_size": args.batch_size,
                      "progress": not args.no_progress},
            "data": {"dataset": "world", "path": str(world), "size": args.size}}
    for assignment in args.vq_set:
        apply_override(data, assignment)
    config = RunConfig.from_dict(data, source="--vq-set")
    train_vqvae(config, tokenizer, resume=(tokenizer / "checkpoints").exists(),
                device=args.device)
    times["tokenizer"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    train = {"steps": args.dynamics_steps, "batch_size": args.dynamics_batch_size,
             "progress": not args.no_progress}
    train_dynamics(tokenizer, world=world, settings={"train": train}, assignments=args.set,
                   resume=(tokenizer / "dynamics" / "checkpoints").exists(),
                   device=args.device)
    times["dynamics"] = time.perf_counter() - t0

    torch.set_num_threads(args.timing_threads)
    t0 = time.perf_counter()
    report = out / "eval_video.json"
    run(["evaluate-dynamics", str(tokenizer), "--horizon", str(args.horizon), "--windows",
         str(args.windows), "--json", str(report)])
    times["evaluation"] = time.perf_counter() - t0
    gifs = []
    test = load_world(world, "test")
    for episode in [int(e) for e in test.meta["test_episodes"][: args.gifs]]:
        for name, actions in (("truth", None), ("left", f"L*{args.horizon}"),
                              ("right", f"R*{args.horizon}")):
            gif = out / "gifs" / f"episode{episode}_{name}.gif"
            extra = ["--actions", actions] if actions else ["--frames", str(args.horizon)]
            run(["rollout", str(tokenizer), "--context", f"{episode}:0", *extra, "-o", str(gif)])
            gifs.append(gif)

    results = json.loads(report.read_text())
    pred = results["prediction"]
    table = markdown_table(VideoEval(pred["horizon"], pred["windows"], pred["psnr"],
                                     pred["ssim"]))
    sens = results["actions"]
    lines = [
        f"World: {world} ({test.meta['scenario']}, {test.meta['size']} px, "
        f"{test.meta['num_episodes']} episodes of at most {test.meta['steps_per_episode']} "
        f"frames, held out {test.meta['test_episodes']}); tokenizer {args.tokenizer_steps} "
        f"steps, dynamics {args.dynamics_steps} steps; greedy rollouts over {pred['windows']} "
        "held-out windows.",
        "",
        table,
        "",
        f"Beats both baselines (PSNR and SSIM) at horizons: "
        f"{pred['beats_baselines_at'] or 'none'} of 1-{pred['horizon']}.",
        "",
        "| action sensitivity | value |",
        "|---|---|",
        f"| PSNR, true actions (dB) | {sens['psnr_true_actions']:.2f} |",
        f"| PSNR, altered actions (dB) | {sens['psnr_altered_actions']:.2f} |",
        f"| windows where the true actions are closer | {sens['true_closer']:.0%} |",
        f"| shift per frame turning left / right, predicted (px) | "
        f"{sens['shift_left']:+.2f} / {sens['shift_right']:+.2f} |",
        f"| shift per frame turning left / right, recorded (px) | "
        f"{sens['recorded_shift_left']:+.2f} / {sens['recorded_shift_right']:+.2f} |",
        f"| contexts where left shifts more to the right than right | "
        f"{sens['left_right_ordered']:.0%} |",
        f"| seconds to roll out 10 frames ({results['threads']} threads) | "
        f"{results['rollout_10_seconds']:.2f} |",
        "",
        "Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()),
        "GIFs: " + ", ".join(str(g) for g in gifs),
    ]
    text = "\n".join(lines)
    print("\n" + text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({**results, "wall_seconds": times,
                                                  "args": vars(args)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
