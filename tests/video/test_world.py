"""Recorded worlds: shards, description, determinism, splits, windows, actions, errors."""

import json

import numpy as np
import pytest
import torch

from vqvae.data import DataError, load_image_dataset
from vqvae.data.world import load_world, parse_actions, record_world, window_starts
from vqvae.errors import UsageError
from vqvae.train.dynamics_task import CodeWindows


def quiet(_):
    pass


def test_world_holds_whole_episodes_in_shards_and_describes_them(world_dir):
    meta = json.loads((world_dir / "world.json").read_text())
    assert meta["shards"] == ["shard_00000.npz", "shard_00001.npz"]
    assert (meta["scenario"], meta["seed"], meta["size"]) == ("my_way_home", 3, 32)
    assert meta["action_names"] == ["noop", "forward", "turn_left", "turn_right"]
    assert meta["test_episodes"] == [2]
    assert sorted(p.name for p in world_dir.iterdir()) == [*meta["shards"], "world.json"]
    with np.load(world_dir / "shard_00001.npz") as shard:
        assert set(shard["episodes"]) == {2}
    world = load_world(world_dir)
    n = meta["frames"]
    assert world.frames.shape == (n, 32, 32, 3) and world.frames.dtype == np.uint8
    assert world.actions.shape == world.episodes.shape == world.steps.shape == (n,)
    assert world.actions.min() >= 0 and world.actions.max() < 4


def test_the_same_seed_records_the_same_world(world_dir, tmp_path):
    again = tmp_path / "again"
    record_world(again, num_episodes=3, steps_per_episode=24, size=32, seed=3,
                 shard_episodes=3, log=quiet)  # other shards, same episodes
    a, b = load_world(world_dir), load_world(again)
    for key in ("frames", "actions", "episodes", "steps"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_held_out_episodes_are_the_test_split_and_disjoint_from_train(world_dir):
    train, test = load_world(world_dir, "train"), load_world(world_dir, "test")
    assert set(test.episodes) == {2} and set(train.episodes) == {0, 1}
    assert len(train.frames) + len(test.frames) == len(load_world(world_dir).frames)


def test_an_existing_recording_is_reused_and_another_one_is_refused(world_dir):
    lines = []
    meta = record_world(world_dir, num_episodes=3, steps_per_episode=24, size=32, seed=3,
                        shard_episodes=2, log=lines.append)
    assert meta["frames"] == load_world(world_dir).frames.shape[0]
    assert "reusing" in lines[0]
    with pytest.raises(DataError, match=r"another recording \(seed 3 \(asked 4\)\)"):
        record_world(world_dir, num_episodes=3, steps_per_episode=24, size=32, seed=4,
                     log=quiet)


def test_a_missing_scenario_is_named_with_the_built_in_ones(tmp_path):
    with pytest.raises(DataError, match=r"no_such_maze.cfg: no such ViZDoom scenario; "
                                        r"built-in ones: .*my_way_home"):
        record_world(tmp_path / "w", "no_such_maze", num_episodes=1, steps_per_episode=2,
                     log=quiet)
    assert not (tmp_path / "w").exists()


def test_a_folder_without_a_recording_says_how_to_make_one(tmp_path):
    with pytest.raises(DataError, match=r"not a recorded world \(no such folder\); record one "
                                        r"with: vqvae world record"):
        load_world(tmp_path / "nothing")
    with pytest.raises(DataError, match="needs path="):
        load_image_dataset("world", None)


def test_the_world_is_an_image_data_set_for_the_frame_tokenizer(world_dir):
    ds = load_image_dataset("world", world_dir, "test", size=16)
    x, action = ds[0]
    assert x.shape == (3, 16, 16) and -0.5 <= x.min() <= x.max() <= 0.5
    assert ds.class_names[action] in ("noop", "forward", "turn_left", "turn_right")
    assert len(ds) == len(load_world(world_dir, "test").frames)


def test_windows_never_cross_episodes_nor_gaps_in_the_steps():
    episodes = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    steps = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 3, 4, 5])  # a gap in episode 2
    assert window_starts(episodes, steps, 3).tolist() == [0, 1, 4, 9]
    assert window_starts(episodes, steps, 1).tolist() == list(range(12))
    assert window_starts(episodes, steps, 13).tolist() == []


def test_code_windows_hold_consecutive_frames_of_one_episode_and_the_action_between(world_dir):
    world = load_world(world_dir)
    codes = np.arange(len(world.frames))[:, None, None].repeat(2, 1).repeat(2, 2)  # row ids
    windows = CodeWindows(codes, world.actions, world.episodes, world.steps, context_frames=3)
    per_episode = [max(0, (world.episodes == e).sum() - 3) for e in range(3)]
    assert len(windows) == sum(per_episode)
    for i in range(len(windows)):
        context, action, target = windows[i]
        rows = [*context[:, 0, 0].tolist(), int(target[0, 0])]
        assert len(set(world.episodes[rows])) == 1
        assert np.all(np.diff(world.steps[rows]) == 1)
        assert action == world.actions[rows[2]]  # taken at the last context frame
        assert torch.equal(context, torch.from_numpy(codes[rows[:3]]))


def test_actions_are_read_by_letter_name_index_and_repeat():
    assert parse_actions("F,F,L,turn_right,n,R*3,2") == [1, 1, 2, 3, 0, 3, 3, 3, 2]


@pytest.mark.parametrize("text", ["F,X", "jump", "F,9", "L*0", "F*two"])
def test_an_action_outside_the_world_is_refused_naming_the_allowed_ones(text):
    with pytest.raises(UsageError, match=r"--actions: .*(allowed: N = noop, F = forward, "
                                         r"L = turn_left, R = turn_right|repeat count)"):
        parse_actions(text)
