"""A recorded world: ViZDoom episodes, frames and the actions taken, in shards on disk.

    record_world("worlds/maze", num_episodes=40, steps_per_episode=500, size=84, seed=0)
    world = load_world("worlds/maze", split="test")     # the held-out episodes
    world.frames (N, S, S, 3) uint8, world.actions (N,), world.episodes (N,), world.steps (N,)

The folder holds whole episodes, ``shard_episodes`` of them per shard, written by
``record_episodes`` (``vizdoom_frames.py``: the exploring policy, one seed per episode):

    DIR/shard_00000.npz   frames (n, S, S, 3) uint8; actions, episodes, steps (n,) int64
    DIR/world.json        scenario, seed, size, tics_per_step, action_names, num_episodes,
                          steps_per_episode, frames, test_episodes, shards

Frame ``t`` is what the agent sees before taking ``actions[t]``; ``frames[t + 1]`` (same
episode) is the result.  The recording is deterministic for a seed.  Each shard is written
atomically and world.json last, so a folder with a world.json is complete.  The held-out
episodes (``test_episodes``) are the last 10 % (``held_out_episodes``).

``load_image_dataset("world", DIR)`` gives the frames as an ``ImageDataset`` (labels: the
actions), which is how the frame tokenizer (an image VQ-VAE) trains on a world.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .dataset import ImageDataset, check_split, resize_images
from .errors import DataError
from .paths import save_npz_atomic
from .vizdoom_frames import ACTION_NAMES, DEFAULT_SCENARIO, held_out_episodes, record_episodes

WORLD_FORMAT = 1
META_NAME = "world.json"
# one letter per action, for action sequences typed on the command line
ACTION_LETTERS = {"N": "noop", "F": "forward", "L": "turn_left", "R": "turn_right"}


@dataclass
class World:
    """The frames of some episodes of a recorded world, in recording order."""

    frames: np.ndarray  # (N, S, S, 3) uint8
    actions: np.ndarray  # (N,) int64, index into action_names, taken after each frame
    episodes: np.ndarray  # (N,) int64 episode id
    steps: np.ndarray  # (N,) int64 step within the episode
    meta: dict  # world.json
    folder: Path

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self.meta["action_names"])

    def episode_index(self, episode: int) -> np.ndarray:
        """(T,) the row indices of ``episode``'s frames, in step order; DataError if absent."""
        rows = np.flatnonzero(self.episodes == episode)
        if len(rows) == 0:
            ids = np.unique(self.episodes)
            raise DataError(f"{self.folder}: no episode {episode} here; episodes "
                            f"{_ranges(ids)}")
        return rows[np.argsort(self.steps[rows], kind="stable")]

    def as_images(self, size: int | None = None, split: str = "") -> ImageDataset:
        """The frames as an ``ImageDataset`` (labels: the actions), resized to ``size``."""
        frames = self.frames if size is None else resize_images(self.frames, size)
        return ImageDataset(frames, self.actions, self.action_names,
                            f"world {split} ({self.folder})".replace("  ", " "))


def _ranges(ids: np.ndarray) -> str:
    """[0 1 2 5 6] -> "0-2, 5-6"."""
    parts, start = [], None
    for k, i in enumerate(ids):
        if start is None:
            start = i
        if k + 1 == len(ids) or ids[k + 1] != i + 1:
            parts.append(f"{start}" if start == i else f"{start}-{i}")
            start = None
    return ", ".join(parts) or "none"


def record_world(
    folder: str | os.PathLike,
    scenario: str = DEFAULT_SCENARIO,
    num_episodes: int = 40,
    steps_per_episode: int = 500,
    size: int = 84,
    seed: int = 0,
    *,
    shard_episodes: int = 10,
    tics_per_step: int = 4,
    log=print,
) -> dict:
    """Record ``num_episodes`` episodes into ``folder`` (created); returns its world.json.

    A folder that already holds the same recording is reused as it is; one that holds
    another recording is refused (``DataError``), as is an unknown scenario (the message
    lists the built-in ones).
    """
    folder = Path(folder)
    if shard_episodes < 1:
        raise DataError(f"shard_episodes must be >= 1, got {shard_episodes}")
    wanted = {"scenario": Path(scenario).stem, "seed": seed, "size": size,
              "tics_per_step": tics_per_step, "num_episodes": num_episodes,
              "steps_per_episode": steps_per_episode}
    meta_path = folder / META_NAME
    if meta_path.is_file():
        old = read_world_meta(folder)
        changed = {k: (old.get(k), v) for k, v in wanted.items() if old.get(k) != v}
        if not changed:
            log(f"{folder}: already holds this recording; reusing it")
            return old
        diff = ", ".join(f"{k} {a!r} (asked {b!r})" for k, (a, b) in changed.items())
        raise DataError(f"{folder}: already holds another recording ({diff}); choose another "
                        "folder")
    shards, frames = [], 0
    for first in range(0, num_episodes, shard_episodes):
        count = min(shard_episodes, num_episodes - first)
        arrays = record_episodes(scenario, count, steps_per_episode, size, seed, tics_per_step,
                                 first_episode=first)
        name = f"shard_{len(shards):05d}.npz"
        save_npz_atomic(folder / name, {k: arrays[k] for k in
                                        ("frames", "actions", "episodes", "steps")})
        shards.append(name)
        frames += len(arrays["frames"])
        log(f"{folder / name}: episodes {first}-{first + count - 1}, "
            f"{len(arrays['frames'])} frames")
    meta = {"format_version": WORLD_FORMAT, **wanted, "action_names": list(ACTION_NAMES),
            "frames": frames,
            "test_episodes": held_out_episodes(np.arange(num_episodes)).tolist(),
            "shards": shards}
    tmp = meta_path.with_name(META_NAME + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)
    return meta


