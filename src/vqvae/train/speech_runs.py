"""Speech VQ-VAE runs, as the command line starts them, and what is done with a trained one.

    train_speech(SpeechRunConfig(), "runs/fsdd")              # FSDD, 8 kHz, the default sizes
    reconstruct_wav("runs/fsdd", "in.wav", "out.wav")          # encode and decode
    convert_wav("runs/fsdd", "in.wav", "theo", "out.wav")      # decode as another speaker
    encode_wav("runs/fsdd", "in.wav", "codes.npy"); decode_wav("runs/fsdd", "codes.npy", "o.wav")
    evaluate_speech_run("runs/fsdd")     # log-mel distance, STOI, conversion judged, phones

``SpeechRunConfig`` is the [model] / [train] / [data] configuration of a run, saved as
``run.json``; ``SpeechRunConfig.from_dict`` rebuilds it (for ``--resume``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import CropDataset, level_gain, load_speech_corpus, read_audio, write_audio
from ..audio.corpus import SpeechCorpus
from ..config import run_config_from_dict
from ..data.errors import DataError
from ..data.paths import codes_meta_path, read_codes_file
from ..errors import UsageError
from ..pretrained import resolve_checkpoint
from ..speech_model import PRESETS, SpeechVQVAE, SpeechVQVAEConfig
from .distributed import setup, teardown
from .loop import TrainConfig, Trainer
from .runs import print_summary
from .speech_task import Preview, SpeechTask


@dataclass
class SpeechDataConfig:
    """Which speech to train on (see ``vqvae.audio.load_speech_corpus``)."""

    dataset: str = "fsdd"  # fsdd | tts_phones | vctk | folder
    path: str | None = None  # None: the shared data folder (fsdd, tts_phones)
    crop: int = 2048  # samples per training item, a multiple of the model's hop
    preview_seconds: float = 0.5  # of the held-out utterance drawn in the pictures
    eval_crops: int = 256  # test crops scored at the end of the run
    options: dict[str, Any] = field(default_factory=dict)  # passed to the loader


# the training recipe and data that go with each model preset (not tuned by measurement yet)
SPEECH_TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(steps=2000, batch_size=16, lr=5e-4, lr_schedule="cosine", warmup_steps=100,
                    log_every=25, image_every=500, checkpoint_every=500),
    "paper-vctk": dict(steps=200_000, batch_size=32, lr=2e-4, log_every=100, image_every=5000,
                       checkpoint_every=5000),
}
SPEECH_DATA_PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(dataset="fsdd", crop=2048),
    "paper-vctk": dict(dataset="vctk", crop=8192, preview_seconds=1.0),
}


@dataclass
class SpeechRunConfig:
    preset: str = "default"
    model: SpeechVQVAEConfig = field(default_factory=SpeechVQVAEConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(**SPEECH_TRAIN_PRESETS["default"]))
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "model": self.model.to_dict(),
                "train": dataclasses.asdict(self.train), "data": dataclasses.asdict(self.data)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> SpeechRunConfig:
        """Preset defaults, then the sections of ``data``; unknown keys are refused by name."""
        return run_config_from_dict(cls, data, source, PRESETS, SPEECH_TRAIN_PRESETS,
                                    SPEECH_DATA_PRESETS, SpeechDataConfig)

    @classmethod
    def from_run(cls, run: str | Path) -> SpeechRunConfig:
        """The configuration saved in a run folder's ``run.json``."""
        path = Path(run) / "run.json"
        if not path.is_file():
            raise UsageError(f"{run}: no run.json; is it a speech training run folder?")
        return cls.from_dict(json.loads(path.read_text()), str(path))


def load_speech_split(config: SpeechRunConfig, split: str):
    """The corpus of ``split`` at the model's sample rate and level."""
    d, m = config.data, config.model
    options = {"sample_rate": m.sample_rate, "level": m.level, **d.options}
    return load_speech_corpus(d.dataset, d.path, split, **options)


