"""Progress and timing of `posecli infer`: busy seconds per stage, and a rich bar per task.

Stages is the Clock (posecli.families.tracks) a family's track prediction reports to, so the
family code needs nothing from infer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

STAGES = ("decode", "detect", "track", "lift", "smooth", "write", "render")


class Stages:
    """Per-stage timings plus an optional rich progress bar per stage."""

    def __init__(self, console: Console | None):
        self.timings = {s: 0.0 for s in STAGES}
        self._progress = (Progress(TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
                                   TimeRemainingColumn(), console=console, transient=False)
                          if console is not None else None)
        self._task = None

    def __enter__(self) -> "Stages":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def task(self, name: str, total: int | None) -> Iterator[None]:
        if self._progress is not None:
            self._task = self._progress.add_task(name, total=total)
        try:
            yield
        finally:
            if self._progress is not None:
                done = self._progress.tasks[-1].completed
                self._progress.update(self._task, total=done or total, completed=done or total)
                self._task = None

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] += seconds

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)
