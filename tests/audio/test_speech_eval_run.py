"""The speech evaluation protocol: decoding in batches and the phone-discovery probe."""

import numpy as np
import torch
from audio_fakes import TINY

from vqvae.audio.corpus import PhoneSegments, SpeechCorpus
from vqvae.eval.speech_eval import decode_utterances, phone_discovery
from vqvae.speech_model import SpeechVQVAE, SpeechVQVAEConfig


def test_decode_utterances_keeps_each_length_and_is_reproducible():
    torch.manual_seed(0)
    model = SpeechVQVAE(SpeechVQVAEConfig(**TINY, num_speakers=2)).eval()
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (37, 80, 12, 64, 50)]
    a = decode_utterances(model, waves, [0, 1, 0, 1, 1], batch_size=2, seed=3)
    b = decode_utterances(model, waves, [0, 1, 0, 1, 1], batch_size=2, seed=3)
    assert [len(x) for x in a] == [37, 80, 12, 64, 50]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.abs(x).max() <= 1 for x in a)


class _PhoneReader:
    """A stand-in encoder whose code for a frame is the phone playing in it (a tone per phone),
    so the probe must score 100%; its hop is 4 samples."""

    hop = 4

    def parameters(self):
        yield torch.zeros(1)

    def encode(self, x, speaker=None):
        frames = x[: len(x) // 4 * 4].reshape(-1, 4)
        return torch.round(frames.abs().max(1).values * 10).long()[None]


def _corpus():
    waves, segs, offsets = [], [], [0]
    rng = np.random.default_rng(0)
    for _ in range(6):
        phones = rng.integers(0, 4, size=5)
        waves.append(np.concatenate([np.full(8, 0.1 * p, np.float32) for p in phones]))
        segs += [(p, 8 * i, 8 * i + 8) for i, p in enumerate(phones)]
        offsets.append(offsets[-1] + 5)
    phone, start, end = (np.array(x, np.int64) for x in zip(*segs, strict=True))
    phones = PhoneSegments(phone, start, end, np.array(offsets), ("pau", "a", "b", "c"))
    return SpeechCorpus.from_waves(waves, [0] * 6, ["v"], 8000, [f"u{u}" for u in range(6)],
                                   level="none", phones=phones)


def test_phone_discovery_scores_codes_that_are_the_phones_as_perfect():
    probe = phone_discovery(_PhoneReader(), _corpus())
    assert probe.accuracy == 1.0 and probe.accuracy_speech == 1.0
    assert probe.baseline < 1.0 and probe.frames == 3 * 40 // 4


def test_evaluation_can_guess_each_inputs_speaker_from_the_known_voices():
    from vqvae.eval.speech_eval import evaluate_speech

    torch.manual_seed(0)
    config = SpeechVQVAEConfig(**(TINY | {"frontend": "log-mel", "n_mels": 8,
                                          "frame_norm": "speaker-mean", "num_speakers": 2,
                                          "speaker_names": ("quiet", "loud")}))
    model = SpeechVQVAE(config).eval()
    rng = np.random.default_rng(0)

    def corpus(n):  # speaker 1 is 20 dB louder: its mean frame is far from speaker 0's
        waves = [(rng.uniform(-0.05, 0.05, 640) * (10 if u % 2 else 1)).astype(np.float32)
                 for u in range(n)]
        return SpeechCorpus.from_waves(waves, [u % 2 for u in range(n)], ["quiet", "loud"],
                                       8000, [f"u{u}" for u in range(n)], level="none")

    train, test = corpus(8), corpus(4)
    model.encoder.fit_speaker_means([train.waveform(u) for u in range(len(train))],
                                    train.speaker)
    known = evaluate_speech(model, train, test, per_speaker=2)
    guessed = evaluate_speech(model, train, test, per_speaker=2, guess_sources=True)
    assert "source_guess_acc" not in known.metrics
    assert guessed.metrics["source_guess_acc"] == 1.0
    # the judge that scored the conversions comes back with them
    assert (known.speaker_judge.accuracy(known.conversions, known.targets)
            == known.metrics["speaker_acc_converted_to_target"])
    assert known.digit_judge is None  # these utterances have no digit labels
    # right guesses encode as the truth does: the same audio
    assert all(np.array_equal(a, b) for a, b in zip(known.conversions, guessed.conversions,
                                                    strict=True))
