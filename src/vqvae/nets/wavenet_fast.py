"""WaveNet generation with the whole sample loop compiled (numba, optional: ``pip install
vqvae[fast]``).

The cached torch step (``IncrementalWaveNet``) costs some 200 small operations per sample,
and their dispatch, not the arithmetic (about 135k multiply-adds for the default speech
model), sets its speed.  Here torch computes once what does not depend on the samples drawn:

    weights as (in, out) matrices; per-layer gate biases for every step: conv bias + speaker
    projection + local conditioning, (B, n, L, 2R) with one row per code ("repeat") or per
    sample ("transposed"), made a chunk of codes at a time so memory stays bounded

and one compiled function runs every step of a chunk for every utterance, the same maths as
``IncrementalWaveNet.step``: per layer h = W_now x + queue[t % d] + bias, the queue slot then
takes W_past x, z = tanh(h[:R]) sigmoid(h[R:]), skips += W_skip z, x += W_res z + b_res (not
after the last layer); then the head (ReLU, 1x1, ReLU, 1x1) and the draw.  A logistic-mixture
WaveNet's head gives 3 M parameters: at temperature 1 the draw bisects the mixture's CDF over
the classes (``_mixture_inverse_cdf``, M logistics per probe, 8 probes); otherwise, and where
the logits are kept, it first computes the log-probability of every class (as
``WaveNet.class_logits``, in float64; Q M logistics).

The draw is the inverse CDF of softmax(logits / temperature) in float64 at a uniform number
that the caller drew beforehand (``WaveNet.generate`` draws them with its generator), exactly
as ``wavenet.draw`` does in torch, so both give the same samples for the same numbers (up to
float rounding of the logits).  Weights and activations are float64 for a float64 network and
float32 otherwise.  numba keeps the compiled code on disk: it compiles once per machine
and dtype (a few seconds).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..audio.mu_law import SILENCE_CLASS
from .likelihood import AUDIO_MIN_LOG_SCALE, MAX_LOG_SCALE

try:
    import numba
except ImportError:  # optional: WaveNet.generate falls back to the torch step
    numba = None

_NO_BLOCKS = 2**62  # the block length without local conditioning: one bias row for all steps
_CHUNK = 4096  # samples per compiled call (at least one code): bounds the (B, n, L, 2R) biases


def available() -> bool:
    """Whether the compiled loop can run here (numba is installed)."""
    return numba is not None


def _inverse_cdf(logits, uniform, temperature, e):
    """The class drawn from softmax(logits / temperature) at ``uniform`` in [0, 1), exactly as
    ``wavenet.draw``; ``e`` (Q,) float64 room to work in."""
    q = logits.shape[0]
    top = -np.inf
    for o in range(q):
        e[o] = np.float64(logits[o]) / temperature
        top = max(top, e[o])
    total = 0.0
    for o in range(q):
        e[o] = np.exp(e[o] - top)
        total += e[o]
    v = min(uniform * total, np.nextafter(total, 0.0))  # below the last cumulative sum
    acc = 0.0
    for o in range(q):
        acc += e[o]
        if acc > v:
            return o
    return q - 1  # not reached unless the logits are NaN


def _softplus(v):
    return max(v, 0.0) + np.log1p(np.exp(-abs(v)))


def _mixture_components(params, work):
    """work (3, M) float64 <- row 0: the log-weights of the mixture whose weights, means and
    log-scales are params[:M], [M:2M], [2M:3M] (a log-softmax); row 1: the inverse scales
    of its logistics (log-scales clamped as ``WaveNet.mixture_parameters``).  Row 2 is left
    as room to work in."""
    m_count = work.shape[1]
    top = -np.inf
    for m in range(m_count):
        top = max(top, np.float64(params[m]))
    total = 0.0
    for m in range(m_count):
        total += np.exp(np.float64(params[m]) - top)
    log_norm = top + np.log(total)
    for m in range(m_count):
        work[0, m] = params[m] - log_norm
        log_scale = min(max(np.float64(params[2 * m_count + m]), AUDIO_MIN_LOG_SCALE),
                        MAX_LOG_SCALE)
        work[1, m] = np.exp(-log_scale)


def _mixture_log_probs(params, out, work):
    """out (Q,) the log-probability of every class under the discretised mixture of M
    logistics of ``params`` (as ``_mixture_components``; as ``WaveNet.class_logits``);
    ``work`` (3, M) float64 room to work in."""
    m_count, q = work.shape[1], out.shape[0]
    half = 0.5 / (q - 1)
    _mixture_components(params, work)
    for c in range(q):
        x = c / (q - 1) - 0.5
        best = -np.inf
        for m in range(m_count):
            inv = work[1, m]
            a = (x + half - params[m_count + m]) * inv
            b = (x - half - params[m_count + m]) * inv
            if c == 0:
                lc = -_softplus(-a)
            elif c == q - 1:
                lc = -_softplus(b)
            else:
                lc = a + np.log(-np.expm1(-2 * half * inv)) - _softplus(a) - _softplus(b)
            work[2, m] = work[0, m] + lc
            best = max(best, work[2, m])
        acc = 0.0
        for m in range(m_count):
            acc += np.exp(work[2, m] - best)
        out[c] = best + np.log(acc)


def _mixture_inverse_cdf(params, uniform, q, work):
    """The class drawn at ``uniform`` from the mixture of ``params`` (as ``_mixture_log_probs``)
    over ``q`` classes at temperature 1: the first class whose cumulative probability exceeds
    the number, found by bisection on the mixture's CDF at the bins' upper edges (about 8
    evaluations of M logistics instead of Q M); the same class as ``_inverse_cdf`` of the
    table up to float rounding.  ``work`` (3, M) float64 room to work in."""
    m_count = work.shape[1]
    half = 0.5 / (q - 1)
    _mixture_components(params, work)
    for m in range(m_count):
        work[2, m] = np.exp(work[0, m])  # the weights
    v = min(uniform, np.nextafter(1.0, 0.0))
    lo, hi = 0, q - 1  # the CDF at the last class's (open) upper edge is 1 > v
    while lo < hi:
        mid = (lo + hi) // 2
        edge = mid / (q - 1) - 0.5 + half
        cdf = 0.0
        for m in range(m_count):
            cdf += work[2, m] / (1.0 + np.exp(-(edge - params[m_count + m]) * work[1, m]))
        if cdf > v:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _add_product(out, v, m, relu):
    """out (O,) += v (C,) @ m (C, O), with relu(v) if ``relu``; row by row, so the inner loop
    runs over contiguous memory."""
    for c in range(v.shape[0]):
        vc = v[c]
        if relu and vc <= 0:
            continue
        for o in range(m.shape[1]):
            out[o] += vc * m[c, o]


def _steps(prev, t0, n, bias, block, base, queues, offsets, dilations, embed, w_now, w_past,
           w_skip, b_skip, w_res, b_res, w1, b1, w2, b2, mixtures, uniforms, temperature,
           forced, use_forced, out, logits_out, keep_logits):
    """Steps t0 .. t0 + n - 1 of every utterance b; prev[b] (in, out) the class before t0.

    bias (B, nb, L, 2R): step t reads row t // block - base.  queues (B, sum of dilations, 2R):
    layer i's slots start at offsets[i].  mixtures: M of a logistic-mixture head (its 3 M
    outputs become Q class log-probabilities), 0 for Q logits.  uniforms, forced, out: (B, n);
    logits_out (B, n, Q).
    """
    batch = prev.shape[0]
    r, layers = embed.shape[1], w_now.shape[0]
    s, o_count, q = w1.shape[0], w2.shape[1], embed.shape[0]
    x = np.empty(r, embed.dtype)
    h = np.empty(2 * r, embed.dtype)
    z = np.empty(r, embed.dtype)
    skips = np.empty(s, embed.dtype)
    hidden = np.empty(s, embed.dtype)
    outputs = np.empty(o_count, embed.dtype)
    table = np.empty(q, np.float64)  # the logits over the classes
    work = np.empty((3, max(mixtures, 1)), np.float64)  # the mixture's components
    e = np.empty(q, np.float64)
    for b in range(batch):
        cls = prev[b]
        for k in range(n):
            t = t0 + k
            x[:] = embed[cls]
            skips[:] = b_skip
            row = t // block - base
            for i in range(layers):
                slot = offsets[i] + t % dilations[i]
                past, hb = queues[b, slot], bias[b, row, i]
                for o in range(2 * r):
                    h[o] = hb[o] + past[o]  # past: W_past x_i[t - d], or zero
                    past[o] = 0
                wn, wp = w_now[i], w_past[i]
                for c in range(r):  # (R,) @ (R, 2R), row by row: contiguous inner loops
                    xc = x[c]
                    for o in range(2 * r):
                        h[o] += xc * wn[c, o]
                        past[o] += xc * wp[c, o]  # W_past x_i[t], read at t + d
                for c in range(r):
                    z[c] = np.tanh(h[c]) / (1 + np.exp(-h[r + c]))
                _add_product(skips, z, w_skip[i], False)
                if i < layers - 1:
                    _add_product(x, z, w_res[i], False)
                    x += b_res[i]
            # the head: ReLU, 1x1, ReLU, 1x1
            hidden[:] = b1
            _add_product(hidden, skips, w1, True)
            outputs[:] = b2
            _add_product(outputs, hidden, w2, True)
            direct = mixtures and temperature == 1.0 and not keep_logits
            if mixtures and not direct:
                _mixture_log_probs(outputs, table, work)
            elif not mixtures:
                table[:] = outputs  # exact: float32 -> float64
            if keep_logits:
                logits_out[b, k] = table
            if use_forced:
                cls = forced[b, k]
            elif direct:  # no table needed: bisect the mixture's CDF
                cls = _mixture_inverse_cdf(outputs, uniforms[b, k], q, work)
            else:
                cls = _inverse_cdf(table, uniforms[b, k], temperature, e)
            out[b, k] = cls
        prev[b] = cls


if numba is not None:  # compiled on first use, then kept on disk (cache=True)
    _inverse_cdf = numba.njit(cache=True, nogil=True)(_inverse_cdf)
    _softplus = numba.njit(cache=True, nogil=True)(_softplus)
    _mixture_components = numba.njit(cache=True, nogil=True)(_mixture_components)
    _mixture_log_probs = numba.njit(cache=True, nogil=True)(_mixture_log_probs)
    _mixture_inverse_cdf = numba.njit(cache=True, nogil=True)(_mixture_inverse_cdf)
    _add_product = numba.njit(cache=True, nogil=True)(_add_product)
    _kernel = numba.njit(cache=True, nogil=True)(_steps)
else:
    _kernel = None


def _array(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    return t.detach().to(dtype).contiguous().numpy()


def _matrices(convs, tap: int, dtype: torch.dtype) -> np.ndarray:
    """1D convs' weights at one tap as (in, out) matrices: (len(convs), in, out)."""
    return _array(torch.stack([c.weight[:, :, tap].T for c in convs]), dtype)


