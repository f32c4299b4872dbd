"""vqvae: neural discrete representation learning (VQ-VAE) in PyTorch."""

from .quantize import QuantizerOutput, VectorQuantizer

__version__ = "0.1.0"
__all__ = ["QuantizerOutput", "VectorQuantizer", "__version__"]
