"""The speech encoders: the paper's on the waveform (section 4.3), and one on log-mel frames.

    AudioEncoder: waveform (B, T) -> z_e (B, D, T / 2^n)
    LogMelEncoder: waveform (B, T) -> log-mel frames (B, M, T / hop) -> z_e (B, D, T / hop)
    normalise_frames: log-mel frames (B, M, N) -> the same, per utterance (or speaker) and
        band normalised
    SpectralHead: z_q (B, D, T / hop), speaker -> log-mel frames (B, M, T / hop)
    SpeakerAdversary: z_q (B, D, T / hop) -> speaker logits (B, S, T / hop)

"The encoder has 6 strided convolutions with stride 2 and window-size 4.  This yields a latent
space 64x smaller than the original waveform."  In detail: n x [conv (window 4, stride 2,
padding 1), ReLU], then a 1x1 conv to D.  The number of halvings n is configurable (6: 64x,
7: 128x); the paper gives no channel count (``channels``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio.spectrogram import default_n_fft, mel_filters
from .blocks import ResidualStack


class AudioEncoder(nn.Module):
    """Strided 1-D convolutions and a 1x1 projection to the quantiser's D.

    Args:
        channels: channels of every strided layer.
        out_dim: D, the quantiser's dimension.
        halvings: n, strided layers; one latent per ``2 ** n`` samples (the hop).
        residual_layers: residual blocks (ReLU, conv of width 3, ReLU, 1x1 conv) at the code
            rate after the strided layers, as the image encoder's residual stack; each widens
            what a code sees by two hops.  0: none, the paper's encoder.

    (B, T) or (B, 1, T) -> (B, D, T / hop); T must be a multiple of the hop.
    """

    def __init__(self, channels: int, out_dim: int, halvings: int = 6,
                 residual_layers: int = 0) -> None:
        super().__init__()
        if halvings < 1:
            raise ValueError(f"halvings must be at least 1, got {halvings}")
        self.out_dim, self.hop = out_dim, 2**halvings
        layers: list[nn.Module] = []
        for i in range(halvings):
            # (B, ch, T) -> (B, channels, T / 2)
            layers += [nn.Conv1d(1 if i == 0 else channels, channels, kernel_size=4, stride=2,
                                 padding=1), nn.ReLU()]
        if residual_layers:
            layers.append(ResidualStack(channels, residual_layers, channels, dims=1))
        layers.append(nn.Conv1d(channels, out_dim, kernel_size=1))  # -> (B, D, T / hop)
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform (B, T) [or (B, 1, T)] floats -> z_e (B, D, T / hop)."""
        x = waveform.unsqueeze(1) if waveform.dim() == 2 else waveform
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"AudioEncoder expects (B, T) waveforms, got {tuple(waveform.shape)}")
        if x.shape[-1] % self.hop:
            raise ValueError(f"AudioEncoder needs a length divisible by {self.hop}, got "
                             f"{x.shape[-1]}")
        return self.net(x)


class LogMelFrames(nn.Module):
    """Scaled log-mel frames, one per code: the input of ``LogMelEncoder`` and the target of
    ``SpectralHead``.

    Frame j is a Hann window of ``n_fft`` samples centred where code j is centred (sample
    j hop + hop / 2), the signal zero-padded at both ends; ``n_mels`` HTK-mel bands of its
    power, in dB (10 log10(power + 1e-10), floored at ``floor_db``) and scaled to about unit
    range.  Computed in float32, not learnt.

    Args:
        hop: samples per code.
        sample_rate: Hz, for the mel scale.
        n_mels: mel bands.
        n_fft: window length (default: 32 ms rounded to a power of two, and at least a hop).

    (B, T) -> (B, M, T / hop); T must be a multiple of the hop.
    """

    floor_db = -80.0
    centre_db, scale_db = -20.0, 30.0  # (dB - centre) / scale: speech lands around [-2, 2]

    def __init__(self, hop: int, sample_rate: int, n_mels: int = 40,
                 n_fft: int | None = None) -> None:
        super().__init__()
        if hop < 1 or n_mels < 1:
            raise ValueError(f"hop and n_mels must be positive, got {hop} and {n_mels}")
        self.hop, self.n_mels = hop, n_mels
        self.n_fft = n_fft or max(hop, default_n_fft(sample_rate))
        if self.n_fft < hop or (self.n_fft - hop) % 2:
            raise ValueError(f"n_fft must be at least the hop ({hop}) and differ from it by an "
                             f"even number, got {self.n_fft}")
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("filters", mel_filters(sample_rate, self.n_fft, n_mels),
                             persistent=False)  # (M, n_fft / 2 + 1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, M, T / hop) scaled log-mel frames."""
        if waveform.dim() != 2:
            raise ValueError(f"LogMelFrames expects (B, T) waveforms, got "
                             f"{tuple(waveform.shape)}")
        if waveform.shape[-1] % self.hop:
            raise ValueError(f"LogMelFrames needs a length divisible by {self.hop}, got "
                             f"{waveform.shape[-1]}")
        with torch.autocast(waveform.device.type, enabled=False):
            x = waveform.float()
            pad = (self.n_fft - self.hop) // 2
            frames = nn.functional.pad(x, (pad, pad)).unfold(-1, self.n_fft, self.hop)
            power = torch.fft.rfft(frames * self.window, dim=-1).abs().square()  # (B, N, F)
            db = 10.0 * torch.log10(power @ self.filters.T + 1e-10)  # (B, N, M)
            db = db.clamp(min=self.floor_db)
            return ((db - self.centre_db) / self.scale_db).transpose(1, 2)


