"""Decoder likelihoods p(x | z_q) over 8-bit images scaled to [-0.5, 0.5].

A pixel value v in {0, ..., 255} is stored as x = v / 255 - 0.5.  The discrete likelihoods give
each of the 256 values of a sub-pixel (one channel of one pixel) a probability; bin v covers
[x - 1/510, x + 1/510], and the outer bins 0 and 255 extend to -inf and +inf (PixelCNN++).

Every likelihood maps the decoder's output (B, output_channels(C), H, W) to

* ``loss(output, images)``: the training objective, a mean over sub-pixels;
* ``nll(output, images)``: (B,) -log p(x | z_q) in nats, summed over the C H W sub-pixels,
  so bits/dim = nll / (C H W ln 2);
* ``mean(output)``: (B, C, H, W) the reconstruction, clamped to [-0.5, 0.5].

The three kinds:

* ``gaussian``: the decoder outputs the mean; loss = mean squared error (a Gaussian of fixed
  variance up to constants, as in the paper's image experiments).  Its ``nll`` is defined only
  when a fixed standard deviation ``std`` is given: it is then the discretised Gaussian of that
  std (outer bins to +-inf); without one it raises ``NotImplementedError``, because MSE
  training fits no variance and any bits/dim would depend on an arbitrary choice.
* ``categorical``: a 256-way softmax per sub-pixel (C * 256 outputs; channel c's logits are
  outputs [256 c, 256 (c + 1))); loss = cross-entropy in nats per sub-pixel.  The paper's
  CIFAR-10 bits/dim.
* ``logistic_mixture``: a discretised mixture of M logistics per sub-pixel (PixelCNN++,
  Salimans et al. 2017).  Simplification: every channel has its own mixture weights, means and
  scales and the channels are independent given z_q (PixelCNN++ shares the weights over RGB
  and makes G and B depend linearly on R).  C * 3 * M outputs, ordered (C, 3, M): logits,
  means, log-scales.  loss = nll per sub-pixel in nats.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

NUM_BINS = 256
HALF_BIN = 0.5 / (NUM_BINS - 1)  # half the width of a bin in [-0.5, 0.5] units
MIN_LOG_SCALE, MAX_LOG_SCALE = -7.0, 10.0  # of the logistics (PixelCNN++'s -7, on [-1, 1])
# At -7 the narrowest logistic spans +-2.15 scales of a bin of [-0.5, 0.5], so no value can
# have more than 79 % probability: a floor of 0.23 nats per value.  Images never come near it;
# a WaveNet's silence would, so its mixture may be narrower: at -9, 99.99998 % in one bin.
AUDIO_MIN_LOG_SCALE = -9.0


def pixel_values(device: torch.device | None = None) -> torch.Tensor:
    """(256,) the value of each bin: v / 255 - 0.5."""
    return torch.arange(NUM_BINS, device=device, dtype=torch.float32) / (NUM_BINS - 1) - 0.5


def to_bins(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images in [-0.5, 0.5] -> (B, C, H, W) int64 bin indices in [0, 255]."""
    low, high = torch.aminmax(images.detach().float())
    if low < -0.5 - HALF_BIN or high > 0.5 + HALF_BIN:
        raise ValueError(
            "images must be 8-bit values scaled to [-0.5, 0.5] (v / 255 - 0.5), got values in "
            f"[{float(low):.4g}, {float(high):.4g}]"
        )
    return ((images.float() + 0.5) * (NUM_BINS - 1)).round().long().clamp_(0, NUM_BINS - 1)


