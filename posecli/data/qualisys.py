"""Qualisys QCA calibration files (`*.qca.txt`, XML) as posecli pinhole cameras.

Conversion as in Pose2Sim's `calib_qca_fun` (the public reference for these files): per camera,
`transform` holds a rotation r11..r33 and the camera position x, y, z in millimetres; the world ->
camera rotation is Rx(180 deg) @ [[r11 r12 r13], [r21 r22 r23], [r31 r32 r33]] (Qualisys cameras
look down their -z axis with y up; OpenCV's look down +z with y down) and t = -R @ position.
`intrinsic` is in sensor units, 64 per pixel: f = focalLength / 64, c = centerPoint / 64 minus the
`fov_video` origin (left, top); the image is `fov_video` (right - left + 1) x (bottom - top + 1).
Distortion k1, k2, p1, p2 (OpenCV model) are divided by 64 as Pose2Sim does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.cameras import Camera
from posecli.errors import PoseCliError

SENSOR_UNITS_PER_PIXEL = 64.0
MAX_CAMERAS = 1000
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


@dataclass
class QcaCamera:
    camera: Camera                 # pinhole part, metres, world -> camera
    distortion: np.ndarray         # float64 [4]: k1, k2, p1, p2 (OpenCV model)


def _floats(element: ET.Element, names: tuple[str, ...], path: Path, serial: str) -> np.ndarray:
    try:
        values = np.array([float(element.attrib[n]) for n in names], dtype=np.float64)
    except KeyError as exc:
        raise PoseCliError(f"camera '{serial}': <{element.tag}> lacks attribute {exc}", path) from None
    except ValueError:
        raise PoseCliError(f"camera '{serial}': <{element.tag}> has a non-numeric value", path) from None
    if not np.isfinite(values).all():
        raise PoseCliError(f"camera '{serial}': <{element.tag}> has a non-finite value", path)
    return values


def read_qca(path: str | Path) -> list[QcaCamera]:
    """Every camera of a QCA file, in file order; PoseCliError naming the file when it is malformed."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise PoseCliError(f"cannot read QCA calibration ({exc})", path) from None
    elements = root.findall("cameras/camera")
    if not elements:
        raise PoseCliError("QCA calibration lists no <cameras><camera> entries", path)
    if len(elements) > MAX_CAMERAS:
        raise PoseCliError(f"QCA calibration lists more than {MAX_CAMERAS} cameras", path)
    cameras = []
    for index, element in enumerate(elements):
        serial = element.attrib.get("serial", f"camera{index + 1}")
        parts = {tag: element.find(tag) for tag in ("transform", "intrinsic", "fov_video")}
        missing = [tag for tag, part in parts.items() if part is None]
        if missing:
            raise PoseCliError(f"camera '{serial}' lacks <{missing[0]}>", path)
        r = _floats(parts["transform"], tuple(f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)), path, serial)
        position = _floats(parts["transform"], ("x", "y", "z"), path, serial) / 1000.0
        left, top, right, bottom = _floats(parts["fov_video"], ("left", "top", "right", "bottom"), path, serial)
        fu, fv, cu, cv = _floats(parts["intrinsic"], ("focalLengthU", "focalLengthV", "centerPointU",
                                                      "centerPointV"), path, serial) / SENSOR_UNITS_PER_PIXEL
        distortion = _floats(parts["intrinsic"], ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
                                                  "tangentalDistortion2"), path, serial) / SENSOR_UNITS_PER_PIXEL
        width, height = int(right - left + 1), int(bottom - top + 1)
        if width <= 0 or height <= 0 or fu <= 0 or fv <= 0:
            raise PoseCliError(f"camera '{serial}': image size or focal length is not positive", path)
        rotation = _FLIP_YZ @ r.reshape(3, 3)
        camera = Camera(serial, rotation, -rotation @ position,
                        np.array([fu, fv, cu - left, cv - top], dtype=np.float32), (width, height))
        cameras.append(QcaCamera(camera, distortion))
    return cameras


def undistort_points(points: np.ndarray, intrinsics: np.ndarray, distortion: np.ndarray,
                     iterations: int = 10) -> np.ndarray:
    """Pixels [..., 2] seen through a lens with OpenCV distortion (k1, k2, p1, p2) -> the pixels an
    ideal pinhole camera with the same intrinsics would see (fixed-point inversion, as OpenCV's)."""
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    k1, k2, p1, p2 = np.asarray(distortion, dtype=np.float64)
    d = np.asarray(points, dtype=np.float64)
    xd, yd = (d[..., 0] - cx) / fx, (d[..., 1] - cy) / fy
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x, y = (xd - dx) / radial, (yd - dy) / radial
    return np.stack([x * fx + cx, y * fy + cy], axis=-1)


def distort_points(points: np.ndarray, intrinsics: np.ndarray, distortion: np.ndarray) -> np.ndarray:
    """Inverse of `undistort_points`: ideal pinhole pixels [..., 2] -> pixels through the lens."""
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    k1, k2, p1, p2 = np.asarray(distortion, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    x, y = (p[..., 0] - cx) / fx, (p[..., 1] - cy) / fy
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd * fx + cx, yd * fy + cy], axis=-1)
