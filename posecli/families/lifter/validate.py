"""Validation of a lifter during training, on whole sequences of a cache.

With 3D in the cache the figure is MPJPE in millimetres (root-relative, every frame), predicted by
lift_sequence exactly as `posecli eval` does. A 2D-only cache (photos) is scored by the 2D
reconstruction error of the pose2d head in pixels, on windows cut and normalised the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posecli.data.cache import PoseCache
from posecli.families.lifter.predict import lift_sequence, output_shrink, window_inputs, window_plan


def mpjpe_mm(model: nn.Module, cache: PoseCache, sequences: list[int], device: torch.device) -> float:
    errors, frames = 0.0, 0
    for seq in sequences:
        rec = cache.sequence(seq)
        pred = lift_sequence(model, rec.keypoints2d, rec.confidence, device=device)
        target = rec.keypoints3d - rec.keypoints3d[:, :1]
        errors += float(np.linalg.norm(pred - target, axis=-1).mean(axis=-1).sum())
        frames += len(rec)
    return 1000.0 * errors / max(frames, 1)


@torch.inference_mode()
def reconstruction_px(model: nn.Module, cache: PoseCache, sequences: list[int], device: torch.device) -> float:
    """Mean pixel distance between the pose2d head and the clean 2D of confident joints, on the
    same windows (cut, padded, normalised) that lift_sequence uses."""
    receptive_field = output_shrink(model, device) + 1
    total, count = 0.0, 0
    for seq in sequences:
        rec = cache.sequence(seq)
        plan = window_plan(len(rec), int(model.window), receptive_field)
        inputs, scales = window_inputs(rec.keypoints2d, rec.confidence, plan)
        pred = model(torch.from_numpy(inputs).to(device))["pose2d"].float().cpu().numpy()
        kept = inputs[:, plan.pad:plan.pad + plan.out_len]
        dist = np.linalg.norm(pred[:, :plan.out_len] - kept[..., :2], axis=-1) * scales[:, None, None]
        confident = kept[..., 2] > 0
        total += float(dist[confident].sum())
        count += int(confident.sum())
    return total / max(count, 1)


def validation_metric(model: nn.Module, cache: PoseCache, sequences: list[int], device: torch.device
                      ) -> tuple[str, float]:
    """(name, value): MPJPE on a 3D cache, else the 2D reconstruction error; lower is better."""
    if cache.has3d:
        return "val_mpjpe_mm", mpjpe_mm(model, cache, sequences, device)
    return "val_error2d_px", reconstruction_px(model, cache, sequences, device)
