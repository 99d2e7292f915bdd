"""The pinhole intrinsics posecli assumes for a video: --focal, --fov, the video's metadata, or a default.

Most videos do not record their lens. Phones write a 35 mm-equivalent focal length into the
QuickTime/EXIF-style tags of some files; when one is there it is used. Otherwise the default focal
length is the image diagonal in pixels (a 53 degree diagonal field of view, 47 degrees across a
16:9 frame), the usual guess for phone and webcam footage. The principal point is the image centre.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)   # what "35 mm-equivalent" focal lengths refer to
_FOCAL_35MM_KEY = re.compile(r"focal.?length.?(in.?)?35", re.IGNORECASE)


def default_focal(image_size: tuple[int, int]) -> float:
    """The documented default: the image diagonal in pixels."""
    return float(math.hypot(*image_size))


def focal_from_fov(fov_degrees: float, image_size: tuple[int, int]) -> float:
    """Focal length in pixels from the horizontal field of view (degrees) across the image width."""
    if not 1.0 <= fov_degrees <= 179.0:
        raise PoseCliError(f"--fov must be between 1 and 179 degrees, got {fov_degrees}")
    return image_size[0] / (2.0 * math.tan(math.radians(fov_degrees) / 2.0))


def focal_from_tags(tags: dict[str, str], image_size: tuple[int, int]) -> float | None:
    """Focal length in pixels from a 35 mm-equivalent focal-length tag, or None when there is none."""
    for key, value in tags.items():
        if _FOCAL_35MM_KEY.search(key):
            try:
                mm = float(str(value).split()[0])
            except (ValueError, IndexError):
                continue
            if 1.0 <= mm <= 2000.0:
                return mm / FULL_FRAME_DIAGONAL_MM * math.hypot(*image_size)
    return None


def video_tags(path: str | Path) -> dict[str, str]:
    """The container's and first video stream's metadata tags ({} when PyAV cannot read them)."""
    try:
        import av

        with av.open(str(path)) as container:
            tags = dict(container.metadata)
            if container.streams.video:
                tags.update(container.streams.video[0].metadata)
            return {str(k): str(v) for k, v in tags.items()}
    except Exception:   # metadata is optional: an unreadable tag block falls back to the default
        return {}


def camera_intrinsics(image_size: tuple[int, int], *, focal: float | None = None,
                      fov: float | None = None, tags: dict[str, str] | None = None
                      ) -> tuple[np.ndarray, str]:
    """(fx, fy, cx, cy) float32 and where the focal length came from: focal | fov | metadata | default."""
    width, height = image_size
    if width <= 0 or height <= 0:
        raise PoseCliError(f"image size must be positive, got {width}x{height}")
    if focal is not None and fov is not None:
        raise PoseCliError("give --focal or --fov, not both")
    if focal is not None:
        if not 0 < focal < 1e6:
            raise PoseCliError(f"--focal must be a positive number of pixels, got {focal}")
        f, source = float(focal), "focal"
    elif fov is not None:
        f, source = focal_from_fov(fov, image_size), "fov"
    elif tags and (from_tags := focal_from_tags(tags, image_size)) is not None:
        f, source = from_tags, "metadata"
    else:
        f, source = default_focal(image_size), "default"
    return np.array([f, f, width / 2.0, height / 2.0], dtype=np.float32), source
