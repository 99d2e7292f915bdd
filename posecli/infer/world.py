"""Put root-relative 3D poses into the world: root trajectory, a gravity-aligned floor frame, foot contact.

The lifter predicts metric poses relative to the pelvis. With the camera's intrinsics, the pelvis'
position in the camera frame is the translation that best re-projects the lifted pose onto the 2D
keypoints (a linear least-squares problem per frame, re-weighted once by depth so the residual is in
pixels), smoothed in time. The world frame is gravity-aligned: y up, the floor at y = 0, the origin
on the floor below the camera, x along the camera's x axis projected on the floor, z = x cross y
(towards the camera for a level camera). "Up" is the normal of a plane fitted to the feet's lowest
points when they cover enough floor, else the people's median body axis (ankles to neck), which
gives the camera's pitch and roll. All arrays follow the infer layout [F, P, ...]; NaN = no pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli.data.cameras import Camera
from posecli.data.gaps import segments
from posecli.data.smooth import smooth_sequence
from posecli.skeleton import H36M_JOINTS

FEET = (H36M_JOINTS.index("r_ankle"), H36M_JOINTS.index("l_ankle"))   # contact[..., 0] right, [..., 1] left
NECK = H36M_JOINTS.index("neck")
ANKLE_HEIGHT = 0.08        # metres from the ankle joint to the sole when a foot is flat
CONTACT_HEIGHT = 0.15      # an ankle below this (metres above the floor) ...
CONTACT_SPEED = 0.5        # ... moving slower than this (m/s, horizontally) is in contact
PLANE_SPREAD = 0.5         # metres: foot points must spread this far (2nd axis std x 2) to fit a plane
PLANE_MAX_TILT = 25.0      # degrees: a fitted floor this far from the body axis is not trusted


@dataclass
class WorldPoses:
    """What `locate` adds to the infer outputs."""

    root_camera: np.ndarray        # float32 [F, P, 3] pelvis in the camera frame (metres)
    keypoints3d_world: np.ndarray  # float32 [F, P, 17, 3] y up, floor at y = 0 (metres)
    contact: np.ndarray            # bool [F, P, 2] (right, left foot) on the floor
    camera: Camera                 # intrinsics and the world -> camera transform used
    up_source: str                 # "floor" (plane through the feet) or "body" (median body axis)


def root_translation(keypoints2d: np.ndarray, confidence: np.ndarray, keypoints3d: np.ndarray,
                     intrinsics: np.ndarray) -> np.ndarray:
    """The camera-frame pelvis [F, P, 3] that re-projects each root-relative pose onto its 2D.

    For joint j at root-relative X_j seen at normalised image point (a_j, b_j):
    (X_j + t_x) = a_j (Z_j + t_z) and (Y_j + t_y) = b_j (Z_j + t_z), linear in t. Joints are weighted
    by confidence, then once more by 1 / depth^2 so the solution minimises (nearly) pixel error.
    Frames with fewer than two usable joints, or a solution behind the camera, are NaN.
    """
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    kp3 = np.asarray(keypoints3d, dtype=np.float64)
    a = (np.asarray(keypoints2d, dtype=np.float64)[..., 0] - cx) / fx
    b = (np.asarray(keypoints2d, dtype=np.float64)[..., 1] - cy) / fy
    w = np.where(np.isfinite(a) & np.isfinite(b) & np.isfinite(kp3).all(-1), np.asarray(confidence, np.float64), 0.0)
    w = np.clip(w, 0.0, None)
    a, b, kp3 = np.nan_to_num(a), np.nan_to_num(b), np.nan_to_num(kp3)
    x, y, z = kp3[..., 0], kp3[..., 1], kp3[..., 2]
    enough = (w > 0).sum(-1) >= 2
    t = np.full(kp3.shape[:-2] + (3,), np.nan)
    weights = w
    for _ in range(2):
        s = weights.sum(-1)
        # Normal equations of rows [1, 0, -a] t = a z - x and [0, 1, -b] t = b z - y.
        m = np.zeros(kp3.shape[:-2] + (3, 3))
        m[..., 0, 0] = s
        m[..., 1, 1] = s
        m[..., 0, 2] = m[..., 2, 0] = -(weights * a).sum(-1)
        m[..., 1, 2] = m[..., 2, 1] = -(weights * b).sum(-1)
        m[..., 2, 2] = (weights * (a * a + b * b)).sum(-1)
        ra, rb = a * z - x, b * z - y
        rhs = np.stack([(weights * ra).sum(-1), (weights * rb).sum(-1),
                        -(weights * (a * ra + b * rb)).sum(-1)], axis=-1)
        ok = enough & (np.abs(np.linalg.det(m)) > 1e-12)
        m[~ok] = np.eye(3)
        t = np.where(ok[..., None], np.linalg.solve(m, rhs[..., None])[..., 0], np.nan)
        depth = np.clip(z + np.nan_to_num(t[..., 2:3], nan=1.0), 0.1, None)
        weights = w / depth ** 2
    behind = enough & ~(t[..., 2] > 0.1)
    if behind.any():
        t[behind] = _size_translation(a, b, kp3, w, fx)[behind]
    return t.astype(np.float32)


def _size_translation(a: np.ndarray, b: np.ndarray, kp3: np.ndarray, w: np.ndarray, fx: float) -> np.ndarray:
    """Fallback when the least squares puts the person behind the camera (a pose that does not fit
    its 2D): depth from the ratio of the pose's 3D spread to its 2D spread, x/y from the 2D centre."""
    s = np.maximum(w.sum(-1, keepdims=True), 1e-9)
    centre = lambda v: (w * v).sum(-1, keepdims=True) / s                       # noqa: E731
    spread2 = np.sqrt((w * ((a - centre(a)) ** 2 + (b - centre(b)) ** 2)).sum(-1, keepdims=True) / s)
    x, y, z = kp3[..., 0], kp3[..., 1], kp3[..., 2]
    spread3 = np.sqrt((w * ((x - centre(x)) ** 2 + (y - centre(y)) ** 2)).sum(-1, keepdims=True) / s)
    depth = np.clip(spread3 / np.maximum(spread2, 1e-9), 0.5, 1e4)[..., 0]
    tz = depth - centre(z)[..., 0]
    return np.stack([centre(a)[..., 0] * depth - centre(x)[..., 0],
                     centre(b)[..., 0] * depth - centre(y)[..., 0], tz], axis=-1)


