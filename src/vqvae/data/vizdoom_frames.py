"""Built-in image data that needs no download: first-person frames rendered by ViZDoom.

``pip install vizdoom`` ships the engine, the Freedoom assets and the scenarios
(``vizdoom.scenarios_path``). An agent explores a maze (default ``my_way_home``, which spawns
the player at a random spot) with a random policy with persistence: it picks one of
``ACTION_NAMES`` and keeps it for several steps (forward 4-15, a turn 2-7, no-op 1-3), so it
walks and turns rather than jitters. A forward step that moves the agent less than one map unit
(it walked into a wall) is followed by a random turn of 4-11 steps, so that few frames show a
wall at point-blank range. Each step lasts ``tics_per_step`` game tics (4 tics: about
7 units forward or 14 degrees of turn). Frames are rendered at 160x120 (or the smallest 4:3
resolution at least ``size`` high) and the whole view is resized (bilinear) to ``size`` x
``size``; window hidden, no sound, no HUD.

Frame ``t`` is what the agent sees before taking ``actions[t]``; within an episode,
``frames[t + 1]`` is the result. An episode ends after ``steps_per_episode`` frames or earlier
if the agent reaches the goal. Episode ``e`` uses the game seed and policy stream derived from
``(seed, e)``, so a recording is deterministic and its first episodes do not depend on how
many were asked for.

``vizdoom_recording`` generates the default data set once and caches it as
``cache_dir()/vizdoom/<scenario>_<size>px_seed<seed>_<episodes>x<steps>_v1.npz``; the last
``TEST_EPISODES_FRACTION`` of episodes (at least one) form the test split.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import ImageDataset, check_split, resize_images
from .errors import DataError
from .paths import cache_dir, save_npz_atomic

log = logging.getLogger(__name__)

ACTION_NAMES = ("noop", "forward", "turn_left", "turn_right")
# (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT) buttons pressed by each action
_BUTTONS = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1))
_ACTION_PROBS = (0.1, 0.5, 0.2, 0.2)
_HOLD_STEPS = ((1, 4), (4, 16), (2, 8), (2, 8))  # [low, high) steps each action is kept
_TURN_AWAY_STEPS = (4, 12)  # a turn of about 55-155 degrees at 4 tics per step
_BLOCKED_DISTANCE = 1.0  # map units moved in one forward step below which the agent is stuck

DEFAULT_SCENARIO = "my_way_home"
DEFAULT_EPISODES = 40
DEFAULT_STEPS = 500
DEFAULT_SIZE = 64
TEST_EPISODES_FRACTION = 0.1
FORMAT_VERSION = 1


def _import_vizdoom():
    try:
        import vizdoom
    except ImportError as e:
        raise DataError("the ViZDoom frames need the 'vizdoom' package: pip install vizdoom") from e
    return vizdoom


def _scenario_config(vzd, scenario: str) -> Path:
    cfg = Path(scenario)
    if cfg.suffix != ".cfg":
        cfg = Path(vzd.scenarios_path) / f"{scenario}.cfg"
    if not cfg.is_file():
        names = sorted(p.stem for p in Path(vzd.scenarios_path).glob("*.cfg"))
        raise DataError(f"{cfg}: no such ViZDoom scenario; built-in ones: {', '.join(names)}")
    return cfg


def _resolution(vzd, size: int):
    """The smallest 4:3 screen resolution at least ``size`` pixels high."""
    for w, h in ((160, 120), (320, 240), (640, 480), (800, 600), (1024, 768), (1280, 960)):
        if h >= size:
            return getattr(vzd.ScreenResolution, f"RES_{w}X{h}")
    raise DataError(f"size {size} is larger than the largest rendering resolution (960)")


def _make_game(vzd, scenario: str, size: int, timeout: int, workdir: str):
    game = vzd.DoomGame()
    game.load_config(str(_scenario_config(vzd, scenario)))
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_render_hud(False)
    game.set_mode(vzd.Mode.PLAYER)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_screen_resolution(_resolution(vzd, size))
    game.set_available_buttons(
        [vzd.Button.MOVE_FORWARD, vzd.Button.TURN_LEFT, vzd.Button.TURN_RIGHT]
    )
    game.set_available_game_variables([vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y])
    game.set_episode_timeout(timeout)
    game.set_doom_config_path(os.path.join(workdir, "_vizdoom.ini"))
    # the engine writes a _vizdoom/ folder into the current directory: keep it out of the caller's
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        game.init()
    finally:
        os.chdir(cwd)
    return game


def _episode_seed(seed: int, episode: int) -> tuple[int, np.random.Generator]:
    ss = np.random.SeedSequence([seed, episode])
    game_seed = int(ss.generate_state(1)[0] & 0x7FFFFFFF)
    return game_seed, np.random.default_rng(ss)


def record_episodes(
    scenario: str = DEFAULT_SCENARIO,
    num_episodes: int = 4,
    steps_per_episode: int = 100,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    tics_per_step: int = 4,
    first_episode: int = 0,
) -> dict[str, np.ndarray]:
    """Play ``num_episodes`` episodes with the persistent random policy and record them.

    Args:
        scenario: a built-in scenario name (``my_way_home``) or a path to a ``.cfg`` file.
        num_episodes: episodes to play; each is at most ``steps_per_episode`` frames long.
        size: frames are ``size`` x ``size`` RGB.
        seed: fixes the spawn points, the policy and so every frame.
        tics_per_step: game tics each action lasts (35 tics = 1 s).
        first_episode: the id of the first episode; episodes ``first_episode`` onwards are
            the same as in a recording that starts at 0 (so a long one can be made in parts).

    Returns a dict of arrays: ``frames`` (N, size, size, 3) uint8; ``actions`` (N,) int64, the
    index into ``ACTION_NAMES`` taken after each frame; ``episodes`` (N,) int64; ``steps``
    (N,) int64, the step within the episode; ``seed``, ``scenario``, ``size``,
    ``tics_per_step`` as 0-d arrays.
    """
    vzd = _import_vizdoom()
    if num_episodes < 1 or steps_per_episode < 1 or size < 1 or tics_per_step < 1:
        raise DataError("num_episodes, steps_per_episode, size and tics_per_step must be >= 1")
    if first_episode < 0:
        raise DataError(f"first_episode must be >= 0, got {first_episode}")
    frames, actions, episodes, steps = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="vqvae-vizdoom-") as workdir:
        game = _make_game(vzd, scenario, size, steps_per_episode * tics_per_step + 10, workdir)
        try:
            for episode in range(first_episode, first_episode + num_episodes):
                game_seed, rng = _episode_seed(seed, episode)
                game.set_seed(game_seed)
                game.new_episode()
                action, hold, blocked = 0, 0, False
                for step in range(steps_per_episode):
                    if game.is_episode_finished():
                        break
                    if blocked:  # walked into a wall: turn away (a reflex, still random)
                        action = int(rng.choice([2, 3]))
                        hold = int(rng.integers(*_TURN_AWAY_STEPS))
                    elif hold == 0:
                        action = int(rng.choice(len(ACTION_NAMES), p=_ACTION_PROBS))
                        hold = int(rng.integers(*_HOLD_STEPS[action]))
                    hold -= 1
                    state = game.get_state()
                    screen, before = state.screen_buffer, state.game_variables  # (h, w, 3) uint8
                    frame = Image.fromarray(screen).resize((size, size), Image.Resampling.BILINEAR)
                    frames.append(np.asarray(frame))
                    actions.append(action)
                    episodes.append(episode)
                    steps.append(step)
                    game.make_action(list(_BUTTONS[action]), tics_per_step)
                    blocked = False
                    if action == 1 and not game.is_episode_finished():
                        after = game.get_state().game_variables
                        blocked = float(np.hypot(*(after - before))) < _BLOCKED_DISTANCE
        finally:
            game.close()
    return {
        "frames": np.stack(frames),
        "actions": np.array(actions, dtype=np.int64),
        "episodes": np.array(episodes, dtype=np.int64),
        "steps": np.array(steps, dtype=np.int64),
        "seed": np.array(seed, dtype=np.int64),
        "scenario": np.array(Path(scenario).stem),
        "size": np.array(size, dtype=np.int64),
        "tics_per_step": np.array(tics_per_step, dtype=np.int64),
    }


def vizdoom_recording(
    scenario: str = DEFAULT_SCENARIO,
    num_episodes: int = DEFAULT_EPISODES,
    steps_per_episode: int = DEFAULT_STEPS,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    folder: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """The recording of ``record_episodes(...)``, generated once and cached.

    The cache file lives in ``folder`` (default ``cache_dir()/vizdoom``) and is written
    atomically, so concurrent first calls are safe (each generates; the last one wins).
    """
    folder = Path(folder) if folder is not None else cache_dir() / "vizdoom"
    name = f"{Path(scenario).stem}_{size}px_seed{seed}_{num_episodes}x{steps_per_episode}"
    path = folder / f"{name}_v{FORMAT_VERSION}.npz"
    if path.is_file():
        return _read_recording(path)
    log.info("rendering %d ViZDoom episodes to %s", num_episodes, path)
    arrays = record_episodes(scenario, num_episodes, steps_per_episode, size, seed)
    save_npz_atomic(path, arrays)  # uncompressed: zlib would take longer than rendering
    return arrays


def _read_recording(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable ViZDoom recording (.npz): {e}") from e
    missing = {"frames", "actions", "episodes"} - arrays.keys()
    if missing:
        raise DataError(f"{path}: expected arrays frames, actions, episodes; missing {missing}")
    return arrays


def held_out_episodes(episodes: np.ndarray) -> np.ndarray:
    """The episode ids held out for test: the last 10 % (at least one, if there are two)."""
    ids = np.unique(episodes)
    n_test = max(1, round(TEST_EPISODES_FRACTION * len(ids))) if len(ids) > 1 else 0
    return ids[len(ids) - n_test :]


def load_vizdoom(
    path: str | Path | None = None,
    split: str = "train",
    size: int | None = None,
    scenario: str = DEFAULT_SCENARIO,
    seed: int = 0,
    num_episodes: int = DEFAULT_EPISODES,
    steps_per_episode: int = DEFAULT_STEPS,
) -> ImageDataset:
    """ViZDoom frames as an ``ImageDataset``; labels are the actions taken after each frame.

    Args:
        path: a recording ``.npz`` to read, or the cache folder; ``None``: the default cache.
        split: "train" (all but the last episodes), "test" (``held_out_episodes``) or "all".
        size: frame side length; ``None``: 64, or the recording's own size when ``path`` is
            a ``.npz``. The other arguments go to ``record_episodes``.
    """
    check_split(split, ("train", "test", "all"))
    if path is not None and Path(path).suffix == ".npz":
        if not Path(path).is_file():
            raise DataError(f"{path}: no such ViZDoom recording (.npz)")
        arrays, src = _read_recording(Path(path)), Path(path)
        if size is not None:
            arrays["frames"] = resize_images(arrays["frames"], size)
    else:
        size = DEFAULT_SIZE if size is None else size
        arrays = vizdoom_recording(scenario, num_episodes, steps_per_episode, size, seed, path)
        src = f"{scenario}, seed {seed}"
    keep = np.ones(len(arrays["episodes"]), dtype=bool)
    if split != "all":
        held_out = np.isin(arrays["episodes"], held_out_episodes(arrays["episodes"]))
        keep = held_out if split == "test" else ~held_out
    if not keep.any():
        raise DataError(f"{src}: the {split!r} split of this recording is empty")
    return ImageDataset(
        arrays["frames"][keep], arrays["actions"][keep], ACTION_NAMES, f"vizdoom {split} ({src})"
    )
