"""Validation during training: whole sequences of a cache through the model, scored by its family.

The family picks the figure (posecli.families: a lifter's MPJPE or 2D reconstruction error, the
image family's SN-MPJPE or 2D PCK) and says which of its figures are better when higher.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posecli.data.cache import PoseCache
from posecli.families.base import Family
from posecli.models import eval_mode


def pick_sequences(cache: PoseCache, max_sequences: int) -> list[int]:
    """All sequences, or `max_sequences` of them spread evenly over the cache."""
    n = cache.num_sequences
    if max_sequences <= 0 or max_sequences >= n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_sequences).round().astype(int).tolist()))


def is_better(family: Family, metric: str, value: float, best: float | None) -> bool:
    """Whether `value` of `metric` beats `best` (None or inf = nothing yet)."""
    if best is None or not np.isfinite(best):
        return bool(np.isfinite(value))
    return value > best if metric in family.higher_is_better else value < best


def validate(family: Family, model: nn.Module, cache: PoseCache, *, max_sequences: int,
             device: torch.device) -> tuple[str, float]:
    """(metric name, value) of the model in eval mode; its training mode is restored afterwards."""
    with eval_mode(model):
        return family.validate(model, cache, pick_sequences(cache, max_sequences), device)