def logistic_mixture_log_prob(logits: torch.Tensor, means: torch.Tensor,
                              log_scales: torch.Tensor, bins: torch.Tensor, *,
                              dim: int) -> torch.Tensor:
    """log p(bin) under discretised mixtures of logistics over the 256 bins of [-0.5, 0.5].

    ``logits``, ``means`` and ``log_scales`` (already clamped) hold the M components along
    ``dim``; ``bins`` (int64 in [0, 255]) broadcasts against them with size 1 along ``dim``.
    Bin v covers [v / 255 - 0.5 -+ 1 / 510]; bins 0 and 255 extend to -inf and +inf.  Returns
    the broadcast shape without ``dim``, in the dtype of ``means``.
    """
    x = bins.to(means.dtype) / (NUM_BINS - 1) - 0.5  # the bin's value, as ``pixel_values``
    inv_scale = torch.exp(-log_scales)
    a = (x + HALF_BIN - means) * inv_scale  # upper edge of the bin, standardised
    b = (x - HALF_BIN - means) * inv_scale  # lower edge
    # log(sigmoid(a) - sigmoid(b)) = a + log(1 - e^(b - a)) - softplus(a) - softplus(b)
    middle = (a + torch.log(-torch.expm1(-2 * HALF_BIN * inv_scale))
              - F.softplus(a) - F.softplus(b))
    log_lowest = -F.softplus(-a)  # log sigmoid(a): bin 0 extends to -inf
    log_highest = -F.softplus(b)  # log(1 - sigmoid(b)): bin 255 extends to +inf
    log_comp = torch.where(bins == 0, log_lowest,
                           torch.where(bins == NUM_BINS - 1, log_highest, middle))
    return torch.logsumexp(torch.log_softmax(logits, dim=dim) + log_comp, dim=dim)


