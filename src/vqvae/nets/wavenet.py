"""The WaveNet decoder of the speech VQ-VAE (paper section 4.3; van den Oord et al. 2016).

    previous samples (B, T) mu-law classes --shift right, embed--> (B, R, T)
        --L layers: dilated causal conv (window 2), + local and global conditioning,
          tanh * sigmoid gate, 1x1 residual and 1x1 skip outputs--> skips summed (B, S, T)
        --ReLU, 1x1, ReLU, 1x1--> outputs (B, O, T): logits over the Q = 256 mu-law classes
          (O = Q, ``likelihood="categorical"``, the paper's) or the parameters of a
          discretised mixture of M logistics over them (O = 3 M, ``"logistic_mixture"``)

* Dilations 1, 2, ..., 2^(layers-1), repeated ``stacks`` times.  The outputs at t depend on the
  samples t - receptive_field .. t - 1, with receptive_field = sum(dilations) + 1 (teacher
  forcing: the input is the target shifted right by one, silence first).
* Local conditioning: the codes (B, D, N), one per ``hop`` samples, are brought to the sample
  rate by repetition (``upsample="repeat"``), by a transposed convolution with window and
  stride ``hop`` (``"transposed"``: each code becomes hop learned vectors), or by linear
  interpolation between the codes' centres (``"linear"``: the conditioning glides from one
  code to the next instead of jumping at every block edge; the first and last half blocks
  hold their code); a 1x1 conv per layer adds them to the gate's input.  With repetition and
  interpolation the 1x1 convs run at the code rate (they commute with both), hop times less
  work.  With ``"linear"`` a code also reaches the last half block before its own: the codes
  are all known before generation starts, so the samples stay causal in each other.
* Global conditioning: a learned speaker embedding, projected per layer, added to every gate.
* The likelihood of a sample: a 256-way softmax (the paper's), or a discretised mixture of M
  logistics (PixelCNN++, Salimans et al. 2017; Parallel WaveNet) over the same 256 mu-law
  classes: the companded value of class c is c / 255 - 0.5 in the units of
  ``nets.likelihood``, each class a bin of width 1 / 255, the outer two open-ended.  Its
  3 M outputs (weights, means, log-scales) replace 256 logits, and neighbouring classes share
  probability, so the bits per sample of the two compare directly.  The log-scales are
  clamped to [-9, 10] (``AUDIO_MIN_LOG_SCALE``): at the images' -7 no class could hold more
  than 79 % of the probability, a floor of 0.23 nats per sample even in silence.  ``nll``
  scores targets from the outputs; ``class_logits`` gives the log-probability of every class,
  which generation draws from as it draws from the softmax's logits (the compiled loop, at
  temperature 1, bisects the mixture's CDF instead and skips the table: the same class).

``generate`` draws samples one at a time for a whole batch.  With ``cache=True`` (the fast
WaveNet of Paine et al. 2016) every layer keeps a queue of its last ``dilation`` inputs'
contributions, so a new sample costs one step of each layer: work proportional to the number
of layers, not to the receptive field.  ``cache=False`` recomputes the network on the last
receptive field of samples for every new one (the reference).  Measured on one CPU thread
(shared with other jobs), the default speech model (16 layers, R = 32, receptive field 511),
2000 samples (0.25 s at 8 kHz): batch 1, 2.0 s cached vs 22-27 s recomputed; batch 8, 2.3-2.5 s
vs 107-114 s.

The cached steps run in one of two ways (``backend``): "torch", ``IncrementalWaveNet``, some
200 small torch operations per sample, whose dispatch sets the speed; or "numba", the whole
sample loop compiled (``wavenet_fast``, CPU only, with the optional numba installed).  The
default "auto" takes numba where it can run.  Measured with ``benchmarks/wavenet_rtf.py`` (one
thread, shared with other jobs, the same model): 1 s of audio at 8 kHz, batch 1, in 0.26 s
compiled vs 3.1 s with torch steps.  Every way draws its samples by the inverse CDF of
softmax(logits / temperature) over the classes (for a mixture at temperature 1 the compiled
loop bisects the mixture's CDF: the same class) at uniform numbers drawn from ``generator``
beforehand, (B, length) at once, so all give the same samples for the same generator (up to
float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.mu_law import MU_LAW_CLASSES, SILENCE_CLASS
from . import wavenet_fast
from .likelihood import AUDIO_MIN_LOG_SCALE, MAX_LOG_SCALE, NUM_BINS, logistic_mixture_log_prob

UPSAMPLING = ("repeat", "transposed", "linear")
LIKELIHOODS = ("categorical", "logistic_mixture")
BACKENDS = ("auto", "numba", "torch")


def gate(h: torch.Tensor, dim: int) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half) along ``dim``."""
    a, b = h.chunk(2, dim)
    return torch.tanh(a) * torch.sigmoid(b)