FRAME_NORMS = ("none", "mean", "mean-std", "smooth-mean", "speaker-mean")
SMOOTH_TERMS = 4  # cosines across the bands that make the "smooth-mean" fit


def check_frame_norm(mode: str) -> None:
    """Refuse a frame normalisation that is not one of ``FRAME_NORMS``."""
    if mode not in FRAME_NORMS:
        raise ValueError(f"frame_norm must be one of {', '.join(FRAME_NORMS)}, got {mode!r}")


ACTIVE_RANGE = 40.0 / 30.0  # 40 dB in the scaled units of LogMelFrames


def active_frames(frames: torch.Tensor, active_range: float = ACTIVE_RANGE) -> torch.Tensor:
    """(B, M, N) scaled log-mel frames -> (B, 1, N) 1.0 where a frame's loudest band is within
    ``active_range`` of the utterance's loudest frame, else 0.0 (silence, a batch's padding)."""
    loudest = frames.amax(dim=1, keepdim=True)  # (B, 1, N)
    return (loudest >= loudest.amax(dim=2, keepdim=True) - active_range).to(frames.dtype)


def active_mean(frames: torch.Tensor, active_range: float = ACTIVE_RANGE) -> torch.Tensor:
    """(B, M, N) scaled log-mel frames -> (B, M), each band's mean over the utterance's active
    frames (``active_frames``)."""
    active = active_frames(frames, active_range)  # (B, 1, N)
    return (frames * active).sum(dim=2) / active.sum(dim=2)


def normalise_frames(frames: torch.Tensor, mode: str, *, active_range: float = ACTIVE_RANGE,
                     eps: float = 0.1, smooth_terms: int = SMOOTH_TERMS,
                     speaker_means: torch.Tensor | None = None) -> torch.Tensor:
    """(B, M, N) scaled log-mel frames -> (B, M, N), each utterance's bands normalised.

    ``"mean"`` subtracts from every band its mean over the utterance's active frames, and
    ``"mean-std"`` also divides by the standard deviation (instance normalisation, as
    Chou et al. 2019 use to take the speaker out of a content encoder).  The long-term
    spectrum, which says much of who speaks, is then gone from what the encoder reads.  Active
    frames are those whose loudest band is within ``active_range`` (40 dB in the frames'
    units) of the utterance's loudest, so silence and the padding of a batch do not weigh in.
    ``eps`` bounds the divisor from below.  ``"smooth-mean"`` subtracts only a smooth fit of
    the band means, their first ``smooth_terms`` cosines across the bands (the low cepstra:
    level, tilt, the broad shape a microphone or a room gives), and keeps the finer detail
    of a word's mean spectrum, such as its vowel's formants.  ``"speaker-mean"`` subtracts
    ``speaker_means`` (B, M), the long-term mean of each utterance's speaker
    (``LogMelEncoder.fit_speaker_means``): the voice's average spectrum goes and the word's
    stays.  ``"none"`` returns the frames unchanged.
    """
    check_frame_norm(mode)
    if mode == "none":
        return frames
    if mode == "speaker-mean":
        if speaker_means is None or speaker_means.shape != frames.shape[:2]:
            got = None if speaker_means is None else tuple(speaker_means.shape)
            raise ValueError(f"frame_norm='speaker-mean' needs each utterance's speaker means "
                             f"{tuple(frames.shape[:2])}, got {got}")
        return frames - speaker_means[:, :, None]
    active = active_frames(frames, active_range)  # (B, 1, N)
    count = active.sum(dim=2, keepdim=True)  # (B, 1, 1), at least 1
    mean = (frames * active).sum(dim=2, keepdim=True) / count  # (B, M, 1)
    if mode == "smooth-mean":
        basis = cosine_basis(frames.shape[1], smooth_terms, frames)  # (K, M), orthonormal rows
        mean = basis.T @ (basis @ mean)  # (B, M, 1): the mean's projection on the K cosines
    centred = frames - mean
    if mode in ("mean", "smooth-mean"):
        return centred
    var = (centred.square() * active).sum(dim=2, keepdim=True) / count
    return centred / var.sqrt().clamp(min=eps)


