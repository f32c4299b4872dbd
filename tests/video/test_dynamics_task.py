"""The training step of the dynamics prior: the loss, and actions hidden in training only."""

import math

import torch

from vqvae.model import VQVAE, VQVAEConfig
from vqvae.priors import DynamicsConfig, DynamicsPrior
from vqvae.train.dynamics_task import DynamicsTask


def task(dropout=0.5):
    torch.manual_seed(0)
    tokenizer = VQVAE(VQVAEConfig(image_size=16, hidden=8, residual_hidden=4, residual_layers=1,
                                  embedding_dim=8, num_codes=7))
    model = DynamicsPrior(DynamicsConfig(num_codes=7, height=4, width=4, context_frames=2,
                                         action_dropout=dropout, code_embedding=3,
                                         context_hidden=8, context_layers=1, cond_channels=4,
                                         channels=8, layers=2, kernel_size=3))
    return DynamicsTask(model, tokenizer, metadata={"world": "w"})


def batch(n=64):
    g = torch.Generator().manual_seed(1)
    return (torch.randint(7, (n, 2, 4, 4), generator=g).short(),
            torch.randint(4, (n,), generator=g), torch.randint(7, (n, 4, 4), generator=g).short())


def test_the_loss_is_the_nll_per_latent_with_the_true_actions_in_eval_mode():
    t = task()
    context, actions, target = batch()
    t.model.eval()
    loss, metrics = t.step(t.model, (context, actions, target))
    nll = t.model.nll(context.long(), actions, target.long()).mean() / 16
    assert math.isclose(loss.item(), nll.item(), rel_tol=1e-5)
    assert math.isclose(metrics["bits_per_latent"], loss.item() / math.log(2))
    assert t.model.metadata == {"world": "w"}


def test_training_hides_a_fraction_of_the_actions_behind_unknown():
    t = task(dropout=0.5)
    context, actions, target = batch(256)
    seen = []
    original = t.model.forward

    def spy(c, a, tgt):
        seen.append(a.clone())
        return original(c, a, tgt)

    t.model.forward = spy
    t.model.train()
    t.step(t.model, (context, actions, target))
    hidden = seen[-1] == 4
    assert 0.35 < hidden.float().mean() < 0.65
    assert torch.equal(seen[-1][~hidden], actions[~hidden])
    t.model.eval()
    t.step(t.model, (context, actions, target))
    assert torch.equal(seen[-1], actions)  # none hidden when evaluating
    t.step(t.model, (context, actions, target), hide=1.0)
    assert (seen[-1] == 4).all()
    val = t.validate(t.model, [(context, actions, target)])
    assert set(val) == {"loss", "loss_actions_hidden"}