def draw(logits: torch.Tensor, uniform: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, Q) logits, (B,) numbers in [0, 1) -> (B,) classes drawn from softmax(logits /
    temperature): the first class whose cumulative probability exceeds the number.

    In float64, unnormalised; the number is kept below the last cumulative sum, so a class of
    probability zero is never drawn.  ``wavenet_fast`` does the same in its compiled loop.
    """
    s = logits.double() / temperature
    cdf = (s - s.amax(-1, keepdim=True)).exp_().cumsum_(-1)
    total = cdf[:, -1:]
    v = torch.minimum(uniform[:, None] * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, v, right=True)[:, 0]


def _widened(outputs: torch.Tensor) -> torch.Tensor:
    """The outputs in fp32 to score them (fp64 where the network is fp64)."""
    return outputs if outputs.dtype == torch.float64 else outputs.float()


def add_blockwise(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """h (B, C, T) + c (B, C, T) or c (B, C, N) repeated over blocks of T / N samples."""
    if c.shape[-1] == h.shape[-1]:
        return h + c
    n = c.shape[-1]
    return (h.unflatten(-1, (n, h.shape[-1] // n)) + c.unsqueeze(-1)).flatten(-2)


def _interpolate_blocks(c: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, C, n + 2) values at the centres of blocks -1 .. n -> (B, C, n hop): each sample of
    blocks 0 .. n - 1 linearly between the two nearest centres."""
    u = (torch.arange(hop, dtype=c.dtype, device=c.device) + 0.5) / hop - 0.5  # (-1/2, 1/2)
    before, after = (-u).clamp(min=0), u.clamp(min=0)
    out = (c[..., :-2, None] * before + c[..., 1:-1, None] * (1 - before - after)
           + c[..., 2:, None] * after)  # (B, C, n, hop)
    return out.flatten(-2)