def train_speech(config: SpeechRunConfig, out: str | Path | None = None, *,
                 resume: bool = False, device: str | None = None) -> Path:
    """Train a speech VQ-VAE as ``config`` says, in run folder ``out``; returns the folder.

    ``out`` defaults to runs/DATE-TIME-speech-DATASET; ``resume`` continues the run there.
    The model's ``num_speakers`` and ``speaker_names`` are set from the training data.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not out:
        raise UsageError("with torchrun, pass --out DIR: every process must use the same "
                         "run folder")
    info = setup(device)
    d = config.data
    out = Path(out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-speech-{d.dataset}")
    if not resume and (out / "checkpoints").exists():
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose "
                         "another --out")
    hop = config.model.hop
    if d.crop < hop or d.crop % hop:
        raise UsageError(f"data.crop={d.crop} must be a positive multiple of the model's hop "
                         f"({hop} samples)")
    with warnings.catch_warnings():
        warnings.simplefilter("once")
        train, test = load_speech_split(config, "train"), load_speech_split(config, "test")
    names = train.speaker_names
    if config.model.adversary_weight > 0 and len(names) < 2:
        raise UsageError(f"model.adversary_weight needs training data of 2 or more speakers; "
                         f"{train} has {len(names)}")
    if (config.model.num_speakers, config.model.speaker_names) != (len(names), names):
        config.model = dataclasses.replace(config.model, num_speakers=len(names),
                                           speaker_names=names)
    torch.manual_seed(config.train.seed)
    model = SpeechVQVAE(config.model)
    if config.model.frame_norm == "speaker-mean":  # the voices' long-term spectra
        model.encoder.fit_speaker_means((train.waveform(u) for u in range(len(train))),
                                        train.speaker)
    if info.is_main:
        m = config.model
        print(f"data: {train} / test {len(test)} utterances; model: {config.preset} preset, "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, one code "
              f"per {hop} samples, receptive field {model.receptive_field} samples "
              f"({1000 * model.receptive_field / m.sample_rate:.0f} ms), crops of {d.crop} "
              f"samples; run folder: {out}")
    train_crops = CropDataset(train, d.crop, seed=config.train.seed)
    local = config.train.batch_size // info.world
    val_crops = CropDataset(test, d.crop, seed=config.train.seed + 1,
                            num_crops=max(local, local * config.train.val_batches))
    eval_crops = CropDataset(test, d.crop, seed=config.train.seed + 2, num_crops=d.eval_crops)
    task = SpeechTask(model, preview_utterance(test, d.preview_seconds), eval_data=eval_crops,
                      seed=config.train.seed)
    trainer = Trainer(task, train_crops, config.train, out, val_data=val_crops, dist_info=info,
                      run_config=config.to_dict())
    try:
        last = trainer.fit(resume=resume)
    finally:
        teardown()
    if info.is_main:
        files = {"spectrograms": "reconstructions.png", "sounds": "audio",
                 "code usage": "codebook_usage.png"}
        print_summary(trainer, last, "test crops", task.final_metrics, files)
    return out


def preview_utterance(corpus, seconds: float, seed: int = 1234) -> Preview:
    """A fixed utterance of ``corpus`` (its first ``seconds``), drawn with ``seed``."""
    u = int(np.random.default_rng(seed).integers(len(corpus)))
    wave = corpus.waveform(u)[: max(1, round(seconds * corpus.sample_rate))]
    return Preview(np.ascontiguousarray(wave), int(corpus.speaker[u]), corpus.names[u])


# ---------------------------------------------------------------------- using a trained model
_FSDD_NAME = re.compile(r"^\d_([^_]+)_\d+\.wav$", re.IGNORECASE)


def guess_speaker(path: Path, names) -> str | None:
    """The speaker of an audio file by its name: FSDD's {digit}_{speaker}_{index}.wav, else
    the folder holding it (VCTK and speech folders), when that is one of ``names``."""
    match = _FSDD_NAME.match(path.name)
    for candidate in ((match.group(1),) if match else ()) + (path.parent.name,):
        if candidate in names:
            return candidate
    return None


def _read_input(model: SpeechVQVAE, run, in_wav) -> tuple[np.ndarray, float]:
    """(``in_wav`` at the model's rate and level, the gain that brought it there)."""
    c = model.config
    audio = read_audio(in_wav, c.sample_rate, min_samples=max(model.hop, model.receptive_field),
                       why=f"the receptive field of the WaveNet of {run}")
    for note in audio.notes:
        print(f"note: {note}", file=sys.stderr)
    gain = level_gain(audio.wave, c.level)
    return np.clip(audio.wave * gain, -1.0, 1.0), gain


def _source_speaker(model: SpeechVQVAE, run, in_wav, given: str | int | None,
                    wave: np.ndarray) -> str | int | None:
    """The input's speaker where the encoder needs it (``frame_norm="speaker-mean"``):
    ``given`` (a name or an id), else guessed from the file's name or folder, else the known
    speaker whose long-term spectrum is nearest the file's (said on stderr); None where it is
    not needed."""
    c = model.config
    if c.frame_norm != "speaker-mean":
        return None
    if isinstance(given, int):
        return given
    source = given or guess_speaker(Path(in_wav), c.speaker_names)
    if source is None:
        source = c.speaker_names[int(model.nearest_speaker(_as_input(model, wave))[0])]
        print(f"note: {in_wav}: its speaker is not in its name, so the encoder subtracts the "
              f"long-term spectrum of the nearest known voice, {source} (choose with --from "
              f"NAME, one of: {', '.join(c.speaker_names)})", file=sys.stderr)
    _check_speaker(run, c.speaker_names, source)
    return source


def _as_input(model: SpeechVQVAE, wave: np.ndarray) -> torch.Tensor:
    """A waveform read by ``_read_input`` -> a (T,) float32 tensor on the model's device."""
    device = next(model.parameters()).device
    return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(device)


def _decode(model, wave, gain, speaker, out_wav, temperature, seed, source=None) -> Path:
    x = _as_input(model, wave)
    generator = torch.Generator(x.device).manual_seed(seed)
    y = model.convert(x, speaker, source=source, temperature=temperature,
                      generator=generator)[0]
    return write_audio(out_wav, y.float().cpu().numpy() / gain, model.config.sample_rate)


def _check_speaker(run, names, speaker: str) -> None:
    """A UsageError listing the speakers of ``run`` unless ``speaker`` is one of ``names``."""
    if speaker not in names:
        raise UsageError(f"unknown speaker {speaker!r}; {run} knows: {', '.join(names)}")


def reconstruct_wav(run: str | Path, in_wav: str | Path, out_wav: str | Path, *,
                    speaker: str | int | None = None, temperature: float = 1.0, seed: int = 0,
                    device: str = "cpu") -> Path:
    """Encode ``in_wav`` with the model of ``run`` and decode it in the same voice.

    The file is read as mono at the model's rate (stereo averaged, other rates resampled, each
    said on stderr), normalised like the training data, and the output is written at the input's
    level as 16-bit PCM.  ``speaker``: the voice of the input, needed by a speaker-conditioned
    model; by default guessed from the file's name (FSDD) or folder (VCTK).
    """
    model = SpeechVQVAE.from_pretrained(run, map_location=device)
    c = model.config
    if speaker is None and c.num_speakers:
        speaker = guess_speaker(Path(in_wav), c.speaker_names)
        if speaker is None:
            raise UsageError(f"{in_wav}: whose voice is it? The model of {run} is conditioned "
                             f"on the speaker; pass one of: {', '.join(c.speaker_names)}")
    wave, gain = _read_input(model, run, in_wav)
    source = _source_speaker(model, run, in_wav, speaker, wave)
    return _decode(model, wave, gain, speaker, out_wav, temperature, seed, source)


def convert_wav(run: str | Path, in_wav: str | Path, speaker_name: str, out_wav: str | Path, *,
                source: str | None = None, temperature: float = 1.0, seed: int = 0,
                device: str = "cpu") -> Path:
    """Voice conversion: encode ``in_wav`` and decode its codes as ``speaker_name``.

    ``speaker_name`` must be one of the speakers the model was trained on; an unknown one
    raises ``UsageError`` listing them.  ``source``: the input's speaker, needed only by a
    model with ``frame_norm="speaker-mean"``; by default guessed from the file's name or
    folder, else the known voice nearest the file's (``SpeechVQVAE.nearest_speaker``).
    Input and output are handled as in ``reconstruct_wav``.
    """
    model = SpeechVQVAE.from_pretrained(run, map_location=device)
    names = model.config.speaker_names
    if not model.config.num_speakers:
        raise UsageError(f"{run}: this model is not conditioned on speakers, so it cannot "
                         "convert voices")
    _check_speaker(run, names, speaker_name)
    wave, gain = _read_input(model, run, in_wav)
    source = _source_speaker(model, run, in_wav, source, wave)
    return _decode(model, wave, gain, speaker_name, out_wav, temperature, seed, source)


def is_speech_run(run: str | Path) -> bool:
    """Whether ``run`` (a run folder or a checkpoint) holds a ``SpeechVQVAE``."""
    config = resolve_checkpoint(Path(run)) / "config.json"
    try:
        return json.loads(config.read_text()).get("model") == SpeechVQVAE.model_name
    except (OSError, ValueError, AttributeError):
        return False  # the image loader then says what is wrong with it


CODES_FORMAT = 1  # of the audio codes' .json metadata


def encode_wav(run: str | Path, in_wav: str | Path, out_codes: str | Path, *,
               speaker: str | None = None, device: str = "cpu") -> tuple[Path, dict[str, Any]]:
    """``in_wav`` -> ``out_codes`` (.npy, (N,) int32 codes) and ``out_codes``.json: the rate,
    hop, length, level gain and speaker (``speaker``, else guessed) needed to decode it back.
    A model with ``frame_norm="speaker-mean"`` needs that speaker to encode (else it takes the
    nearest known voice, as ``convert_wav``)."""
    model = SpeechVQVAE.from_pretrained(run, map_location=device)
    c = model.config
    wave, gain = _read_input(model, run, in_wav)
    source = _source_speaker(model, run, in_wav, speaker, wave)
    codes = model.encode(_as_input(model, wave), source)[0]
    out = Path(out_codes)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, codes.cpu().numpy().astype(np.int32))
    meta = {"format_version": CODES_FORMAT, "modality": "speech", "num_codes": c.num_codes,
            "hop": model.hop, "sample_rate": c.sample_rate, "samples": len(wave),
            "gain": float(gain), "file": str(in_wav),
            "speaker": source or speaker or guess_speaker(Path(in_wav), c.speaker_names)}
    codes_meta_path(out).write_text(json.dumps(meta, indent=2))
    return out, meta


