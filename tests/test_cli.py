"""The command line end to end, on a tiny model and a tiny folder of images."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from vqvae.cli import main

TINY = [
    "--set", "model.hidden=8", "--set", "model.residual_hidden=4",
    "--set", "model.residual_layers=1", "--set", "model.embedding_dim=8",
    "--set", "model.num_codes=16", "--set", "model.restart_after=2",
    "--set", "train.log_every=1", "--set", "train.image_every=2",
    "--set", "train.checkpoint_every=2", "--set", "train.val_batches=1",
    "--set", "train.warmup_steps=0", "--set", "train.lr_schedule=\"constant\"",
    "--batch-size", "4", "--no-progress",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for i in range(30):
            base = np.linspace(0, 255, 16)[None, :, None] * rng.uniform(0.2, 1, size=(1, 1, 3))
            img = (base + rng.normal(0, 10, size=(16, 16, 3))).clip(0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


def _train(folder, out, steps, *extra):
    return main(["train", "--dataset", "folder", "--data", str(folder), "--steps", str(steps),
                 "--out", str(out), *TINY, *extra])


def _losses(run):
    with open(run / "metrics.csv") as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f) if r.get("loss")]


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert _train(folder, out, 6) == 0
    return out


def test_train_writes_pictures_metrics_and_checkpoints(run, capsys):
    for name in ("reconstructions.png", "codebook_usage.png", "metrics.csv", "eval.json",
                 "run.json", "checkpoints/best/model.safetensors",
                 "checkpoints/last/trainer.safetensors"):
        assert (run / name).is_file(), name
    assert Image.open(run / "reconstructions.png").size[0] > 16
    assert json.loads((run / "run.json").read_text())["train"]["steps"] == 6
    assert len(_losses(run)) == 6


def test_resume_from_the_command_line_continues_the_same_run(folder, tmp_path, run):
    out = tmp_path / "cut"
    assert _train(folder, out, 3) == 0
    assert main(["train", "--out", str(out), "--resume", "--steps", "6", "--no-progress"]) == 0
    assert _losses(out) == _losses(run)


def test_train_refuses_to_overwrite_a_run(folder, run, capsys):
    assert _train(folder, run, 2) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_missing_data_path_is_named(tmp_path, capsys):
    assert _train(tmp_path / "nowhere", tmp_path / "out", 2) == 2
    assert "nowhere" in capsys.readouterr().err


def test_encode_then_decode_round_trips(run, folder, tmp_path, capsys):
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(run), str(folder / "a"), "-o", str(codes)]) == 0
    arr = np.load(codes)
    assert arr.shape == (30, 4, 4) and arr.max() < 16
    meta = json.loads((tmp_path / "codes.npy.json").read_text())
    assert meta["num_codes"] == 16 and len(meta["files"]) == 30
    assert main(["decode", str(run), str(codes), "-o", str(tmp_path / "dec.png")]) == 0
    assert Image.open(tmp_path / "dec.png").size[0] > 16
    assert main(["encode", str(run), str(folder / "a"), "-o", str(codes), "--speaker", "x"]) == 2
    assert "--speaker is for speech runs" in capsys.readouterr().err


def test_decode_refuses_indices_outside_the_codebook(run, tmp_path, capsys):
    codes = tmp_path / "bad.npy"
    np.save(codes, np.full((2, 4, 4), 99, dtype=np.int64))
    assert main(["decode", str(run), str(codes), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "bad.npy" in err and "outside the codebook [0, 16)" in err


def test_reconstruct_and_evaluate(run, folder, tmp_path, capsys):
    out = tmp_path / "recon.png"
    assert main(["reconstruct", str(run), str(folder / "a" / "0.png"), "-o", str(out)]) == 0
    assert out.is_file()
    assert main(["evaluate", str(run)]) == 0
    text = capsys.readouterr().out
    assert "nmse" in text and "psnr" in text and "codes_used" in text
    assert main(["evaluate", str(run), "--temperature", "0.5"]) == 2
    assert "--temperature is for speech runs" in capsys.readouterr().err


def test_corrupt_checkpoint_is_named(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run / "checkpoints" / "best", copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["evaluate", str(copy), "--dataset", "folder", "--data", "x"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_unreadable_image_is_named(run, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    assert main(["reconstruct", str(run), str(bad), "-o", str(tmp_path / "o.png")]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_bad_config_key_is_named(folder, tmp_path, capsys):
    assert _train(folder, tmp_path / "o", 2, "--set", "model.colour=3") == 2
    assert "colour" in capsys.readouterr().err