def _weights(net, dtype: torch.dtype) -> tuple[np.ndarray, ...]:
    """The arguments embed .. mixtures of ``_steps``."""
    head = list(net.head)
    assert [type(m) for m in head] == [nn.ReLU, nn.Conv1d, nn.ReLU, nn.Conv1d], net.head
    r = net.residual_channels
    # one layer: no residual output, zeros in its place (never read)
    res_w = [m.weight[:, :, 0].T for m in net.res] or [net.embed.weight.new_zeros(r, r)]
    res_b = [m.bias for m in net.res] or [net.embed.weight.new_zeros(r)]
    return (_array(net.embed.weight, dtype),
            _matrices(net.convs, 1, dtype),  # (L, R, 2R) the tap at t
            _matrices(net.convs, 0, dtype),  # (L, R, 2R) the tap at t - d
            _matrices(net.skip, 0, dtype),  # (L, R, S)
            _array(sum(m.bias for m in net.skip), dtype),  # (S,) all layers' skip biases
            _array(torch.stack(res_w), dtype),  # (L - 1, R, R)
            _array(torch.stack(res_b), dtype),  # (L - 1, R)
            _matrices(head[1:2], 0, dtype)[0], _array(head[1].bias, dtype),  # (S, S), (S,)
            _matrices(head[3:4], 0, dtype)[0], _array(head[3].bias, dtype),  # (S, O), (O,)
            net.mixtures)


