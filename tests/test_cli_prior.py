"""train-prior, sample and evaluate --prior end to end, on a tiny VQ-VAE and tiny prior."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from vqvae.cli import main
from vqvae.priors import PixelCNNConfig, PixelCNNPrior

TINY_VQVAE = [
    "--set", "model.hidden=8", "--set", "model.residual_hidden=4",
    "--set", "model.residual_layers=1", "--set", "model.embedding_dim=8",
    "--set", "model.num_codes=16", "--set", "model.likelihood=\"categorical\"",
    "--set", "train.val_batches=1", "--set", "train.warmup_steps=0",
    "--batch-size", "4", "--no-progress",
]
TINY_PRIOR = [
    "--set", "prior.channels=8", "--set", "prior.layers=2", "--set", "prior.kernel_size=3",
    "--set", "train.log_every=1", "--set", "train.image_every=2",
    "--set", "train.checkpoint_every=2", "--set", "train.val_batches=1",
    "--batch-size", "8", "--no-progress",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A VQ-VAE trained 2 steps on 2 classes of 16 x 16 images (4 x 4 codes, K = 16), with a
    class-conditional prior trained 4 steps in run/prior."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir()
        for i in range(20):
            img = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["train", "--dataset", "folder", "--data", str(root), "--steps", "2",
                 "--out", str(out), *TINY_VQVAE]) == 0
    assert main(["train-prior", str(out), "--steps", "4", *TINY_PRIOR]) == 0
    return out


def _losses(folder):
    with open(folder / "metrics.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f) if r.get("loss")]


def _steps(folder):
    return [step for step, _ in _losses(folder)]


def test_train_prior_caches_codes_and_writes_checkpoints_samples_and_metrics(run):
    for name in ("codes_train.npy", "labels_train.npy", "codes_train.npy.json",
                 "codes_test.npy", "prior/checkpoints/best/model.safetensors",
                 "prior/checkpoints/last/trainer.json", "prior/samples.png", "prior/eval.json",
                 "prior/run.json"):
        assert (run / name).is_file(), name
    codes = np.load(run / "codes_train.npy")
    assert codes.shape[1:] == (4, 4) and codes.max() < 16
    assert len(np.load(run / "labels_train.npy")) == len(codes)
    prior = PixelCNNPrior.from_pretrained(run / "prior")
    assert prior.config.num_classes == 2 and prior.config.channels == 8
    assert prior.metadata["class_names"] == ["a", "b"]
    samples = Image.open(run / "prior" / "samples.png")
    assert samples.size == (8 * 18 + 2, 2 * 18 + 2)  # one row of 8 per class
    assert _steps(run / "prior") == [1, 2, 3, 4]
    assert json.loads((run / "prior" / "eval.json").read_text())["test_nll_per_latent"] > 0


def test_train_prior_resumes_exactly_and_reuses_the_cached_codes(run, tmp_path, capsys):
    assert main(["train-prior", str(run), "--resume", "--steps", "6", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train codes: reusing" in out and "test codes: reusing" in out
    assert _steps(run / "prior") == [1, 2, 3, 4, 5, 6]
    straight = tmp_path / "straight"
    assert main(["train-prior", str(run), "--steps", "6", "--out", str(straight),
                 *TINY_PRIOR]) == 0
    assert _losses(straight) == _losses(run / "prior")


def test_train_prior_refuses_to_overwrite_and_names_bad_settings(run, tmp_path, capsys):
    assert main(["train-prior", str(run), "--steps", "2"]) == 2
    assert "already holds a prior" in capsys.readouterr().err
    out = ["--out", str(tmp_path / "p"), "--steps", "1"]
    assert main(["train-prior", str(run), *out, "--set", "prior.colour=3"]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["train-prior", str(run), *out, "--set", "prior.num_codes=99"]) == 2
    assert "prior.num_codes is 99" in capsys.readouterr().err
    assert main(["train-prior", str(run), *out, "--batch-size", "1000"]) == 2
    assert "fewer than one batch of 1000" in capsys.readouterr().err


def test_sample_a_class_writes_a_grid_and_says_how_long_it_took(run, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["sample", str(run), "-n", "6", "--class", "1", "--seed", "3",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sampled 6 code grids of 4 x 4 in" in text and "class 1 (b)" in text
    assert Image.open(out).size == (6 * 18 + 2, 18 + 2)
    first = np.asarray(Image.open(out))
    assert main(["sample", str(run), "-n", "6", "--class", "b", "--seed", "3",
                 "-o", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), first)  # same seed, same class


def test_sample_without_a_class_draws_one_row_per_class(run, tmp_path, capsys):
    out = tmp_path / "rows.png"
    assert main(["sample", str(run), "-n", "6", "--seed", "1", "-o", str(out)]) == 0
    assert "one row per class" in capsys.readouterr().out
    assert Image.open(out).size == (3 * 18 + 2, 2 * 18 + 2)  # 2 classes x 3 samples


def test_sample_refuses_a_class_out_of_range_listing_the_range(run, tmp_path, capsys):
    assert main(["sample", str(run), "--class", "2", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--class 2: out of range" in err and "0 to 1 (0 = a, 1 = b)" in err


def test_sample_refuses_a_prior_of_another_vqvae(run, tmp_path, capsys):
    other = PixelCNNPrior(PixelCNNConfig(num_codes=8, height=4, width=4, channels=8, layers=1,
                                         kernel_size=3))
    other.save_pretrained(tmp_path / "other")
    assert main(["sample", str(run), "--prior", str(tmp_path / "other"),
                 "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "trained on another VQ-VAE's codes" in err and "K=8" in err and "K=16" in err
    assert main(["sample", str(run), "--prior", str(tmp_path / "none"),
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "vqvae train-prior" in capsys.readouterr().err


def test_evaluate_with_the_prior_prints_bits_per_dim_beside_the_uniform_prior(run, capsys):
    assert main(["evaluate", str(run), "--prior"]) == 0
    text = capsys.readouterr().out
    assert "bpd_uniform_prior" in text and "nll_z_per_latent" in text
    line = next(s for s in text.splitlines() if s.strip().startswith("bpd "))
    assert "with the prior (uniform prior:" in line
    assert main(["evaluate", str(run)]) == 0  # without --prior: as before
    assert "nll_z_per_latent" not in capsys.readouterr().out
