"""Scalar logs: a CSV file always, TensorBoard when asked for, and the history for plots."""

from __future__ import annotations

import csv
from pathlib import Path

from gankit.errors import ConfigError


class RunLogger:
    """Appends one row per logged step to ``log.csv``.

    On resume, rows logged after the checkpoint being resumed are dropped, so the log matches
    the restored state and the resumed run does not log the same steps twice.
    """

    def __init__(self, run_dir: Path, *, tensorboard: bool = False, resume_step: int = 0) -> None:
        self.path = run_dir / "log.csv"
        self.fields: list[str] = ["step", "epoch"]
        self.rows: list[dict[str, str]] = []
        if self.path.is_file():
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or self.fields)
                self.rows = [r for r in reader if int(r["step"]) <= resume_step]
            self._rewrite()
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "--tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
                ) from None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(self.rows)

    def log(self, step: int, epoch: int, values: dict[str, float]) -> None:
        row = {"step": str(step), "epoch": str(epoch)}
        row.update({k: f"{v:.6g}" for k, v in values.items()})
        self.rows.append(row)
        new_fields = [k for k in row if k not in self.fields]
        if new_fields or not self.path.is_file():
            self.fields += new_fields
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow(row)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def series(self, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[float, float]]]:
        """Each logged quantity as (step, value) points, for plots."""
        out: dict[str, list[tuple[float, float]]] = {}
        for row in self.rows:
            for key, value in row.items():
                if key in ("step", "epoch") or key in exclude or value in ("", None):
                    continue
                out.setdefault(key, []).append((float(row["step"]), float(value)))
        return out

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
