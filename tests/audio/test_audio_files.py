import warnings

import numpy as np
import pytest
import soundfile as sf
from audio_fakes import tone, write_tone

from vqvae.audio import load_speech_corpus, load_speech_folder, read_audio, write_audio
from vqvae.data import DataError, DataWarning


def test_a_mono_wav_is_read_as_its_int16_samples_over_32768(tmp_path):
    path = tmp_path / "a.wav"
    samples = np.array([0, 1, -1, 16384, -32768, 32767], dtype=np.int16)
    sf.write(str(path), samples, 8000, subtype="PCM_16")
    audio = read_audio(path)
    assert audio.sample_rate == 8000 and audio.channels == 1 and audio.notes == ()
    assert audio.wave.dtype == np.float32
    assert np.array_equal(audio.wave, samples / 32768.0)


def test_flac_reads_like_wav(tmp_path):
    wav = read_audio(write_tone(tmp_path / "a.wav", rate=16000)).wave
    flac = read_audio(write_tone(tmp_path / "a.flac", rate=16000)).wave
    assert np.array_equal(wav, flac) and len(flac) == 800


def test_stereo_is_averaged_to_mono_and_said(tmp_path):
    path = write_tone(tmp_path / "stereo.wav", channels=2)
    audio = read_audio(path)
    left, right = sf.read(str(path), dtype="float32")[0].T
    assert audio.channels == 2 and np.allclose(audio.wave, (left + right) / 2)
    assert len(audio.notes) == 1 and "averaged to mono" in audio.notes[0]
    assert str(path) in audio.notes[0]


def test_another_rate_is_resampled_and_said(tmp_path):
    path = write_tone(tmp_path / "a.wav", seconds=0.1, rate=16000)
    audio = read_audio(path, 8000)
    assert audio.sample_rate == 8000 and audio.file_rate == 16000 and len(audio.wave) == 800
    assert "resampled from 16000 Hz to 8000 Hz" in audio.notes[0]
    assert np.allclose(audio.wave[100:-100], tone(0.1, 8000)[100:-100], atol=2e-3)


def test_a_corrupt_file_is_named(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 3)
    with pytest.raises(DataError, match=r"broken\.wav.*corrupt"):
        read_audio(path)


def test_an_empty_file_is_named(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, np.int16), 8000, subtype="PCM_16")
    with pytest.raises(DataError, match=r"empty\.wav: empty"):
        read_audio(path)
    (tmp_path / "zero.flac").write_bytes(b"")
    with pytest.raises(DataError, match=r"zero\.flac"):
        read_audio(tmp_path / "zero.flac")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nothere.wav: no such"):
        read_audio(tmp_path / "nothere.wav")


def test_a_file_shorter_than_needed_says_why(tmp_path):
    path = write_tone(tmp_path / "short.wav", seconds=0.01)  # 80 samples
    with pytest.raises(DataError, match=r"short\.wav: 80 samples .* at least 511 .*field"):
        read_audio(path, min_samples=511, why="the receptive field")


def test_write_audio_writes_16_bit_pcm_and_refuses_other_suffixes(tmp_path):
    x = np.array([0.0, 0.5, -2.0])
    path = write_audio(tmp_path / "sub" / "out.wav", x, 8000)
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == 8000 and data.tolist() == [0, 16384, -32768]
    assert sf.info(str(path)).subtype == "PCM_16"
    with pytest.raises(DataError, match="mp3"):
        write_audio(tmp_path / "out.mp3", x, 8000)


# ---------------------------------------------------------------- folders and VCTK
def _folder(root):
    for speaker, n, freq in (("anna", 3, 300.0), ("bob", 4, 500.0)):
        for i in range(n):
            write_tone(root / speaker / f"{speaker}_{i:03d}.wav", seconds=0.02 * (i + 1),
                       freq=freq)


def test_a_folder_takes_its_speakers_from_parent_folders(tmp_path):
    _folder(tmp_path)
    full = load_speech_folder(tmp_path, "all")
    assert full.speaker_names == ("anna", "bob") and len(full) == 7
    assert [full.speaker_names[s] for s in full.speaker] == ["anna"] * 3 + ["bob"] * 4
    assert full.names[0] == "anna/anna_000.wav" and full.sample_rate == 8000
    assert full.lengths.tolist() == [160, 320, 480, 160, 320, 480, 640]
    train = load_speech_folder(tmp_path, "train", test_fraction=0.5)
    test = load_speech_folder(tmp_path, "test", test_fraction=0.5)
    assert sorted(train.names + test.names) == sorted(full.names)
    assert test.speaker_names == train.speaker_names == full.speaker_names


def test_vctk_layouts_take_the_audio_folder_and_one_microphone(tmp_path):
    new = tmp_path / "VCTK-Corpus-0.92" / "wav48_silence_trimmed"
    for spk in ("p225", "p226"):
        for mic in ("mic1", "mic2"):
            write_tone(new / spk / f"{spk}_001_{mic}.flac", rate=48000, seconds=0.01)
    (tmp_path / "VCTK-Corpus-0.92" / "txt" / "p225").mkdir(parents=True)
    with pytest.warns(DataWarning, match="2 file.*resampled from 48000 Hz"):
        corpus = load_speech_corpus("vctk", tmp_path / "VCTK-Corpus-0.92", "all",
                                    sample_rate=16000, mic="mic2")
    assert corpus.names == ("p225/p225_001_mic2.flac", "p226/p226_001_mic2.flac")
    assert corpus.speaker_names == ("p225", "p226") and corpus.lengths.tolist() == [160, 160]
    old = tmp_path / "VCTK-Corpus" / "wav48"
    write_tone(old / "p225" / "p225_001.wav", rate=48000)
    assert load_speech_corpus("vctk", tmp_path / "VCTK-Corpus", "all").names == (
        "p225/p225_001.wav",)


def test_conversions_are_said_once_per_kind_for_a_whole_folder(tmp_path):
    write_tone(tmp_path / "a" / "1.wav", channels=2)
    write_tone(tmp_path / "a" / "2.wav", channels=2)
    write_tone(tmp_path / "b" / "3.wav", rate=16000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = load_speech_folder(tmp_path, "all", sample_rate=8000)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 2
    assert "2 file(s)" in messages[0] and "averaged to mono" in messages[0]
    assert "1 file(s)" in messages[1] and "resampled from 16000 Hz" in messages[1]
    assert len(corpus) == 3


def test_a_corrupt_file_in_a_folder_is_named(tmp_path):
    _folder(tmp_path)
    (tmp_path / "bob" / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(DataError, match=r"bad\.wav"):
        load_speech_folder(tmp_path, "all")


def test_files_shorter_than_min_samples_are_skipped_with_a_warning(tmp_path):
    _folder(tmp_path)
    with pytest.warns(DataWarning, match="2 file.*shorter than 200"):
        corpus = load_speech_folder(tmp_path, "all", min_samples=200)
    assert (corpus.lengths >= 200).all() and len(corpus) == 5


def test_unknown_sets_and_missing_paths_are_refused(tmp_path):
    with pytest.raises(DataError, match="unknown speech data set 'timit'"):
        load_speech_corpus("timit")
    with pytest.raises(DataError, match="needs path"):
        load_speech_corpus("folder")
    with pytest.raises(DataError, match="no audio files"):
        load_speech_folder(tmp_path, "all")
