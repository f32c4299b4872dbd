"""The speech commands end to end on a tiny model and a tiny folder of recordings."""

import numpy as np
import pytest
import soundfile as sf

from vqvae.cli import main

TINY = [
    "--modality", "speech", "--dataset", "folder",
    "--set", "model.halvings=2", "--set", "model.layers=3", "--set", "model.stacks=1",
    "--set", "model.residual_channels=8", "--set", "model.skip_channels=8",
    "--set", "model.encoder_channels=8", "--set", "model.embedding_dim=4",
    "--set", "model.num_codes=8", "--set", "data.crop=256", "--set", "data.eval_crops=4",
    "--set", "data.preview_seconds=0.05", "--set", "train.log_every=1",
    "--set", "train.image_every=2", "--set", "train.checkpoint_every=2",
    "--set", "train.val_batches=1", "--set", "train.warmup_steps=0",
    "--batch-size", "2", "--no-progress",
]


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    root = tmp_path_factory.mktemp("voices")
    rng = np.random.default_rng(0)
    for name, f0 in (("alice", 220.0), ("bob", 110.0)):
        (root / name).mkdir()
        for i in range(12):
            t = np.arange(int(8000 * 0.25)) / 8000
            tone = np.sin(2 * np.pi * f0 * (1 + 0.05 * i) * t)
            wave = 0.3 * tone + 0.01 * rng.normal(size=t.size)
            sf.write(root / name / f"{name}_{i:02d}.wav", wave.astype(np.float32), 8000)
    return root


@pytest.fixture(scope="module")
def run(voices, tmp_path_factory):
    out = tmp_path_factory.mktemp("speech") / "run"
    assert main(["train", "--data", str(voices), "--steps", "4", "--out", str(out), *TINY]) == 0
    return out


def test_speech_training_writes_checkpoints_and_metrics(run):
    assert (run / "checkpoints" / "last" / "model.safetensors").is_file()
    assert (run / "metrics.csv").is_file()


def test_reconstruct_and_convert_write_wav_files(run, voices, tmp_path):
    src = voices / "alice" / "alice_00.wav"
    out = tmp_path / "rec.wav"
    assert main(["reconstruct", str(run), str(src), "-o", str(out), "--speaker", "alice"]) == 0
    wave, rate = sf.read(out)
    assert rate == 8000 and wave.ndim == 1 and len(wave) > 0
    conv = tmp_path / "conv.wav"
    assert main(["convert", str(run), str(src), "--speaker", "bob", "-o", str(conv)]) == 0
    assert sf.read(conv)[0].shape == wave.shape


def test_unknown_speaker_lists_the_known_ones(run, voices, tmp_path, capsys):
    src = voices / "alice" / "alice_00.wav"
    assert main(["convert", str(run), str(src), "--speaker", "carol",
                 "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "carol" in err and "alice" in err and "bob" in err


def test_resuming_a_speech_run_keeps_its_modality(run, capsys):
    assert main(["train", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert (run / "metrics.csv").read_text().splitlines()[-1].split(",")[0] == "5"
