"""Pose geometry shared by data, losses, metrics and inference, written once.

The box around the confident joints (normalisation, detector noise, 2D metrics, smoothing scale),
the overlap of two boxes (detector and tracker) and the bones of a pose (bone losses, the scale
of image-family 3D, SN-MPJPE) each had several hand-written copies; these are the one version. The bone helpers index with plain lists, so they
take numpy arrays and torch tensors alike (autograd flows through them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posecli.skeleton import H36M_BONES


def joint_box(points: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners (lo, hi) [..., D] of the box around the valid joints of poses [..., J, D]; a pose
    without a valid joint gets lo = +inf and hi = -inf, so its side (hi - lo) is -inf."""
    v = np.asarray(valid, dtype=bool)[..., None]
    lo = np.where(v, points, np.inf).min(axis=-2)
    hi = np.where(v, points, -np.inf).max(axis=-2)
    return lo, hi


def box_side(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Longer side [...] of joint_box (-inf for a pose without a valid joint)."""
    lo, hi = joint_box(points, valid)
    return (hi - lo).max(axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two [x0, y0, x1, y1] boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _ends(bones: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    a, b = zip(*bones)
    return list(a), list(b)


def bone_vectors(pose: Any, bones: Sequence[tuple[int, int]] = H36M_BONES) -> Any:
    """[..., J, D] -> [..., len(bones), D]: first joint minus second joint of each bone."""
    a, b = _ends(bones)
    return pose[..., a, :] - pose[..., b, :]


def bone_mask(mask: Any, bones: Sequence[tuple[int, int]] = H36M_BONES) -> Any:
    """Per-joint mask or weight [..., J] -> [..., len(bones)]: a bone counts where both its joints do."""
    a, b = _ends(bones)
    return mask[..., a] * mask[..., b]


def bone_lengths(pose: np.ndarray, bones: Sequence[tuple[int, int]] = H36M_BONES) -> np.ndarray:
    """Bone lengths [..., len(bones)] of numpy poses [..., J, D]."""
    return np.linalg.norm(bone_vectors(np.asarray(pose), bones), axis=-1)