def smooth_trajectory(root: np.ndarray, fps: float, strength: float = 1.0) -> np.ndarray:
    """One-Euro smoothing of each contiguous run of each track's root [F, P, 3]; depth, the noisiest
    axis, is smoothed with twice the strength."""
    out = np.array(root, dtype=np.float32, copy=True)
    if strength <= 0:
        return out
    for p in range(root.shape[1]):
        for a, b in segments(np.isfinite(root[:, p]).all(-1)):
            out[a:b, p, :2] = smooth_sequence(root[a:b, p, :2], fps, strength)
            out[a:b, p, 2:] = smooth_sequence(root[a:b, p, 2:], fps, 2.0 * strength)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def body_up(keypoints3d: np.ndarray) -> np.ndarray | None:
    """Median direction (camera frame) from the mid-ankles to the neck over all poses [F, P, 17, 3]."""
    axis = keypoints3d[..., NECK, :] - keypoints3d[..., list(FEET), :].mean(-2)
    axis = axis[np.isfinite(axis).all(-1)]
    axis = axis[np.linalg.norm(axis, axis=-1) > 1e-6]
    if not len(axis):
        return None
    return _unit(np.median(_unit(axis), axis=0))


def floor_up(points: np.ndarray, hint: np.ndarray) -> np.ndarray | None:
    """Normal of the plane through the lowest foot points [N, 3], oriented like `hint`, or None when
    the points do not spread over enough floor or the plane tilts too far from `hint`."""
    if len(points) < 10:
        return None
    centred = points - points.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    spread = 2.0 * sv / np.sqrt(len(points))
    if spread[1] < PLANE_SPREAD:
        return None
    normal = vt[2] if vt[2] @ hint > 0 else -vt[2]
    if np.degrees(np.arccos(np.clip(normal @ hint, -1.0, 1.0))) > PLANE_MAX_TILT:
        return None
    return normal


def gravity_frame(points_camera: np.ndarray) -> tuple[np.ndarray, float, str]:
    """World-from-camera rotation R (rows: world x, y, z in camera coordinates), the floor's height
    below the camera (metres) and the source of "up", from absolute camera-frame poses [F, P, 17, 3]."""
    up = body_up(points_camera)
    if up is None:
        up, source = np.array([0.0, -1.0, 0.0]), "level camera"
    else:
        source = "body"
    feet = points_camera[..., list(FEET), :]
    heights = feet @ up
    lowest = np.take_along_axis(feet, np.nanargmin(np.where(np.isfinite(heights), heights, np.inf), -1)
                                [..., None, None], axis=-2)[..., 0, :]
    lowest = lowest[np.isfinite(lowest).all(-1)]
    fitted = floor_up(lowest, up)
    if fitted is not None:
        up, source = fitted, "floor"
    x = np.array([1.0, 0.0, 0.0]) - up[0] * up
    if np.linalg.norm(x) < 1e-6:            # camera looking straight down or up
        x = np.array([0.0, 0.0, 1.0]) - up[2] * up
    x = _unit(x)
    rotation = np.stack([x, up, np.cross(x, up)])
    foot_heights = lowest @ up if len(lowest) else np.array([-1.5 + ANKLE_HEIGHT])
    floor = float(np.percentile(foot_heights, 5)) - ANKLE_HEIGHT
    return rotation, -floor, source