def decode_wav(run: str | Path, codes_path: str | Path, out_wav: str | Path, *,
               speaker: str | None = None, temperature: float = 1.0, seed: int = 0,
               device: str = "cpu") -> Path:
    """Codes written by ``encode_wav`` -> a WAV in ``speaker``'s voice (default: the speaker
    saved with the codes), as long and as loud as the encoded file."""
    model = SpeechVQVAE.from_pretrained(run, map_location=device)
    c = model.config
    path = Path(codes_path)
    codes, meta = read_codes_file(path)
    if meta and (meta.get("num_codes"), meta.get("hop")) != (c.num_codes, model.hop):
        raise DataError(f"{path}: codes for K={meta.get('num_codes')} with a hop of "
                        f"{meta.get('hop')} samples, but {run} has K={c.num_codes} and a hop "
                        f"of {model.hop}")
    if codes.dtype.kind not in "iu" or codes.ndim != 1 or len(codes) == 0:
        raise DataError(f"{path}: expected a non-empty (N,) integer array of speech codes, got "
                        f"{codes.dtype} {codes.shape}")
    bad = (codes < 0) | (codes >= c.num_codes)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} codes outside the codebook [0, "
                        f"{c.num_codes}), e.g. {int(codes[bad][0])}")
    speaker = speaker or meta.get("speaker")
    if c.num_speakers and speaker is None:
        raise UsageError(f"{path}: in whose voice? pass --speaker, one of: "
                         f"{', '.join(c.speaker_names)}")
    if speaker is not None and c.num_speakers:
        _check_speaker(run, c.speaker_names, speaker)
    samples = int(meta.get("samples", len(codes) * model.hop))
    generator = torch.Generator(device).manual_seed(seed)
    indices = torch.from_numpy(codes.astype(np.int64)).to(device)[None]
    y = model.decode(indices, speaker, min(samples, len(codes) * model.hop),
                     temperature=temperature, generator=generator)[0]
    gain = float(meta.get("gain", 1.0))
    return write_audio(out_wav, y.float().cpu().numpy() / gain, c.sample_rate)


