import numpy as np
import pytest
import torch
from audio_fakes import SHARED_DATA, write_tone

from vqvae.audio import (
    CropDataset,
    PhoneSegments,
    SpeechCorpus,
    load_fsdd,
    load_speech_corpus,
    load_tts_phones,
    mu_law_encode,
)
from vqvae.data import DataError

needs_shared = pytest.mark.skipif(SHARED_DATA is None, reason="shared/data not found")


def _corpus(lengths, speakers=None, level="none", **kwargs):
    waves = [np.full(n, 0.1 * (i + 1), np.float32) for i, n in enumerate(lengths)]
    speakers = speakers or [0] * len(lengths)
    return SpeechCorpus.from_waves(waves, speakers, ["a", "b"], 8000,
                                   [f"u{i}" for i in range(len(lengths))], level=level, **kwargs)


# ---------------------------------------------------------------- FSDD
@needs_shared
def test_fsdd_npz_has_the_official_split_and_speakers():
    train, test = load_fsdd(split="train"), load_speech_corpus("fsdd", split="test")
    assert (len(train), len(test)) == (2700, 300)
    assert test.labels["index"].max() == 4 and train.labels["index"].min() == 5
    assert train.speaker_names == ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    assert test.sample_rate == 8000 and np.bincount(test.speaker).tolist() == [50] * 6
    with np.load(SHARED_DATA / "fsdd.npz") as f:
        u = int(np.flatnonzero(f["filenames"] == test.names[7])[0])
        raw = f["audio"][f["offsets"][u] : f["offsets"][u + 1]]
        assert test.labels["digit"][7] == f["digit"][u]
    assert np.array_equal(test.audio[test.offsets[7] : test.offsets[8]], raw)
    wave = test.waveform(7)
    assert np.isclose(np.abs(wave).max(), 0.9)  # peak level
    assert np.allclose(wave, raw / 32768 * (0.9 / (np.abs(raw.astype(int)).max() / 32768)),
                       atol=1e-6)


def test_fsdd_reads_the_original_recordings_folder(tmp_path):
    rec = tmp_path / "free-spoken-digit-dataset" / "recordings"
    for name in ("theo", "george"):
        for digit in (3, 1):
            for index in (0, 7):
                write_tone(rec / f"{digit}_{name}_{index}.wav", seconds=0.01 * (index + 1))
    (rec / "README.txt").write_text("not a recording")
    train = load_fsdd(tmp_path / "free-spoken-digit-dataset", "train")
    test = load_fsdd(rec, "test", level="none")
    assert train.speaker_names == test.speaker_names == ("george", "theo")
    assert train.names == ("1_george_7.wav", "3_george_7.wav", "1_theo_7.wav", "3_theo_7.wav")
    assert test.labels["digit"].tolist() == [1, 3, 1, 3] and test.speaker.tolist() == [0, 0, 1, 1]
    assert train.lengths.tolist() == [640] * 4 and test.lengths.tolist() == [80] * 4
    resampled = load_fsdd(rec, "test", sample_rate=16000)
    assert resampled.sample_rate == 16000 and resampled.lengths.tolist() == [160] * 4


def test_fsdd_without_recordings_is_refused(tmp_path):
    with pytest.raises(DataError, match="no FSDD recordings"):
        load_fsdd(tmp_path)
    with pytest.raises(DataError, match="split"):
        load_fsdd(tmp_path, "validation")


