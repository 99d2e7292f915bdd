"""Loss helpers shared by the families' objectives."""

from __future__ import annotations

import torch


def weighted_mean(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of `err` over entries with weight 1; 0 (still in the graph) when there are none."""
    return (err * weight).sum() / weight.sum().clamp_min(1.0)
