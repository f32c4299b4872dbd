import numpy as np
import pytest

pytest.importorskip("vizdoom")

from vqvae.data import ACTION_NAMES, DataError, load_image_dataset, record_episodes  # noqa: E402
from vqvae.data import vizdoom_frames as vf  # noqa: E402


@pytest.fixture(scope="module")
def recording():
    return record_episodes("my_way_home", num_episodes=2, steps_per_episode=40, size=32, seed=5)


def test_same_seed_gives_identical_recordings(recording):
    again = record_episodes("my_way_home", num_episodes=2, steps_per_episode=40, size=32, seed=5)
    for key in ("frames", "actions", "episodes", "steps"):
        np.testing.assert_array_equal(again[key], recording[key])


def test_other_seed_gives_other_frames(recording):
    other = record_episodes("my_way_home", num_episodes=1, steps_per_episode=40, size=32, seed=6)
    n = min(len(other["frames"]), 40)
    assert not np.array_equal(other["frames"][:n], recording["frames"][:n])


def test_first_episodes_do_not_depend_on_the_number_recorded(recording):
    one = record_episodes("my_way_home", num_episodes=1, steps_per_episode=40, size=32, seed=5)
    np.testing.assert_array_equal(one["frames"], recording["frames"][recording["episodes"] == 0])


def test_recording_arrays_have_documented_shapes_and_meaning(recording):
    n = len(recording["frames"])
    assert recording["frames"].shape == (n, 32, 32, 3) and recording["frames"].dtype == np.uint8
    assert 2 <= n <= 80
    assert set(np.unique(recording["episodes"])) <= {0, 1}
    assert recording["actions"].min() >= 0 and recording["actions"].max() < len(ACTION_NAMES)
    assert recording["scenario"] == "my_way_home" and int(recording["seed"]) == 5
    # the view changes as the agent moves: frames are not all the same
    assert len(np.unique(recording["frames"].reshape(n, -1), axis=0)) > n // 2


def test_policy_keeps_actions_for_several_steps(recording):
    a, ep = recording["actions"], recording["episodes"]
    changes = np.sum((a[1:] != a[:-1]) & (ep[1:] == ep[:-1]))
    assert changes < len(a) / 2


def test_frames_are_cached_atomically_and_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kw = dict(scenario="my_way_home", seed=1, num_episodes=3, steps_per_episode=10, size=24)
    train = load_image_dataset("vizdoom", tmp_path / "vz", "train", **{**kw, "size": 24})
    files = sorted(p.name for p in (tmp_path / "vz").iterdir())
    assert files == ["my_way_home_24px_seed1_3x10_v1.npz"]  # no temporary file left behind
    assert not (tmp_path / "_vizdoom").exists()  # the engine's files stay out of the cwd

    def fail(*args, **kwargs):
        raise AssertionError("recorded again although cached")

    monkeypatch.setattr(vf, "record_episodes", fail)
    again = load_image_dataset("vizdoom", tmp_path / "vz", "train", **kw)
    np.testing.assert_array_equal(again.images, train.images)
    test = load_image_dataset("vizdoom", tmp_path / "vz" / files[0], "test")
    assert len(train) + len(test) == len(
        vf.vizdoom_recording(folder=tmp_path / "vz", **kw)["frames"]
    )
    assert train.images.shape[1:] == (24, 24, 3) and len(test) > 0
    assert train.class_names == ACTION_NAMES


def test_last_tenth_of_episodes_is_held_out():
    assert vf.held_out_episodes(np.repeat(np.arange(40), 3)).tolist() == [36, 37, 38, 39]
    assert vf.held_out_episodes(np.array([0, 0, 1])).tolist() == [1]


def test_unknown_scenario_is_a_data_error_listing_the_built_in_ones():
    with pytest.raises(DataError, match="my_way_home"):
        record_episodes("no_such_map", num_episodes=1, steps_per_episode=1)
