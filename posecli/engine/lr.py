"""The preset's learning-rate schedule: `train.schedule: cosine` (posecli.engine.schedule, the
default) or `step`, the classic drop by `gamma` at fixed milestones that 2D heatmap recipes use
(SimpleBaseline / Zhou et al.: lr 1e-3, x0.1 at epochs 90 and 120 of 140).

Both are pure functions of the step, so a resumed run gets exactly the rate of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from posecli.engine.schedule import build_scheduler
from posecli.errors import PoseCliError

SCHEDULES = ("cosine", "step")


def warmup_step(step: int, warmup: int, milestones: Sequence[int], gamma: float) -> float:
    """Multiplier of the base rate at optimizer step `step` (0-based): linear warm-up, then
    gamma ** (number of milestones reached)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return gamma ** sum(step >= int(m) for m in milestones)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, tc: Mapping[str, Any]
                       ) -> torch.optim.lr_scheduler.LambdaLR:
    """The scheduler a resolved `train:` section asks for; a bad choice is a user error."""
    kind = str(tc.get("schedule", "cosine"))
    total, warmup = int(tc["steps"]), int(tc["warmup_steps"])
    if kind == "cosine":
        return build_scheduler(optimizer, total, warmup, float(tc["min_lr_ratio"]))
    if kind != "step":
        raise PoseCliError(f"unknown train.schedule '{kind}' (known: {', '.join(SCHEDULES)})")
    milestones = [int(m) for m in tc.get("milestones") or []]
    if milestones != sorted(milestones) or any(m <= 0 for m in milestones):
        raise PoseCliError(f"train.milestones must be increasing positive steps, got {milestones}")
    gamma = float(tc.get("gamma", 0.1))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_step(step, warmup, milestones, gamma))
