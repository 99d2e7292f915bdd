"""Pinhole cameras: projection, world->camera transforms and virtual cameras for 3D-only data.

Conventions (docs/normalisation.md): the camera frame has x right, y down, z forward (OpenCV);
intrinsics are (fx, fy, cx, cy) in pixels; extrinsics map world to camera as X_cam = R @ X_world + t.
The world frame of mocap data is Y-up metres with the subject near the origin. Mocap has no camera,
so `random_virtual_cameras` places Human3.6M-like cameras around the subject; seeing the same motion
from several random views is what turns 3D-only data into 2D/3D training pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Human3.6M's four cameras have f = 1145.0 +- 2 px and principal points near the centre of their
# 1000x1000 (1000x1002) images; a virtual camera with these values yields H36M-like 2D statistics.
H36M_LIKE_FOCAL = 1145.0
H36M_LIKE_IMAGE_SIZE = (1000, 1000)
H36M_LIKE_INTRINSICS = np.array([1145.0, 1145.0, 500.0, 500.0], dtype=np.float32)
WORLD_UP = np.array([0.0, 1.0, 0.0])


@dataclass
class Camera:
    """A calibrated pinhole camera without distortion."""

    name: str
    R: np.ndarray                    # float64 [3, 3], world -> camera rotation
    t: np.ndarray                    # float64 [3], world -> camera translation (metres)
    intrinsics: np.ndarray           # float32 [4]: fx, fy, cx, cy
    image_size: tuple[int, int]      # (width, height) pixels

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        return world_to_camera(points_world, self.R, self.t)

    def project_world(self, points_world: np.ndarray) -> np.ndarray:
        return project(self.to_camera(points_world), self.intrinsics)

    @property
    def center(self) -> np.ndarray:
        """The camera's position in world coordinates."""
        return -self.R.T @ self.t


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points [..., 3] to pixels [..., 2]."""
    points = np.asarray(points)
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    z = points[..., 2]
    uv = np.empty(points.shape[:-1] + (2,), dtype=np.result_type(points.dtype, np.float32))
    uv[..., 0] = fx * points[..., 0] / z + cx
    uv[..., 1] = fy * points[..., 1] / z + cy
    return uv


def unproject(points2d: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Inverse of `project`: pixels [..., 2] at camera-frame depth z [...] -> points [..., 3]."""
    points2d = np.asarray(points2d)
    depth = np.asarray(depth)
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    out = np.empty(np.broadcast_shapes(points2d.shape[:-1], depth.shape) + (3,),
                   dtype=np.result_type(points2d.dtype, depth.dtype, np.float32))
    out[..., 0] = (points2d[..., 0] - cx) / fx * depth
    out[..., 1] = (points2d[..., 1] - cy) / fy * depth
    out[..., 2] = depth
    return out


def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """X_cam = R @ X_world + t for points [..., 3] (row vectors: X @ R.T + t)."""
    points = np.asarray(points)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    return (points @ R.T + t).astype(np.result_type(points.dtype, np.float32), copy=False)


def camera_to_world(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Inverse of `world_to_camera`: X_world = R.T @ (X_cam - t)."""
    points = np.asarray(points)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    return ((points - t) @ R).astype(np.result_type(points.dtype, np.float32), copy=False)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a camera at `eye` whose optical axis (+z) passes through `target`, with image
    y pointing along -`up` (so a Y-up world appears upright)."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm == 0:
        raise ValueError("look_at: eye and target coincide")
    z = forward / norm
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to up")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ eye


def random_virtual_cameras(
    n: int,
    rng: np.random.Generator,
    *,
    distance: tuple[float, float] = (4.5, 6.0),
    height: tuple[float, float] = (0.8, 1.8),
    azimuth: np.ndarray | list[float] | None = None,
    image_size: tuple[int, int] = H36M_LIKE_IMAGE_SIZE,
    focal: float = H36M_LIKE_FOCAL,
    target: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
) -> list[Camera]:
    """`n` cameras on a ring around `target` (default the origin), looking at it.

    Horizontal distance and eye height (world y) are drawn uniformly from their ranges; azimuths
    (radians about world y) are uniform unless given. The principal point is the image centre.
    """
    target = np.asarray(target, dtype=np.float64)
    az = rng.uniform(0.0, 2 * np.pi, n) if azimuth is None else np.asarray(azimuth, dtype=np.float64)
    if az.shape != (n,):
        raise ValueError(f"random_virtual_cameras: need {n} azimuths, got {az.shape}")
    dist = rng.uniform(*distance, n)
    h = rng.uniform(*height, n)
    w, hgt = image_size
    intrinsics = np.array([focal, focal, w / 2.0, hgt / 2.0], dtype=np.float32)
    cameras = []
    for i in range(n):
        eye = np.array([target[0] + dist[i] * np.sin(az[i]), h[i], target[2] + dist[i] * np.cos(az[i])])
        R, t = look_at(eye, target, WORLD_UP)
        cameras.append(Camera(f"vcam{i}", R, t, intrinsics.copy(), (int(w), int(hgt))))
    return cameras


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_placement(points_cam: np.ndarray, rng: np.random.Generator, *, distance: tuple[float, float],
                     off_axis_deg: float, roll_deg: float) -> np.ndarray:
    """Re-place a camera-frame pose [..., J, 3] as another camera would see it: rolled about the
    optical axis by up to `roll_deg`, its mean pelvis moved to a distance drawn from `distance`
    (metres; (0, 0) keeps it) along a ray up to `off_axis_deg` from the optical axis (0 keeps the
    ray). Real footage is shot close and far, tilted, with the person anywhere in the frame; the
    root-relative pose only rotates (roll), the perspective of its projection changes with the rest.
    """
    points_cam = np.asarray(points_cam)
    pivot = points_cam[..., 0, :].reshape(-1, 3).mean(axis=0)
    local = points_cam - pivot
    if roll_deg > 0:
        local = local @ rotation_z(np.deg2rad(rng.uniform(-roll_deg, roll_deg))).T
    depth = float(np.linalg.norm(pivot))
    if distance[1] > 0:
        depth = rng.uniform(distance[0], distance[1])
    ray = pivot / max(float(np.linalg.norm(pivot)), 1e-9)
    if off_axis_deg > 0:
        theta = np.deg2rad(off_axis_deg) * np.sqrt(rng.random())   # uniform over the disc of angles
        phi = rng.uniform(0.0, 2 * np.pi)
        ray = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    return (local + ray * depth).astype(points_cam.dtype, copy=False)


def random_rotation_about_vertical(points_cam: np.ndarray, rng: np.random.Generator,
                                   max_elev_deg: float = 0.0) -> np.ndarray:
    """Rotate a camera-frame pose [..., J, 3] by a random yaw about the camera's vertical (y) axis
    through the mean pelvis (joint 0), then tilt it by up to `max_elev_deg` about the camera x axis.

    One rigid rotation is used for the whole input (all frames), so motion stays physically
    consistent; the pivot keeps the subject at the same depth, so it stays in front of the camera.
    """
    points_cam = np.asarray(points_cam)
    pivot = points_cam[..., 0, :].reshape(-1, 3).mean(axis=0)
    yaw = rng.uniform(-np.pi, np.pi)
    elev = np.deg2rad(rng.uniform(-max_elev_deg, max_elev_deg)) if max_elev_deg > 0 else 0.0
    rot = rotation_x(elev) @ rotation_y(yaw)
    out = (points_cam - pivot) @ rot.T + pivot
    return out.astype(points_cam.dtype, copy=False)
