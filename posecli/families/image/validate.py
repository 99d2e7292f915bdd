"""Validation of an image-family model during training, on the crops of a cache (every frame).

With 3D in the cache the figure is scale-normalised MPJPE in millimetres (the reference study's);
else 2D PCK@0.2 (torso) in percent, where higher is better.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from posecli import metrics as M
from posecli.data.cache import PoseCache
from posecli.families.image.predict import predict_cache_frames, sequence_frames

HIGHER_IS_BETTER = frozenset({"val_pck02"})


def torso_pck02(pred2d: np.ndarray, gt2d: np.ndarray, conf: np.ndarray) -> float:
    """2D PCK@0.2 of the torso (left shoulder to right hip), persons without both joints left out."""
    return M.pck2d(pred2d, gt2d, M.labelled_torso_size(gt2d, conf), 0.2, conf > 0).value


def validation_metric(model: nn.Module, cache: PoseCache, sequences: list[int], device: torch.device
                      ) -> tuple[str, float]:
    """(name, value) of the model on the crops of the chosen sequences."""
    frames = sequence_frames(cache, sequences)
    pred = predict_cache_frames(model, cache, frames, device=device)
    conf = np.asarray(cache.confidence[frames])
    if cache.has3d:
        gt = np.asarray(cache.keypoints3d[frames], dtype=np.float64)
        return "val_snmpjpe_mm", 1000.0 * M.sn_mpjpe(pred["keypoints3d"], gt, conf > 0).value
    return "val_pck02", torso_pck02(pred["keypoints2d"], np.asarray(cache.keypoints2d[frames]), conf)
