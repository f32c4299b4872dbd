"""Evaluation: reconstruction metrics, code usage, plots."""

from .plots import bar_plot, line_plot
from .reconstruction import ReconstructionEval, evaluate_reconstruction

__all__ = ["bar_plot", "ReconstructionEval", "evaluate_reconstruction", "line_plot"]
