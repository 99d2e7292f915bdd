"""What a run reports: CSV log, optional TensorBoard, progress (a rich bar, or plain lines when
stdout is not a terminal) and a final summary.

Only the main process (rank 0) writes. On resume the CSV is cut back to the resumed step, so a run
killed between a log line and its next checkpoint does not log those steps twice.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

FIXED_COLUMNS = ("step", "epoch", "loss", "lr", "frames_per_s")


class RunLog:
    """Append rows to run_dir/log.csv (the header grows if a later row brings new keys)."""

    def __init__(self, run_dir: Path, *, enabled: bool, resume_step: int | None, tensorboard: bool):
        self.path = Path(run_dir) / "log.csv"
        self.enabled = enabled
        self.rows: list[dict[str, Any]] = []
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._rewrite()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"),
                                            purge_step=resume_step)

    def _columns(self) -> list[str]:
        cols = list(FIXED_COLUMNS)
        for row in self.rows:
            cols += [k for k in row if k not in cols]
        return cols

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=self._columns())
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        known = set(self._columns())
        self.rows.append(row)
        if set(row) - known:
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=self._columns()).writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class PlainProgress:
    """Progress for logs that are not a terminal (a file, nohup, a batch job, CI): one plain line
    per logged interval (train.log_every steps) with step, loss, lr, frames/s and ETA, the same
    add_task/update calls as rich's Progress."""

    def __init__(self, console: Console):
        self.console = console
        self.total, self.start_step, self.t0 = 0, 0, time.perf_counter()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, *, total: int, completed: int = 0, **fields: Any) -> int:
        self.description, self.total, self.start_step = description, int(total), int(completed)
        self.t0 = time.perf_counter()
        return 0

    def update(self, task: int, *, completed: int, loss: float | None = None, lr: float | None = None,
               fps: float | None = None) -> None:
        if loss is None:                      # only logged steps carry a loss: one line each
            return
        done = completed - self.start_step
        eta = (time.perf_counter() - self.t0) / done * (self.total - completed) if done > 0 else 0.0
        self.console.print(f"{self.description} step {completed}/{self.total}  loss {loss:.4f}  lr {lr:.2e}  "
                           f"{fps:,.0f} frames/s  ETA {format_seconds(eta)}", markup=False, highlight=False)


def format_seconds(seconds: float) -> str:
    whole = int(round(max(0.0, seconds)))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def progress_bar(console: Console, enabled: bool) -> Progress | PlainProgress:
    """Steps done / total with the latest loss, learning rate and throughput: a live rich bar on a
    terminal, plain lines every logged interval otherwise (nothing when disabled)."""
    if enabled and not console.is_terminal:
        return PlainProgress(console)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[fps]:,.0f} frames/s"),
        TimeRemainingColumn(), console=console, disable=not enabled, transient=False,
    )


def summary_table(facts: dict[str, Any]) -> Table:
    table = Table(title="training summary", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in facts.items():
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
    return table
