"""The speech VQ-VAE of section 4.3: raw waveform -> codes at 1/64 of the rate -> WaveNet.

    waveform (B, T) in [-1, 1] --AudioEncoder--> z_e (B, D, T / hop)
        --VectorQuantizer--> z_q (B, D, T / hop), indices (B, T / hop)
        --WaveNet(previous samples; z_q local, speaker global)--> outputs (B, O, T)

The objective is eq. 3 of the paper: the negative log-likelihood of the 8-bit mu-law targets
(nats per sample; the cross-entropy, for the softmax) plus the quantiser's codebook and
beta-weighted commitment terms.  The WaveNet's outputs are 256 logits per sample (the paper's
softmax) or, with ``likelihood="logistic_mixture"``, a discretised mixture of logistics over
the same 256 classes (3 x ``logistic_mixtures`` outputs).  The decoder is told
the speaker, so the codes are pushed to carry what the speaker does not explain (the content):
``convert`` encodes an utterance and decodes its codes with another speaker's embedding.
With ``frontend="log-mel"`` the encoder reads log-mel frames instead of samples
(``LogMelEncoder``, one frame per code; not the paper's); the rest is unchanged.  With
``spectral_weight`` > 0 a small ``SpectralHead`` also decodes the codes (and the speaker) to
the log-mel frames, and its squared error joins the loss (not the paper's either).  With
``adversary_weight`` > 0 a ``SpeakerAdversary`` learns to name the speaker from the codes while
the encoder, through a reversed gradient, learns to hide it (not the paper's either).  With
``condition="codes+frames"`` the WaveNet reads the head's predicted frames beside the codes,
so it renders a spectrum the head has already given the voice of the speaker asked for.

Sizes (``PRESETS``; the paper gives only the encoder, hop 64 and K = 512):

* ``"default"``: 8 kHz (FSDD), encoder 6 x 64 channels, D = 64, K = 512 (EMA), WaveNet 2
  stacks of 8 layers (dilations 1 .. 128, receptive field 511 samples = 64 ms), R = 32,
  S = 64; 0.31 M parameters with 6 speakers (encoder 0.09 M, WaveNet 0.23 M).  A step on 16
  crops of 2048 samples takes about 1.4 s on one CPU thread; drawing 0.25 s of audio, 2 s.
* ``"paper-vctk"``: 16 kHz (VCTK), encoder 6 x 512 channels, D = 64, K = 512 learned by the
  loss, WaveNet 3 stacks of 10 layers (the original WaveNet's dilations, receptive field 3070
  samples = 192 ms), R = S = 256; 19.2 M parameters with 109 speakers.  The channel counts
  are guesses, not the paper's.

A model is saved like the image VQ-VAE: ``config.json`` (``"model": "SpeechVQVAE"``) beside
``model.safetensors``; ``from_pretrained`` also accepts a training run's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .audio.levels import LEVELS
from .audio.mu_law import mu_law_decode, mu_law_encode
from .errors import UsageError
from .nets.audio import (
    FRAME_NORMS,
    AudioEncoder,
    LogMelEncoder,
    LogMelFrames,
    SpeakerAdversary,
    SpectralHead,
    reverse_gradient,
)
from .nets.wavenet import LIKELIHOODS, UPSAMPLING, WaveNet
from .pretrained import Pretrained, check_field_types, config_from_dict
from .quantize import VectorQuantizer

FRONTENDS = ("waveform", "log-mel")
CONDITIONS = ("codes", "codes+frames")


@dataclass(frozen=True)
class SpeechVQVAEConfig:
    """Everything that determines a ``SpeechVQVAE``; the defaults are the ``"default"`` preset.

    Attributes:
        sample_rate: Hz of the waveforms the model reads and writes.
        halvings: strided encoder layers; one code per hop = 2 ** halvings samples (6: 64).
        frontend: what the encoder reads: ``"waveform"`` (the paper's strided convolutions,
            ``AudioEncoder``) or ``"log-mel"`` (``n_mels`` log-mel bands, one frame per code,
            ``LogMelEncoder``; the decoder still models the waveform).
        n_mels: mel bands of the ``"log-mel"`` front end and of the spectral head.
        frame_norm: how the ``"log-mel"`` front end normalises each utterance's frames before
            the encoder reads them: ``"none"``, ``"mean"`` (subtract each band's mean over
            the active frames), ``"mean-std"`` (also divide by its deviation) or
            ``"smooth-mean"`` (subtract a smooth fit of the means across the bands) or
            ``"speaker-mean"`` (subtract the long-term mean of the utterance's speaker over
            the training data, so the word's own mean stays; encoding then needs the source
            speaker); see ``normalise_frames``.  Taking out the long-term spectrum keeps much
            of the voice out of the codes, for conversion (not the paper's).  The spectral
            head still predicts the frames as they were.
        encoder_channels: channels of the encoder's strided layers (or its convolutions).
        encoder_residual_layers: residual blocks at the code rate after them (0: the paper's
            encoder; see ``AudioEncoder``).
        jitter: in training, the probability that a code position hands the decoder its
            left or right neighbour's vector instead of its own (time jitter, Chorowski et al.
            2019; 0: off, the paper's).  Eval and generation never jitter.
        input_noise: in training, the deviation, in mu-law classes, of Gaussian noise added
            (then rounded, and clipped to the classes) to the past samples the WaveNet reads,
            never to the samples it is scored on: teacher forcing on slightly wrong pasts, as
            generation gives it its own samples (noise injection, Valin and Skoglund 2019's
            LPCNet).  0: off, the paper's; on FSDD 0.5 changed nothing beyond a run's spread
            and 2 did worse (docs/BENCHMARKS.md section 6).
        spectral_weight: weight of an auxiliary loss: the mean squared error of a small
            decoder from the codes and the speaker to the scaled log-mel frames
            (``SpectralHead``; van Niekerk et al. 2020 decode codes to spectra).  It pushes
            the codes to carry the spectral envelope, which is what tells phones apart.
            0: off, the paper's.  Generation does not use the head.
        adversary_weight: strength of the reversed gradient that a speaker classifier on
            the codes (``SpeakerAdversary``) sends to the encoder: the classifier's
            cross-entropy joins the loss, so it learns to name the speaker of each code, and
            the encoder gets its gradient times ``-adversary_weight``, so it learns to keep the
            speaker out of the codes (for conversion).  Needs ``num_speakers`` > 1.  0: off,
            the paper's.  Generation does not use the classifier.
        condition: what the WaveNet's local conditioning reads: ``"codes"`` (the paper's)
            or ``"codes+frames"``, the codes with the spectral head's predicted log-mel
            frames beside them (for the speaker given to the decoder), so the WaveNet renders
            a spectrum instead of inferring it (not the paper's; needs ``spectral_weight`` >
            0).  The frames are predicted in training too, never taken from the input, so
            generation sees what training saw; the WaveNet's gradient reaches the head.
        head_residual: with ``frame_norm="speaker-mean"``, the spectral head predicts each
            frame minus its speaker's long-term mean, which is then added back: converted
            frames take the target's mean exactly, where otherwise the head has to learn it
            from the speaker embedding (not the paper's; on FSDD it did not help conversion,
            docs/BENCHMARKS.md section 6).
        embedding_dim: D, the quantiser's dimension.
        num_codes: K.
        beta: commitment weight.
        update: ``"ema"`` or ``"loss"`` codebook learning (see ``VectorQuantizer``).
        decay: EMA decay.
        init: codebook initialisation, ``"random"``, ``"kmeans"`` or ``"kmeans++"``.
        restart_after: steps after which an unused code is restarted; None: never.
        likelihood: the WaveNet's distribution of a sample over the 256 mu-law classes:
            ``"categorical"`` (a softmax, the paper's) or ``"logistic_mixture"`` (a discretised
            mixture of logistics, ``nets.wavenet``; on FSDD, at the default size, it did
            worse than the softmax: docs/BENCHMARKS.md section 6).
        logistic_mixtures: M, components of the mixture.
        residual_channels: R of the WaveNet.
        skip_channels: S of the WaveNet.
        layers: WaveNet layers per stack (dilations 1 .. 2 ** (layers - 1)).
        stacks: WaveNet stacks.
        upsample: codes to the sample rate by ``"repeat"``, ``"transposed"`` convolution or
            ``"linear"`` interpolation between the codes' centres (``nets.wavenet``).
        num_speakers: speakers of the decoder's global conditioning (0: unconditioned).
        speaker_dim: size of the learned speaker embedding.
        speaker_names: the name of each speaker id (empty, or ``num_speakers`` names).
        level: how input waveforms are normalised per utterance (``vqvae.audio.levels``).
    """

    sample_rate: int = 8000
    halvings: int = 6
    frontend: str = "waveform"
    n_mels: int = 40
    frame_norm: str = "none"
    encoder_channels: int = 64
    encoder_residual_layers: int = 0
    jitter: float = 0.0
    input_noise: float = 0.0
    spectral_weight: float = 0.0
    adversary_weight: float = 0.0
    condition: str = "codes"
    head_residual: bool = False
    embedding_dim: int = 64
    num_codes: int = 512
    beta: float = 0.25
    update: str = "ema"
    decay: float = 0.99
    init: str = "kmeans"
    restart_after: int | None = 100
    likelihood: str = "categorical"
    logistic_mixtures: int = 10
    residual_channels: int = 32
    skip_channels: int = 64
    layers: int = 8
    stacks: int = 2
    upsample: str = "repeat"
    num_speakers: int = 0
    speaker_dim: int = 16
    speaker_names: tuple[str, ...] = ()
    level: str = "peak"

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("sample_rate", "halvings", "n_mels", "encoder_channels", "embedding_dim",
                     "num_codes", "residual_channels", "skip_channels", "layers", "stacks",
                     "speaker_dim", "logistic_mixtures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        c = self
        checks = [
            (c.frontend in FRONTENDS,
             f"frontend must be one of {', '.join(FRONTENDS)}, got {c.frontend!r}"),
            (c.frame_norm in FRAME_NORMS,
             f"frame_norm must be one of {', '.join(FRAME_NORMS)}, got {c.frame_norm!r}"),
            (c.frame_norm == "none" or c.frontend == "log-mel",
             f"frame_norm={c.frame_norm!r} needs frontend='log-mel'"),
            (c.num_speakers >= 0, f"num_speakers must be >= 0, got {c.num_speakers}"),
            (0 <= c.jitter < 1, f"jitter must be in [0, 1), got {c.jitter}"),
            (c.input_noise >= 0, f"input_noise must be >= 0, got {c.input_noise}"),
            (c.spectral_weight >= 0, f"spectral_weight must be >= 0, got {c.spectral_weight}"),
            (c.adversary_weight >= 0,
             f"adversary_weight must be >= 0, got {c.adversary_weight}"),
            (c.condition in CONDITIONS,
             f"condition must be one of {', '.join(CONDITIONS)}, got {c.condition!r}"),
            (c.condition == "codes" or c.spectral_weight > 0,
             f"condition={c.condition!r} needs spectral_weight > 0 (the head that predicts "
             "the frames)"),
            (not c.head_residual or (c.frame_norm == "speaker-mean" and c.spectral_weight > 0),
             "head_residual needs frame_norm='speaker-mean' (the means it adds) and "
             "spectral_weight > 0 (the head)"),
            (c.encoder_residual_layers >= 0,
             f"encoder_residual_layers must be >= 0, got {c.encoder_residual_layers}"),
            (not c.speaker_names or len(c.speaker_names) == c.num_speakers,
             f"speaker_names has {len(c.speaker_names)} names for num_speakers={c.num_speakers}"),
            (len(set(c.speaker_names)) == len(c.speaker_names), "speaker_names must be distinct"),
            (c.beta >= 0, f"beta must be >= 0, got {c.beta}"),
            (0 <= c.decay < 1, f"decay must be in [0, 1), got {c.decay}"),
            (c.update in ("ema", "loss"), f"update must be 'ema' or 'loss', got {c.update!r}"),
            (c.init in ("random", "kmeans", "kmeans++"),
             f"init must be 'random', 'kmeans' or 'kmeans++', got {c.init!r}"),
            (c.restart_after is None or c.restart_after >= 1,
             f"restart_after must be None or >= 1, got {c.restart_after}"),
            (c.likelihood in LIKELIHOODS,
             f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {c.likelihood!r}"),
            (c.upsample in UPSAMPLING,
             f"upsample must be one of {', '.join(UPSAMPLING)}, got {c.upsample!r}"),
            (c.level in LEVELS, f"level must be one of {', '.join(LEVELS)}, got {c.level!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def hop(self) -> int:
        """Samples per code."""
        return 2**self.halvings

    @property
    def receptive_field(self) -> int:
        """Past samples the WaveNet sees: stacks (2 ** layers - 1) + 1."""
        return self.stacks * (2**self.layers - 1) + 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["speaker_names"] = list(self.speaker_names)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SpeechVQVAEConfig:
        """The inverse of ``to_dict``; unknown keys are rejected, missing ones take defaults."""
        return config_from_dict(cls, data)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> SpeechVQVAEConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS: dict[str, SpeechVQVAEConfig] = {
    "default": SpeechVQVAEConfig(),
    "paper-vctk": SpeechVQVAEConfig(
        sample_rate=16000, encoder_channels=512, update="loss", init="random",
        restart_after=None, residual_channels=256, skip_channels=256, layers=10, stacks=3,
        speaker_dim=64,
    ),
}


def time_jitter(latents: torch.Tensor, p: float) -> torch.Tensor:
    """(B, D, N) -> (B, D, N): each position takes its left or right neighbour's vector with
    probability p / 2 each (the ends keep their own where the neighbour is missing)."""
    b, _, n = latents.shape
    u = torch.rand(b, n, device=latents.device)
    shift = (u < p / 2).long() * -1 + (u > 1 - p / 2).long()  # -1, 0 or +1
    source = (torch.arange(n, device=latents.device) + shift).clamp(0, n - 1)  # (B, N)
    return latents.gather(2, source[:, None, :].expand_as(latents))


def noisy_samples(samples: torch.Tensor, std: float, classes: int) -> torch.Tensor:
    """(B, T) classes -> (B, T) classes moved by Gaussian noise of deviation ``std`` classes,
    rounded, and clipped to 0 .. classes - 1."""
    moved = samples + torch.round(torch.randn(samples.shape, device=samples.device) * std)
    return moved.clamp(0, classes - 1).to(samples.dtype)


@dataclass
class SpeechVQVAEOutput:
    """Result of ``SpeechVQVAE.forward``."""

    outputs: torch.Tensor  # (B, O, T) the WaveNet's, of p(x_t | x_<t, z_q, speaker)
    indices: torch.Tensor  # (B, T / hop)
    loss: torch.Tensor  # () recon + quantizer + spectral_weight * spectral + adversary loss
    recon_loss: torch.Tensor  # () -log p of the mu-law targets, nats per sample
    quantizer_loss: torch.Tensor  # () codebook_loss + beta * commitment_loss
    spectral_loss: torch.Tensor  # () squared error of the spectral head (zero when off)
    adversary_loss: torch.Tensor  # () the speaker classifier's cross-entropy (zero when off)
    adversary_accuracy: torch.Tensor  # () its fraction of codes named right (zero when off)
    commitment_loss: torch.Tensor  # () before the beta factor
    codebook_loss: torch.Tensor  # () zero with EMA updates
    perplexity: torch.Tensor  # () of code usage in the batch
    usage: torch.Tensor  # () fraction of codes used in the batch


class SpeechVQVAE(Pretrained, nn.Module, name="SpeechVQVAE", config=SpeechVQVAEConfig):
    """VQ-VAE for speech, built from a ``SpeechVQVAEConfig`` (default: ``"default"``)."""

    def __init__(self, config: SpeechVQVAEConfig | None = None) -> None:
        super().__init__()
        c = self.config = config if config is not None else SpeechVQVAEConfig()
        if c.frontend == "waveform":
            self.encoder = AudioEncoder(c.encoder_channels, c.embedding_dim, c.halvings,
                                        c.encoder_residual_layers)
        else:
            self.encoder = LogMelEncoder(c.encoder_channels, c.embedding_dim, c.hop,
                                         c.sample_rate, c.n_mels, c.encoder_residual_layers,
                                         frame_norm=c.frame_norm,
                                         num_speakers=c.num_speakers)
        self.quantizer = VectorQuantizer(
            c.num_codes, c.embedding_dim, beta=c.beta, update=c.update, decay=c.decay,
            init=c.init, restart_after=c.restart_after,
        )
        self.decoder = WaveNet(
            c.residual_channels, c.skip_channels, c.layers, c.stacks,
            cond_dim=c.embedding_dim + (c.n_mels if c.condition == "codes+frames" else 0),
            hop=c.hop, upsample=c.upsample, num_speakers=c.num_speakers,
            speaker_dim=c.speaker_dim, likelihood=c.likelihood, mixtures=c.logistic_mixtures,
        )
        if c.spectral_weight > 0:
            self.spectral_frames = LogMelFrames(c.hop, c.sample_rate, c.n_mels)
            self.spectral_head = SpectralHead(c.embedding_dim, c.encoder_channels, c.n_mels,
                                              c.num_speakers)
        if c.adversary_weight > 0:
            if c.num_speakers < 2:
                raise ValueError("adversary_weight > 0 needs a model of 2 or more speakers, "
                                 f"this one has {c.num_speakers}")
            self.adversary = SpeakerAdversary(c.embedding_dim, c.encoder_channels,
                                              c.num_speakers)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> SpeechVQVAE:
        return cls(SpeechVQVAEConfig.from_preset(name, **overrides))

    @property
    def hop(self) -> int:
        return self.config.hop

    @property
    def receptive_field(self) -> int:
        return self.decoder.receptive_field

    # ------------------------------------------------------------------ speakers
    def speaker_ids(self, speaker, batch: int) -> torch.Tensor | None:
        """(B,) ids from None, an id, a name, or a sequence or tensor of them."""
        device = self.decoder.embed.weight.device
        names, n = self.config.speaker_names, self.config.num_speakers
        if n == 0:
            if speaker is not None:
                raise UsageError("this model is not conditioned on a speaker; pass none")
            return None
        if speaker is None:
            raise UsageError(f"this model is conditioned on one of {n} speakers; pass one"
                             + (f" of: {', '.join(names)}" if names else ""))
        if isinstance(speaker, torch.Tensor):
            ids = speaker.to(device=device, dtype=torch.long).reshape(-1)
        else:
            items = [speaker] if isinstance(speaker, (int, str)) else list(speaker)
            ids = torch.tensor([self._speaker_id(s) for s in items], device=device)
        if ids.numel() == 1:
            ids = ids.expand(batch)
        if ids.shape != (batch,) or ids.min() < 0 or ids.max() >= n:
            raise UsageError(f"speaker ids must be {batch} values in [0, {n}), got {ids.tolist()}")
        return ids

    def _speaker_id(self, speaker: int | str) -> int:
        if isinstance(speaker, str):
            names = self.config.speaker_names
            if speaker not in names:
                raise UsageError(f"unknown speaker {speaker!r}; this model knows "
                                 + (", ".join(names) if names else "no speaker names"))
            return names.index(speaker)
        return int(speaker)

    # ------------------------------------------------------------------ training
    def forward(self, waveform: torch.Tensor, targets: torch.Tensor | None = None,
                speaker=None) -> SpeechVQVAEOutput:
        """waveform (B, T) floats, T a multiple of the hop; targets (B, T) mu-law classes
        (default: those of ``waveform``); speaker ids (B,) -> ``SpeechVQVAEOutput``.

        In training mode the quantiser also updates its codebook; in eval mode nothing changes.
        """
        if targets is None:
            targets = mu_law_encode(waveform.detach())
        speaker = self.speaker_ids(speaker, waveform.shape[0])
        q = self.quantizer(self._latents(waveform, speaker))
        quantized = q.quantized
        if self.training and self.config.jitter > 0:
            quantized = time_jitter(quantized, self.config.jitter)
        predicted = (self.predict_frames(quantized, speaker)  # (B, M, N)
                     if self.config.spectral_weight > 0 else None)
        past = targets  # what the WaveNet reads, shifted by one sample inside it
        if self.training and self.config.input_noise > 0:
            past = noisy_samples(targets, self.config.input_noise, self.decoder.classes)
        outputs = self.decoder(past, self.conditioning(quantized, speaker, predicted), speaker)
        recon = self.decoder.nll(outputs, targets).mean()
        loss, spectral = recon + q.loss, recon.new_zeros(())
        if predicted is not None:
            frames = self.spectral_frames(waveform.detach())  # (B, M, N)
            spectral = F.mse_loss(predicted.float(), frames)
            loss = loss + self.config.spectral_weight * spectral
        adversary = accuracy = recon.new_zeros(())
        if self.config.adversary_weight > 0:
            guess = self.adversary(reverse_gradient(q.quantized, self.config.adversary_weight))
            truth = speaker[:, None].expand(-1, guess.shape[-1])  # (B, N)
            adversary = F.cross_entropy(guess.float(), truth)
            accuracy = (guess.detach().argmax(1) == truth).float().mean()
            loss = loss + adversary
        return SpeechVQVAEOutput(
            outputs=outputs, indices=q.indices, loss=loss, recon_loss=recon,
            quantizer_loss=q.loss, spectral_loss=spectral, adversary_loss=adversary,
            adversary_accuracy=accuracy, commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss, perplexity=q.perplexity, usage=q.usage,
        )

    def _latents(self, waveform: torch.Tensor, speaker: torch.Tensor | None) -> torch.Tensor:
        """(B, T) -> z_e (B, D, T / hop); the speaker ids reach the encoder only where its
        frames are normalised by the speaker's means."""
        if self.config.frame_norm == "speaker-mean":
            return self.encoder(waveform, speaker)
        return self.encoder(waveform)

    def predict_frames(self, quantized: torch.Tensor, speaker: torch.Tensor | None
                       ) -> torch.Tensor:
        """The spectral head's scaled log-mel frames (B, M, N) of z_q (B, D, N) in the voice
        of ``speaker`` (B,); with ``head_residual``, around the speaker's long-term mean."""
        predicted = self.spectral_head(quantized, speaker)
        if self.config.head_residual:
            predicted = predicted + self.encoder.speaker_means[speaker][:, :, None]
        return predicted

    def conditioning(self, quantized: torch.Tensor, speaker: torch.Tensor | None,
                     predicted: torch.Tensor | None = None) -> torch.Tensor:
        """What the WaveNet's local conditioning reads: z_q (B, D, N), or with
        ``condition="codes+frames"`` z_q and the spectral head's frames for ``speaker``
        (``predicted`` where already computed, (B, M, N)) stacked, (B, D + M, N)."""
        if self.config.condition == "codes":
            return quantized
        if predicted is None:
            predicted = self.predict_frames(quantized, speaker)
        return torch.cat([quantized, predicted.to(quantized.dtype)], dim=1)

    def _padded(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.unsqueeze(0) if waveform.dim() == 1 else waveform
        if x.dim() != 2:
            raise ValueError(f"expected waveforms (B, T) or (T,), got {tuple(waveform.shape)}")
        return F.pad(x, (0, -x.shape[-1] % self.hop))

    @torch.no_grad()
    def nll(self, waveform: torch.Tensor, speaker=None) -> torch.Tensor:
        """(B, T) waveforms -> (B,) mean -log p(x_t | ...) in nats per sample (teacher forced,
        the end padded to a whole code and not counted)."""
        x = self._padded(waveform)
        targets = mu_law_encode(x)
        ids = self.speaker_ids(speaker, x.shape[0])
        q = self.quantizer.frozen(self._latents(x, ids))
        outputs = self.decoder(targets, self.conditioning(q.quantized, ids), ids)
        return self.decoder.nll(outputs, targets)[:, : waveform.shape[-1]].mean(-1)

    # ------------------------------------------------------------------ codes
    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, speaker=None) -> torch.Tensor:
        """(B, T) [or (T,)] -> indices (B, ceil(T / hop)); the end is padded with silence.
        ``speaker``, the voice of the input, is needed only with ``frame_norm="speaker-mean"``.
        """
        x = self._padded(waveform)
        ids = None
        if self.config.frame_norm == "speaker-mean":
            if speaker is None:
                raise UsageError("this model's encoder subtracts the speaker's long-term "
                                 "spectrum (frame_norm='speaker-mean'): pass the input's "
                                 "speaker, one of: " + ", ".join(self.config.speaker_names))
            ids = self.speaker_ids(speaker, x.shape[0])
        return self.quantizer.frozen(self._latents(x, ids)).indices

    @torch.no_grad()
    def nearest_speaker(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, T) [or (T,)] -> (B,) ids: for a model with ``frame_norm="speaker-mean"``, the
        known speaker whose long-term spectrum is nearest each input's, to pass as the source
        of ``encode`` or ``convert`` where the input's speaker is not known (on FSDD's test
        split it is the true speaker for about 4 utterances in 5)."""
        if self.config.frame_norm != "speaker-mean":
            raise UsageError("nearest_speaker is for models with frame_norm='speaker-mean'; "
                             f"this one has {self.config.frame_norm!r}")
        return self.encoder.nearest_speaker(self._padded(waveform))

    @torch.no_grad()
    def decode(self, indices: torch.Tensor, speaker=None, length: int | None = None, *,
               temperature: float = 1.0, generator: torch.Generator | None = None,
               cache: bool = True, backend: str = "auto") -> torch.Tensor:
        """indices (B, N) -> waveform (B, length or N hop) in [-1, 1], drawn sample by sample
        from the WaveNet (``cache``: the fast per-layer queues, run by ``backend``, see
        ``WaveNet.generate``) with ``speaker``'s voice."""
        if indices.dim() == 1:
            indices = indices.unsqueeze(0)
        codes = self.quantizer.lookup(indices)
        ids = self.speaker_ids(speaker, indices.shape[0])
        classes = self.decoder.generate(self.conditioning(codes, ids), ids, length,
                                        temperature=temperature,
                                        generator=generator, cache=cache,
                                        backend=backend)
        return mu_law_decode(classes, dtype=codes.dtype)

    @torch.no_grad()
    def convert(self, waveform: torch.Tensor, speaker, *, source=None,
                **decode_options) -> torch.Tensor:
        """Voice conversion: encode ``waveform`` (B, T), decode it as ``speaker`` (an id or a
        name, for all, or one per utterance) -> (B, T).  With the original speaker this is a
        reconstruction.  ``source``: the input's speaker, for ``frame_norm="speaker-mean"``
        (see ``encode``)."""
        x = waveform.unsqueeze(0) if waveform.dim() == 1 else waveform
        return self.decode(self.encode(x, source), speaker, x.shape[-1], **decode_options)
