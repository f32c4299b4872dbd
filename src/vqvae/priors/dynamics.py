"""A dynamics prior: the next frame's codes from the codes of earlier frames and an action.

Section 4.4 of the VQ-VAE paper: given the codes of C context frames and the actions, the
model generates the codes of the next frames entirely in code space; only then are they
decoded to pixels.  Here one frame is generated at a time and the model is rolled forward:

    context codes (B, C, h, w) --embedding, E per frame, concatenated--> (B, C E, h, w)
        --3x3 conv, + action embedding (broadcast over the grid), residual blocks (each input
        scaled per channel by the action: 1 + s_a), ReLU, 1x1--> conditioning map (B, M, h, w)
    target codes (B, h, w) --conditional gated PixelCNN (``PixelCNNPrior`` with
        ``cond_channels`` = M: a 1x1 conv of the map added to every gate)--> logits (B, K, h, w)

Within the target frame the factorisation is the PixelCNN's (raster order): the logits at a
position depend on the target's earlier positions, on every context code and on the action,
never on the target's own or later positions.

Actions: ``actions[b]`` is the action taken at the last context frame, the one that leads to
the target frame (in a recorded world, frame t + 1 follows ``actions[t]``).  The action acts
twice: added to the encoder's features, and multiplying them before each residual block (the
multiplicative action transform of Oh et al. 2015: a turn moves the view sideways, which the
shared convolutions can do for the channels the action selects).  Index
``num_actions`` is "unknown": training hides the action of a fraction ``action_dropout`` of
the examples behind it, so the same model also predicts without being told the action (the
"actions hidden" baseline of the video evaluation).

    model = DynamicsPrior(DynamicsConfig.for_vqvae(tokenizer.config))
    logits = model(context, actions, target)       # (B, K, h, w)
    future = model.rollout(context, actions_seq)   # (B, N, h, w); tokenizer.decode per frame
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nets.blocks import ResidualBlock
from ..pretrained import Pretrained, check_field_types, config_from_dict
from .pixelcnn import PixelCNNConfig, PixelCNNPrior


@dataclass(frozen=True)
class DynamicsConfig:
    """Everything that determines a ``DynamicsPrior``.

    The grid (``num_codes``, ``height``, ``width``) is the frame tokenizer's (``for_vqvae``);
    6 context frames are the paper's; the sizes are this package's choice, small enough to
    train on a CPU (2.2 M parameters at 21 x 21 x 512: about 2.7 s per batch of 32 on one
    thread, 3 s to roll out 10 frames).

    Attributes:
        num_codes: K, codes per frame position (one codebook: the tokenizer has groups = 1).
        height, width: h, w of a frame's code grid.
        context_frames: C, frames the next one is predicted from.
        num_actions: A, actions of the world; index A means "unknown".
        action_dropout: fraction of training examples whose action is hidden (replaced by
            "unknown"), so that the model also predicts without it.
        code_embedding: E, width of each context frame's code embedding.
        context_hidden: channels of the context encoder.
        context_layers: residual blocks of the context encoder (each reaches one position
            further: a turn moves the view by a few code columns per step).
        cond_channels: M, channels of the conditioning map.
        channels, layers, kernel_size: of the gated PixelCNN over the next frame's codes.
    """

    num_codes: int = 512
    height: int = 21
    width: int = 21
    context_frames: int = 6
    num_actions: int = 4
    action_dropout: float = 0.2
    code_embedding: int = 32
    context_hidden: int = 128
    context_layers: int = 4
    cond_channels: int = 64
    channels: int = 64
    layers: int = 8
    kernel_size: int = 5

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("num_codes", "height", "width", "context_frames", "num_actions",
                     "code_embedding", "context_hidden", "cond_channels", "channels", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.context_layers < 0:
            raise ValueError(f"context_layers must be >= 0, got {self.context_layers}")
        if not 0 <= self.action_dropout < 1:
            raise ValueError(f"action_dropout must be in [0, 1), got {self.action_dropout}")
        self.pixelcnn  # noqa: B018  (checks kernel_size)

    @property
    def pixelcnn(self) -> PixelCNNConfig:
        """The conditional gated PixelCNN over one frame's codes."""
        return PixelCNNConfig(num_codes=self.num_codes, height=self.height, width=self.width,
                              channels=self.channels, layers=self.layers,
                              kernel_size=self.kernel_size, cond_channels=self.cond_channels)

    @property
    def unknown_action(self) -> int:
        """The action index that means "not told"."""
        return self.num_actions

    @classmethod
    def for_vqvae(cls, vqvae_config, **overrides) -> DynamicsConfig:
        """The grid of a frame tokenizer's ``VQVAEConfig``, the rest from ``overrides``."""
        if vqvae_config.groups != 1:
            raise ValueError(f"the dynamics prior models one code per frame position; the "
                             f"tokenizer has groups={vqvae_config.groups}")
        h, w = vqvae_config.latent_shape
        return cls(num_codes=vqvae_config.num_codes, height=h, width=w, **overrides)

    def grid_mismatch(self, vqvae_config) -> str | None:
        """Why frames of ``vqvae_config`` do not fit this model, or None if they do."""
        mine = (self.num_codes, (self.height, self.width))
        theirs = (vqvae_config.num_codes, tuple(vqvae_config.latent_shape))
        if mine == theirs:
            return None
        return (f"the dynamics prior models K={mine[0]} codes on {mine[1][0]} x {mine[1][1]} "
                f"grids, the tokenizer makes K={theirs[0]} codes on "
                f"{' x '.join(map(str, theirs[1]))} grids")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DynamicsConfig:
        """The inverse of ``to_dict``; unknown keys are rejected, missing ones take defaults."""
        return config_from_dict(cls, data)


