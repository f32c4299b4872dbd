"""Metrics to a CSV file (always) and TensorBoard (when the ``tensorboard`` package is there)."""

from __future__ import annotations

import csv
import math
from pathlib import Path


class MetricsLog:
    """Appends rows ``step, name1, name2, ...`` to ``metrics.csv``; resumes an existing file.

    When resuming, rows after the checkpoint's step are dropped, so the CSV of a run cut in two
    matches the CSV of the same run done in one go.
    """

    def __init__(self, run_dir: Path, *, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = reader.fieldnames
                self.rows = [r for r in reader if int(r["step"]) <= resume_step]
            self._rewrite()
        elif self.path.exists():
            self.path.unlink()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(
                    str(Path(run_dir) / "tensorboard"), purge_step=resume_step
                )

    def _rewrite(self) -> None:
        if self.columns is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.path)

    def log(self, step: int, metrics: dict[str, float], prefix: str = "") -> None:
        row = {"step": str(step)}
        row.update({f"{prefix}{k}": _fmt(v) for k, v in metrics.items()})
        if self.columns is None or not set(row) <= set(self.columns):
            self.columns = list(dict.fromkeys([*(self.columns or ["step"]), *row]))
            self.rows.append(row)
            self._rewrite()
        else:
            self.rows.append(row)
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(v: float) -> str:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return f"{v:.6g}"