# ---------------------------------------------------------------- tts_phones
@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    if SHARED_DATA is None:
        pytest.skip("shared/data not found")
    mp = pytest.MonkeyPatch()
    mp.setenv("VQVAE_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield load_tts_phones(split="all"), load_tts_phones(split="test", sample_rate=8000)
    finally:
        mp.undo()


def test_tts_phones_labels_tile_every_utterance_and_are_read_per_utterance(tts):
    corpus, _ = tts
    assert len(corpus) == 350 and corpus.speaker_names == ("kal", "ked", "slt", "awb", "rms")
    assert len(corpus.phones.symbols) == 41 and corpus.phones.symbols[0] == "pau"
    for u in (0, 123, 349):
        labels = corpus.phones.sample_labels(u)
        assert len(labels) == corpus.lengths[u]
        segs = corpus.phones.segments(u)
        assert segs[0][0] == segs[-1][0] == "pau" and segs[0][1] == 0
        assert segs[-1][2] == corpus.lengths[u]
    # the same sentence is not the same phone sequence in every voice (kal and ked: README)
    def spoken(u):
        return [p for p, _, _ in corpus.phones.segments(u) if p != "pau"]

    assert (corpus.labels["sentence_id"][:70] == corpus.labels["sentence_id"][70:140]).all()
    assert sum(spoken(s) != spoken(70 + s) for s in range(70)) > 30


def test_tts_phones_test_split_holds_out_whole_sentences_and_resamples_labels(tts):
    full, test = tts
    assert len(test) == 35 and test.sample_rate == 8000
    assert set(test.labels["sentence_id"].tolist()) == set(range(9, 70, 10))
    u = test.names.index("slt_" + test.names[0].split("_", 1)[1])
    v = full.names.index(test.names[u])
    assert abs(test.lengths[u] - full.lengths[v] / 2) <= 1
    a = [(p, s, e) for p, s, e in test.phones.segments(u)]
    b = [(p, s / 2, e / 2) for p, s, e in full.phones.segments(v)]
    assert [p for p, _, _ in a] == [p for p, _, _ in b]
    assert max(abs(x[1] - y[1]) for x, y in zip(a, b, strict=True)) <= 1
    assert len(test.phones.sample_labels(u)) == test.lengths[u]
    frames = test.phones.frame_labels(u, 64)
    assert len(frames) == -(-test.lengths[u] // 64)


def test_phone_segments_rescale_and_frame_labels():
    p = PhoneSegments(np.array([0, 5, 0]), np.array([0, 3, 7]), np.array([3, 7, 10]),
                      np.array([0, 3]), tuple("abcdef"))
    assert p.sample_labels(0).tolist() == [0] * 3 + [5] * 4 + [0] * 3
    assert p.frame_labels(0, 4).tolist() == [0, 5, 0]  # the samples at 2, 6 and 9 (the end)
    r = p.rescaled(2.0, np.array([21]))
    assert r.start.tolist() == [0, 6, 14] and r.end.tolist() == [6, 14, 21]


# ---------------------------------------------------------------- corpus and crops
def test_corpus_refuses_an_empty_utterance_and_bad_speakers():
    with pytest.raises(DataError, match="utterance 1 .*no samples"):
        _corpus([5, 0, 3])
    with pytest.raises(DataError, match="speaker indices"):
        _corpus([5, 3], speakers=[0, 2])


def test_levels_scale_each_utterance():
    c = _corpus([10, 20], level="peak")
    assert np.allclose(c.waveform(0), 0.9) and np.allclose(c.waveform(1), 0.9)
    c = _corpus([10, 20], level="rms")
    assert np.allclose(c.waveform(1), 0.1)


def test_crops_depend_only_on_seed_and_index():
    c = _corpus([500, 3000], level="none")
    a, b = CropDataset(c, 256, seed=1), CropDataset(c, 256, seed=1)
    assert all(torch.equal(a[i][0], b[i][0]) for i in (0, 5, 99))
    other = CropDataset(c, 256, seed=2)
    assert {a.position(i) for i in range(20)} != {other.position(i) for i in range(20)}
    wave, targets, speaker = a[3]
    assert wave.shape == targets.shape == (256,) and wave.dtype == torch.float32
    assert torch.equal(targets, mu_law_encode(wave)) and speaker.dtype == torch.int64


def test_crops_draw_utterances_in_proportion_to_their_length():
    c = _corpus([1000, 9000], speakers=[0, 1])
    ds = CropDataset(c, 100, num_crops=4000)
    first = sum(ds.position(i)[0] == 0 for i in range(len(ds))) / len(ds)
    assert 0.08 < first < 0.12
    starts = [s for u, s in map(ds.position, range(len(ds))) if u == 1]
    assert min(starts) >= 0 and max(starts) <= 8900 and max(starts) > 8000


def test_an_utterance_shorter_than_the_crop_is_placed_in_silence():
    c = _corpus([40], level="none")
    ds = CropDataset(c, 128, seed=0)
    for i in range(5):
        wave, targets, _ = ds[i]
        u, start = ds.position(i)
        assert start <= 0 and (wave != 0).sum() == 40
        assert torch.allclose(wave[-start : -start + 40], torch.tensor(0.1), atol=1e-4)
        assert (targets[wave == 0] == 128).all()


def test_every_crop_has_the_crop_length_even_when_a_short_utterance_starts_at_zero():
    c = _corpus([126], level="none")  # starts 0, -1 or -2: 0 once in three
    ds = CropDataset(c, 128, seed=0)
    starts = {ds.position(i)[1] for i in range(30)}
    assert 0 in starts
    assert all(ds[i][0].shape == (128,) for i in range(30))


def test_resampling_a_corpus_keeps_speakers_and_names():
    c = _corpus([800, 400], speakers=[1, 0])
    r = c.resampled(16000)
    assert r.lengths.tolist() == [1600, 800] and r.sample_rate == 16000
    assert r.speaker.tolist() == [1, 0] and r.names == c.names