@torch.inference_mode()
def run(net, codes: torch.Tensor | None, speaker: torch.Tensor | None, batch: int, length: int,
        *, uniforms: torch.Tensor | None = None, temperature: float = 1.0,
        forced: torch.Tensor | None = None, keep_logits: bool = False
        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``length`` steps of ``net`` (a ``WaveNet`` on the CPU) for ``batch`` utterances.

    Args:
        codes, speaker: the conditioning, as for ``WaveNet.generate`` (already checked).
        uniforms: (B, length) numbers in [0, 1), one per draw.
        temperature: divides the logits before the softmax.
        forced: (B, length) classes to feed instead of drawing (teacher forcing, for tests);
            exactly one of ``uniforms`` and ``forced``.
        keep_logits: also return the logits over the classes (``WaveNet.class_logits``).

    Returns (B, length) classes (drawn, or ``forced``) and (B, Q, length) logits or None.
    """
    assert _kernel is not None, "numba is not installed"
    assert (uniforms is None) != (forced is None)
    dtype = torch.float64 if net.embed.weight.dtype == torch.float64 else torch.float32
    weights = _weights(net, dtype)
    static = net.static_bias(speaker, batch)  # (B, L, 2R)
    dilations = np.array(net.dilations, np.int64)
    offsets = np.concatenate([[0], np.cumsum(dilations)[:-1]]).astype(np.int64)
    queues = np.zeros((batch, int(dilations.sum()), 2 * net.residual_channels),
                      weights[0].dtype)
    prev = np.full(batch, SILENCE_CLASS, np.int64)  # the class before t = 0
    out = np.empty((batch, length), np.int64)
    logits = np.empty((batch, length, net.classes), weights[0].dtype) if keep_logits else None
    hop = net.hop if codes is not None else max(length, 1)
    chunk = max(1, _CHUNK // hop) * hop
    for t0 in range(0, length, chunk):
        n = min(chunk, length - t0)
        if codes is None:
            bias, block, base = static[:, None], _NO_BLOCKS, 0
        else:
            j0, j1 = t0 // net.hop, -(-(t0 + n) // net.hop)
            cond = net.local_conditioning(codes, j0, j1)  # (B, L, 2R, j1 - j0 | hop that)
            bias = (static[..., None] + cond).permute(0, 3, 1, 2)  # (B, nb, L, 2R)
            block = net.hop if cond.shape[-1] == j1 - j0 else 1
            base = t0 // block
        steps = slice(t0, t0 + n)
        u = (np.zeros((batch, n)) if uniforms is None
             else _array(uniforms[:, steps], torch.float64))
        f = (np.zeros((batch, n), np.int64) if forced is None
             else _array(forced[:, steps], torch.int64))
        chunk_out = np.empty((batch, n), np.int64)
        chunk_logits = np.empty((batch, n if keep_logits else 0, net.classes), weights[0].dtype)
        _kernel(prev, t0, n, _array(bias, dtype), block, base, queues, offsets, dilations,
                *weights, u, float(temperature), f, forced is not None, chunk_out,
                chunk_logits, keep_logits)
        out[:, steps] = chunk_out
        if keep_logits:
            logits[:, steps] = chunk_logits
    kept = torch.from_numpy(logits).transpose(1, 2) if keep_logits else None
    return torch.from_numpy(out), kept