def cosine_basis(size: int, terms: int, like: torch.Tensor) -> torch.Tensor:
    """(min(terms, size), size) orthonormal DCT-II rows, with ``like``'s dtype and device."""
    n = torch.arange(size, dtype=torch.float64)
    k = torch.arange(min(terms, size), dtype=torch.float64)[:, None]
    rows = torch.cos(torch.pi * (n + 0.5) * k / size)
    rows = rows / rows.norm(dim=1, keepdim=True)
    return rows.to(dtype=like.dtype, device=like.device)


class LogMelEncoder(nn.Module):
    """An encoder that reads a log-mel spectrogram, one frame per code, instead of samples.

    Not the paper's: Chorowski et al. (2019) trained such autoencoders on waveforms and on
    spectral features, and found the spectral ones kept more of the phones.  The frames are
    ``LogMelFrames``, optionally normalised per utterance (``normalise_frames``); then 2
    convolutions of width 3 (ReLU), ``residual_layers`` residual blocks and a 1x1 conv to D:
    each code sees the window plus 2 hops either side.

    Args:
        channels: channels of the convolutions.
        out_dim: D, the quantiser's dimension.
        hop: samples per code (a power of two, as ``AudioEncoder``'s).
        sample_rate: Hz, for the mel scale.
        n_mels: mel bands.
        residual_layers: residual blocks at the code rate.
        n_fft: window length (default: 32 ms rounded to a power of two, and at least a hop).
        frame_norm: ``"none"``, ``"mean"``, ``"mean-std"``, ``"smooth-mean"`` or
            ``"speaker-mean"`` (``normalise_frames``).
        num_speakers: speakers whose long-term means ``"speaker-mean"`` keeps (a buffer,
            saved with the weights, set by ``fit_speaker_means``).

    (B, T) or (B, 1, T), speaker ids (B,) for ``"speaker-mean"`` -> (B, D, T / hop); T must
    be a multiple of the hop.
    """

    def __init__(self, channels: int, out_dim: int, hop: int, sample_rate: int,
                 n_mels: int = 40, residual_layers: int = 0, n_fft: int | None = None,
                 frame_norm: str = "none", num_speakers: int = 0) -> None:
        super().__init__()
        check_frame_norm(frame_norm)
        if frame_norm == "speaker-mean" and num_speakers < 1:
            raise ValueError("frame_norm='speaker-mean' needs num_speakers >= 1")
        self.out_dim, self.hop, self.frame_norm = out_dim, hop, frame_norm
        self.frames = LogMelFrames(hop, sample_rate, n_mels, n_fft)
        if frame_norm == "speaker-mean":
            self.register_buffer("speaker_means", torch.zeros(num_speakers, n_mels))
        layers: list[nn.Module] = [
            nn.Conv1d(n_mels, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=3, padding=1), nn.ReLU(),
        ]
        if residual_layers:
            layers.append(ResidualStack(channels, residual_layers, channels, dims=1))
        layers.append(nn.Conv1d(channels, out_dim, kernel_size=1))  # -> (B, D, T / hop)
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: torch.Tensor, speaker: torch.Tensor | None = None
                ) -> torch.Tensor:
        """waveform (B, T) [or (B, 1, T)] floats, speaker ids (B,) -> z_e (B, D, T / hop)."""
        x = waveform.squeeze(1) if waveform.dim() == 3 and waveform.shape[1] == 1 else waveform
        if x.dim() != 2:
            raise ValueError(f"LogMelEncoder expects (B, T) waveforms, got {tuple(waveform.shape)}")
        means = None
        if self.frame_norm == "speaker-mean":
            if speaker is None:
                raise ValueError("frame_norm='speaker-mean': whose voice is it? pass the "
                                 "speaker ids")
            means = self.speaker_means[speaker]  # (B, M)
        return self.net(normalise_frames(self.frames(x), self.frame_norm, speaker_means=means))

    @torch.no_grad()
    def fit_speaker_means(self, waves, speakers) -> torch.Tensor:
        """Set ``speaker_means`` (S, M) to each speaker's mean log-mel frame over the active
        frames (``active_frames``) of all their utterances: ``waves``, (T,) float arrays or
        tensors, and ``speakers``, their ids.  Returns the means.  A speaker without
        utterances keeps the mean of all."""
        if self.frame_norm != "speaker-mean":
            raise ValueError(f"only frame_norm='speaker-mean' keeps speaker means, this "
                             f"encoder has {self.frame_norm!r}")
        device = self.speaker_means.device
        sums = torch.zeros(self.speaker_means.shape, dtype=torch.float64, device=device)
        counts = torch.zeros(len(sums), dtype=torch.float64, device=device)
        for wave, spk in zip(waves, speakers, strict=True):
            x = torch.as_tensor(wave, dtype=torch.float32, device=device).reshape(1, -1)
            x = nn.functional.pad(x, (0, -x.shape[-1] % self.hop))
            frames = self.frames(x)  # (1, M, N)
            active = active_frames(frames)
            sums[int(spk)] += (frames * active).sum(dim=(0, 2)).double()
            counts[int(spk)] += active.sum().double()
        if counts.sum() == 0:
            raise ValueError("fit_speaker_means got no utterances")
        means = sums / counts.clamp(min=1)[:, None]
        means[counts == 0] = sums.sum(0) / counts.sum()
        self.speaker_means.copy_(means.to(self.speaker_means.dtype))
        return self.speaker_means

    @torch.no_grad()
    def nearest_speaker(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, T) waveforms, T a multiple of the hop -> (B,) the id of the speaker whose
        ``speaker_means`` are nearest (Euclidean across the bands) to each utterance's own
        mean frame (``active_mean``): a stand-in for a voice whose speaker is not known."""
        if self.frame_norm != "speaker-mean":
            raise ValueError(f"only frame_norm='speaker-mean' keeps speaker means, this "
                             f"encoder has {self.frame_norm!r}")
        own = active_mean(self.frames(waveform))  # (B, M)
        return torch.cdist(own, self.speaker_means).argmin(dim=1)


class SpectralHead(nn.Module):
    """An auxiliary decoder from the codes (and the speaker) to the log-mel frames.

    Not the paper's: van Niekerk et al. (2020) decode codes to log-mel spectra (with the
    speaker) and find the codes then follow the phones.  Beside the WaveNet, this head makes
    the codes explain the spectral envelope of each frame, which the speaker embedding cannot.
    2 convolutions of width 3 (ReLU) and a 1x1 conv to the ``n_mels`` bands.

    Args:
        in_dim: D, the codes' dimension.
        channels: channels of the convolutions.
        n_mels: bands of the frames it predicts.
        num_speakers: speakers of a learned embedding added to its input (0: none).

    z_q (B, D, N), speaker ids (B,) or None -> (B, M, N)
    """

    def __init__(self, in_dim: int, channels: int, n_mels: int, num_speakers: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_speakers, in_dim) if num_speakers else None
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(channels, n_mels, kernel_size=1),
        )

    def forward(self, codes: torch.Tensor, speaker: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and speaker is not None:
            codes = codes + self.embed(speaker)[:, :, None]
        return self.net(codes)


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x unchanged on the way forward; on the way back its gradient times ``-scale``."""
    return x.detach() + (x - x.detach()) * -scale  # the value is exactly x


class SpeakerAdversary(nn.Module):
    """A classifier that guesses the speaker from each code, for adversarial training.

    Not the paper's: a domain-adversarial classifier (Ganin & Lempitsky 2015) as used in voice
    conversion to keep the speaker out of the content codes.  It reads the codes through
    ``reverse_gradient``: it learns to name the speaker, while the encoder is pushed to make
    that impossible.  2 convolutions of width 3 (ReLU) and a 1x1 conv to the speakers.

    Args:
        in_dim: D, the codes' dimension.
        channels: channels of the convolutions.
        num_speakers: the classes.

    z_q (B, D, N) -> logits (B, S, N)
    """

    def __init__(self, in_dim: int, channels: int, num_speakers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv1d(channels, num_speakers, kernel_size=1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes)
