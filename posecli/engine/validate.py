"""Validation during training: whole sequences of a cache through the model.

Lifter: with 3D in the cache the figure is MPJPE in millimetres (root-relative, every frame),
predicted by posecli.predict.lift_sequence exactly as `posecli eval` does. A 2D-only cache (photos)
is scored by the 2D reconstruction error of the pose2d head in pixels, on windows cut and
normalised the same way.
Image family (the cache needs crops): with 3D, scale-normalised MPJPE in millimetres (the reference
study's figure); else 2D PCK@0.2 (torso) in percent, the only figure where higher is better.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posecli.data.cache import PoseCache
from posecli import metrics as M
from posecli.predict import lift_sequence, output_shrink, window_inputs, window_plan


def pick_sequences(cache: PoseCache, max_sequences: int) -> list[int]:
    """All sequences, or `max_sequences` of them spread evenly over the cache."""
    n = cache.num_sequences
    if max_sequences <= 0 or max_sequences >= n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_sequences).round().astype(int).tolist()))


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
    same windows (cut, padded, normalised) that posecli.predict uses."""
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


HIGHER_IS_BETTER = frozenset({"val_pck02"})


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` of `metric` beats `best` (None or inf = nothing yet)."""
    if best is None or not np.isfinite(best):
        return bool(np.isfinite(value))
    return value > best if metric in HIGHER_IS_BETTER else value < best


def torso_pck02(pred2d: np.ndarray, gt2d: np.ndarray, conf: np.ndarray) -> float:
    """2D PCK@0.2 of the torso (left shoulder to right hip), persons without both joints left out."""
    return M.pck2d(pred2d, gt2d, M.labelled_torso_size(gt2d, conf), 0.2, conf > 0).value


def image_metric(model: nn.Module, cache: PoseCache, sequences: list[int], device: torch.device
                 ) -> tuple[str, float]:
    """An image-family model on the crops of the chosen sequences (every frame)."""
    from posecli.data.image_cache import ImageStore
    from posecli.predict_image import predict_frames

    frames = np.concatenate([np.arange(cache.seq_start[s], cache.seq_start[s] + cache.seq_length[s])
                             for s in sequences])
    store = ImageStore(cache.path)
    try:
        pred = predict_frames(model, store, frames, device=device)
    finally:
        store.close()
    conf = np.asarray(cache.confidence[frames])
    if cache.has3d:
        gt = np.asarray(cache.keypoints3d[frames], dtype=np.float64)
        return "val_snmpjpe_mm", 1000.0 * M.sn_mpjpe(pred["keypoints3d"], gt, conf > 0).value
    return "val_pck02", torso_pck02(pred["keypoints2d"], np.asarray(cache.keypoints2d[frames]), conf)


def validate(model: nn.Module, cache: PoseCache, *, window: int, max_sequences: int,
             device: torch.device) -> tuple[str, float]:
    """(metric name, value): lower is better except for HIGHER_IS_BETTER metrics."""
    was_training = model.training
    model.eval()
    try:
        sequences = pick_sequences(cache, max_sequences)
        if getattr(model, "family", "lifter") == "image":
            return image_metric(model, cache, sequences, device)
        if cache.has3d:
            return "val_mpjpe_mm", mpjpe_mm(model, cache, sequences, device)
        return "val_error2d_px", reconstruction_px(model, cache, sequences, device)
    finally:
        model.train(was_training)
