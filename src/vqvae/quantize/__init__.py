"""The bottleneck: nearest-code search and the vector quantiser."""

from .kmeans import kmeans, kmeans_plus_plus
from .search import nearest_code, quantize_rows
from .vector_quantizer import QuantizerOutput, VectorQuantizer

__all__ = [
    "QuantizerOutput",
    "VectorQuantizer",
    "kmeans",
    "kmeans_plus_plus",
    "nearest_code",
    "quantize_rows",
]