def local_floor(keypoints_world: np.ndarray, fps: float, seconds: float = 1.0) -> np.ndarray:
    """[F, P] the floor height under each track, from the lowest ankle within +-`seconds`.

    A slightly tilted floor estimate, or depth drift, moves a walker's feet up or down by
    centimetres over metres; measuring contact height against the nearby lowest foot keeps
    the height test local."""
    low = keypoints_world[..., list(FEET), 1].min(axis=-1)     # NaN where a track has no pose
    half = max(1, int(round(seconds * fps)))
    out = np.full(low.shape, np.nan)
    for f in range(len(low)):
        window = low[max(0, f - half):f + half + 1]
        seen = np.isfinite(window)
        for p in np.flatnonzero(seen.any(0)):
            out[f, p] = np.percentile(window[seen[:, p], p], 10)
    return out - ANKLE_HEIGHT


def foot_contact(keypoints_world: np.ndarray, fps: float) -> np.ndarray:
    """bool [F, P, 2]: an ankle (right, left) low above the nearby floor and slow horizontally."""
    feet = keypoints_world[..., list(FEET), :].astype(np.float64)
    if len(feet) < 2:
        return np.zeros(feet.shape[:-1], bool)
    speed = np.linalg.norm(np.gradient(feet[..., [0, 2]], axis=0), axis=-1) * fps
    height = feet[..., 1] - local_floor(keypoints_world, fps)[..., None]
    return (height < CONTACT_HEIGHT) & (speed < CONTACT_SPEED)


def skating_speed(keypoints_world: np.ndarray, contact: np.ndarray, fps: float) -> float:
    """Mean horizontal ankle speed (m/s) over the foot-frames in contact (NaN when none are)."""
    feet = keypoints_world[..., list(FEET), :].astype(np.float64)
    if len(feet) < 2:
        return float("nan")
    step = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps
    both = contact[1:] & contact[:-1] & np.isfinite(step)
    return float(step[both].mean()) if both.any() else float("nan")


def remove_foot_sliding(keypoints_world: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Shift each pose horizontally so that a foot in contact stays where it landed.

    Frame to frame, the body's horizontal step is replaced by the step that keeps the contact
    feet still (their mean when both are down); steps without contact are kept. The pose itself
    is unchanged, only its position, so bone lengths and rotations survive the clean-up.
    """
    out = np.array(keypoints_world, dtype=np.float64, copy=True)
    feet = out[..., list(FEET), :][..., [0, 2]]                      # [F, P, 2 feet, 2]
    for p in range(out.shape[1]):
        for a, b in segments(np.isfinite(out[:, p]).all((-1, -2))):
            step = np.diff(feet[a:b, p], axis=0)                      # [T-1, 2, 2]
            held = contact[a + 1:b, p] & contact[a:b - 1, p]          # [T-1, 2]
            n = held.sum(-1, keepdims=True)
            correction = -np.where(n > 0, (step * held[..., None]).sum(-2) / np.maximum(n, 1), 0.0)
            shift = np.concatenate([np.zeros((1, 2)), np.cumsum(correction, axis=0)])
            out[a:b, p, :, 0] += shift[:, None, 0]
            out[a:b, p, :, 2] += shift[:, None, 1]
    return out.astype(np.float32)


def locate(keypoints2d: np.ndarray, confidence: np.ndarray, keypoints3d: np.ndarray,
           intrinsics: np.ndarray, fps: float, image_size: tuple[int, int], *, smooth: float = 1.0,
           fix_feet: bool = False) -> WorldPoses:
    """Root trajectory, world frame, contact and (optionally) the foot-sliding clean-up.

    keypoints2d [F, P, 17, 2] pixels, confidence [F, P, 17], keypoints3d [F, P, 17, 3] root-relative
    metres in the camera frame (NaN where a track has no pose), intrinsics (fx, fy, cx, cy).
    """
    root = smooth_trajectory(root_translation(keypoints2d, confidence, keypoints3d, intrinsics), fps, smooth)
    absolute = keypoints3d.astype(np.float64) + root[..., None, :]
    rotation, camera_height, source = gravity_frame(absolute)
    offset = np.array([0.0, camera_height, 0.0])
    world = (absolute @ rotation.T + offset).astype(np.float32)
    contact = foot_contact(world, fps)
    if fix_feet:
        world = remove_foot_sliding(world, contact)
    # world = R_wc @ cam + offset  =>  cam = R_wc.T @ world - R_wc.T @ offset (cameras.py convention)
    camera = Camera("infer", rotation.T, -rotation.T @ offset, np.asarray(intrinsics, np.float32),
                    (int(image_size[0]), int(image_size[1])))
    return WorldPoses(root, world, contact, camera, source)
