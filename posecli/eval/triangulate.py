"""Multi-view triangulation of 2D keypoints (weighted DLT) into pseudo 3D ground truth.

For calibrated, synchronised views without mocap, the 2D of all views triangulated together is a
3D reference that no single view's lifter sees. Each view contributes the two DLT rows of every
joint, scaled by the joint's confidence, when that confidence reaches `min_confidence`; a joint
seen by fewer than `min_views` views is not triangulated. Rows are built in normalised camera
coordinates (K^-1 applied), which keeps the 4x4 system well conditioned whatever the pixel scale.
The mean reprojection error in pixels says whether calibration and 2D agree.

A detector's 2D of one view can be plainly wrong (a limb swapped left/right, an occluded wrist
guessed): `triangulate_consistent` then drops views as Pose2Sim does, keeping for each point the
largest set of views whose reprojection errors all stay under `max_error_px` (the lowest mean
error among sets of that size), and leaves a point no set agrees on untriangulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from posecli.data.cameras import Camera, project
from posecli.errors import PoseCliError

MIN_CONFIDENCE = 0.3      # as Pose2Sim's default likelihood threshold for triangulation
MIN_VIEWS = 2
MAX_ERROR_PX = 15.0       # Pose2Sim's default reprojection threshold for triangulation
MAX_SUBSET_VIEWS = 10     # view subsets are enumerated: 2^10 at most


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


def triangulate_consistent(points2d: np.ndarray, confidence: np.ndarray, cameras: Sequence[Camera], *,
                           max_error_px: float = MAX_ERROR_PX, min_confidence: float = MIN_CONFIDENCE,
                           min_views: int = MIN_VIEWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like `triangulate`, per point from the largest set of views that agree (every used view's
    reprojection error <= `max_error_px`). Returns points [..., 3], the mask [...] of triangulated
    ones and the views used [V, ...] (bool)."""
    views = len(cameras)
    if views > MAX_SUBSET_VIEWS:
        raise PoseCliError(f"triangulate_consistent takes at most {MAX_SUBSET_VIEWS} views, got {views}")
    confidence = np.asarray(confidence, dtype=np.float64)
    shape = confidence.shape[1:]
    out = np.full((*shape, 3), np.nan)
    done = np.zeros(shape, dtype=bool)
    used = np.zeros(confidence.shape, dtype=bool)
    for size in range(views, min_views - 1, -1):
        best_err = np.full(shape, np.inf)
        best = np.full((*shape, 3), np.nan)
        best_used = np.zeros(confidence.shape, dtype=bool)
        for subset in combinations(range(views), size):
            keep = np.zeros(views, dtype=bool)
            keep[list(subset)] = True
            conf = np.where(keep.reshape(-1, *([1] * len(shape))), confidence, 0.0)
            points, ok = triangulate(points2d, conf, cameras, min_confidence=min_confidence, min_views=min_views)
            errors = reprojection_errors(points, points2d, conf, cameras, min_confidence)
            seen = np.isfinite(errors)
            worst = np.where(seen, errors, -np.inf).max(axis=0)
            mean = np.where(seen, errors, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
            better = ok & ~done & (worst <= max_error_px) & (mean < best_err)
            best_err[better] = mean[better]
            best[better] = points[better]
            best_used[:, better] = seen[:, better]
        found = np.isfinite(best_err)
        out[found] = best[found]
        used[:, found] = best_used[:, found]
        done |= found
    return out, done, used
