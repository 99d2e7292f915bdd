"""Pose geometry shared by data, losses, metrics and inference, written once.

The box around the confident joints (normalisation, detector noise, 2D metrics, smoothing scale),
the overlap of two boxes (detector and tracker) and the bones of a pose (bone losses, the scale
of image-family 3D, SN-MPJPE) each had several hand-written copies; these are the one version,
with Rodrigues' rotation (expmap readers, augmentation), the in-plane turn of x, y (`rotate_xy`:
upright windows, the wild benchmark's rolled views) and the turn that brings a torso upright
(`upright_angle`). The bone helpers index with plain lists, so they take numpy arrays and torch
tensors alike (autograd flows through them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posecli.skeleton import H36M_BONES, H36M_JOINTS

# The torso's angle from image up that training windows reach: 95th percentile of |mean pelvis ->
# thorax direction| over 27-frame windows of the CMU train takes filmed by the wild recipe's cameras
# (22 deg; the dance takes 20 deg; H36M-like cameras 10-12): the lifters' default `upright_deg`.
UPRIGHT_TOLERANCE_DEG = 20.0
_PELVIS, _THORAX = H36M_JOINTS.index("pelvis"), H36M_JOINTS.index("thorax")


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


def expmap_to_rotmat(r: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: exponential maps (axis x angle) [..., 3] -> rotation matrices [..., 3, 3]."""
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = np.divide(r, theta, out=np.zeros_like(r), where=theta > 0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


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


def retarget(poses: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Same bone directions, other bone lengths ([len(H36M_BONES)] for every frame, or one row per
    frame [N, 16]), walking H36M_BONES (parents before children) from the pelvis. Mocap rigs put
    the H36M joints at different places on the body (a narrow-shouldered BVH rig against the Li-2018
    skeleton); this maps one rig's proportions onto another's. A bone with an end outside `valid`
    [17] (a joint the rig lacks) or with a NaN length (in that frame) keeps its own vector. Poses
    already at `lengths` come back unchanged."""
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), (len(poses), len(H36M_BONES)))
    out = np.array(poses, dtype=np.float64, copy=True)
    for k, (parent, child) in enumerate(H36M_BONES):
        bone = poses[:, child] - poses[:, parent]
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore"):
            scaled = bone / np.maximum(norm, 1e-9) * lengths[:, k:k + 1]
        keep = ~np.isfinite(lengths[:, k:k + 1]) | (valid is not None and not (valid[parent] and valid[child]))
        out[:, child] = out[:, parent] + np.where(keep, bone, scaled)
    return out


def rotate_xy(points: np.ndarray, angle: float) -> np.ndarray:
    """Points [..., >= 2] with x, y turned by `angle` radians about the origin (counter-clockwise
    for x right, y up; clockwise on screen, where y points down); further coordinates kept. The
    same turn applied to camera-frame 3D is a roll of the camera about its optical axis."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.array(points, dtype=np.result_type(points, np.float32), copy=True)
    x, y = points[..., 0], points[..., 1]
    out[..., 0] = c * x - s * y
    out[..., 1] = s * x + c * y
    return out


def upright_angle(keypoints2d: np.ndarray, confidence: np.ndarray,
                  tolerance_deg: float) -> float:
    """Rotation (radians, `rotate_xy`'s sense) that turns a window's torso [T, 17, 2] (its mean
    pelvis -> thorax vector over frames where both are seen) to within `tolerance_deg` of image up,
    by the smallest angle: 0 when it already is, or when no frame shows both joints."""
    seen = (confidence[:, _PELVIS] > 0) & (confidence[:, _THORAX] > 0)
    if not seen.any():
        return 0.0
    torso = (keypoints2d[seen, _THORAX] - keypoints2d[seen, _PELVIS]).mean(axis=0)
    if not np.hypot(torso[0], torso[1]) > 0:
        return 0.0
    lean = float(np.arctan2(torso[0], -torso[1]))        # from image up (y down), clockwise positive
    excess = abs(lean) - np.deg2rad(tolerance_deg)
    return float(-np.sign(lean) * excess) if excess > 0 else 0.0
