import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vqvae.quantize import VectorQuantizer


def _brute_force_indices(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(B, D, *S), (K, D) -> (B, *S) argmin of the full distance matrix."""
    z = x.movedim(1, -1).reshape(-1, x.shape[1]).double()
    idx = torch.cdist(z, codebook.double()).argmin(1)
    return idx.view(x.shape[0], *x.shape[2:])


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def test_output_fields_have_documented_shapes():
    vq = VectorQuantizer(32, 8)
    out = vq(torch.randn(3, 8, 5, 7))
    assert out.quantized.shape == (3, 8, 5, 7)
    assert out.indices.shape == (3, 5, 7) and out.indices.dtype == torch.long
    for name in ("loss", "commitment_loss", "codebook_loss", "perplexity", "usage"):
        assert getattr(out, name).shape == ()
    assert 1.0 <= out.perplexity <= 32 and 0 < out.usage <= 1


@pytest.mark.parametrize("spatial", [(), (9,), (4, 5), (2, 3, 4)])
def test_any_number_of_spatial_dims(spatial):
    vq = VectorQuantizer(16, 6).eval()
    x = torch.randn(2, 6, *spatial)
    out = vq(x)
    assert out.quantized.shape == x.shape
    assert out.indices.shape == (2, *spatial)
    assert torch.equal(out.indices, _brute_force_indices(x, vq.codebook[0]))


def test_straight_through_passes_decoder_gradient_to_encoder_unchanged():
    vq = VectorQuantizer(16, 4)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(2, 4, 3, 3)
    vq(x).quantized.backward(upstream)
    assert torch.equal(x.grad, upstream)


def test_quantized_values_are_the_chosen_codes():
    vq = VectorQuantizer(16, 4).eval()
    x = torch.randn(2, 4, 3, 3)
    out = vq(x)
    assert torch.equal(out.quantized, vq.lookup(out.indices))


def test_commitment_loss_moves_only_the_encoder_output():
    vq = VectorQuantizer(16, 4, update="loss")
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(x)
    out.commitment_loss.backward()
    q = out.quantized.detach()
    expected = 2 * (x.detach() - q) / x.numel()
    torch.testing.assert_close(x.grad, expected)
    assert vq.codebook.grad is None or torch.count_nonzero(vq.codebook.grad) == 0


def test_codebook_loss_moves_only_the_codes():
    vq = VectorQuantizer(16, 4, update="loss")
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(x)
    out.codebook_loss.backward()
    assert x.grad is None or torch.count_nonzero(x.grad) == 0
    # reference with plain autograd: mean ||sg[z] - e_k||^2
    codebook = vq.codebook.detach().clone().requires_grad_()
    idx = out.indices.reshape(-1)
    F.mse_loss(codebook[0][idx], _flat(x).detach()).backward()
    torch.testing.assert_close(vq.codebook.grad, codebook.grad)


def test_loss_is_codebook_plus_beta_commitment():
    vq = VectorQuantizer(16, 4, update="loss", beta=0.3)
    x = torch.randn(2, 4, 3, 3)
    out = vq(x)
    mse = F.mse_loss(x, out.quantized)
    torch.testing.assert_close(out.commitment_loss, mse)
    torch.testing.assert_close(out.codebook_loss, mse)
    torch.testing.assert_close(out.loss, 1.3 * mse)
    ema = VectorQuantizer(16, 4)(x)
    assert ema.codebook_loss == 0
    torch.testing.assert_close(ema.loss, 0.25 * ema.commitment_loss)


def test_ema_step_matches_appendix_formula_by_hand():
    gamma, eps = 0.9, 1e-5
    vq = VectorQuantizer(3, 2, decay=gamma, eps=eps)
    codes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    vq.codebook.copy_(codes[None])
    vq.ema_count.copy_(torch.tensor([[2.0, 1.0, 4.0]]))
    vq.ema_sum.copy_(torch.tensor([[[0.2, 0.2], [10.0, 0.0], [0.0, 40.0]]]))
    # four vectors: three near code 0, one near code 1, none near code 2
    z = torch.tensor([[0.5, 0.0], [0.0, 0.5], [0.1, 0.1], [9.0, 1.0]])
    vq(z.t().reshape(1, 2, 4))

    n_new = torch.tensor([3.0, 1.0, 0.0])
    sum_new = torch.tensor([[0.6, 0.6], [9.0, 1.0], [0.0, 0.0]])
    N = gamma * torch.tensor([2.0, 1.0, 4.0]) + (1 - gamma) * n_new
    m = gamma * torch.tensor([[0.2, 0.2], [10.0, 0.0], [0.0, 40.0]]) + (1 - gamma) * sum_new
    total = N.sum()
    smoothed = (N + eps) / (total + 3 * eps) * total
    expected = m / smoothed[:, None]
    expected[2] = codes[2]  # unused this step: keeps its vector (m / N unchanged)
    torch.testing.assert_close(vq.ema_count[0], N)
    torch.testing.assert_close(vq.ema_sum[0], m)
    torch.testing.assert_close(vq.codebook[0], expected)


def test_quantize_then_update_uses_codes_from_before_the_update():
    vq = VectorQuantizer(8, 2)
    before = vq.codebook.clone()
    out = vq(torch.randn(4, 2, 6))
    assert torch.equal(out.quantized.detach(), _lookup(before, out.indices))
    assert not torch.equal(vq.codebook, before)


def _lookup(codebook, indices):
    return codebook[0][indices].movedim(-1, 1)


def test_eval_mode_changes_no_buffer():
    vq = VectorQuantizer(8, 2, init="kmeans", restart_after=1).eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(torch.randn(4, 2, 6))
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_unused_codes_do_not_decay_to_zero_over_many_steps():
    vq = VectorQuantizer(4, 2, decay=0.5)
    far = torch.tensor([100.0, 100.0])
    vq.codebook[0, 3] = far
    for _ in range(200):
        vq(torch.randn(8, 2))
    torch.testing.assert_close(vq.codebook[0, 3], far)


def test_restart_replaces_exactly_the_dead_codes_and_resets_their_statistics():
    torch.manual_seed(0)
    vq = VectorQuantizer(6, 2, restart_after=2)
    vq.codebook.copy_(torch.tensor([[[0.0, 0], [5, 0], [0, 5], [90, 90], [95, 95], [99, 99]]]))
    x = torch.randn(64, 2) * 0.1 + torch.tensor([0.0, 0.0])  # all near code 0
    x[:3] = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.1, 0.0]])
    batch = x.t().reshape(1, 2, 64)
    vq(batch)  # step 1: codes 3, 4, 5 unused once -> not dead yet
    assert torch.equal(vq.codebook[0, 3:], torch.tensor([[90.0, 90], [95, 95], [99, 99]]))
    kept = vq.codebook[0, :3].clone()
    vq(batch)  # step 2: codes 3, 4, 5 unused twice -> restarted
    after = vq.codebook[0]
    # the live codes are only EMA-updated, the dead ones are now batch vectors
    rows = {tuple(r.tolist()) for r in x}
    for k in (3, 4, 5):
        assert tuple(after[k].tolist()) in rows
        assert vq.ema_count[0, k] == 1.0
        torch.testing.assert_close(vq.ema_sum[0, k], after[k])
        assert vq.steps_unused[0, k] == 0
    # the live codes were only moved by the EMA update, towards their assigned vectors
    assert torch.allclose(after[:3], kept, atol=0.5)


def test_restart_in_loss_mode_replaces_parameter_values():
    vq = VectorQuantizer(4, 2, update="loss", restart_after=1)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[[0.0, 0], [50, 50], [60, 60], [70, 70]]]))
    x = torch.randn(1, 2, 32) * 0.1
    vq(x)
    rows = {tuple(r.tolist()) for r in _flat(x)}
    for k in (1, 2, 3):
        assert tuple(vq.codebook[0, k].tolist()) in rows


def test_groups_split_channels_into_slices_with_their_own_codebook():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 6, groups=3).eval()
    x = torch.randn(2, 6, 4, 4)
    out = vq(x)
    assert out.indices.shape == (2, 3, 4, 4)
    for g in range(3):
        piece = x[:, 2 * g : 2 * g + 2]
        assert torch.equal(out.indices[:, g], _brute_force_indices(piece, vq.codebook[g]))
        assert torch.equal(
            out.quantized[:, 2 * g : 2 * g + 2], vq.codebook[g][out.indices[:, g]].movedim(-1, 1)
        )
    assert torch.equal(vq.lookup(out.indices), out.quantized)


def test_groups_ema_update_each_codebook_from_its_slice_only():
    vq = VectorQuantizer(4, 4, groups=2, decay=0.0)
    x = torch.randn(3, 4, 5)
    out = vq(x)
    for g in range(2):
        z = _flat(x)[:, 2 * g : 2 * g + 2]
        idx = out.indices[:, g].reshape(-1)
        for k in idx.unique():
            torch.testing.assert_close(vq.codebook[g, k], z[idx == k].mean(0), rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(1, 70),
    d=st.integers(1, 12),
    memory=st.sampled_from([64, 1000, 2**20]),
    seed=st.integers(0, 2**16),
)
def test_indices_equal_brute_force_argmin_for_any_chunking(n, k, d, memory, seed):
    g = torch.Generator().manual_seed(seed)
    vq = VectorQuantizer(k, d, search_memory=memory).eval()
    vq.codebook.copy_(torch.randn(1, k, d, generator=g))
    x = torch.randn(1, d, n, generator=g)
    z = _flat(x).double()
    dist = torch.cdist(z, vq.codebook[0].double())
    got = vq(x).indices.view(-1)
    # ties at float precision may pick either code: compare distances, not labels
    best = dist.min(1).values
    chosen = dist.gather(1, got[:, None]).squeeze(1)
    torch.testing.assert_close(chosen, best, rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    b=st.integers(1, 4),
    groups=st.sampled_from([1, 2, 3]),
    d=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    update=st.sampled_from(["ema", "loss"]),
)
def test_any_shape_round_trips_through_lookup_and_straight_through(b, groups, d, spatial, update):
    vq = VectorQuantizer(5, groups * d, groups=groups, update=update)
    x = torch.randn(b, groups * d, *spatial, requires_grad=True)
    out = vq(x)
    assert out.quantized.shape == x.shape
    expected_idx = (b, *spatial) if groups == 1 else (b, groups, *spatial)
    assert out.indices.shape == expected_idx
    assert out.indices.min() >= 0 and out.indices.max() < 5
    g = torch.randn_like(x)
    out.quantized.backward(g)
    assert torch.equal(x.grad, g)


def test_bf16_autocast_gives_the_same_indices_and_fp32_statistics():
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 16)
    x = torch.randn(4, 16, 8, 8)
    ref = vq.eval()(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = vq(x)
    assert torch.equal(low.indices, ref.indices)
    assert low.loss.dtype == torch.float32
    vq.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        vq(x.bfloat16())
    assert vq.codebook.dtype == vq.ema_sum.dtype == vq.ema_count.dtype == torch.float32


def test_bf16_input_gives_bf16_output_and_gradient():
    vq = VectorQuantizer(16, 4)
    x = torch.randn(2, 4, 3, dtype=torch.bfloat16, requires_grad=True)
    out = vq(x)
    assert out.quantized.dtype == torch.bfloat16
    (out.quantized.float().sum() + out.loss).backward()
    assert x.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("init", ["kmeans", "kmeans++"])
def test_data_initialisation_puts_codes_on_the_data(init):
    torch.manual_seed(0)
    centres = torch.randn(8, 3) * 20
    z = centres.repeat_interleave(50, 0) + 0.01 * torch.randn(400, 3)
    x = z.t().reshape(1, 3, 400)
    vq = VectorQuantizer(8, 3, init=init)
    assert not vq.initialized
    out = vq(x)
    assert vq.initialized
    assert out.usage == 1.0
    random_init = VectorQuantizer(8, 3).eval()(x)
    assert out.commitment_loss < 0.1 * random_init.commitment_loss
    if init == "kmeans++":  # well-separated clusters: every centre found
        dist = torch.cdist(vq.codebook[0], centres)
        assert dist.min(1).values.max() < 0.5


def test_rerank_search_matches_exact_search():
    torch.manual_seed(0)
    vq = VectorQuantizer(256, 32).eval()
    x = torch.randn(4, 32, 16, 16)
    exact = vq(x).indices
    vq.rerank = 8
    assert (vq(x).indices != exact).float().mean() < 0.001


def test_state_dict_round_trip_and_version():
    vq = VectorQuantizer(8, 4, restart_after=3)
    vq(torch.randn(2, 4, 5))
    sd = vq.state_dict()
    assert sd._metadata[""]["version"] == VectorQuantizer._version
    other = VectorQuantizer(8, 4, restart_after=3)
    other.load_state_dict(sd)
    for k, v in sd.items():
        assert torch.equal(other.state_dict()[k], v)


def test_state_dict_from_a_newer_version_is_refused_clearly():
    vq = VectorQuantizer(8, 4)
    sd = vq.state_dict()
    sd._metadata[""]["version"] = VectorQuantizer._version + 1
    with pytest.raises(RuntimeError, match="newer"):
        VectorQuantizer(8, 4).load_state_dict(sd)


def test_bad_input_gives_clear_errors():
    vq = VectorQuantizer(8, 4)
    with pytest.raises(ValueError, match=r"\(B, 4, \*spatial\)"):
        vq(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="divisible"):
        VectorQuantizer(8, 5, groups=2)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        vq.lookup(torch.tensor([[0, 8]]))
    with pytest.raises(ValueError, match="update"):
        VectorQuantizer(8, 4, update="adam")


def test_frozen_forward_changes_no_buffer_and_keeps_the_mode():
    vq = VectorQuantizer(8, 2, restart_after=1).train()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    out = vq.frozen(torch.randn(4, 2, 6))
    assert vq.training
    assert out.indices.shape == (4, 6)
    for k, v in vq.state_dict().items():
        assert torch.equal(v, before[k]), k


def _autograd_rotation(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """lambda R e with R and lambda built from detached copies, the rotation trick's own
    formulation; its autograd gradient is the reference for ``rotated_gradient``."""
    u = (e / e.norm(dim=1, keepdim=True)).detach()
    v = q / q.norm(dim=1, keepdim=True)
    w = (u + v) / (u + v).norm(dim=1, keepdim=True)
    scale = q.norm(dim=1, keepdim=True) / e.norm(dim=1, keepdim=True).detach()
    rotated = e - 2 * w * (w * e).sum(1, keepdim=True) + 2 * v * (u * e).sum(1, keepdim=True)
    return scale * rotated


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_rotation_gradient_is_the_gradient_of_the_rotation_held_constant(n, d, seed):
    from vqvae.quantize.vector_quantizer import rotated_gradient

    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.randn(n, d, generator=g, dtype=torch.float64)
    upstream = torch.randn(n, d, generator=g, dtype=torch.float64)
    out = _autograd_rotation(e, q)
    torch.testing.assert_close(out, q)  # the forward value is the code itself
    (want,) = torch.autograd.grad(out, e, upstream)
    torch.testing.assert_close(rotated_gradient(e.detach(), q, upstream), want)


def test_rotation_gradient_keeps_the_angle_between_gradient_and_input():
    # R is a rotation and lambda a positive scale: the gradient that reaches the encoder has
    # the norm ratio ||q|| / ||e|| and makes with e the angle the decoder's gradient made with q
    from vqvae.quantize.vector_quantizer import rotated_gradient

    torch.manual_seed(0)
    e, q, grad = torch.randn(3, 50, 5, dtype=torch.float64).unbind(0)
    out = rotated_gradient(e, q, grad)
    ratio = q.norm(dim=1) / e.norm(dim=1)
    torch.testing.assert_close(out.norm(dim=1), grad.norm(dim=1) * ratio)
    torch.testing.assert_close(F.cosine_similarity(out, e), F.cosine_similarity(grad, q))


def test_rotation_quantizer_gives_the_straight_through_forward_and_a_rotated_gradient():
    from vqvae.quantize.vector_quantizer import rotated_gradient

    torch.manual_seed(0)
    plain = VectorQuantizer(16, 6, groups=2).eval()
    rotating = VectorQuantizer(16, 6, groups=2, gradient="rotation").eval()
    rotating.load_state_dict(plain.state_dict())
    x = torch.randn(2, 6, 3, 4, requires_grad=True)
    upstream = torch.randn(2, 6, 3, 4)
    out = rotating(x)
    assert torch.equal(out.quantized, plain(x).quantized)
    (grad,) = torch.autograd.grad(out.quantized, x, upstream)
    # per group slice of 3 channels, against the straight-through gradient's identity
    e, q, g = (_flat(t).reshape(-1, 3) for t in (x.detach(), out.quantized.detach(), upstream))
    torch.testing.assert_close(_flat(grad).reshape(-1, 3), rotated_gradient(e, q, g))
    assert not torch.allclose(grad, upstream)


def test_unknown_gradient_estimator_is_rejected():
    with pytest.raises(ValueError, match="gradient must be one of"):
        VectorQuantizer(16, 4, gradient="gumbel")
