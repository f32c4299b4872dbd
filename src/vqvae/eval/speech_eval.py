"""Evaluating a trained speech VQ-VAE (paper section 4.3) on held-out speech.

    result = evaluate_speech(model, train_corpus, test_corpus, per_speaker=10)
    result.metrics   # log-mel distance, STOI, speaker / digit accuracy of originals,
                     # reconstructions and speaker conversions
    probe = phone_discovery(model, corpus)   # codes -> phones, majority-vote accuracy

Protocol of ``evaluate_speech``:

1. The judges: a speaker classifier (and a digit classifier where the corpus has FSDD's
   ``digit`` labels) trained on the real training utterances (``speech_probes``).
2. ``per_speaker`` test utterances of every speaker (drawn with ``seed``) are encoded and
   decoded in their own voice: log-mel distance (dB, the mean over utterances) and STOI
   against the originals (over all the utterances joined end to end, since single words are
   often shorter than STOI's 384 ms segments; NaN under about 0.4 s in all).
3. The same utterances are decoded as another speaker, drawn uniformly from the other
   speakers with ``seed``: the fraction the speaker classifier recognises as that target, and
   the digit accuracy of the converted audio beside that of the originals.

Decoding samples the WaveNet (``temperature``, seeded) in batches of utterances of similar
length, each padded with silence to the longest in its batch and then cut to its own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio.corpus import SpeechCorpus
from .speech import log_mel_distance
from .speech_probes import (
    PhoneProbe,
    UtteranceClassifier,
    code_phone_accuracy,
    train_digit_classifier,
    train_speaker_classifier,
)
from .stoi import stoi


@dataclass
class SpeechEvaluation:
    """What ``evaluate_speech`` measured, and the audio it made (float32 at the model's rate)."""

    metrics: dict[str, float]
    utterances: list[int]  # indices into the test corpus
    targets: list[int]  # the target speaker of each conversion
    reconstructions: list[np.ndarray] = field(repr=False)
    conversions: list[np.ndarray] = field(repr=False)
    speaker_judge: UtteranceClassifier = field(repr=False)  # what scored the speakers
    digit_judge: UtteranceClassifier | None = field(repr=False)  # the digits (None: no labels)


@torch.no_grad()
def decode_utterances(model, waves: Sequence[np.ndarray], speakers: Sequence[int], *,
                      sources: Sequence[int] | None = None, batch_size: int = 16,
                      temperature: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """Encode every (T_i,) waveform (spoken by ``sources[i]``, where the encoder needs to
    know) and decode it as ``speakers[i]`` -> list of (T_i,) float32.

    Utterances are batched by length (padded with silence at the end, cut afterwards); the
    same inputs and ``seed`` always give the same audio.
    """
    if len(waves) != len(speakers):
        raise ValueError(f"got {len(waves)} waveforms but {len(speakers)} speakers")
    if sources is not None and len(sources) != len(waves):
        raise ValueError(f"got {len(waves)} waveforms but {len(sources)} source speakers")
    device = next(model.parameters()).device
    order = np.argsort([len(w) for w in waves], kind="stable")
    generator = torch.Generator(device).manual_seed(seed)
    out: list[np.ndarray | None] = [None] * len(waves)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size].tolist()
        longest = max(len(waves[i]) for i in idx)
        x = torch.zeros(len(idx), longest, device=device)
        for row, i in enumerate(idx):
            x[row, : len(waves[i])] = torch.as_tensor(waves[i], dtype=torch.float32)
        ids = torch.tensor([int(speakers[i]) for i in idx], device=device)
        source = None if sources is None else torch.tensor([int(sources[i]) for i in idx],
                                                            device=device)
        y = model.convert(x, ids, source=source, temperature=temperature,
                          generator=generator).float().cpu()
        for row, i in enumerate(idx):
            out[i] = y[row, : len(waves[i])].numpy()
    return out  # type: ignore[return-value]


def evaluate_speech(model, train: SpeechCorpus, test: SpeechCorpus, *, per_speaker: int = 10,
                    seed: int = 0, batch_size: int = 16, temperature: float = 1.0,
                    guess_sources: bool = False, progress=None) -> SpeechEvaluation:
    """Reconstruction and speaker conversion of held-out utterances (module docstring).

    ``train`` and ``test`` are at the model's sample rate and level, with the speaker names the
    model was trained on.  ``guess_sources``: a model with ``frame_norm="speaker-mean"`` is
    told each input's speaker by ``model.nearest_speaker`` instead of the truth, as for a
    voice it does not know (``source_guess_acc``: how often the guess is right).
    ``progress``: a callable given a line of text at each stage.
    """
    say = progress or (lambda _: None)
    c = model.config
    if c.num_speakers < 2:
        raise ValueError("speaker conversion needs a model conditioned on at least 2 speakers")
    if test.speaker_names != tuple(c.speaker_names) or train.speaker_names != tuple(
            c.speaker_names):
        raise ValueError(f"the corpora's speakers {test.speaker_names} are not the model's "
                         f"{tuple(c.speaker_names)}")
    if test.sample_rate != c.sample_rate:
        raise ValueError(f"the test corpus is at {test.sample_rate} Hz, the model at "
                         f"{c.sample_rate} Hz")
    rate = c.sample_rate
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for spk in range(c.num_speakers):
        mine = np.flatnonzero(test.speaker == spk)
        chosen += sorted(rng.choice(mine, min(per_speaker, len(mine)), replace=False).tolist())
    if not chosen:
        raise ValueError(f"{test.source}: no test utterances")
    originals = [test.waveform(u) for u in chosen]
    own = [int(test.speaker[u]) for u in chosen]
    targets = [int((s + rng.integers(1, c.num_speakers)) % c.num_speakers) for s in own]
    sources = own
    if guess_sources:
        device = next(model.parameters()).device
        sources = [int(model.nearest_speaker(torch.as_tensor(w, dtype=torch.float32,
                                                             device=device))[0])
                   for w in originals]

    say(f"training the speaker classifier on {len(train)} real utterances")
    train_waves = [train.waveform(u) for u in range(len(train))]
    speaker_judge = train_speaker_classifier(train_waves, train.speaker, rate)
    digits = "digit" in test.labels and "digit" in train.labels
    digit_judge = None
    if digits:
        say("training the digit classifier")
        digit_judge = train_digit_classifier(train_waves, train.labels["digit"], rate)
    say(f"reconstructing {len(chosen)} test utterances")
    recon = decode_utterances(model, originals, own, sources=sources, batch_size=batch_size,
                              temperature=temperature, seed=seed)
    say(f"converting {len(chosen)} test utterances to another speaker")
    converted = decode_utterances(model, originals, targets, sources=sources,
                                  batch_size=batch_size,
                                  temperature=temperature, seed=seed + 1)

    m: dict[str, float] = {"utterances": float(len(chosen))}
    if guess_sources:
        m["source_guess_acc"] = float(np.mean(np.array(sources) == np.array(own)))
    m["log_mel_distance_db"] = float(np.mean(
        [log_mel_distance(o, r, rate) for o, r in zip(originals, recon, strict=True)]))
    # most single words are shorter than STOI's 384 ms segments: score the utterances end to end
    try:
        m["stoi"] = stoi(np.concatenate(originals), np.concatenate(recon), rate)
    except ValueError:  # under about 0.4 s of speech in all
        m["stoi"] = float("nan")
    m["speaker_acc_original"] = speaker_judge.accuracy(originals, own)
    m["speaker_acc_reconstruction"] = speaker_judge.accuracy(recon, own)
    m["speaker_acc_converted_to_target"] = speaker_judge.accuracy(converted, targets)
    m["speaker_acc_converted_still_source"] = speaker_judge.accuracy(converted, own)
    m["speaker_chance"] = 1.0 / c.num_speakers
    if digits:
        truth = [int(test.labels["digit"][u]) for u in chosen]
        m["digit_acc_original"] = digit_judge.accuracy(originals, truth)
        m["digit_acc_reconstruction"] = digit_judge.accuracy(recon, truth)
        m["digit_acc_converted"] = digit_judge.accuracy(converted, truth)
    return SpeechEvaluation(m, chosen, targets, recon, converted, speaker_judge, digit_judge)


@torch.no_grad()
def phone_discovery(model, corpus: SpeechCorpus, *, pause: str = "pau") -> PhoneProbe:
    """Do the codes line up with phones?  ``corpus`` (with ``phones``) at the model's rate.

    Every utterance is encoded; the code-to-phone mapping is fit on the even-numbered
    utterances and scored on the odd-numbered ones (half of the sentences each), frame by
    frame with one phone label per code (``PhoneSegments.frame_labels``).
    """
    device = next(model.parameters()).device
    codes = [model.encode(torch.as_tensor(corpus.waveform(u), device=device),
                          int(corpus.speaker[u]))[0].cpu().numpy()
             for u in range(len(corpus))]
    return probe_codes(codes, corpus, model.hop, pause=pause)


def probe_codes(codes: Sequence, corpus: SpeechCorpus, hop: int, *,
                pause: str = "pau") -> PhoneProbe:
    """The probe of ``phone_discovery`` for given codes: one integer array per utterance of
    ``corpus``, one code per ``hop`` samples (from any encoder or clustering)."""
    if corpus.phones is None:
        raise ValueError(f"{corpus.source}: no phone labels to probe with")
    labels = [corpus.phones.frame_labels(u, hop) for u in range(len(corpus))]
    fit, score = slice(0, None, 2), slice(1, None, 2)
    symbols = corpus.phones.symbols
    return code_phone_accuracy(codes[fit], labels[fit], codes[score], labels[score],
                               pause_label=symbols.index(pause) if pause in symbols else None)
