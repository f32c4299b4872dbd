"""Encoders, decoders and decoder likelihoods per modality, and the blocks they share."""

from .blocks import ResidualBlock, ResidualStack
from .image import ImageDecoder, ImageEncoder, num_halvings
from .likelihood import (
    LIKELIHOODS,
    CategoricalLikelihood,
    GaussianLikelihood,
    Likelihood,
    LogisticMixtureLikelihood,
    make_likelihood,
)

__all__ = [
    "LIKELIHOODS",
    "CategoricalLikelihood",
    "GaussianLikelihood",
    "ImageDecoder",
    "ImageEncoder",
    "Likelihood",
    "LogisticMixtureLikelihood",
    "ResidualBlock",
    "ResidualStack",
    "make_likelihood",
    "num_halvings",
]
