"""The ``vqvae`` command line: parses arguments, then calls the library.

vqvae train [--dataset cifar10 --data PATH] [--preset NAME] [--config FILE] [--steps N]
vqvae train --modality speech [--dataset fsdd|tts_phones|vctk|folder]
vqvae convert RUN in.wav --speaker NAME [--from NAME] -o out.wav
vqvae reconstruct RUN IMAGE... -o OUT
vqvae encode RUN DATA -o codes.npy          (images, or audio for a speech run)
vqvae decode RUN codes.npy -o OUT [--speaker NAME]
vqvae evaluate RUN [--split test] [--prior [DIR]]
vqvae train-prior RUN [--steps N] [--out RUN/prior] [--set prior.channels=64]
vqvae sample RUN [-n 64] [--class C] [--temperature T] [--seed S] -o samples.png
vqvae world record DIR; vqvae train-dynamics RUN; vqvae rollout RUN --context EPISODE[:START]
    [--actions F,F,L,R] -o rollout.gif; vqvae evaluate-dynamics RUN     (video: cli_video.py)
vqvae demo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .cli_video import add_video_parsers
from .config import ConfigError, RunConfig, apply_override, read_config_file
from .data import DataError, load_image_dataset
from .data.paths import codes_meta_path, read_codes_file
from .errors import CheckpointError, UsageError, require_positive
from .model import VQVAE
from .train.loop import TrainingDiverged
from .train.runs import latents_text, load_prior, run_data_config, train_prior, train_vqvae
from .train.speech_runs import (
    SpeechRunConfig,
    convert_wav,
    decode_wav,
    encode_wav,
    evaluate_speech_run,
    is_speech_run,
    reconstruct_wav,
    train_speech,
)

AUDIO_SUFFIXES = (".wav", ".flac")


# ---------------------------------------------------------------------------- train
def _run_config(args):
    """RunConfig (images) or SpeechRunConfig from the file, the resumed run and the flags."""
    run_json = Path(args.out) / "run.json" if args.out else None
    if args.resume and run_json is not None and run_json.is_file():
        data = json.loads(run_json.read_text())
    elif args.config:
        data = read_config_file(args.config)
    else:
        data = {}
    if args.preset:
        data["preset"] = args.preset
    flags = {
        ("data", "dataset"): args.dataset,
        ("data", "path"): args.data,
        ("data", "size"): args.size,
        ("train", "steps"): args.steps,
        ("train", "batch_size"): args.batch_size,
        ("train", "lr"): args.lr,
        ("train", "seed"): args.seed,
        ("train", "amp"): args.amp,
        ("train", "num_workers"): args.workers,
    }
    for (section, key), value in flags.items():
        if value is not None:
            data.setdefault(section, {})[key] = value
    if args.channels_last:
        data.setdefault("train", {})["channels_last"] = True
    if args.no_progress:
        data.setdefault("train", {})["progress"] = False
    for assignment in args.set or []:
        apply_override(data, assignment)
    source = str(args.config or run_json or "flags")
    resumed_speech = "sample_rate" in data.get("model", {})  # a speech run's run.json
    if args.modality == "speech" or (args.modality is None and resumed_speech):
        return SpeechRunConfig.from_dict(data, source=source)
    return RunConfig.from_dict(data, source=source)


def cmd_train(args) -> int:
    config = _run_config(args)
    if isinstance(config, SpeechRunConfig):
        train_speech(config, args.out, resume=args.resume, device=args.device)
    else:
        train_vqvae(config, args.out, resume=args.resume, device=args.device)
    return 0


def cmd_train_prior(args) -> int:
    flags = {
        ("data", "dataset"): args.dataset,
        ("data", "path"): args.data,
        ("train", "steps"): args.steps,
        ("train", "batch_size"): args.batch_size,
        ("train", "lr"): args.lr,
        ("train", "seed"): args.seed,
    }
    settings: dict = {}
    for (section, key), value in flags.items():
        if value is not None:
            settings.setdefault(section, {})[key] = value
    if args.no_progress:
        settings.setdefault("train", {})["progress"] = False
    train_prior(
        args.run,
        settings=settings,
        assignments=args.set or [],
        out=args.out,
        resume=args.resume,
        device=args.device,
    )
    return 0


# ---------------------------------------------------------------------------- use a model
def load_model(run: str | Path, device: str = "cpu") -> VQVAE:
    return VQVAE.from_pretrained(run, map_location=device)


def cmd_evaluate(args) -> int:
    from .eval.reconstruction import evaluate_reconstruction

    if is_speech_run(args.run):
        temperature = require_positive("--temperature",
                                       1.0 if args.temperature is None else args.temperature)
        metrics = evaluate_speech_run(args.run, per_speaker=args.per_speaker,
                                      temperature=temperature, device=args.device or "cpu")
        print(f"{args.run}, test split:")
        for k, v in metrics.items():
            print(f"  {k:36s} {v:.6g}")
        examples = Path(args.run) / "eval_audio"
        print(f"written: {Path(args.run) / 'eval_speech.json'}"
              + (f", examples in {examples}" if args.per_speaker > 0 else ""))
        return 0
    if args.temperature is not None:
        raise UsageError(f"{args.run}: --temperature is for speech runs; this one is not")
    model = load_model(args.run, args.device or "cpu")
    d = run_data_config(args.run)
    dataset = args.dataset or d.get("dataset")
    if dataset is None:
        raise UsageError(
            f"{args.run}: no run.json saying which data it was trained on; "
            "pass --dataset (and --data)"
        )
    path = args.data or d.get("path")
    size = d.get("size") or model.config.image_size
    options = d.get("options", {})
    train = load_image_dataset(dataset, path, "train", size, **options)
    split = load_image_dataset(dataset, path, args.split, size, **options)
    result = evaluate_reconstruction(
        model, split, train_variance=train.variance, device=args.device or "cpu"
    )
    print(f"{dataset} {args.split} split, {len(split)} images:")
    for k, v in result.metrics.items():
        print(f"  {k:20s} {v:.6g}")
    if args.prior is not None:
        _evaluate_prior(args, model, split)
    return 0


def cmd_reconstruct(args) -> int:
    from .images import load_images, save_comparison

    if all(Path(f).suffix.lower() in AUDIO_SUFFIXES for f in args.images):
        return _reconstruct_audio(args)
    model = load_model(args.run)
    c = model.config
    x, notes = load_images(args.images, c.image_size, c.image_channels)
    for note in notes:
        print(note, file=sys.stderr)
    with torch.no_grad():
        recon = model.decode(model.encode(x))
    out = Path(args.output)
    if out.suffix.lower() == ".png" and len(args.images) > 0:
        save_comparison(x, recon, out, nrow=min(8, len(args.images)))
        print(f"originals (top) and reconstructions (bottom): {out}")
    else:
        from .images import grid, save_png

        out.mkdir(parents=True, exist_ok=True)
        for f, r in zip(args.images, recon, strict=True):
            save_png(grid(r[None], 1, pad=0), out / (Path(f).stem + ".png"))
        print(f"{len(args.images)} reconstructions in {out}")
    return 0


def _reconstruct_audio(args) -> int:
    out = Path(args.output)
    if len(args.images) == 1 and out.suffix.lower() != "":
        outputs = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        outputs = [out / (Path(f).stem + ".wav") for f in args.images]
    for f, o in zip(args.images, outputs, strict=True):
        reconstruct_wav(args.run, f, o, speaker=args.speaker, seed=args.seed or 0)
        print(f"{f} -> {o}")
    return 0


def cmd_convert(args) -> int:
    out = convert_wav(args.run, args.input, args.speaker, args.output, source=args.source,
                      seed=args.seed or 0, temperature=args.temperature)
    print(f"{args.input} in the voice of {args.speaker}: {out}")
    return 0


def _image_files(data: Path) -> list[Path]:
    exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise DataError(f"{data}: no such file or folder")
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in exts)
    if not files:
        raise DataError(f"{data}: no images (PNG, JPEG, WebP, BMP) in this folder")
    return files


def _encode_audio(args) -> int:
    data, out = Path(args.data), Path(args.output)
    if data.is_dir():
        files = sorted(f for f in data.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise DataError(f"{data}: no .wav or .flac files in this folder")
        outputs = [out / f.relative_to(data).with_suffix(".npy") for f in files]
    else:
        files, outputs = [data], [out if out.suffix == ".npy" else out / (data.stem + ".npy")]
    for f, o in zip(files, outputs, strict=True):
        path, meta = encode_wav(args.run, f, o, speaker=args.speaker)
        n = meta["samples"] // meta["hop"]
        print(f"{f} -> {path}: {n} codes ({meta['sample_rate'] / meta['hop']:.0f} per second)")
    return 0


def cmd_encode(args) -> int:
    from .images import load_images

    if is_speech_run(args.run):
        return _encode_audio(args)
    if args.speaker is not None:
        raise UsageError(f"{args.run}: --speaker is for speech runs; this one is not")
    model = load_model(args.run)
    c = model.config
    files = _image_files(Path(args.data))
    chunks = []
    for s in range(0, len(files), 256):
        x, _ = load_images(files[s : s + 256], c.image_size, c.image_channels)
        with torch.no_grad():
            chunks.append(model.encode(x).to(torch.int32).numpy())
    codes = np.concatenate(chunks)
    out = Path(args.output)
    np.save(out, codes)
    meta = {
        "format_version": 1,
        "num_codes": c.num_codes,
        "groups": c.groups,
        "latent_shape": list(c.latent_shape),
        "model_config": c.to_dict(),
        "files": [str(f) for f in files],
    }
    codes_meta_path(out).write_text(json.dumps(meta, indent=2))
    print(f"{codes.shape[0]} images -> codes {codes.shape} in {out} "
          f"(metadata {codes_meta_path(out)})")
    return 0


def cmd_decode(args) -> int:
    from .images import grid, save_png

    if is_speech_run(args.run):
        out = decode_wav(args.run, args.codes, args.output, speaker=args.speaker,
                         temperature=args.temperature, seed=args.seed or 0)
        print(f"{args.codes} -> {out}")
        return 0
    model = load_model(args.run)
    c = model.config
    path = Path(args.codes)
    codes, meta = read_codes_file(path)
    if meta:
        if meta.get("num_codes") != c.num_codes or meta.get("groups") != c.groups:
            raise DataError(
                f"{path}: codes for K={meta.get('num_codes')}, "
                f"groups={meta.get('groups')}, but {args.run} has K={c.num_codes}, "
                f"groups={c.groups}"
            )
    if codes.dtype.kind not in "iu":
        raise DataError(f"{path}: codes must be integers, got {codes.dtype}")
    if codes.ndim != len(c.latent_shape) + 1:
        raise DataError(
            f"{path}: codes of shape {codes.shape}; expected (N, "
            f"{', '.join(map(str, c.latent_shape))}) for this model"
        )
    bad = (codes < 0) | (codes >= c.num_codes)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} indices outside the codebook [0, "
            f"{c.num_codes}), e.g. {int(codes[bad][0])}"
        )
    with torch.no_grad():
        images = torch.cat(
            [
                model.decode(torch.from_numpy(codes[s : s + 256]).long())
                for s in range(0, len(codes), 256)
            ]
        )
    out = Path(args.output)
    if out.suffix.lower() == ".png":
        save_png(grid(images, nrow=min(8, len(images))), out)
        print(f"{len(images)} decoded images in the grid {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(images):
            save_png(grid(im[None], 1, pad=0), out / f"{i:05d}.png")
        print(f"{len(images)} decoded images in {out}")
    return 0


def cmd_demo(args) -> int:
    """A short quantizer demonstration on synthetic clustered vectors."""
    from .quantize import VectorQuantizer

    torch.manual_seed(0)
    centres = torch.randn(64, 16) * 3
    vq = VectorQuantizer(num_codes=128, dim=16, init="kmeans++", restart_after=20)
    print(vq)
    for step in range(1, 201):
        z = centres[torch.randint(64, (4096,))] + 0.1 * torch.randn(4096, 16)
        out = vq(z.t().reshape(1, 16, 4096))
        if step in (1, 10, 50, 200):
            print(
                f"step {step:3d}: commitment {out.commitment_loss.item():.4f}, perplexity "
                f"{out.perplexity.item():6.1f}, codes used {out.usage.item():.0%}"
            )
    print(
        "64 clusters quantised with 128 codes; the commitment loss is the mean squared "
        "distance to the nearest code."
    )
    return 0


# ---------------------------------------------------------------------------- priors
def cmd_sample(args) -> int:
    import random

    from .images import grid, save_png

    device = args.device or "cpu"
    model = load_model(args.run, device)
    prior_dir = Path(args.prior) if args.prior else Path(args.run) / "prior"
    prior = load_prior(prior_dir, args.run, model, device)
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    require_positive("--temperature", args.temperature)
    classes = prior.config.num_classes
    names = list(prior.metadata.get("class_names") or [])
    listing = ", ".join(f"{i} = {n}" for i, n in enumerate(names[:20])) or "no names stored"
    if args.class_ is not None:
        if classes == 0:
            raise UsageError(f"--class {args.class_}: {prior_dir} is an unconditional prior")
        if args.class_ in names:
            label = names.index(args.class_)
        elif args.class_.lstrip("-").isdigit():
            label = int(args.class_)
        else:
            raise UsageError(
                f"--class {args.class_}: not a class index or name; this prior "
                f"has {classes} classes, 0 to {classes - 1} ({listing})"
            )
        if not 0 <= label < classes:
            raise UsageError(
                f"--class {args.class_}: out of range; this prior has {classes} "
                f"classes, 0 to {classes - 1} ({listing})"
            )
        labels = torch.full((args.n,), label, dtype=torch.long)
        nrow, what = min(8, args.n), f"class {label}" + (f" ({names[label]})" if names else "")
    elif classes:
        nrow = -(-args.n // classes)  # row c: class c
        labels = torch.arange(args.n) // nrow
        what = f"one row per class, 0 to {classes - 1} ({listing})"
    else:
        labels, nrow, what = None, min(8, args.n), "unconditional"
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    generator = torch.Generator(device).manual_seed(seed)
    t0 = time.perf_counter()
    codes = prior.sample(
        args.n,
        None if labels is None else labels.to(device),
        temperature=args.temperature,
        generator=generator,
    )
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        images = torch.cat([model.decode(codes[s : s + 256]) for s in range(0, args.n, 256)])
    out = save_png(grid(images, nrow), args.output)
    print(
        f"sampled {args.n} code grids of {latents_text(prior.config.latent_shape)} in "
        f"{seconds:.2f} s on {device} (seed {seed}, temperature {args.temperature}, {what})"
    )
    print(f"decoded images: {out}")
    return 0


def _evaluate_prior(args, model: VQVAE, split) -> None:
    import math

    from .eval.bits_per_dim import bits_per_dim

    device = args.device or "cpu"
    prior_dir = Path(args.prior) if args.prior else Path(args.run) / "prior"
    prior = load_prior(prior_dir, args.run, model, device)
    classes = prior.config.num_classes
    if classes and len(split) and not 0 <= split.labels.min() <= split.labels.max() < classes:
        raise UsageError(
            f"{prior_dir}: a prior of {classes} classes, but the {args.split} "
            f"split has labels up to {split.labels.max()}"
        )
    r = bits_per_dim(model, prior, split, device=device)
    print(f"prior {prior_dir}, {r.latents} latents per image, K={r.num_codes}:")
    print(
        f"  {'nll_z_per_latent':20s} {r.nll_z_per_latent:.6g} nats "
        f"(uniform prior: ln K = {math.log(r.num_codes):.6g})"
    )
    print(f"  {'nll_z_nats':20s} {r.nll_z:.6g} per image (uniform prior: {r.nll_z_uniform:.6g})")
    if r.bpd is None:
        print(
            "  bpd: needs a discrete likelihood p(x | z_q) (model.likelihood categorical or "
            "logistic_mixture, or gaussian with gaussian_std)"
        )
    else:
        print(
            f"  {'bpd':20s} {r.bpd:.6g} with the prior (uniform prior: {r.bpd_uniform_prior:.6g})"
        )


def _add_run_args(t: argparse.ArgumentParser, out_help: str) -> None:
    """The options every training command shares: schedule, device, run folder."""
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    t.add_argument("--out", help=out_help)
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_prior_parsers(sub) -> None:
    t = sub.add_parser("train-prior", help="train a PixelCNN prior over a trained VQ-VAE's codes")
    t.add_argument("run", help="the VQ-VAE's run folder")
    t.add_argument(
        "--dataset",
        choices=["vizdoom", "cifar10", "mnist", "folder", "world"],
        help="default: the run's (run.json)",
    )
    t.add_argument("--data", help="where the data set is (default: the run's)")
    t.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one setting of prior, train or data, e.g. --set prior.channels=64",
    )
    _add_run_args(t, out_help="the prior's run folder (default: RUN/prior)")
    t.set_defaults(func=cmd_train_prior)

    s = sub.add_parser("sample", help="sample new images: codes from the prior, then decode")
    s.add_argument("run", help="the VQ-VAE's run folder")
    s.add_argument("-n", type=int, default=64, help="how many (default 64)")
    s.add_argument(
        "--class",
        dest="class_",
        metavar="C",
        help="class index (or name) for a class-conditional prior",
    )
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--seed", type=int, help="default: a random one (printed)")
    s.add_argument("--prior", metavar="DIR", help="the prior (default: RUN/prior)")
    s.add_argument("--device", help="cpu (default) or cuda")
    s.add_argument("-o", "--output", required=True, help="the .png grid to write")
    s.set_defaults(func=cmd_sample)


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vqvae", description="VQ-VAE: discrete representations.")
    p.add_argument("--version", action="version", version=f"vqvae {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an image VQ-VAE (default: built-in ViZDoom frames)")
    t.add_argument("--modality", choices=["image", "speech"],
                   help="image (default) or speech (a WaveNet decoder over raw audio)")
    t.add_argument("--dataset", help="image: vizdoom (default), cifar10, mnist, folder; "
                   "speech: fsdd (default), tts_phones, vctk, folder")
    t.add_argument("--data", help="where the data set is (default: shared data / built-in)")
    t.add_argument("--size", type=int, help="resize images to SIZE x SIZE")
    t.add_argument(
        "--preset",
        help="model preset: default, paper-cifar10, sonnet-cifar10, imagenet128, vizdoom84",
    )
    t.add_argument("--config", help="TOML, YAML or JSON file with [model], [train], [data]")
    t.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set model.num_codes=256",
    )
    t.add_argument("--amp", choices=["none", "bf16"],
                   help="bf16 autocast; where the device has no native bf16 (a CPU without "
                        "AVX-512 or AMX) training stays fp32 and says so")
    t.add_argument("--channels-last", action="store_true")
    t.add_argument("--workers", type=int, help="DataLoader worker processes")
    _add_run_args(t, out_help="run folder (default: runs/DATE-TIME-DATASET)")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("reconstruct", help="encode and decode images or audio files")
    r.add_argument("run")
    r.add_argument("images", nargs="+", metavar="FILE", help="images, or .wav/.flac files")
    r.add_argument("-o", "--output", required=True,
                   help="a .png grid or a folder (images); a .wav file or a folder (audio)")
    r.add_argument("--speaker", help="audio: the input's speaker (default: from the file name)")
    r.add_argument("--seed", type=int, help="audio: seed of the WaveNet's sampling")
    r.set_defaults(func=cmd_reconstruct)

    cv = sub.add_parser("convert", help="speech: say it in another speaker's voice")
    cv.add_argument("run")
    cv.add_argument("input", help="a .wav or .flac file")
    cv.add_argument("--speaker", required=True, help="one of the speakers the model knows")
    cv.add_argument("--from", dest="source", help="the input's speaker, for a model whose "
                    "encoder needs it (frame_norm=speaker-mean; default: from the file name, "
                    "else the known voice nearest the file's)")
    cv.add_argument("--temperature", type=float, default=1.0)
    cv.add_argument("--seed", type=int)
    cv.add_argument("-o", "--output", required=True, help="the .wav file to write")
    cv.set_defaults(func=cmd_convert)

    e = sub.add_parser("encode", help="images or audio -> codes.npy (+ codes.npy.json metadata)")
    e.add_argument("run")
    e.add_argument("data", help="an image file or a folder of images; speech models: an audio "
                   "file or a folder of them (one .npy each, -o a folder)")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--speaker", help="speech: the input's speaker (default: from the file "
                   "name), saved with the codes; needed where the encoder uses it")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="codes.npy -> images, or a .wav for speech models")
    d.add_argument("run")
    d.add_argument("codes")
    d.add_argument("-o", "--output", required=True, help="a .png grid or a folder; a .wav")
    d.add_argument("--speaker", help="speech: the voice (default: the one saved with the codes)")
    d.add_argument("--temperature", type=float, default=1.0, help="speech: of the sampling")
    d.add_argument("--seed", type=int, help="speech: seed of the WaveNet's sampling")
    d.set_defaults(func=cmd_decode)

    v = sub.add_parser("evaluate", help="NMSE, PSNR, perplexity, codes used, bits/dim")
    v.add_argument("run")
    v.add_argument("--split", default="test", choices=["train", "test"])
    v.add_argument("--dataset", choices=["vizdoom", "cifar10", "mnist", "folder", "world"])
    v.add_argument("--data")
    v.add_argument("--device")
    v.add_argument("--per-speaker", type=int, default=10,
                   help="speech: test utterances per speaker to reconstruct and convert "
                   "(0: none, only the phone probe)")
    v.add_argument("--temperature", type=float,
                   help="speech: of the WaveNet's sampling (default 1)")
    v.add_argument(
        "--prior",
        nargs="?",
        const="",
        metavar="DIR",
        help="also the prior's NLL and the bits/dim with it (default DIR: RUN/prior)",
    )
    v.set_defaults(func=cmd_evaluate)

    _add_prior_parsers(sub)
    add_video_parsers(sub, _add_run_args)

    m = sub.add_parser("demo", help="a short vector-quantiser demonstration")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ConfigError, DataError, CheckpointError) as e:
        print(f"vqvae {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"vqvae {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"vqvae {args.command}: {e or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
