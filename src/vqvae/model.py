"""The image VQ-VAE: encoder -> vector quantiser -> decoder -> likelihood p(x | z_q).

    images (B, C, H, W) in [-0.5, 0.5] --ImageEncoder--> z_e (B, D, H/f, W/f)
        --VectorQuantizer--> z_q (B, D, H/f, W/f), indices (B, H/f, W/f) [(B, G, H/f, W/f)]
        --ImageDecoder--> decoder output (B, O, H, W) --likelihood--> loss, nll, reconstruction

The objective is eq. 3 of the paper: -log p(x | z_q) (the likelihood's loss: MSE or nats per
sub-pixel) plus the quantiser's codebook and beta-weighted commitment terms.

A model is built from a ``VQVAEConfig``; ``save_pretrained`` writes it as ``config.json`` beside
the weights in ``model.safetensors`` (no pickle anywhere), and ``from_pretrained`` rebuilds the
model from the JSON and loads the weights, raising ``CheckpointError`` naming the file at fault.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .errors import CheckpointError
from .nets.image import ImageDecoder, ImageEncoder, num_halvings
from .nets.likelihood import LIKELIHOODS, make_likelihood
from .quantize import VectorQuantizer

FORMAT_VERSION = 1  # of config.json and model.safetensors; bump when either changes
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class VQVAEConfig:
    """Everything that determines a ``VQVAE``; the defaults are the ``"default"`` preset.

    Attributes:
        image_channels: C (3 for RGB).
        image_size: H = W the model is meant for (the networks are convolutional and accept any
            size divisible by ``downsample``); gives ``latent_shape``.
        hidden: channels of the encoder's and decoder's conv layers.
        residual_layers: residual blocks in each residual stack.
        residual_hidden: channels inside each residual block.
        downsample: f, a power of two; latents are (H / f, W / f).
        embedding_dim: D, the quantiser's dimension (split over ``groups``).
        num_codes: K, codes per codebook.
        groups: G codebooks per latent position, each of D / G channels.
        beta: commitment weight.
        update: ``"ema"`` or ``"loss"`` codebook learning (see ``VectorQuantizer``).
        decay: EMA decay.
        init: codebook initialisation, ``"random"``, ``"kmeans"`` or ``"kmeans++"``.
        restart_after: steps after which an unused code is restarted; None: never.
        likelihood: ``"gaussian"`` (MSE), ``"categorical"`` or ``"logistic_mixture"``.
        logistic_mixtures: M, components of the logistic mixture likelihood.
        gaussian_std: fixed std of the gaussian likelihood's discretised ``nll``; None: the
            gaussian likelihood has no ``nll`` (training is MSE either way).
    """

    image_channels: int = 3
    image_size: int = 64
    hidden: int = 64
    residual_layers: int = 2
    residual_hidden: int = 32
    downsample: int = 4
    embedding_dim: int = 64
    num_codes: int = 512
    groups: int = 1
    beta: float = 0.25
    update: str = "ema"
    decay: float = 0.99
    init: str = "kmeans"
    restart_after: int | None = 100
    likelihood: str = "gaussian"
    logistic_mixtures: int = 10
    gaussian_std: float | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field.name, field.type, getattr(self, field.name))
            if field.type.startswith("float") and isinstance(getattr(self, field.name), int):
                object.__setattr__(self, field.name, float(getattr(self, field.name)))
        for name in ("image_channels", "image_size", "hidden", "residual_hidden",
                     "embedding_dim", "num_codes", "groups", "logistic_mixtures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        num_halvings(self.downsample)  # raises unless a power of two
        c = self
        checks = [
            (c.residual_layers >= 0, f"residual_layers must be >= 0, got {c.residual_layers}"),
            (c.image_size % c.downsample == 0,
             f"image_size {c.image_size} must be divisible by downsample {c.downsample}"),
            (c.embedding_dim % c.groups == 0,
             f"embedding_dim {c.embedding_dim} must be divisible by groups {c.groups}"),
            (c.beta >= 0, f"beta must be >= 0, got {c.beta}"),
            (0 <= c.decay < 1, f"decay must be in [0, 1), got {c.decay}"),
            (c.update in ("ema", "loss"), f"update must be 'ema' or 'loss', got {c.update!r}"),
            (c.init in ("random", "kmeans", "kmeans++"),
             f"init must be 'random', 'kmeans' or 'kmeans++', got {c.init!r}"),
            (c.restart_after is None or c.restart_after >= 1,
             f"restart_after must be None or >= 1, got {c.restart_after}"),
            (c.likelihood in LIKELIHOODS,
             f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {c.likelihood!r}"),
            (c.gaussian_std is None or c.gaussian_std > 0,
             f"gaussian_std must be positive, got {c.gaussian_std}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one image's indices: (h, w), or (G, h, w) when groups > 1."""
        side = self.image_size // self.downsample
        return (side, side) if self.groups == 1 else (self.groups, side, side)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VQVAEConfig:
        """The inverse of ``to_dict``; unknown keys are rejected, missing ones take defaults."""
        if not isinstance(data, dict):
            raise TypeError(f"a VQVAEConfig is read from a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown VQVAEConfig keys: {', '.join(map(repr, unknown))}")
        return cls(**data)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VQVAEConfig:
        """The preset ``name`` of ``PRESETS``, with some fields replaced."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


def _check_type(name: str, annotation: str, value) -> None:
    """Checks ``value`` against a field annotation: 'int', 'float', 'str', 'X | None'."""
    allowed = {"int": (int,), "float": (int, float), "str": (str,)}
    base, _, optional = annotation.partition(" | ")
    if optional == "None" and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, allowed[base]):
        kind = base + (" or None" if optional else "")
        raise TypeError(f"VQVAEConfig.{name} must be {kind}, got {value!r}")


PRESETS: dict[str, VQVAEConfig] = {
    # 64 x 64 ViZDoom frames -> 16 x 16 codes; small enough to train on a laptop CPU
    "default": VQVAEConfig(),
    # paper 4.1: 32 x 32 -> 8 x 8 x 10 latents, 256 hidden units everywhere, codebook learned
    # by the loss, 256-way softmax output (the paper's bits/dim); D = 10 x 64 (not given)
    "paper-cifar10": VQVAEConfig(
        image_size=32, hidden=256, residual_hidden=256, embedding_dim=640, groups=10,
        update="loss", init="random", restart_after=None, likelihood="categorical",
    ),
    # Sonnet's vqvae_example: 128 hidden, 2 x 32 residual, D = 64, EMA 0.99, MSE
    "sonnet-cifar10": VQVAEConfig(
        image_size=32, hidden=128, residual_hidden=32, init="random", restart_after=None,
    ),
    # paper 4.2: 128 x 128 x 3 -> 32 x 32 x 1 latents, K = 512
    "imagenet128": VQVAEConfig(
        image_size=128, hidden=256, residual_hidden=256, update="loss", init="random",
        restart_after=None,
    ),
}


@dataclass
class VQVAEOutput:
    """Result of ``VQVAE.forward``."""

    reconstruction: torch.Tensor  # (B, C, H, W) the likelihood's mean, in [-0.5, 0.5]
    decoder_output: torch.Tensor  # (B, O, H, W) raw parameters of p(x | z_q)
    indices: torch.Tensor  # (B, h, w), or (B, G, h, w) when groups > 1
    loss: torch.Tensor  # () recon_loss + quantizer_loss: minimise this
    recon_loss: torch.Tensor  # () the likelihood's loss (MSE, or nats per sub-pixel)
    quantizer_loss: torch.Tensor  # () codebook_loss + beta * commitment_loss
    commitment_loss: torch.Tensor  # () before the beta factor
    codebook_loss: torch.Tensor  # () zero with EMA updates
    perplexity: torch.Tensor  # () of code usage in the batch
    usage: torch.Tensor  # () fraction of codes used in the batch


class VQVAE(nn.Module):
    """VQ-VAE for images, built from a ``VQVAEConfig`` (default: the ``"default"`` preset)."""

    def __init__(self, config: VQVAEConfig | None = None) -> None:
        super().__init__()
        c = self.config = config if config is not None else VQVAEConfig()
        self.likelihood = make_likelihood(c.likelihood, mixtures=c.logistic_mixtures,
                                          std=c.gaussian_std)
        self.encoder = ImageEncoder(c.image_channels, c.hidden, c.residual_layers,
                                    c.residual_hidden, c.embedding_dim, c.downsample)
        self.quantizer = VectorQuantizer(
            c.num_codes, c.embedding_dim, beta=c.beta, update=c.update, decay=c.decay,
            groups=c.groups, init=c.init, restart_after=c.restart_after,
        )
        self.decoder = ImageDecoder(c.embedding_dim, c.hidden, c.residual_layers,
                                    c.residual_hidden,
                                    self.likelihood.output_channels(c.image_channels),
                                    c.downsample)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> VQVAE:
        return cls(VQVAEConfig.from_preset(name, **overrides))

    def forward(self, images: torch.Tensor) -> VQVAEOutput:
        """images (B, C, H, W) in [-0.5, 0.5] -> VQVAEOutput.

        In training mode the quantiser also updates its codebook (EMA, data initialisation,
        restarts); in eval mode nothing changes.
        """
        q = self.quantizer(self.encoder(images))
        output = self.decoder(q.quantized)
        recon_loss = self.likelihood.loss(output, images)
        return VQVAEOutput(
            reconstruction=self.likelihood.mean(output),
            decoder_output=output,
            indices=q.indices,
            loss=recon_loss + q.loss,
            recon_loss=recon_loss,
            quantizer_loss=q.loss,
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
            perplexity=q.perplexity,
            usage=q.usage,
        )

    def _quantize_frozen(self, z: torch.Tensor):
        """The quantiser in eval mode: no EMA update, initialisation or restart."""
        was_training = self.quantizer.training
        self.quantizer.train(False)
        try:
            return self.quantizer(z)
        finally:
            self.quantizer.train(was_training)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> indices (B, h, w) [(B, G, h, w)]; changes no state."""
        return self._quantize_frozen(self.encoder(images)).indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, h, w) [(B, G, h, w)] -> images (B, C, h f, w f) in [-0.5, 0.5]."""
        return self.likelihood.mean(self.decoder(self.quantizer.lookup(indices)))

    def nll(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> (B,) -log p(images | z_q(images)) in nats.

        bits/dim = nll / (C H W ln 2).  Raises ``NotImplementedError`` for the gaussian
        likelihood unless ``config.gaussian_std`` is set.
        """
        output = self.decoder(self._quantize_frozen(self.encoder(images)).quantized)
        return self.likelihood.nll(output, images)

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Writes ``config.json`` and ``model.safetensors`` into ``directory`` (created)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        versions = {k: m["version"] for k, m in state._metadata.items() if "version" in m}
        metadata = {"format": "pt", "format_version": str(FORMAT_VERSION),
                    "module_versions": json.dumps(versions)}
        tmp = directory / (WEIGHTS_NAME + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, directory / WEIGHTS_NAME)
        config = {"format_version": FORMAT_VERSION, "model": "VQVAE",
                  "config": self.config.to_dict()}
        tmp = directory / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp, directory / CONFIG_NAME)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> VQVAE:
        """Rebuilds the model from ``config.json``, loads ``model.safetensors``; eval mode.

        ``directory`` is a folder written by ``save_pretrained`` or a training run folder, whose
        ``checkpoints/best`` (else ``checkpoints/last``) is then loaded.
        """
        directory = resolve_checkpoint(Path(directory))
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        model = cls(read_config(config_path))
        state = _read_weights(weights_path)
        _check_tensors(model.state_dict(), state, weights_path, config_path)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise CheckpointError(f"{weights_path}: {error}") from error
        return model.to(map_location).eval()


