"""vqvae: neural discrete representation learning (VQ-VAE) in PyTorch."""

from .errors import CheckpointError
from .model import VQVAE, VQVAEConfig, VQVAEOutput
from .quantize import QuantizerOutput, VectorQuantizer

__version__ = "0.1.0"
__all__ = [
    "VQVAE",
    "CheckpointError",
    "QuantizerOutput",
    "VQVAEConfig",
    "VQVAEOutput",
    "VectorQuantizer",
    "__version__",
]
