"""Multi-view triangulation of 2D keypoints (weighted DLT) into pseudo 3D ground truth.

For calibrated, synchronised views without mocap, the 2D of all views triangulated together is a
3D reference that no single view's lifter sees. Each view contributes the two DLT rows of every
joint, scaled by the joint's confidence, when that confidence reaches `min_confidence`; a joint
seen by fewer than `min_views` views is not triangulated. Rows are built in normalised camera
coordinates (K^-1 applied), which keeps the 4x4 system well conditioned whatever the pixel scale.
The mean reprojection error in pixels says whether calibration and 2D agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posecli.data.cameras import Camera, project
from posecli.errors import PoseCliError

MIN_CONFIDENCE = 0.3      # as Pose2Sim's default likelihood threshold for triangulation
MIN_VIEWS = 2


def triangulate(points2d: np.ndarray, confidence: np.ndarray, cameras: Sequence[Camera], *,
                min_confidence: float = MIN_CONFIDENCE, min_views: int = MIN_VIEWS
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points [V, ..., 2] (ideal pinhole pixels) with confidence [V, ...] from V cameras -> world
    points [..., 3] (float64) and a mask [...] of the triangulated ones (NaN elsewhere)."""
    points2d = np.asarray(points2d, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    views = len(cameras)
    if points2d.shape[0] != views or confidence.shape != points2d.shape[:-1] or points2d.shape[-1] != 2:
        raise PoseCliError(f"triangulate needs [V, ..., 2] points and [V, ...] confidence for V = {views} "
                           f"cameras, got {points2d.shape} and {confidence.shape}")
    if min_views < 2:
        raise PoseCliError(f"triangulation needs at least 2 views, got min_views={min_views}")
    shape = points2d.shape[1:-1]
    pts = points2d.reshape(views, -1, 2)
    conf = confidence.reshape(views, -1)
    use = (conf >= min_confidence) & np.isfinite(pts).all(axis=-1)
    weight = np.where(use, conf, 0.0)
    rows = np.zeros((pts.shape[1], 2 * views, 4))
    for v, cam in enumerate(cameras):
        fx, fy, cx, cy = np.asarray(cam.intrinsics, dtype=np.float64)
        extrinsic = np.concatenate([np.asarray(cam.R, np.float64), np.asarray(cam.t, np.float64).reshape(3, 1)], 1)
        x = np.where(use[v], (pts[v, :, 0] - cx) / fx, 0.0)[:, None]
        y = np.where(use[v], (pts[v, :, 1] - cy) / fy, 0.0)[:, None]
        w = weight[v][:, None]
        rows[:, 2 * v] = w * (x * extrinsic[2] - extrinsic[0])
        rows[:, 2 * v + 1] = w * (y * extrinsic[2] - extrinsic[1])
    valid = use.sum(axis=0) >= min_views
    out = np.full((pts.shape[1], 3), np.nan)
    if valid.any():
        _, _, vt = np.linalg.svd(rows[valid])
        homogeneous = vt[:, -1]
        scale = homogeneous[:, 3:]
        good = np.abs(scale[:, 0]) > 1e-12
        solved = np.full((len(homogeneous), 3), np.nan)
        solved[good] = homogeneous[good, :3] / scale[good]
        out[valid] = solved
        valid[valid] = good
    return out.reshape(*shape, 3), valid.reshape(shape)


def reprojection_errors(points3d: np.ndarray, points2d: np.ndarray, confidence: np.ndarray,
                        cameras: Sequence[Camera], min_confidence: float = MIN_CONFIDENCE) -> np.ndarray:
    """Pixel distance [V, ...] between each view's 2D and the projection of `points3d` [..., 3] into
    it; NaN where the view was not used (confidence below `min_confidence`) or nothing was solved."""
    points3d = np.asarray(points3d, dtype=np.float64)
    out = np.full(np.asarray(confidence).shape, np.nan)
    for v, cam in enumerate(cameras):
        uv = project(cam.to_camera(points3d), cam.intrinsics)
        err = np.linalg.norm(uv - np.asarray(points2d[v], np.float64), axis=-1)
        used = (np.asarray(confidence[v]) >= min_confidence) & np.isfinite(err)
        out[v][used] = err[used]
    return out