class DynamicsPrior(Pretrained, nn.Module, name="DynamicsPrior", config=DynamicsConfig):
    """Context encoder + action embedding -> conditioning map -> conditional gated PixelCNN."""

    def __init__(self, config: DynamicsConfig | None = None) -> None:
        super().__init__()
        c = self.config = config if config is not None else DynamicsConfig()
        self.metadata: dict = {}  # saved with the weights (tokenizer, world, action names)
        self.code_embedding = nn.Embedding(c.num_codes, c.code_embedding)
        self.action_embedding = nn.Embedding(c.num_actions + 1, c.context_hidden)
        self.context_in = nn.Conv2d(c.context_frames * c.code_embedding, c.context_hidden, 3,
                                    padding=1)
        self.context = nn.ModuleList(ResidualBlock(c.context_hidden, max(1, c.context_hidden // 2))
                                     for _ in range(c.context_layers))
        # (A + 1, L F) per-channel scales of each block's input; 0 at first: no effect
        self.action_scales = nn.Embedding(c.num_actions + 1, c.context_layers * c.context_hidden)
        nn.init.zeros_(self.action_scales.weight)
        self.context_out = nn.Conv2d(c.context_hidden, c.cond_channels, 1)
        self.pixelcnn = PixelCNNPrior(c.pixelcnn)

    # ------------------------------------------------------------------ inputs
    def check_context(self, context: torch.Tensor) -> torch.Tensor:
        """(B, T, h, w) codes, T >= C -> the last C frames (B, C, h, w) as int64."""
        c = self.config
        if (context.dim() != 4 or context.shape[1] < c.context_frames
                or tuple(context.shape[2:]) != (c.height, c.width)):
            raise ValueError(f"the dynamics prior needs the codes of at least "
                             f"{c.context_frames} context frames, (B, {c.context_frames}, "
                             f"{c.height}, {c.width}); got {tuple(context.shape)}")
        if context.is_floating_point():
            raise ValueError(f"context codes must be integers, got {context.dtype}")
        return context[:, -c.context_frames:].long()

    def check_actions(self, actions: torch.Tensor | int, batch: int) -> torch.Tensor:
        """(B,) or one action for all -> (B,) int64 in [0, A] (A: unknown), checked."""
        c = self.config
        device = self.code_embedding.weight.device
        actions = torch.as_tensor(actions, device=device).long().reshape(-1)
        if actions.numel() == 1:
            actions = actions.expand(batch)
        if actions.shape != (batch,):
            raise ValueError(f"actions must be ({batch},), got {tuple(actions.shape)}")
        if actions.numel() and (actions.min() < 0 or actions.max() > c.num_actions):
            names = self.metadata.get("action_names") or []
            listing = f" ({', '.join(f'{i} = {n}' for i, n in enumerate(names))})" if names else ""
            raise ValueError(f"actions must be in [0, {c.num_actions}){listing} or "
                             f"{c.num_actions} (unknown), got {actions.tolist()}")
        return actions

    # ------------------------------------------------------------------ the network
    def condition(self, context: torch.Tensor, actions: torch.Tensor | int) -> torch.Tensor:
        """context (B, T >= C, h, w) codes, actions (B,) -> conditioning map (B, M, h, w)."""
        context = self.check_context(context)
        actions = self.check_actions(actions, context.shape[0])
        return self.condition_from_embedding(self.code_embedding(context), actions)

    def condition_from_embedding(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w, E) embedded context codes, (B,) checked actions -> (B, M, h, w).

        Separate from ``condition`` so that gradients with respect to the embedding can show
        which context frames the prediction depends on.
        """
        x = x.permute(0, 1, 4, 2, 3).flatten(1, 2)  # (B, C E, h, w), frame c in [c E, (c+1) E)
        x = self.context_in(x) + self.action_embedding(actions)[:, :, None, None]
        scales = self.action_scales(actions).view(len(x), len(self.context), -1, 1, 1)
        for i, block in enumerate(self.context):
            x = block(x * (1 + scales[:, i]))
        return self.context_out(torch.relu(x))

    def forward(self, context: torch.Tensor, actions: torch.Tensor | int,
                target: torch.Tensor) -> torch.Tensor:
        """context (B, T, h, w), actions (B,), target (B, h, w) -> logits (B, K, h, w) of
        p(target code | the target's earlier codes, context, action)."""
        return self.pixelcnn(target, cond=self.condition(context, actions))

    def nll(self, context: torch.Tensor, actions: torch.Tensor | int,
            target: torch.Tensor) -> torch.Tensor:
        """(B,) -log p(target | context, action) in nats, summed over the h w latents."""
        logits = self(context, actions, target)
        return F.cross_entropy(logits.float(), target.long(), reduction="none").flatten(1).sum(1)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def sample_next(self, context: torch.Tensor, actions: torch.Tensor | int,
                    temperature: float = 1.0, argmax: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """The next frame's codes (B, h, w), all B together (``PixelCNNPrior.sample``)."""
        cond = self.condition(context, actions)
        return self.pixelcnn.sample(len(cond), temperature=temperature, generator=generator,
                                    cond=cond, argmax=argmax)

    @torch.no_grad()
    def rollout(self, context: torch.Tensor, actions: torch.Tensor, temperature: float = 1.0,
                argmax: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Roll forward N frames: context (B, T >= C, h, w), actions (B, N) -> (B, N, h, w).

        ``actions[:, n]`` leads from the frame before predicted frame n (the last context
        frame for n = 0) to it; each predicted frame joins the context of the next.
        """
        frames = self.check_context(context)
        actions = torch.as_tensor(actions, device=frames.device).long()
        if actions.dim() != 2 or actions.shape[0] != frames.shape[0]:
            raise ValueError(f"actions must be (B, N) = ({frames.shape[0]}, N), got "
                             f"{tuple(actions.shape)}")
        out = []
        for n in range(actions.shape[1]):
            nxt = self.sample_next(frames, actions[:, n], temperature, argmax, generator)
            out.append(nxt)
            frames = torch.cat([frames[:, 1:], nxt[:, None]], dim=1)
        if not out:
            return frames.new_zeros(frames.shape[0], 0, *frames.shape[2:])
        return torch.stack(out, dim=1)