class Likelihood:
    """Base class: the interface every decoder likelihood implements."""

    name: ClassVar[str]

    def output_channels(self, image_channels: int) -> int:
        """Decoder output channels for images of ``image_channels`` channels."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """output (B, O, H, W), images (B, C, H, W) -> () training objective."""
        return self.nll(output, images).sum() / images.numel()

    def nll(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """output (B, O, H, W), images (B, C, H, W) -> (B,) -log p(images) in nats."""
        raise NotImplementedError

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """output (B, O, H, W) -> (B, C, H, W) reconstruction in [-0.5, 0.5]."""
        raise NotImplementedError

    def loss_and_mean(
        self, output: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss(output, images), mean(output))``; a subclass may share work between them."""
        return self.loss(output, images), self.mean(output)

    def _check(self, output: torch.Tensor, images: torch.Tensor) -> None:
        b, c, h, w = images.shape
        expected = (b, self.output_channels(c), h, w)
        if tuple(output.shape) != expected:
            raise ValueError(
                f"{self.name} likelihood: decoder output for images {tuple(images.shape)} "
                f"must have shape {expected}, got {tuple(output.shape)}"
            )

    def _image_channels(self, output: torch.Tensor, per_channel: int) -> int:
        if output.dim() != 4 or output.shape[1] % per_channel:
            raise ValueError(
                f"{self.name} likelihood: expected (B, C * {per_channel}, H, W) decoder output, "
                f"got {tuple(output.shape)}"
            )
        return output.shape[1] // per_channel

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class GaussianLikelihood(Likelihood):
    """Fixed-variance Gaussian: MSE training, mean = the decoder output.

    Args:
        std: standard deviation of the discretised Gaussian used by ``nll``; None (default):
            ``nll`` raises ``NotImplementedError``.
    """

    name = "gaussian"

    def __init__(self, std: float | None = None) -> None:
        if std is not None and not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.std = std

    def output_channels(self, image_channels: int) -> int:
        return image_channels

    def loss(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        self._check(output, images)
        return F.mse_loss(output.float(), images.float())

    def nll(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if self.std is None:
            raise NotImplementedError(
                "the gaussian likelihood is trained by MSE and has no fitted variance, so it has "
                "no nll; give it a fixed std (config gaussian_std) or use 'categorical' or "
                "'logistic_mixture' for bits/dim"
            )
        self._check(output, images)
        bins = to_bins(images)
        x = pixel_values(images.device)[bins]  # snapped to the bin centres
        a = (x + HALF_BIN - output.float()) / self.std  # upper edge, standardised
        b = (x - HALF_BIN - output.float()) / self.std  # lower edge
        # log(Phi(a) - Phi(b)), computed in the lower tail: Phi(a) - Phi(b) = Phi(-b) - Phi(-a)
        flip = a + b > 0
        hi, lo = torch.where(flip, -b, a), torch.where(flip, -a, b)
        log_hi = torch.special.log_ndtr(hi)
        middle = log_hi + torch.log(-torch.expm1(torch.special.log_ndtr(lo) - log_hi))
        logp = torch.where(bins == 0, torch.special.log_ndtr(a),
                           torch.where(bins == NUM_BINS - 1, torch.special.log_ndtr(-b), middle))
        return -logp.flatten(1).sum(1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output.float().clamp(-0.5, 0.5)

    def __repr__(self) -> str:
        return f"GaussianLikelihood(std={self.std})"


class _SoftmaxNatsAndMean(torch.autograd.Function):
    """Rows of 256 logits -> (nats of the target bin, expected value), one pass per chunk.

    logits (N, 256) in any float dtype, each row contiguous; target (N,) int64 bins or None.
    Returns nats (N,) = logsumexp(row) - row[target] (zeros when target is None) and mean (N,)
    = sum_k softmax(row)_k v_k, both fp32.  The same numbers as a log-softmax, a gather and a
    product with the pixel values, but each chunk of rows is cast to fp32, reduced and
    discarded while it is still in cache: no full-size fp32 copy of the logits, no full-size
    log-probabilities, and a backward pass that recomputes the softmax of a chunk instead of
    reading saved ones.  On the paper's CIFAR-10 decoder (25 M bf16 logits a batch) this was the
    largest memory-bound part of a CPU training step.  Backward, with g_n and g_m the incoming
    gradients of a row and p its softmax:
        d/d logit_k = p_k (g_n + g_m (v_k - mean)) - g_n [k = target].
    """

    @staticmethod
    def forward(ctx, logits, target, chunk):
        ctx.set_materialize_grads(False)
        n = logits.shape[0]
        values = pixel_values(logits.device)
        nats = torch.zeros(n, device=logits.device)
        mean = torch.empty(n, device=logits.device)
        lse = torch.empty(n, device=logits.device)
        for s in range(0, n, chunk):
            x = logits[s : s + chunk].to(torch.float32, copy=True)
            peak = x.amax(dim=1, keepdim=True)
            if target is not None:
                picked = x.gather(1, target[s : s + chunk, None])[:, 0]
            e = x.sub_(peak).exp_()  # one exp per logit serves the normaliser and the mean
            total = e.sum(dim=1)
            lse_s = total.log().add_(peak[:, 0])
            lse[s : s + chunk] = lse_s
            if target is not None:
                nats[s : s + chunk] = lse_s - picked
            mean[s : s + chunk] = (e @ values).div_(total)
        ctx.save_for_backward(logits, target, lse, mean)
        ctx.chunk = chunk
        return nats, mean

    @staticmethod
    def backward(ctx, g_nats, g_mean):
        logits, target, lse, mean = ctx.saved_tensors
        if g_nats is None and g_mean is None:
            return None, None, None
        if target is None:
            g_nats = None
        values = pixel_values(logits.device)
        grad = torch.empty_like(logits)
        for s in range(0, logits.shape[0], ctx.chunk):
            e = s + ctx.chunk
            p = logits[s:e].to(torch.float32, copy=True).sub_(lse[s:e, None]).exp_()
            if g_mean is None:
                weight = g_nats[s:e, None]
            else:
                weight = (values - mean[s:e, None]).mul_(g_mean[s:e, None])
                if g_nats is not None:
                    weight.add_(g_nats[s:e, None])
            p.mul_(weight)
            if g_nats is not None:
                p.scatter_add_(1, target[s:e, None], -g_nats[s:e, None])
            grad[s:e] = p
        return grad, None, None


class CategoricalLikelihood(Likelihood):
    """A 256-way softmax per sub-pixel; output (B, C * 256, H, W)."""

    name = "categorical"
    chunk_rows = 2048  # rows of 256 logits per chunk on the CPU (2 MB in fp32)

    def output_channels(self, image_channels: int) -> int:
        return image_channels * NUM_BINS

    def log_probs(self, output: torch.Tensor) -> torch.Tensor:
        """(B, C * 256, H, W) -> (B, C, H, W, 256) log-probabilities of the 256 values.

        The softmax runs over whichever axis is contiguous in memory: the 256 logits of a
        sub-pixel are adjacent when the output is channels-last (the bf16 CPU decoder), a
        plane apart otherwise.  The result is a view in the output's own layout.
        """
        c = self._image_channels(output, NUM_BINS)
        if output.dim() == 4 and output.is_contiguous(memory_format=torch.channels_last):
            logits = output.permute(0, 2, 3, 1).unflatten(3, (c, NUM_BINS))  # (B, H, W, C, 256)
            return torch.log_softmax(logits.float(), dim=-1).permute(0, 3, 1, 2, 4)
        logits = output.float().unflatten(1, (c, NUM_BINS))  # (B, C, 256, H, W)
        return torch.log_softmax(logits, dim=2).movedim(2, -1)

    def nll(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        self._check(output, images)
        nats, _ = self._nats_and_mean(output, images)  # (B, C, H, W) each
        return nats.flatten(1).sum(1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return self._nats_and_mean(output, None)[1]

    def loss_and_mean(
        self, output: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over the (B, C, H, W, 256) logits serves both (it dominates)."""
        self._check(output, images)
        nats, mean = self._nats_and_mean(output, images)
        return nats.sum() / images.numel(), mean

    def _nats_and_mean(
        self, output: torch.Tensor, images: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (B, C, H, W) nats of each sub-pixel (zeros without images), (B, C, H, W) mean."""
        c = self._image_channels(output, NUM_BINS)
        b, _, h, w = output.shape
        # (B, H, W, C, 256) rows: a free view of a channels-last output, a copy otherwise
        rows = output.permute(0, 2, 3, 1).reshape(-1, NUM_BINS)
        target = None if images is None else to_bins(images).permute(0, 2, 3, 1).reshape(-1)
        chunk = self.chunk_rows if output.device.type == "cpu" else max(1, rows.shape[0])
        nats, mean = _SoftmaxNatsAndMean.apply(rows, target, chunk)
        nats, mean = (t.view(b, h, w, c).permute(0, 3, 1, 2) for t in (nats, mean))
        return nats, mean.clamp(-0.5, 0.5)


class LogisticMixtureLikelihood(Likelihood):
    """Discretised mixture of ``mixtures`` logistics per sub-pixel; output (B, C * 3 M, H, W)."""

    name = "logistic_mixture"

    def __init__(self, mixtures: int = 10) -> None:
        if mixtures < 1:
            raise ValueError(f"mixtures must be positive, got {mixtures}")
        self.mixtures = mixtures

    def output_channels(self, image_channels: int) -> int:
        return image_channels * 3 * self.mixtures

    def parameters_of(self, output: torch.Tensor):
        """(B, C * 3 M, H, W) -> logits, means, log_scales, each (B, C, M, H, W) fp32."""
        c = self._image_channels(output, 3 * self.mixtures)
        params = output.float().unflatten(1, (c, 3, self.mixtures))
        log_scales = params[:, :, 2].clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)
        return params[:, :, 0], params[:, :, 1], log_scales

    def nll(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        self._check(output, images)
        logits, means, log_scales = self.parameters_of(output)
        bins = to_bins(images).unsqueeze(2)  # (B, C, 1, H, W)
        logp = logistic_mixture_log_prob(logits, means, log_scales, bins, dim=2)  # (B, C, H, W)
        return -logp.flatten(1).sum(1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The mixture's mean sum_m pi_m mu_m, clamped (ignores the clipping of the outer bins)."""
        logits, means, _ = self.parameters_of(output)
        return (torch.softmax(logits, dim=2) * means).sum(2).clamp(-0.5, 0.5)

    def __repr__(self) -> str:
        return f"LogisticMixtureLikelihood(mixtures={self.mixtures})"


LIKELIHOODS = ("gaussian", "categorical", "logistic_mixture")


def make_likelihood(name: str, *, mixtures: int = 10, std: float | None = None) -> Likelihood:
    """The likelihood called ``name``; ``mixtures`` and ``std`` apply to one kind each."""
    if name == "gaussian":
        return GaussianLikelihood(std)
    if name == "categorical":
        return CategoricalLikelihood()
    if name == "logistic_mixture":
        return LogisticMixtureLikelihood(mixtures)
    raise ValueError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")

