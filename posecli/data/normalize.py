"""The one 2D normalisation convention (see docs/normalisation.md).

Pixels are mapped into a person-centred frame shared by a whole window: the centre is the mean of
the per-frame bounding-box centres of the confident joints, the scale is half the median per-frame
box side (max of width and height). A person therefore spans about [-1, 1] whatever the camera,
resolution or crop, which lets photos (T=1), Human3.6M video, mocap projections and detector output
on in-the-wild video share one model. Aspect ratio is kept (same scale on x and y), y points down.

At prediction time a window whose torso leans further from image up than the training windows'
did (a rolled camera, a person lying down) is first turned about its centre until it is just inside
that range (posecli.geometry.upright_angle, with the model's `upright_deg`), and the 3D is turned
back about the optical axis: docs/normalisation.md.
"""

from __future__ import annotations

import numpy as np

from posecli.geometry import joint_box

CONVENTION = "posecli-window-bbox-v1"
MIN_SCALE = 1e-3


def window_center_scale(keypoints2d: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre [2] and scale of a window of [T, J, 2] pixels, using joints with confidence > 0."""
    valid = confidence > 0
    frames = valid.any(axis=-1)
    if not frames.any():
        return np.zeros(2, dtype=np.float32), 1.0
    lo, hi = joint_box(keypoints2d[frames], valid[frames])
    center = ((lo + hi) / 2).mean(axis=0)
    side = np.median((hi - lo).max(axis=-1))
    return center.astype(np.float32), float(max(side / 2, MIN_SCALE))


def normalize_window(keypoints2d: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Return normalised [T, J, 2] keypoints (missing joints set to 0), the centre and the scale."""
    center, scale = window_center_scale(keypoints2d, confidence)
    out = (keypoints2d - center) / scale
    out = np.where(confidence[..., None] > 0, out, 0.0).astype(np.float32)
    return out, center, scale


def denormalize(normalized: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    return normalized * scale + center

