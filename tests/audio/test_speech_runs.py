import csv
import json

import numpy as np
import pytest
import soundfile as sf
from audio_fakes import TINY, write_tone

from vqvae.audio import log_mel_spectrogram
from vqvae.data import DataError
from vqvae.errors import UsageError
from vqvae.speech_model import SpeechVQVAE, SpeechVQVAEConfig
from vqvae.train.checkpoint import load_trainer_state
from vqvae.train.loop import TrainConfig
from vqvae.train.speech_runs import (
    SpeechDataConfig,
    SpeechRunConfig,
    convert_wav,
    guess_speaker,
    reconstruct_wav,
    train_speech,
)


def _speech_folder(root):
    for speaker, freq in (("p1", 400.0), ("p2", 900.0)):
        for i in range(6):
            write_tone(root / speaker / f"{speaker}_{i}.wav", seconds=0.04 + 0.01 * i, freq=freq)
    return root


def _config(root, steps=3):
    return SpeechRunConfig(
        model=SpeechVQVAEConfig(**TINY),
        train=TrainConfig(steps=steps, batch_size=4, log_every=1, image_every=2,
                          checkpoint_every=2, val_batches=1, progress=False),
        data=SpeechDataConfig(dataset="folder", path=str(root), crop=64, preview_seconds=0.02,
                              eval_crops=8, options={"test_fraction": 0.3}),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = _speech_folder(tmp_path_factory.mktemp("speech"))
    mp = pytest.MonkeyPatch()
    mp.setenv("VQVAE_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield train_speech(_config(root), tmp_path_factory.mktemp("runs") / "r"), root
    finally:
        mp.undo()


def test_a_run_writes_sounds_spectrograms_metrics_and_checkpoints(run):
    out, _ = run
    for name in ("reconstructions.png", "audio/original.wav", "audio/step_0000002_as_p2.wav",
                 "audio/step_0000003_reconstruction.wav", "reconstructions/step_0000002.png",
                 "codebook_usage.png", "eval.json", "checkpoints/best/model.safetensors",
                 "checkpoints/last/trainer.json"):
        assert (out / name).is_file(), name
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows if r.get("loss")][:3] == ["1", "2", "3"]
    assert set(json.loads((out / "eval.json").read_text())) >= {"bits_per_sample", "usage"}
    model = SpeechVQVAE.from_pretrained(out)
    assert model.config.speaker_names == ("p1", "p2") and model.config.num_speakers == 2
    assert sf.info(str(out / "audio" / "original.wav")).samplerate == 8000


def test_a_run_resumes_from_its_last_checkpoint(run, tmp_path):
    out, root = run
    saved = SpeechRunConfig.from_run(out)
    assert saved.model.speaker_names == ("p1", "p2") and saved.data.crop == 64
    with pytest.raises(UsageError, match="already holds a run"):
        train_speech(_config(root), out)
    saved.train.steps = 4
    train_speech(saved, out, resume=True)
    assert load_trainer_state(out / "checkpoints" / "last")["step"] == 4
    assert (out / "audio" / "step_0000004_as_p2.wav").is_file()


def test_a_crop_that_is_not_a_whole_number_of_codes_is_refused(tmp_path):
    config = _config(tmp_path)
    config.data.crop = 30
    with pytest.raises(UsageError, match="multiple of the model's hop"):
        train_speech(config, tmp_path / "r")


def test_a_mixture_decoder_trains_logs_its_accuracy_and_scores_the_test_crops(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("VQVAE_CACHE", str(tmp_path / "cache"))
    config = _config(_speech_folder(tmp_path / "two"), steps=2)
    config.model = SpeechVQVAEConfig(**TINY | {"likelihood": "logistic_mixture",
                                               "logistic_mixtures": 3})
    out = train_speech(config, tmp_path / "r")
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("loss")]
    assert len(rows) == 2 and all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    scores = json.loads((out / "eval.json").read_text())
    assert 0 < scores["bits_per_sample"] < 20 and 0 <= scores["accuracy"] <= 1
    assert SpeechVQVAE.from_pretrained(out).config.likelihood == "logistic_mixture"


def test_the_speaker_adversary_logs_its_accuracy_and_needs_two_speakers(tmp_path, monkeypatch):
    monkeypatch.setenv("VQVAE_CACHE", str(tmp_path / "cache"))
    config = _config(_speech_folder(tmp_path / "two"), steps=2)
    config.model = SpeechVQVAEConfig(**TINY | {"adversary_weight": 0.5})
    out = train_speech(config, tmp_path / "r")
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("loss")]
    assert all(0 <= float(r["adversary_accuracy"]) <= 1 for r in rows)
    assert all(float(r["adversary_loss"]) > 0 for r in rows)
    one = tmp_path / "one"
    for i in range(6):
        write_tone(one / "p1" / f"p1_{i}.wav", seconds=0.05, freq=400.0)
    config.data.path = str(one)
    with pytest.raises(UsageError, match="adversary_weight needs training data of 2 or more"):
        train_speech(config, tmp_path / "r1")


def test_reconstruct_and_convert_write_a_file_as_long_as_the_input(run, tmp_path):
    out, root = run
    source = root / "p1" / "p1_5.wav"
    rec = reconstruct_wav(out, source, tmp_path / "rec.wav")  # speaker from the folder
    data, rate = sf.read(str(rec))
    assert rate == 8000 and len(data) == sf.info(str(source)).frames
    stereo = write_tone(tmp_path / "x" / "in.wav", seconds=0.05, rate=16000, channels=2)
    conv = convert_wav(out, stereo, "p2", tmp_path / "conv.wav")
    assert sf.info(str(conv)).frames == 400 and sf.info(str(conv)).samplerate == 8000


def test_unknown_voices_and_short_inputs_are_refused_clearly(run, tmp_path):
    out, root = run
    source = write_tone(tmp_path / "someone" / "in.wav", seconds=0.05)
    with pytest.raises(UsageError, match="unknown speaker 'p9'.* knows: p1, p2"):
        convert_wav(out, source, "p9", tmp_path / "o.wav")
    with pytest.raises(UsageError, match="whose voice.*p1, p2"):
        reconstruct_wav(out, source, tmp_path / "o.wav")
    short = write_tone(tmp_path / "p1" / "short.wav", seconds=0.0005)  # 4 samples
    with pytest.raises(DataError, match=r"short\.wav: 4 samples.*receptive field"):
        reconstruct_wav(out, short, tmp_path / "o.wav")


def test_speakers_are_guessed_from_fsdd_names_and_folders(tmp_path):
    names = ("george", "p225")
    assert guess_speaker(tmp_path / "7_george_3.wav", names) == "george"
    assert guess_speaker(tmp_path / "p225" / "p225_001.wav", names) == "p225"
    assert guess_speaker(tmp_path / "x" / "y.wav", names) is None


def test_log_mel_spectrogram_puts_a_tone_in_its_mel_band():
    rate, freq = 8000, 1000.0
    t = np.arange(4000) / rate
    spec = log_mel_spectrogram(np.sin(2 * np.pi * freq * t), rate, n_mels=40)
    mel = 2595 * np.log10(1 + freq / 700)
    top = 2595 * np.log10(1 + rate / 2 / 700)
    expected = mel / top * 41 - 1  # filter k peaks at (k + 1) top / 41
    assert spec.shape[0] == 40 and abs(spec.mean(1).argmax() - expected) <= 1
