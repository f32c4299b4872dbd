"""The speech commands end to end on a tiny model and a tiny folder of recordings."""

import numpy as np
import pytest
import soundfile as sf
import torch

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


def test_encode_then_decode_audio_gives_a_file_as_long_as_the_input(run, voices, tmp_path):
    src = voices / "bob" / "bob_03.wav"
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(run), str(src), "-o", str(codes)]) == 0
    indices = np.load(codes)
    assert indices.ndim == 1 and indices.dtype == np.int32 and len(indices) == 2000 // 4
    out = tmp_path / "back.wav"
    assert main(["decode", str(run), str(codes), "-o", str(out)]) == 0  # bob, from the metadata
    assert sf.info(str(out)).frames == sf.info(str(src)).frames


def test_encode_a_folder_writes_one_codes_file_per_recording(run, voices, tmp_path):
    assert main(["encode", str(run), str(voices), "-o", str(tmp_path / "c")]) == 0
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 24
    assert (tmp_path / "c" / "alice" / "alice_00.npy.json").is_file()


def test_decoding_audio_codes_outside_the_codebook_is_refused(run, tmp_path, capsys):
    codes = tmp_path / "bad.npy"
    np.save(codes, np.array([1, 2, 99], dtype=np.int32))
    assert main(["decode", str(run), str(codes), "-o", str(tmp_path / "x.wav"),
                 "--speaker", "alice"]) == 2
    assert "bad.npy" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_evaluate_a_speech_run_judges_reconstruction_and_conversion(run, capsys):
    assert main(["evaluate", str(run), "--per-speaker", "2", "--temperature", "0.7"]) == 0
    out = capsys.readouterr().out
    for key in ("log_mel_distance_db", "stoi", "speaker_acc_converted_to_target"):
        assert key in out
    metrics = __import__("json").loads((run / "eval_speech.json").read_text())
    assert 2 <= metrics["utterances"] <= 4 and 0 <= metrics["speaker_acc_original"] <= 1
    assert -1 <= metrics["stoi"] <= 1 and metrics["log_mel_distance_db"] > 0
    assert metrics["temperature"] == 0.7
    assert len(list((run / "eval_audio").glob("*.wav"))) == 9
    assert main(["evaluate", str(run), "--temperature", "0"]) == 2
    assert "--temperature must be positive, got 0.0" in capsys.readouterr().err


def test_speaker_mean_runs_fit_the_voices_and_ask_whose_voice_an_input_is(voices, tmp_path,
                                                                          capsys):
    from vqvae.speech_model import SpeechVQVAE

    run = tmp_path / "run"
    assert main(["train", "--data", str(voices), "--steps", "2", "--out", str(run), *TINY,
                 "--set", "model.frontend=log-mel", "--set", "model.n_mels=8",
                 "--set", "model.frame_norm=speaker-mean"]) == 0
    means = SpeechVQVAE.from_pretrained(run).encoder.speaker_means  # (S, M), saved with it
    assert means.shape == (2, 8) and not torch.allclose(means[0], means[1], atol=1e-3)
    anonymous = tmp_path / "someone.wav"  # neither the name nor the folder tells the voice
    anonymous.write_bytes((voices / "alice" / "alice_00.wav").read_bytes())
    model = SpeechVQVAE.from_pretrained(run)
    nearest = model.config.speaker_names[int(model.nearest_speaker(
        torch.from_numpy(sf.read(str(anonymous), dtype="float32")[0]))[0])]
    capsys.readouterr()
    assert main(["convert", str(run), str(anonymous), "--speaker", "bob",
                 "-o", str(tmp_path / "x.wav")]) == 0  # the nearest known voice, said
    err = capsys.readouterr().err
    assert "someone.wav" in err and f"nearest known voice, {nearest}" in err
    assert "--from" in err and "alice, bob" in err
    assert main(["convert", str(run), str(anonymous), "--speaker", "bob", "--from", "alice",
                 "-o", str(tmp_path / "x.wav")]) == 0
    assert "nearest" not in capsys.readouterr().err
    assert main(["convert", str(run), str(anonymous), "--speaker", "bob", "--from", "carol",
                 "-o", str(tmp_path / "y.wav")]) == 2
    assert "unknown speaker 'carol'" in capsys.readouterr().err
    assert not (tmp_path / "y.wav").exists()
    codes = tmp_path / "codes.npy"  # the folder names the voice
    assert main(["encode", str(run), str(voices / "alice" / "alice_01.wav"), "-o",
                 str(codes)]) == 0
    assert main(["decode", str(run), str(codes), "-o", str(tmp_path / "back.wav")]) == 0
    assert main(["evaluate", str(run), "--per-speaker", "1"]) == 0  # sources from the labels