def resolve_checkpoint(directory: Path) -> Path:
    """The folder holding the weights: ``directory`` itself, or a run's best/last checkpoint."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint or run directory")
    if (directory / WEIGHTS_NAME).is_file() or (directory / CONFIG_NAME).is_file():
        return directory
    for name in ("best", "last", "last.old"):
        candidate = directory / "checkpoints" / name
        if (candidate / WEIGHTS_NAME).is_file():
            return candidate
    raise CheckpointError(f"{directory}: neither a checkpoint ({CONFIG_NAME} + {WEIGHTS_NAME}) "
                          "nor a run folder with checkpoints/best or checkpoints/last")


def read_config(path: Path) -> VQVAEConfig:
    """The VQVAEConfig saved in ``path`` (a config.json), or a CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a checkpoint holds {CONFIG_NAME} and "
                              f"{WEIGHTS_NAME})")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: invalid JSON ({error})") from error
    if (not isinstance(data, dict) or data.get("model", "VQVAE") != "VQVAE"
            or "config" not in data or "format_version" not in data):
        raise CheckpointError(f"{path}: not a VQVAE config (expected the keys "
                              "'format_version' and 'config', and 'model': 'VQVAE')")
    version = data["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: format_version must be a positive integer, "
                              f"got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version} is newer than this vqvae "
                              f"supports ({FORMAT_VERSION}); upgrade vqvae")
    try:
        return VQVAEConfig.from_dict(data["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from error


def _read_weights(path: Path) -> OrderedDict:
    """The tensors of a safetensors file on the CPU, with torch's state-dict metadata."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (a checkpoint holds {CONFIG_NAME} and "
                              f"{WEIGHTS_NAME})")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            state = OrderedDict((key, f.get_tensor(key)) for key in f.keys())
        versions = json.loads(metadata.get("module_versions", "{}"))
        version = int(metadata.get("format_version", FORMAT_VERSION))
    except Exception as error:  # safetensors raises its own error types for a corrupt file
        raise CheckpointError(f"{path}: not a readable safetensors file "
                              f"({type(error).__name__}: {error})") from error
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version} is newer than this vqvae "
                              f"supports ({FORMAT_VERSION}); upgrade vqvae")
    state._metadata = OrderedDict((k, {"version": v}) for k, v in versions.items())
    return state


def _check_tensors(expected: dict, found: dict, weights_path: Path, config_path: Path) -> None:
    """Names the first tensor that is missing, unexpected or of the wrong shape."""
    def names(keys):
        keys = sorted(keys)
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing:
        raise CheckpointError(f"{weights_path}: missing tensors {names(missing)} that the model "
                              f"of {config_path} needs; were they saved with another config?")
    if unexpected:
        raise CheckpointError(f"{weights_path}: unexpected tensors {names(unexpected)} for the "
                              f"model of {config_path}; were they saved with another config?")
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape:
            raise CheckpointError(
                f"{weights_path}: tensor {key!r} has shape {tuple(found[key].shape)}, but the "
                f"model of {config_path} expects {tuple(tensor.shape)}; were they saved with "
                "another config?"
            )
        if found[key].is_floating_point() != tensor.is_floating_point():
            raise CheckpointError(f"{weights_path}: tensor {key!r} has dtype {found[key].dtype}, "
                                  f"but the model expects {tensor.dtype}")