class WaveNet(nn.Module):
    """A conditional WaveNet over mu-law classes.

    Args:
        residual_channels: R, channels of the residual stream (the gate has 2 R inputs).
        skip_channels: S, channels of the skip outputs and of the output head.
        layers: layers per stack, dilations 1 .. 2^(layers-1).
        stacks: repeats of the dilation pattern.
        cond_dim: D, channels of the local conditioning codes (0: none).
        hop: samples per code.
        upsample: "repeat", "transposed" or "linear" (see the module docstring).
        num_speakers: speakers of the global conditioning (0: none).
        speaker_dim: size of the speaker embedding.
        classes: Q, the sample classes (256 for 8-bit mu-law).
        likelihood: ``"categorical"`` (Q logits) or ``"logistic_mixture"`` (3 ``mixtures``
            outputs; needs Q = 256), see the module docstring.
        mixtures: M, components of the logistic mixture.
    """

    def __init__(self, residual_channels: int = 32, skip_channels: int = 64, layers: int = 8,
                 stacks: int = 2, *, cond_dim: int = 0, hop: int = 64, upsample: str = "repeat",
                 num_speakers: int = 0, speaker_dim: int = 16,
                 classes: int = MU_LAW_CLASSES, likelihood: str = "categorical",
                 mixtures: int = 10) -> None:
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                             f"got {likelihood!r}")
        if likelihood == "logistic_mixture" and (classes != NUM_BINS or mixtures < 1):
            raise ValueError(f"a logistic mixture needs {NUM_BINS} classes and mixtures >= 1, "
                             f"got {classes} and {mixtures}")
        r, s = residual_channels, skip_channels
        self.classes, self.residual_channels, self.hop = classes, r, hop
        self.likelihood = likelihood
        self.mixtures = mixtures if likelihood == "logistic_mixture" else 0
        outputs = 3 * mixtures if self.mixtures else classes
        self.cond_dim, self.num_speakers = cond_dim, num_speakers
        self.dilations = [2**i for i in range(layers)] * stacks
        n = len(self.dilations)
        self.embed = nn.Embedding(classes, r)
        self.convs = nn.ModuleList(nn.Conv1d(r, 2 * r, 2, dilation=d) for d in self.dilations)
        self.res = nn.ModuleList(nn.Conv1d(r, r, 1) for _ in range(n - 1))  # none after the last
        self.skip = nn.ModuleList(nn.Conv1d(r, s, 1) for _ in range(n))
        self.interpolate = upsample == "linear"
        self.upsample = (nn.ConvTranspose1d(cond_dim, cond_dim, hop, stride=hop)
                         if cond_dim and upsample == "transposed" else None)
        # the 1x1 conditioning convs of all layers as one: (B, D, *) -> (B, L 2R, *)
        self.cond = nn.Conv1d(cond_dim, n * 2 * r, 1, bias=False) if cond_dim else None
        self.speaker = nn.Embedding(num_speakers, speaker_dim) if num_speakers else None
        self.speaker_proj = nn.Linear(speaker_dim, n * 2 * r, bias=False) if num_speakers else None
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(s, s, 1), nn.ReLU(),
                                  nn.Conv1d(s, outputs, 1))

    @property
    def receptive_field(self) -> int:
        """Samples the logits at t depend on: t - receptive_field .. t - 1."""
        return sum(self.dilations) + 1

    # ----------------------------------------------------------------- conditioning
    def _check(self, codes: torch.Tensor | None, speaker: torch.Tensor | None) -> None:
        if self.cond is None and codes is not None:
            raise ValueError("this WaveNet has no local conditioning (cond_dim=0); pass codes=None")
        if self.cond is not None and (codes is None or codes.dim() != 3
                                      or codes.shape[1] != self.cond_dim):
            got = None if codes is None else tuple(codes.shape)
            raise ValueError(f"this WaveNet needs codes (B, {self.cond_dim}, N), got {got}")
        if (self.speaker is None) != (speaker is None):
            raise ValueError("this WaveNet " + ("needs speaker ids (B,)" if speaker is None else
                                                "has no speaker conditioning; pass speaker=None"))

    def local_conditioning(self, codes: torch.Tensor, start: int = 0,
                           stop: int | None = None, *, centres: bool = False) -> torch.Tensor:
        """codes (B, D, N) -> (B, L, 2R, n), the conditioning of blocks start .. stop - 1
        (default all N): n = stop - start (repeat; one per block) or (stop - start) hop.

        Generation asks for a few blocks at a time; linear interpolation reads the codes on
        either side of them, so it gets the same values as the whole at once.  With
        ``centres`` (linear only) it stops short of interpolating: n = stop - start + 2, the
        values at the centres of blocks start - 1 .. stop (edges repeated), for
        ``_interpolate_blocks``.
        """
        stop = codes.shape[-1] if stop is None else stop
        if not self.interpolate:
            part = codes[:, :, start:stop]
            c = self.cond(part if self.upsample is None else self.upsample(part))
        else:
            lo, hi = max(start - 1, 0), min(stop + 1, codes.shape[-1])
            c = self.cond(codes[:, :, lo:hi])  # (B, C, hi - lo) at the code rate
            c = F.pad(c, (1 - (start - lo), 1 - (hi - stop)), mode="replicate")
            c = c if centres else _interpolate_blocks(c, self.hop)
        return c.unflatten(1, (len(self.dilations), 2 * self.residual_channels))

    def global_conditioning(self, speaker: torch.Tensor) -> torch.Tensor:
        """speaker (B,) ids -> (B, L, 2R)."""
        g = self.speaker_proj(self.speaker(speaker))
        return g.unflatten(1, (len(self.dilations), 2 * self.residual_channels))

    def static_bias(self, speaker: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, L, 2R) the part of every layer's gate bias that is the same at every step:
        the dilated convs' biases plus the speaker's projection (the cached steps' start)."""
        static = torch.stack([c.bias for c in self.convs]).expand(batch, -1, -1)
        if speaker is not None:
            static = static + self.global_conditioning(speaker)
        return static

    # ----------------------------------------------------------------- likelihood
    def mixture_parameters(self, outputs: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3 M, T) outputs -> logits, means, clamped log-scales, each (B, M, T), fp32
        (fp64 for an fp64 network)."""
        params = _widened(outputs).unflatten(1, (3, self.mixtures))
        return (params[:, 0], params[:, 1],
                params[:, 2].clamp(AUDIO_MIN_LOG_SCALE, MAX_LOG_SCALE))

    def nll(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, O, T) outputs, (B, T) target classes -> (B, T) -log p(target) in nats (fp32,
        or fp64 for an fp64 network)."""
        if not self.mixtures:
            return F.cross_entropy(_widened(outputs), targets, reduction="none")
        logits, means, log_scales = self.mixture_parameters(outputs)
        return -logistic_mixture_log_prob(logits, means, log_scales, targets[:, None], dim=1)

    def class_logits(self, outputs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """(B, O, T) outputs -> (B, Q, T) logits over the classes: the outputs themselves
        (categorical), or each class's log-probability under the mixture (fp32, fp64 for an
        fp64 network; computed ``chunk`` steps at a time to bound the (B, M, Q, chunk) work
        space)."""
        if not self.mixtures:
            return outputs
        if outputs.shape[-1] == 0:
            return outputs.new_zeros(outputs.shape[0], self.classes, 0)
        logits, means, log_scales = (p.unsqueeze(2) for p in self.mixture_parameters(outputs))
        bins = torch.arange(self.classes, device=outputs.device)[:, None]  # (Q, 1)
        return torch.cat([
            logistic_mixture_log_prob(logits[..., i : i + chunk], means[..., i : i + chunk],
                                      log_scales[..., i : i + chunk], bins, dim=1)
            for i in range(0, outputs.shape[-1], chunk)], dim=-1)

    # ----------------------------------------------------------------- teacher forcing
    def forward(self, samples: torch.Tensor, codes: torch.Tensor | None = None,
                speaker: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs for every sample given the previous ones (teacher forcing).

        Args:
            samples: (B, T) mu-law classes, or (B, Q, T) a distribution over them (one-hot,
                e.g. to take gradients with respect to the input).
            codes: (B, D, N) local conditioning with N hop == T (None without it).
            speaker: (B,) speaker ids (None without global conditioning).

        Returns (B, O, T) outputs (``nll`` and ``class_logits`` read them): logits (O = Q)
        or mixture parameters (O = 3 M); position t depends on samples[..., :t] only.
        """
        self._check(codes, speaker)
        if samples.dim() == 2:
            first = torch.full_like(samples[:, :1], SILENCE_CLASS)
            x = self.embed(torch.cat([first, samples[:, :-1]], 1)).transpose(1, 2)
        else:
            first = F.one_hot(torch.tensor(SILENCE_CLASS), self.classes).to(samples)
            shifted = torch.cat([first.expand(samples.shape[0], -1)[..., None],
                                 samples[..., :-1]], -1)
            x = torch.einsum("bqt,qr->brt", shifted, self.embed.weight)
        length = x.shape[-1]
        cond = None
        if codes is not None:
            if codes.shape[-1] * self.hop != length:
                raise ValueError(f"{codes.shape[-1]} codes of {self.hop} samples do not cover "
                                 f"{length} samples")
            # interpolated layer by layer: all layers' at once would be L times the memory
            cond = self.local_conditioning(codes, centres=self.interpolate)
        spk = self.global_conditioning(speaker) if speaker is not None else None
        skips = 0
        for i, (conv, d) in enumerate(zip(self.convs, self.dilations, strict=True)):
            h = conv(F.pad(x, (d, 0)))  # (B, 2R, T), causal
            if cond is not None and self.interpolate:
                h = h + _interpolate_blocks(cond[:, i], self.hop)
            elif cond is not None:
                h = add_blockwise(h, cond[:, i])
            if spk is not None:
                h = h + spk[:, i, :, None]
            z = gate(h, 1)
            skips = skips + self.skip[i](z)
            if i < len(self.res):
                x = x + self.res[i](z)
        return self.head(skips)

    # ----------------------------------------------------------------- generation
    def incremental(self, codes: torch.Tensor | None = None,
                    speaker: torch.Tensor | None = None, batch: int | None = None
                    ) -> IncrementalWaveNet:
        """A fast-generation state: ``step(previous sample)`` -> logits of the next."""
        return IncrementalWaveNet(self, codes, speaker, batch)

    @torch.no_grad()
    def generate(self, codes: torch.Tensor | None = None, speaker: torch.Tensor | None = None,
                 length: int | None = None, *, batch: int | None = None,
                 temperature: float = 1.0, generator: torch.Generator | None = None,
                 cache: bool = True, backend: str = "auto") -> torch.Tensor:
        """Draw (B, length) mu-law classes; ``length`` defaults to N hop.

        ``cache=False`` recomputes the network on the last receptive field for every sample (a
        reference, for tests and timing).  ``backend`` runs the cached steps: "numba" (the
        compiled loop; CPU, needs numba), "torch" (``IncrementalWaveNet``) or "auto" (numba
        where it can run, else torch).  All draw the same numbers from ``generator``.
        """
        self._check(codes, speaker)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if codes is not None:
            batch, full = codes.shape[0], codes.shape[-1] * self.hop
            length = full if length is None else length
            if length > full:
                raise ValueError(f"{codes.shape[-1]} codes cover {full} samples, not {length}")
        elif speaker is not None:
            batch = speaker.shape[0]
        if batch is None or length is None:
            raise ValueError("without codes, pass length= (and batch= without a speaker)")
        device = self.embed.weight.device
        compiled = (cache and backend != "torch" and wavenet_fast.available()
                    and device.type == "cpu")
        if backend == "numba" and not compiled:
            why = ("cache=False recomputes with torch" if not cache
                   else "numba is not installed (pip install 'vqvae[fast]')"
                   if not wavenet_fast.available() else f"the network is on {device}, not the CPU")
            raise ValueError(f"backend='numba' cannot run: {why}")
        with torch.inference_mode():  # less bookkeeping per operation than no_grad
            uniforms = torch.rand(batch, length, generator=generator, dtype=torch.float64,
                                  device=device)
            if compiled:
                out = wavenet_fast.run(self, codes, speaker, batch, length, uniforms=uniforms,
                                       temperature=temperature)[0]
            else:
                out = torch.full((batch, length), SILENCE_CLASS, dtype=torch.long,
                                 device=device)
                state = self.incremental(codes, speaker, batch) if cache else None
                previous = out[:, 0].clone()
                for t in range(length):
                    logits = (state.step(previous) if cache
                              else self._logits_at(out, t, codes, speaker))
                    previous = draw(logits, uniforms[:, t], temperature)
                    out[:, t] = previous
        return out.clone()  # a normal tensor again

    def _logits_at(self, samples, t, codes, speaker) -> torch.Tensor:
        """The logits at t from a forward pass over the receptive field, hop-aligned.

        The window starts at or before t - receptive_field, so its first input (silence in
        place of the sample before the window) is outside what position t reads.
        """
        hop = self.hop if codes is not None else 1
        start = max(0, t - self.receptive_field) // hop * hop
        end = -(-(t + 1) // hop) * hop
        if codes is not None and self.interpolate:  # interpolation reads a code each side
            start, end = max(start - hop, 0), min(end + hop, codes.shape[-1] * hop)
        window = samples[:, start:end]  # samples from t on are filler, never read at t
        if window.shape[1] < end - start:  # past the requested length: more filler
            window = F.pad(window, (0, end - start - window.shape[1]), value=SILENCE_CLASS)
        local = None if codes is None else codes[:, :, start // hop : end // hop]
        return self.class_logits(self(window, local, speaker)[:, :, t - start, None])[..., 0]


class IncrementalWaveNet:
    """Per-layer queues for generating one sample at a time (Paine et al. 2016).

    For layer l with dilation d, the gate input at t is W_now x_l[t] + W_past x_l[t - d] + b +
    conditioning.  When x_l[t] is computed, W_past x_l[t] is written into the layer's queue of
    d slots, where step t + d reads it; the queues start at zero, as the causal padding does.
    Local conditioning is computed one code (hop samples) at a time.
    """

    def __init__(self, net: WaveNet, codes: torch.Tensor | None, speaker: torch.Tensor | None,
                 batch: int | None) -> None:
        net._check(codes, speaker)
        self.net, self.codes, self.t = net, codes, 0
        self.batch = batch or (codes.shape[0] if codes is not None else speaker.shape[0])
        w = net.embed.weight
        r, n = net.residual_channels, len(net.dilations)
        # (R, 2R) matrices: x @ W as the convolutions' taps at t and at t - d
        self.w_now = [c.weight[:, :, 1].T.contiguous() for c in net.convs]
        self.w_past = [c.weight[:, :, 0].T.contiguous() for c in net.convs]
        self.w_res = [(m.weight[:, :, 0].T.contiguous(), m.bias) for m in net.res]
        self.w_skip = [m.weight[:, :, 0].T.contiguous() for m in net.skip]
        self.b_skip = sum(m.bias for m in net.skip).expand(self.batch, -1).contiguous()
        static = self.static = net.static_bias(speaker, self.batch)  # (B, L, 2R)
        self.bias = [static[:, i].contiguous() for i in range(n)]  # this step's, per layer
        self.block: torch.Tensor | None = None  # (hop, L, B, 2R) for transposed upsampling
        self.queues = [w.new_zeros(d, self.batch, 2 * r) for d in net.dilations]

    def _next_block(self, j: int) -> None:
        """Biases of the hop samples of code j: static + its local conditioning."""
        if j >= self.codes.shape[-1]:
            raise IndexError(f"the codes cover {self.codes.shape[-1] * self.net.hop} samples")
        cond = self.net.local_conditioning(self.codes, j, j + 1)  # (B, L, 2R, 1 | hop)
        full = (self.static.unsqueeze(-1) + cond).permute(3, 1, 0, 2).contiguous()
        if full.shape[0] == 1:  # repeat: one bias for the whole block
            self.bias, self.block = list(full[0].unbind(0)), None
        else:
            self.block = full

    @torch.no_grad()
    def step(self, previous: torch.Tensor) -> torch.Tensor:
        """previous (B,) the class of sample t - 1 (silence at t = 0) -> (B, Q) logits of t
        over the classes (``WaveNet.class_logits``)."""
        net, t, r = self.net, self.t, self.net.residual_channels
        if self.codes is not None:
            j, k = divmod(t, net.hop)
            if k == 0:
                self._next_block(j)
            if self.block is not None:
                self.bias = self.block[k].unbind(0)
        x = net.embed(previous)  # (B, R)
        skips = self.b_skip
        last = len(net.dilations) - 1
        for i, d in enumerate(net.dilations):
            past = self.queues[i][t % d]  # W_past x_i[t - d], or zero
            h = torch.addmm(past + self.bias[i], x, self.w_now[i])
            torch.mm(x, self.w_past[i], out=past)  # W_past x_i[t], read at t + d
            z = torch.tanh(h[:, :r]) * torch.sigmoid(h[:, r:])
            skips = torch.addmm(skips, z, self.w_skip[i])
            if i < last:
                w_res, b_res = self.w_res[i]
                x = torch.addmm(x, z, w_res).add_(b_res)
        self.t += 1
        return net.class_logits(net.head(skips.unsqueeze(-1)))[..., 0]
