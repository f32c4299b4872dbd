import csv

import pytest
import torch

from vqvae.train import (
    ResumableBatches,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    adam,
)
from vqvae.train.checkpoint import (
    CheckpointError,
    flatten_state,
    load_trainer_state,
    unflatten_state,
    write_atomically,
)

from .toy import ToyTask, toy_data


def _config(**kw) -> TrainConfig:
    base = dict(
        steps=6,
        batch_size=8,
        lr=1e-2,
        log_every=1,
        image_every=100,
        checkpoint_every=3,
        progress=False,
        val_batches=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def _rows(run_dir):
    """metrics.csv without the wall-clock column."""
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in csv.DictReader(f)]


def test_loss_goes_down_on_the_toy_task(tmp_path):
    task = ToyTask()
    Trainer(task, toy_data(), _config(steps=40, batch_size=16), tmp_path).fit()
    losses = [float(r["loss"]) for r in _rows(tmp_path)]
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])


def test_resume_gives_the_same_trajectory_as_one_run(tmp_path):
    one = tmp_path / "one"
    Trainer(ToyTask(), toy_data(), _config(steps=12), one).fit()
    two = tmp_path / "two"
    Trainer(ToyTask(), toy_data(), _config(steps=6), two).fit()
    # a fresh process would start from other weights: resume must overwrite everything
    torch.manual_seed(123)
    task = ToyTask()
    torch.nn.init.normal_(task.model.enc.weight)
    Trainer(task, toy_data(), _config(steps=12), two).fit(resume=True)
    assert _rows(one) == _rows(two)
    a = ToyTask()
    a.load_model(one / "checkpoints" / "last")
    b = ToyTask()
    b.load_model(two / "checkpoints" / "last")
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="at step 5"):
        Trainer(ToyTask(nan_at=5), toy_data(), _config(checkpoint_every=2), tmp_path).fit()
    state = load_trainer_state(tmp_path / "checkpoints" / "last")
    assert state["step"] == 4


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path):
    with pytest.raises(KeyboardInterrupt, match="SIGTERM.*step 2"):
        Trainer(ToyTask(signal_at=2), toy_data(), _config(steps=50), tmp_path).fit()
    assert load_trainer_state(tmp_path / "checkpoints" / "last")["step"] == 2


def test_best_checkpoint_follows_validation_loss(tmp_path):
    cfg = _config(steps=9, val_batches=2)
    Trainer(ToyTask(), toy_data(), cfg, tmp_path, val_data=toy_data(16)).fit()
    rows = [r for r in _rows(tmp_path) if r.get("val_loss")]
    best = load_trainer_state(tmp_path / "checkpoints" / "best")
    losses = {int(r["step"]): float(r["val_loss"]) for r in rows}
    assert best["step"] == min(losses, key=losses.get)


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path):
    target = tmp_path / "ckpt"
    write_atomically(target, lambda d: (d / "trainer.json").write_text("{}"))

    def fail(d):
        (d / "trainer.json").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically(target, fail)
    assert (target / "trainer.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_truncated_trainer_state_gives_a_clear_error(tmp_path):
    Trainer(ToyTask(), toy_data(), _config(steps=3), tmp_path).fit()
    f = tmp_path / "checkpoints" / "last" / "trainer.safetensors"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="trainer.safetensors.*corrupt or truncated"):
        load_trainer_state(f.parent)


def test_optimizer_state_round_trips_without_pickle():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    skeleton, tensors = flatten_state(opt.state_dict())
    back = unflatten_state(skeleton, tensors)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for i, s in opt.state_dict()["state"].items():
        for k, v in s.items():
            assert torch.equal(opt2.state_dict()["state"][i][k], v)


def test_ranks_split_each_global_batch_exactly():
    single = list(ResumableBatches(20, 6, seed=3))
    r0 = list(ResumableBatches(20, 6, seed=3, rank=0, world=2))
    r1 = list(ResumableBatches(20, 6, seed=3, rank=1, world=2))
    assert len(single) == 3
    for s, a, b in zip(single, r0, r1, strict=True):
        assert s == a + b


def test_sampler_resumes_mid_epoch_and_next_epochs_differ():
    s = ResumableBatches(12, 4, seed=0)
    first = list(s)
    s.advance()
    rest = list(s)
    assert rest == first[1:]
    s.advance()
    s.advance()
    assert s.epoch == 1 and s.step == 0
    assert list(s) != first


def test_bad_train_config_is_refused_by_name():
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="not divisible by 3"):
        ResumableBatches(20, 8, world=3)


def test_resuming_with_another_model_config_is_refused_by_file(tmp_path):
    from vqvae import VQVAE, VQVAEConfig
    from vqvae.errors import CheckpointError
    from vqvae.train.vqvae_task import VQVAETask

    def task(num_codes):
        cfg = VQVAEConfig(image_size=8, hidden=4, residual_hidden=2, residual_layers=1,
                          embedding_dim=4, num_codes=num_codes)
        return VQVAETask(VQVAE(cfg), 1.0, preview=torch.zeros(1, 3, 8, 8))

    task(8).save_model(tmp_path)
    other = task(16)
    with pytest.raises(CheckpointError, match=r"config.json.*num_codes: 8 vs 16"):
        other.load_model(tmp_path)
    same = task(8)
    same.load_model(tmp_path)


def test_adam_is_fused_on_the_cpu_and_takes_the_same_steps_as_plain_adam():
    torch.manual_seed(0)
    ours = [torch.randn(5, 3, requires_grad=True), torch.randn(7, requires_grad=True)]
    plain = [p.detach().clone().requires_grad_() for p in ours]
    start = [p.detach().clone() for p in ours]
    opt_ours, opt_plain = adam(ours, lr=0.1, weight_decay=0.01), torch.optim.Adam(
        plain, lr=0.1, weight_decay=0.01)
    assert opt_ours.param_groups[0]["fused"]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in ours]
        for params, opt in ((ours, opt_ours), (plain, opt_plain)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
    for a, b, a0 in zip(ours, plain, start, strict=True):
        torch.testing.assert_close(a, b)
        assert not torch.equal(a, a0)


class _AutocastProbe(ToyTask):
    """Records whether each step ran under CPU autocast."""

    def __init__(self):
        super().__init__()
        self.autocast = []

    def step(self, model, batch):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().step(model, batch)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocast_only_where_the_device_runs_it_natively(tmp_path, monkeypatch, capsys,
                                                               native):
    monkeypatch.setattr("vqvae.train.loop.native_bf16", lambda device: native)
    task = _AutocastProbe()
    Trainer(task, toy_data(), _config(steps=2, amp="bf16"), tmp_path).fit()
    assert task.autocast == [native, native]
    said = capsys.readouterr().out
    assert ("no native bf16" in said) is not native
    if not native:
        assert "training in fp32" in said

