"""Fixed-length random crops of a corpus: what a speech VQ-VAE trains on.

Item i is drawn from its own generator ``default_rng((seed, i))``, so a crop depends only on
(seed, i): the same on every machine, in every worker, after a resume.  The utterance is drawn
with probability proportional to its length (every sample equally likely), then a start in it.
An utterance shorter than the crop is placed at a random position in a crop of silence.

    ds = CropDataset(corpus, crop=2048, seed=0)
    wave, targets, speaker = ds[0]   # (2048,) float32 in [-1, 1], (2048,) int64 mu-law
                                     # classes of wave, () int64 speaker index
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.errors import DataError
from .corpus import SpeechCorpus
from .mu_law import mu_law_encode

DEFAULT_CROPS = 1 << 20  # items per "epoch": distinct crops, so a run rarely repeats one


class CropDataset(Dataset):
    """Random crops of ``crop`` samples from ``corpus``.

    Args:
        corpus: the utterances (at the model's sample rate and level).
        crop: samples per item (a multiple of the model's hop, 2 ** halvings).
        seed: base seed of the crop positions.
        num_crops: the dataset's length (distinct crops); default ``DEFAULT_CROPS``.
    """

    def __init__(self, corpus: SpeechCorpus, crop: int, *, seed: int = 0,
                 num_crops: int | None = None) -> None:
        if len(corpus) == 0:
            raise DataError(f"{corpus.source}: no utterances to crop")
        if crop < 1:
            raise DataError(f"crop must be a positive number of samples, got {crop}")
        self.corpus, self.crop, self.seed = corpus, crop, seed
        self.num_crops = DEFAULT_CROPS if num_crops is None else num_crops
        self._cumulative = np.cumsum(corpus.lengths)
        self.speaker_names = corpus.speaker_names

    def __len__(self) -> int:
        return self.num_crops

    def position(self, i: int) -> tuple[int, int]:
        """(utterance, start) of item i; for an utterance shorter than the crop, start <= 0
        places it -start samples in (zeros around it)."""
        if not 0 <= i < self.num_crops:
            raise IndexError(f"crop {i} out of range for {self.num_crops} crops")
        rng = np.random.default_rng((self.seed, i))
        u = int(np.searchsorted(self._cumulative, rng.integers(self._cumulative[-1]),
                                side="right"))
        length = int(self.corpus.lengths[u])
        if length >= self.crop:
            return u, int(rng.integers(length - self.crop + 1))
        return u, -int(rng.integers(self.crop - length + 1))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, start = self.position(i)
        wave = self.corpus.waveform(u)
        if len(wave) >= self.crop:
            out = wave[start : start + self.crop]
        else:
            out = np.zeros(self.crop, dtype=np.float32)
            out[-start : -start + len(wave)] = wave
        x = torch.from_numpy(np.ascontiguousarray(out))
        return x, mu_law_encode(x), torch.tensor(int(self.corpus.speaker[u]))
