"""Learning-rate schedules, chosen by `train.schedule`: `cosine` (linear warm-up, then cosine decay
to a floor; the default) or `step` (warm-up, then a drop by `gamma` at fixed milestones, as 2D
heatmap recipes use: SimpleBaseline / Zhou et al., lr 1e-3, x0.1 at epochs 90 and 120 of 140).

Both are pure functions of the step, so a resumed run gets exactly the rate an uninterrupted run
would (the LambdaLR wrapper only stores the step in its state).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch

from posecli.errors import PoseCliError


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the base rate at optimizer step `step` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int,
                    min_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total, warmup, min_ratio))


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


WARMUP_FRACTION = 0.1   # --steps N: warm up over at most this fraction of the run


def rescale_schedule(tc: Mapping[str, Any], steps: int, *, keep: Collection[str] = ()) -> dict[str, Any]:
    """The `train:` section for a run of `steps` steps instead of the preset's `train.steps`.

    The warm-up becomes min(preset warm-up, ceil(WARMUP_FRACTION * steps)) and step-schedule
    milestones move in proportion, so a short run (`--steps 100` of a 3,000-step preset) still
    reaches its peak rate and decays instead of spending the whole run warming up. Keys named in
    `keep` (set explicitly with --set) stay as given.
    """
    if steps < 1:
        raise PoseCliError(f"--steps must be >= 1, got {steps}")
    out = {**tc, "steps": int(steps)}
    if "warmup_steps" not in keep:
        out["warmup_steps"] = min(int(tc["warmup_steps"]), math.ceil(WARMUP_FRACTION * steps))
    milestones = tc.get("milestones") or []
    if milestones and "milestones" not in keep:
        ratio = steps / max(1, int(tc["steps"]))
        out["milestones"] = [max(1, round(int(m) * ratio)) for m in milestones]
    return out
