"""Small plots drawn with Pillow alone (no plotting library needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from ..images import save_png

_W, _H, _M = 720, 360, 48  # canvas and margin


def bar_plot(
    values: Sequence[float], path: str | os.PathLike, title: str, ylabel: str = ""
) -> Path:
    """One bar per value, left to right (e.g. code usage sorted by frequency)."""
    img = Image.new("RGB", (_W, _H), "white")
    d = ImageDraw.Draw(img)
    top = max(values) if len(values) and max(values) > 0 else 1.0
    n = max(1, len(values))
    width = (_W - 2 * _M) / n
    for i, v in enumerate(values):
        x0 = _M + i * width
        y0 = _H - _M - (_H - 2 * _M) * (v / top)
        d.rectangle(
            [x0, y0, max(x0, x0 + width - (1 if width > 3 else 0)), _H - _M], fill=(60, 110, 180)
        )
    _frame(d, title, f"max {top:.4g} {ylabel}".strip(), f"{len(values)} bars")
    return save_png(img, path)


def line_plot(
    xs: Sequence[float],
    ys: Sequence[float],
    path: str | os.PathLike,
    title: str,
    xlabel: str = "",
    ylabel: str = "",
) -> Path:
    """A polyline of ys against xs, with the axis ranges written at the corners."""
    img = Image.new("RGB", (_W, _H), "white")
    d = ImageDraw.Draw(img)
    if len(xs) >= 1:
        x_lo, x_hi = min(xs), max(xs)
        y_lo, y_hi = min(ys), max(ys)
        sx = (_W - 2 * _M) / ((x_hi - x_lo) or 1.0)
        sy = (_H - 2 * _M) / ((y_hi - y_lo) or 1.0)
        pts = [
            (_M + (x - x_lo) * sx, _H - _M - (y - y_lo) * sy) for x, y in zip(xs, ys, strict=True)
        ]
        if len(pts) > 1:
            d.line(pts, fill=(200, 60, 40), width=2)
        for p in pts if len(pts) < 50 else []:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=(200, 60, 40))
        _frame(d, title, f"{ylabel} {y_lo:.4g} .. {y_hi:.4g}", f"{xlabel} {x_lo:.4g} .. {x_hi:.4g}")
    else:
        _frame(d, title, ylabel, xlabel)
    return save_png(img, path)


def _frame(d: ImageDraw.ImageDraw, title: str, ytext: str, xtext: str) -> None:
    d.line([(_M, _M), (_M, _H - _M), (_W - _M, _H - _M)], fill="black")
    d.text((_M, 12), title, fill="black")
    d.text((_M + 4, _M - 14), ytext, fill="black")
    d.text((_W - _M - 6 * len(xtext), _H - _M + 8), xtext, fill="black")
