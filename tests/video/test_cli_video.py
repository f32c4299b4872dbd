"""world record, train --dataset world, train-dynamics, rollout, evaluate-dynamics end to end."""

import csv
import json

import numpy as np
from conftest import TINY_DYNAMICS
from PIL import Image

from vqvae.cli import main
from vqvae.data.world import load_world
from vqvae.priors import DynamicsPrior


def _losses(folder):
    with open(folder / "metrics.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f) if r.get("loss")]


def test_world_record_writes_a_world_and_says_what_to_run_next(tmp_path, capsys):
    folder = tmp_path / "w"
    assert main(["world", "record", str(folder), "--episodes", "2", "--steps", "5",
                 "--size", "16", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "held-out episodes [1]" in out and "vqvae train --preset vizdoom84" in out
    assert load_world(folder).frames.shape[1:] == (16, 16, 3)


def test_world_record_names_a_missing_scenario_and_the_allowed_ones(tmp_path, capsys):
    assert main(["world", "record", str(tmp_path / "w"), "--scenario", "nowhere",
                 "--episodes", "1", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "nowhere.cfg: no such ViZDoom scenario" in err and "my_way_home" in err


def test_train_dynamics_caches_codes_and_writes_checkpoints_pictures_and_metrics(trained):
    for name in ("codes_world_train.npy", "codes_world_test.npy.json",
                 "dynamics/checkpoints/best/model.safetensors",
                 "dynamics/checkpoints/last/trainer.json", "dynamics/predictions.png",
                 "dynamics/eval.json", "dynamics/run.json"):
        assert (trained / name).is_file(), name
    model = DynamicsPrior.from_pretrained(trained / "dynamics")
    c = model.config
    assert (c.num_codes, c.height, c.width, c.context_frames, c.num_actions) == (16, 8, 8, 2, 4)
    assert model.metadata["action_names"] == ["noop", "forward", "turn_left", "turn_right"]
    assert [s for s, _ in _losses(trained / "dynamics")] == [1, 2, 3, 4]
    metrics = json.loads((trained / "dynamics" / "eval.json").read_text())
    assert metrics["test_nll_per_latent"] > 0 and "test_nll_per_latent_actions_hidden" in metrics
    assert Image.open(trained / "dynamics" / "predictions.png").size[1] == 3 * 34 + 2


def test_train_dynamics_resumes_exactly_through_the_shared_trainer(trained, tmp_path, capsys):
    """2 steps, then resumed to 4 = 4 steps in one go (a constant learning rate: the cosine
    schedule depends on the number of steps); the hidden actions are drawn the same too."""
    half, straight = tmp_path / "half", tmp_path / "straight"
    constant = [*TINY_DYNAMICS, "--set", "train.lr_schedule='constant'"]
    assert main(["train-dynamics", str(trained), "--steps", "4", "--out", str(straight),
                 *constant]) == 0
    assert main(["train-dynamics", str(trained), "--steps", "2", "--out", str(half),
                 *constant]) == 0
    assert main(["train-dynamics", str(trained), "--steps", "4", "--out", str(half),
                 "--resume", "--no-progress"]) == 0
    assert "world_train codes: reusing" in capsys.readouterr().out
    assert _losses(half) == _losses(straight) and len(_losses(half)) == 4
    a = DynamicsPrior.from_pretrained(half / "checkpoints" / "last").state_dict()
    b = DynamicsPrior.from_pretrained(straight / "checkpoints" / "last").state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_train_dynamics_refuses_to_overwrite_and_names_bad_settings(trained, tmp_path, capsys):
    assert main(["train-dynamics", str(trained), "--steps", "1"]) == 2
    assert "already holds a dynamics prior" in capsys.readouterr().err
    out = ["--out", str(tmp_path / "d"), "--steps", "1"]
    assert main(["train-dynamics", str(trained), *out, "--set", "dynamics.colour=1"]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["train-dynamics", str(trained), *out, "--set", "dynamics.num_actions=3"]) == 2
    assert "dynamics.num_actions is 3" in capsys.readouterr().err
    assert main(["train-dynamics", str(trained), *out, "--set", "prior.layers=3"]) == 2
    assert "SECTION one of dynamics, train" in capsys.readouterr().err


def test_rollout_with_the_recorded_actions_shows_truth_beside_prediction(trained, tmp_path,
                                                                         capsys):
    out = tmp_path / "r.gif"
    assert main(["rollout", str(trained), "--context", "2:1", "--frames", "3",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rolled out 3 frames" in text and "PSNR (dB) per horizon" in text
    assert "truth | prediction" in text
    gif = Image.open(out)
    assert gif.n_frames == 2 + 3  # context, then the predictions
    made_up = tmp_path / "m.gif"
    assert main(["rollout", str(trained), "--context", "2:1", "--actions", "L,L,R*2",
                 "--temperature", "0.8", "-o", str(made_up)]) == 0
    assert "made-up actions" in capsys.readouterr().out
    alone = Image.open(made_up)
    assert alone.n_frames == 2 + 4 and alone.size[0] < gif.size[0]


def test_rollout_names_bad_actions_short_context_and_missing_episodes(trained, tmp_path,
                                                                      capsys):
    gif = ["-o", str(tmp_path / "x.gif")]
    assert main(["rollout", str(trained), "--context", "2", "--actions", "F,jump", *gif]) == 2
    err = capsys.readouterr().err
    assert "'jump' is not an action of this world" in err and "L = turn_left" in err
    assert main(["rollout", str(trained), "--context", "2:999", *gif]) == 2
    err = capsys.readouterr().err
    assert "needs 2 context frames, so START must be 0 to" in err
    assert main(["rollout", str(trained), "--context", "7", *gif]) == 2
    assert "no episode 7 here; episodes 0-2" in capsys.readouterr().err
    assert main(["rollout", str(trained), "--context", "two", *gif]) == 2
    assert "expected EPISODE[:START]" in capsys.readouterr().err


def test_evaluate_dynamics_prints_the_table_sensitivity_and_speed(trained, tmp_path, capsys):
    report = tmp_path / "eval.json"
    assert main(["evaluate-dynamics", str(trained), "--horizon", "2", "--windows", "4",
                 "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "| horizon | PSNR model | PSNR actions hidden | PSNR repeat last" in text
    assert "horizontal shift per frame turning left" in text and "s to roll out 10" in text
    data = json.loads(report.read_text())
    assert len(data["prediction"]["psnr"]["model"]) == 2 and data["rollout_10_seconds"] > 0
    assert main(["evaluate-dynamics", str(trained), "--horizon", "500"]) == 2
    assert "smaller --horizon" in capsys.readouterr().err