def load_for_evaluation(run: str | Path, device: str = "cpu"
                        ) -> tuple[SpeechVQVAE, SpeechCorpus, SpeechCorpus]:
    """The model of ``run`` and its own data's train and test splits, as ``evaluate_speech``
    takes them."""
    model = SpeechVQVAE.from_pretrained(run, map_location=device)
    config = SpeechRunConfig.from_run(Path(run))
    with warnings.catch_warnings():
        warnings.simplefilter("once")
        return model, load_speech_split(config, "train"), load_speech_split(config, "test")


def evaluate_speech_run(run: str | Path, *, per_speaker: int = 10, seed: int = 0,
                        examples: int = 3, temperature: float = 1.0,
                        device: str = "cpu") -> dict[str, float]:
    """``evaluate_speech`` (and ``phone_discovery`` where the data has phone labels) of the
    model in ``run`` on its own data's test split (``per_speaker=0``: no decoding, only the
    phone probe); writes RUN/eval_speech.json and, in
    RUN/eval_audio, the first ``examples`` originals with their reconstruction and
    conversion, sampled at ``temperature``."""
    from ..eval.speech_eval import evaluate_speech, phone_discovery

    run = Path(run)
    model, train, test = load_for_evaluation(run, device)
    metrics: dict[str, float] = {}
    rate = model.config.sample_rate
    if model.config.num_speakers >= 2 and per_speaker > 0:
        result = evaluate_speech(model, train, test, per_speaker=per_speaker, seed=seed,
                                 temperature=temperature,
                                 progress=lambda line: print(line, file=sys.stderr))
        metrics.update(result.metrics)
        metrics["temperature"] = temperature
        names = model.config.speaker_names
        for u, target, recon, conv in list(zip(result.utterances, result.targets,
                                               result.reconstructions, result.conversions,
                                               strict=True))[:examples]:
            stem = Path(test.names[u]).stem
            write_audio(run / "eval_audio" / f"{stem}_original.wav", test.waveform(u), rate)
            write_audio(run / "eval_audio" / f"{stem}_reconstruction.wav", recon, rate)
            write_audio(run / "eval_audio" / f"{stem}_as_{names[target]}.wav", conv, rate)
    if test.phones is not None:
        corpus = load_speech_split(SpeechRunConfig.from_run(run), "all")
        probe = phone_discovery(model, corpus)
        metrics.update({
            "phone_acc": probe.accuracy, "phone_baseline": probe.baseline,
            "phone_acc_speech": probe.accuracy_speech,
            "phone_baseline_speech": probe.baseline_speech,
            "codes_per_second": rate / model.hop,
        })
    (run / "eval_speech.json").write_text(json.dumps(metrics, indent=2))
    return metrics
