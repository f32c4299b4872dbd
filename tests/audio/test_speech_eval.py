import numpy as np
import pytest
import torch

from vqvae.audio import resample
from vqvae.eval.speech import (
    code_phone_accuracy,
    log_mel_distance,
    stoi,
    third_octave_bands,
    train_digit_classifier,
    train_speaker_classifier,
)
from vqvae.eval.speech_probes import FEATURE_GROUPS, utterance_features

RATE = 8000


def speechlike(seconds: float = 1.5, f0: float = 120.0, envelope=None, seed: int = 0,
               rate: int = RATE) -> np.ndarray:
    """A harmonic tone with a wobbling pitch f0 and a syllable-like amplitude envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 1.0) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(h * phase) / h for h in range(1, 30) if h * f0 < rate / 2 - 200)
    if envelope is None:
        envelope = np.maximum(0, np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6))) ** 2
    else:
        envelope = envelope(t / t[-1])
    noise = 0.001 * rng.standard_normal(len(t))  # a faint floor, well below 40 dB
    return (0.3 * x * envelope + noise).astype(np.float32)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(x))
    return (x + n * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))).astype(np.float32)


# --- log-mel distance -----------------------------------------------------------------------

def test_log_mel_distance_is_zero_for_identical_and_grows_with_noise():
    x = speechlike()
    assert log_mel_distance(x, x, RATE) == pytest.approx(0.0, abs=1e-6)
    distances = [log_mel_distance(x, with_noise(x, snr), RATE) for snr in (20, 5, -5)]
    assert distances[0] < distances[1] < distances[2]


def test_log_mel_distance_accepts_tensors_of_different_lengths():
    x = speechlike()
    assert log_mel_distance(torch.from_numpy(x), x[:-100], RATE) == pytest.approx(0.0, abs=1e-6)


# --- STOI -----------------------------------------------------------------------------------

def test_stoi_of_a_signal_with_itself_is_one():
    x = speechlike()
    assert stoi(x, x, RATE) == pytest.approx(1.0, abs=1e-6)


def test_stoi_of_a_signal_against_white_noise_is_low():
    x = speechlike()
    noise = np.random.default_rng(5).standard_normal(len(x)).astype(np.float32)
    assert stoi(x, noise, RATE) < 0.5
    assert stoi(x, noise, RATE) < stoi(x, with_noise(x, 0.0), RATE) - 0.3


def test_stoi_falls_as_the_noise_grows():
    x = speechlike()
    scores = [stoi(x, with_noise(x, snr), RATE) for snr in (10, 0, -10)]
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.9


def test_stoi_resamples_to_10_khz_itself():
    x = speechlike()
    y = with_noise(x, 0.0)
    assert stoi(resample(x, RATE, 10000), resample(y, RATE, 10000), 10000) == pytest.approx(
        stoi(x, y, RATE), abs=1e-6)


def test_stoi_refuses_a_signal_shorter_than_one_segment():
    x = speechlike(seconds=0.2)
    with pytest.raises(ValueError, match="30 non-silent frames"):
        stoi(x, x, RATE)


def test_third_octave_bands_do_not_overlap_and_start_near_150_hz():
    bands = third_octave_bands()
    assert bands.shape == (15, 257)
    assert bands.sum(axis=0).max() == 1
    first = np.flatnonzero(bands[0])
    freqs = np.linspace(0, 5000, 257)
    assert freqs[first[0]] < 150 < freqs[first[-1] + 1]


# --- classifiers ----------------------------------------------------------------------------

ENVELOPES = [lambda u: np.sin(np.pi * u) ** 2,  # one syllable in the middle
             lambda u: np.sin(2 * np.pi * u) ** 2,  # two syllables
             lambda u: np.clip(1.2 - 1.2 * u, 0, 1)]  # loud start, fading out
PITCHES = [100.0, 160.0, 240.0]


def corpus(count: int, seed: int):
    """``count`` utterances: a speaker (pitch) and a digit (envelope) each, chosen at random."""
    rng = np.random.default_rng(seed)
    speakers = rng.integers(0, len(PITCHES), count)
    digits = rng.integers(0, len(ENVELOPES), count)
    waves = [speechlike(seconds=rng.uniform(0.4, 0.6), f0=PITCHES[s] * rng.uniform(0.97, 1.03),
                        envelope=ENVELOPES[d], seed=int(rng.integers(1 << 30)))
             for s, d in zip(speakers, digits, strict=True)]
    return waves, speakers, digits


@pytest.fixture(scope="module")
def train_test():
    return corpus(36, seed=0), corpus(24, seed=1)


def test_speaker_classifier_recognises_held_out_speakers_by_pitch(train_test):
    (waves, speakers, _), (test_waves, test_speakers, _) = train_test
    classifier = train_speaker_classifier(waves, speakers, RATE)
    assert classifier.accuracy(test_waves, test_speakers) >= 0.9
    assert set(classifier.predict(test_waves)) <= set(speakers)


def test_digit_classifier_recognises_held_out_digits_by_envelope(train_test):
    (waves, _, digits), (test_waves, _, test_digits) = train_test
    classifier = train_digit_classifier(waves, digits, RATE)
    assert classifier.accuracy(test_waves, test_digits) >= 0.9


def test_the_judges_read_their_features_in_named_groups_and_no_one_group_decides(train_test):
    (waves, _, digits), (test_waves, _, test_digits) = train_test
    classifier = train_digit_classifier(waves, digits, RATE)
    feats = utterance_features(test_waves, RATE)
    torch.testing.assert_close(classifier.logits_of_features(feats), classifier.logits(test_waves))
    width = feats.shape[1] // len(FEATURE_GROUPS)
    assert width * len(FEATURE_GROUPS) == feats.shape[1]
    order = np.random.default_rng(0).permutation(len(test_waves))

    def swapped(groups):  # accuracy with these groups taken from other utterances
        out = feats.copy()
        for g in groups:
            cols = slice(FEATURE_GROUPS.index(g) * width, (FEATURE_GROUPS.index(g) + 1) * width)
            out[:, cols] = feats[order, cols]
        said = classifier.classes[classifier.logits_of_features(out).argmax(1).numpy()]
        return np.mean(said == test_digits)

    # the envelopes show in every group but the mean spectrum; the judge reads them together
    assert all(swapped([g]) >= 0.8 for g in FEATURE_GROUPS)
    assert swapped(FEATURE_GROUPS[1:]) < 0.6  # 0.5 measured


def test_classifiers_trained_on_shuffled_labels_are_near_chance(train_test):
    (waves, speakers, digits), (test_waves, test_speakers, test_digits) = train_test
    rng = np.random.default_rng(0)
    accuracies = []
    for seed in range(3):
        shuffled = rng.permutation(speakers)
        classifier = train_speaker_classifier(waves, shuffled, RATE, seed=seed)
        accuracies.append(classifier.accuracy(test_waves, test_speakers))
    assert np.mean(accuracies) < 0.6  # chance is 1 / 3


def test_classifier_keeps_string_labels_and_is_deterministic(train_test):
    (waves, speakers, _), (test_waves, _, _) = train_test
    names = np.array(["p225", "p226", "p227"])[speakers]
    a = train_speaker_classifier(waves, names, RATE).predict(test_waves)
    b = train_speaker_classifier(waves, names, RATE).predict(test_waves)
    assert a.dtype.kind == "U" and (a == b).all()


# --- phone probe ----------------------------------------------------------------------------

PAUSE = 0


def phone_utterances(count: int, seed: int, phones: int = 6):
    """Phone label runs with plenty of pause (label 0), as in read speech."""
    rng = np.random.default_rng(seed)
    utterances = []
    for _ in range(count):
        runs = [np.full(rng.integers(3, 10), PAUSE if rng.random() < 0.4 else
                        rng.integers(1, phones)) for _ in range(12)]
        utterances.append(np.concatenate(runs))
    return utterances


def noisy_codes(phones, seed: int, codes_per_phone: int = 3, noise: float = 0.2):
    """Each phone is spelt by one of its own codes; a fraction ``noise`` of frames is random."""
    rng = np.random.default_rng(seed)
    out = []
    for p in phones:
        codes = p * codes_per_phone + rng.integers(0, codes_per_phone, len(p))
        flip = rng.random(len(p)) < noise
        codes[flip] = rng.integers(0, 64, flip.sum())
        out.append(codes)
    return out


def test_codes_that_follow_the_phones_give_a_high_accuracy():
    train, test = phone_utterances(20, 0), phone_utterances(20, 1)
    probe = code_phone_accuracy(noisy_codes(train, 2), train, noisy_codes(test, 3), test,
                                pause_label=PAUSE)
    assert probe.accuracy > 0.8 and probe.accuracy > probe.baseline + 0.3
    assert probe.accuracy_speech > 0.75 and probe.baseline_speech < 0.4
    assert probe.frames == sum(map(len, test))
    assert probe.speech_frames == sum(int((t != PAUSE).sum()) for t in test)


def test_random_codes_give_about_the_baseline():
    train, test = phone_utterances(20, 0), phone_utterances(20, 1)
    rng = np.random.default_rng(4)
    random_train = [rng.integers(0, 32, len(p)) for p in train]
    random_test = [rng.integers(0, 32, len(p)) for p in test]
    probe = code_phone_accuracy(random_train, train, random_test, test, pause_label=PAUSE)
    assert abs(probe.accuracy - probe.baseline) < 0.1
    assert abs(probe.accuracy_speech - probe.baseline_speech) < 0.1


def test_phone_probe_cuts_one_extra_frame_and_refuses_misaligned_utterances():
    phones = [np.array([0, 1, 1, 2])]
    probe = code_phone_accuracy([np.array([5, 6, 6, 7, 7])], phones,
                                [np.array([5, 6, 6, 7])], phones)
    assert probe.accuracy == 1.0 and probe.code_to_phone == {5: 0, 6: 1, 7: 2}
    with pytest.raises(ValueError, match="utterance 0: 7 codes but 4 phone labels"):
        code_phone_accuracy([np.arange(7)], phones, [np.arange(4)], phones)
