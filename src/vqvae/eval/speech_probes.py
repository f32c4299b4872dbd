"""Probes of what speech codes and converted speech carry (paper section 4.3).

Speaker conversion is judged by two classifiers trained on real speech: the converted
utterance should be recognised as the target speaker and still as the spoken digit.

    speaker = train_speaker_classifier(waves, speakers, 8000)
    speaker.accuracy(converted_waves, target_speakers)          # fraction in [0, 1]

Both classifiers are a linear softmax model (multinomial logistic regression) on fixed
spectral features of a whole utterance (``spectral_features``), trained full batch with L-BFGS
from a fixed seed, so the same data always gives the same classifier.

Phoneme discovery is probed by mapping every code to the phone it most often co-occurs with:

    probe = code_phone_accuracy(train_codes, train_phones, test_codes, test_phones,
                                pause_label=corpus.phones.symbols.index("pau"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..audio.spectrogram import log_mel_spectrogram

N_MELS = 32  # mel bands of the features
TIME_PARTS = 3  # the utterance is cut into this many equal parts for the coarse time shape
# what ``spectral_features`` holds, n_mels values each, in this order
FEATURE_GROUPS = ("mean", "deviation", "change mean", "change deviation", "first third",
                  "second third", "last third")


def spectral_features(wave, sample_rate: int, *, n_mels: int = N_MELS) -> np.ndarray:
    """(T,) waveform -> (7 n_mels,) float32 features of the whole utterance.

    From the log-mel spectrogram (dB) and its frame-to-frame deltas: the mean and standard
    deviation over time of both (timbre and pitch: speakers), and the mean of the spectrogram in
    each third of the utterance (a coarse time shape: words).
    """
    spec = log_mel_spectrogram(wave, sample_rate, n_mels=n_mels).astype(np.float64)
    spec = np.maximum(spec, spec.max() - 80.0)  # an 80 dB floor: silence is not -100 dB noise
    delta = np.diff(spec, axis=1) if spec.shape[1] > 1 else np.zeros_like(spec)
    parts = [p.mean(axis=1) for p in np.array_split(spec, TIME_PARTS, axis=1) if p.shape[1]]
    parts += [spec.mean(axis=1)] * (TIME_PARTS - len(parts))  # utterances of < 3 frames
    feats = [spec.mean(axis=1), spec.std(axis=1), delta.mean(axis=1), delta.std(axis=1), *parts]
    return np.concatenate(feats).astype(np.float32)


@dataclass
class UtteranceClassifier:
    """A softmax classifier of whole utterances: ``predict(waves)`` -> labels."""

    classes: np.ndarray  # (C,) the labels, in the order of the model's outputs
    mean: np.ndarray  # (F,) feature mean of the training set
    std: np.ndarray  # (F,) feature standard deviation of the training set
    linear: torch.nn.Linear  # F -> C
    sample_rate: int

    def logits(self, waves: Sequence) -> torch.Tensor:
        """(N, C) class scores of N waveforms at ``sample_rate``."""
        return self.logits_of_features(utterance_features(waves, self.sample_rate))

    def logits_of_features(self, feats: np.ndarray) -> torch.Tensor:
        """(N, F) ``utterance_features`` -> (N, C) class scores."""
        with torch.no_grad():
            return self.linear(_standardised(feats, self.mean, self.std))

    def predict(self, waves: Sequence) -> np.ndarray:
        """(N,) the most likely label of each waveform."""
        return self.classes[self.logits(waves).argmax(dim=1).numpy()]

    def accuracy(self, waves: Sequence, labels: Sequence) -> float:
        """Fraction of ``waves`` whose predicted label equals ``labels``."""
        labels = np.asarray(labels)
        if len(labels) != len(waves):
            raise ValueError(f"got {len(waves)} waveforms but {len(labels)} labels")
        return float(np.mean(self.predict(waves) == labels))


def train_utterance_classifier(waves: Sequence, labels: Sequence, sample_rate: int, *,
                               weight_decay: float = 1e-2, steps: int = 200,
                               seed: int = 0) -> UtteranceClassifier:
    """A softmax classifier of ``labels`` (any N values, at least 2 distinct) from N waveforms.

    Args:
        waves: N (T_i,) waveforms (NumPy arrays or tensors) at ``sample_rate`` Hz.
        labels: N labels (ints or strings).
        weight_decay: L2 penalty on the weights, per feature (the features are standardised).
        steps: L-BFGS iterations over the full batch.
        seed: the initial weights' seed.
    """
    labels = np.asarray(labels)
    if len(labels) != len(waves):
        raise ValueError(f"got {len(waves)} waveforms but {len(labels)} labels")
    classes, targets = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"a classifier needs at least 2 distinct labels, got {list(classes)}")
    feats = utterance_features(waves, sample_rate)
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
    x = _standardised(feats, mean, std)
    y = torch.as_tensor(targets, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(x.shape[1], len(classes))
    with torch.no_grad():
        linear.weight.copy_(0.01 * torch.randn(linear.weight.shape, generator=generator))
        linear.bias.zero_()
    opt = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=steps,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x), y)
        loss = loss + weight_decay * linear.weight.square().sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    return UtteranceClassifier(classes, mean, std, linear.eval(), sample_rate)


def train_speaker_classifier(waves: Sequence, speaker_ids: Sequence, sample_rate: int,
                             **options) -> UtteranceClassifier:
    """Who speaks: a classifier of ``speaker_ids`` (see ``train_utterance_classifier``)."""
    return train_utterance_classifier(waves, speaker_ids, sample_rate, **options)


def train_digit_classifier(waves: Sequence, digits: Sequence, sample_rate: int,
                           **options) -> UtteranceClassifier:
    """What is said: a classifier of spoken ``digits`` (see ``train_utterance_classifier``)."""
    return train_utterance_classifier(waves, digits, sample_rate, **options)


def utterance_features(waves: Sequence, sample_rate: int) -> np.ndarray:
    """N waveforms -> (N, F) their ``spectral_features``, what the classifiers read."""
    if len(waves) == 0:
        raise ValueError("got no waveforms")
    return np.stack([spectral_features(_numpy(w), sample_rate) for w in waves])


def _numpy(wave) -> np.ndarray:
    return np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave,
                      dtype=np.float32).reshape(-1)


def _standardised(feats: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    return torch.as_tensor((feats - mean) / std, dtype=torch.float32)


@dataclass
class PhoneProbe:
    """Frame accuracy of phones predicted from codes, against a constant guess."""

    accuracy: float  # test frames whose code's phone is right
    baseline: float  # test frames that are the most common train phone
    accuracy_speech: float  # the same over non-pause frames (mapping fit on non-pause frames)
    baseline_speech: float  # the most common non-pause train phone, over non-pause frames
    code_to_phone: dict[int, int]  # the mapping fit on all train frames
    frames: int  # test frames
    speech_frames: int  # non-pause test frames


def code_phone_accuracy(train_codes: Sequence, train_phones: Sequence, test_codes: Sequence,
                        test_phones: Sequence, *, pause_label: int | None = None
                        ) -> PhoneProbe:
    """How well the codes tell the phones apart (a majority-vote probe).

    Every code is mapped to the phone it most often co-occurs with in the train utterances;
    codes never seen there map to the most common train phone.  Accuracy is counted over all
    test frames, and over the test frames whose phone is not ``pause_label`` with a second
    mapping fit on the non-pause train frames only (both probe and baseline then choose among
    speech phones, so silence does not inflate the score).  ``pause_label=None``: the speech
    scores equal the overall ones.

    Args:
        train_codes, train_phones, test_codes, test_phones: lists of per-utterance integer
            arrays, codes and phone labels at the same frame rate (e.g. from
            ``model.encode`` and ``corpus.phones.frame_labels(u, model.hop)``).  An utterance's
            codes and phones may differ by one frame (ceil vs floor of T / hop); the longer is
            cut.
    """
    tr_c, tr_p = _aligned(train_codes, train_phones, "train")
    te_c, te_p = _aligned(test_codes, test_phones, "test")
    if len(tr_c) == 0 or len(te_c) == 0:
        raise ValueError(f"got {len(tr_c)} train and {len(te_c)} test frames; need both")
    mapping, default = _majority(tr_c, tr_p)
    accuracy = _mapped_accuracy(mapping, default, te_c, te_p)
    baseline = float(np.mean(te_p == default))
    speech = np.ones(len(te_p), bool) if pause_label is None else te_p != pause_label
    train_speech = np.ones(len(tr_p), bool) if pause_label is None else tr_p != pause_label
    if speech.any() and train_speech.any():
        s_map, s_default = _majority(tr_c[train_speech], tr_p[train_speech])
        accuracy_speech = _mapped_accuracy(s_map, s_default, te_c[speech], te_p[speech])
        baseline_speech = float(np.mean(te_p[speech] == s_default))
    else:
        accuracy_speech = baseline_speech = float("nan")
    return PhoneProbe(accuracy, baseline, accuracy_speech, baseline_speech,
                      {int(c): int(p) for c, p in mapping.items()}, len(te_p), int(speech.sum()))


def _aligned(codes: Sequence, phones: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(codes) != len(phones):
        raise ValueError(f"{name}: got {len(codes)} code sequences but {len(phones)} phone "
                         f"sequences")
    cs, ps = [], []
    for u, (c, p) in enumerate(zip(codes, phones, strict=True)):
        c = np.asarray(c.cpu() if hasattr(c, "cpu") else c, dtype=np.int64).reshape(-1)
        p = np.asarray(p, dtype=np.int64).reshape(-1)
        if abs(len(c) - len(p)) > 1:
            raise ValueError(f"{name} utterance {u}: {len(c)} codes but {len(p)} phone labels; "
                             f"expected the same frame rate")
        n = min(len(c), len(p))
        cs.append(c[:n])
        ps.append(p[:n])
    if not cs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(cs), np.concatenate(ps)


def _majority(codes: np.ndarray, phones: np.ndarray) -> tuple[dict[int, int], int]:
    """{code: its most frequent phone}, and the most frequent phone overall (ties: smallest)."""
    pairs, counts = np.unique(np.stack([codes, phones]), axis=1, return_counts=True)
    mapping: dict[int, int] = {}
    best: dict[int, int] = {}
    for (c, p), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if n > best.get(c, 0):
            mapping[c], best[c] = p, n
    default = int(np.bincount(phones).argmax())
    return mapping, default


def _mapped_accuracy(mapping: dict[int, int], default: int, codes: np.ndarray,
                     phones: np.ndarray) -> float:
    predicted = np.array([mapping.get(c, default) for c in codes.tolist()], dtype=np.int64)
    return float(np.mean(predicted == phones))