def read_world_meta(folder: str | os.PathLike) -> dict:
    """The world.json of ``folder``, or a DataError saying how to make one."""
    path = Path(folder) / META_NAME
    if not path.is_file():
        what = "no such folder" if not Path(folder).is_dir() else f"no {META_NAME} in it"
        raise DataError(f"{folder}: not a recorded world ({what}); record one with: "
                        f"vqvae world record {folder}")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: invalid JSON ({e})") from None
    missing = {"action_names", "shards", "test_episodes", "size"} - set(meta)
    if missing:
        raise DataError(f"{path}: not a world description; missing {sorted(missing)}")
    return meta


def load_world(folder: str | os.PathLike, split: str = "all") -> World:
    """The episodes of ``split`` ("train", "test": the held-out episodes, or "all")."""
    check_split(split, ("train", "test", "all"))
    folder = Path(folder)
    meta = read_world_meta(folder)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("frames", "actions", "episodes",
                                                           "steps")}
    for name in meta["shards"]:
        path = folder / name
        try:
            with np.load(path, allow_pickle=False) as f:
                for k, v in parts.items():
                    v.append(f[k])
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: a shard of {folder / META_NAME} is missing or unreadable "
                            f"({e})") from None
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    keep = np.ones(len(arrays["episodes"]), dtype=bool)
    if split != "all":
        test = np.isin(arrays["episodes"], meta["test_episodes"])
        keep = test if split == "test" else ~test
    if not keep.any():
        raise DataError(f"{folder}: the {split!r} split of this world is empty "
                        f"({meta.get('num_episodes')} episodes, held out: "
                        f"{meta['test_episodes']})")
    return World(**{k: v[keep] for k, v in arrays.items()}, meta=meta, folder=folder)


def load_world_dataset(path: str | os.PathLike | None, split: str = "train",
                       size: int | None = None) -> ImageDataset:
    """A world's frames as an ``ImageDataset`` (labels: the actions), resized to ``size``."""
    if path is None:
        raise DataError("the 'world' data set needs path=<folder of a recorded world> "
                        "(vqvae world record DIR)")
    return load_world(path, split).as_images(size, split)


def window_starts(episodes: np.ndarray, steps: np.ndarray, length: int) -> np.ndarray:
    """(M,) the rows i whose frames i .. i + length - 1 are consecutive steps of one episode.

    A window never crosses from one episode into the next (nor over a gap in the steps).
    """
    n = len(episodes)
    if length < 1 or n < length:
        return np.zeros(0, dtype=np.int64)
    last = np.arange(length - 1, n)
    first = last - (length - 1)
    same = (episodes[first] == episodes[last]) & (steps[last] - steps[first] == length - 1)
    return first[same].astype(np.int64)


def parse_actions(text: str, names: tuple[str, ...] = ACTION_NAMES) -> list[int]:
    """"F,F,L,turn_right,R*3" -> action indices into ``names``.

    Each comma-separated item is an action's name, its letter (N noop, F forward,
    L turn_left, R turn_right) or its index, optionally repeated with ``*COUNT``.  Anything
    else raises ``UsageError`` naming the item and the actions allowed.
    """
    allowed = ", ".join(f"{letter} = {name}" for letter, name in ACTION_LETTERS.items()
                        if name in names)
    out: list[int] = []
    for item in (s.strip() for s in text.split(",")):
        token, star, count = item.partition("*")
        token = token.strip()
        name = ACTION_LETTERS.get(token.upper(), token.lower())
        if name in names:
            index = names.index(name)
        elif token.isdigit() and int(token) < len(names):
            index = int(token)
        else:
            raise UsageError(f"--actions: {item!r} is not an action of this world; allowed: "
                             f"{allowed} (or the full names, or 0-{len(names) - 1}), "
                             "e.g. F,F,L,R*3")
        if star and not (count.strip().isdigit() and int(count) >= 1):
            raise UsageError(f"--actions: {item!r}: the repeat count after * must be a "
                             "positive integer")
        out += [index] * (int(count) if star else 1)
    return out
