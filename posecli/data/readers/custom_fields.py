"""Fields of the `custom` format shared by its JSON and CSV forms: the parsed records and the
strict checks of each value (shape, finiteness, units), so both forms refuse the same mistakes the
same way (docs/custom-format.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posecli.errors import PoseCliError
from posecli.skeleton import Layout, get_layout

MAX_ABS_METRES = 50.0   # larger 3D values are almost surely millimetres or centimetres


@dataclass
class RawSequence:
    """One validated sequence in its source layout, before conversion to H36M-17."""

    keypoints2d: np.ndarray                 # [T, K, 2] pixels
    confidence: np.ndarray                  # [T, K] in [0, 1]
    keypoints3d: np.ndarray | None = None   # [T, K, 3] metres
    subject: str = ""
    action: str = ""
    camera: str = ""
    split: str | None = None
    frame_names: list[str] | None = None
    fps: float = 0.0
    image_size: tuple[float, float] | None = None
    intrinsics: np.ndarray | None = None


@dataclass
class ParsedFile:
    layout: Layout
    sequences: list[RawSequence]
    dataset: str | None = None
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------- validation helpers

def _ragged_where(value: Any, where: str) -> str:
    """Name the first place where a nested list stops being rectangular or numeric."""
    if not isinstance(value, list):
        return where
    lengths = {len(v) if isinstance(v, list) else -1 for v in value}
    if len(lengths) > 1:
        first = len(value[0]) if isinstance(value[0], list) else -1
        bad = next(i for i, v in enumerate(value) if (len(v) if isinstance(v, list) else -1) != first)
        return f"{where}[{bad}]"
    return next((_ragged_where(v, f"{where}[{i}]") for i, v in enumerate(value) if isinstance(v, list)), where)


def as_array(value: Any, shape: tuple[int | None, ...], what: str, path: Path) -> np.ndarray:
    """Float64 array of the given shape (None = any length, at least 1) with only finite values."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise PoseCliError(f"{what} is ragged or not numeric (first bad entry: {_ragged_where(value, what)})",
                           path) from None
    dims = " x ".join("N" if d is None else str(d) for d in shape)
    if arr.ndim != len(shape) or any(d is not None and a != d for a, d in zip(arr.shape, shape)) \
            or any(a == 0 for a in arr.shape):
        raise PoseCliError(f"{what} should be {dims} numbers, got shape {list(arr.shape)}", path)
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        raise PoseCliError(f"{what}{list(bad[0].tolist())} is NaN, null or infinite "
                           "(mark a missing joint with confidence 0 instead)", path)
    return arr


def check_confidence(conf: np.ndarray, what: str, path: Path) -> np.ndarray:
    if conf.min() < 0 or conf.max() > 1:
        raise PoseCliError(f"{what} must lie in [0, 1], found {conf.min():g}..{conf.max():g}", path)
    return conf.astype(np.float32)


def check_metres(points: np.ndarray, what: str, path: Path) -> np.ndarray:
    peak = float(np.abs(points).max())
    if peak > MAX_ABS_METRES:
        raise PoseCliError(f"{what} reaches {peak:g}: 3D must be in metres (millimetres? divide by 1000)", path)
    return points.astype(np.float32)


def parse_image_size(value: Any, what: str, path: Path) -> tuple[float, float]:
    size = as_array(value, (2,), what, path)
    if (size <= 0).any():
        raise PoseCliError(f"{what} must be two positive numbers [width, height]", path)
    return float(size[0]), float(size[1])


def parse_intrinsics(value: Any, what: str, path: Path) -> np.ndarray:
    k = as_array(value, (4,), what, path)
    if k[0] <= 0 or k[1] <= 0:
        raise PoseCliError(f"{what} must be [fx, fy, cx, cy] with positive focal lengths", path)
    return k.astype(np.float32)


def parse_fps(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise PoseCliError(f"{what} must be a number >= 0 (0 = unordered photos), got {value!r}", path)
    return float(value)


def parse_layout(value: Any, path: Path) -> Layout:
    if not isinstance(value, str):
        raise PoseCliError("'layout' must name a keypoint layout, e.g. \"coco17\"", path)
    try:
        return get_layout(value)
    except PoseCliError as exc:
        raise PoseCliError(str(exc), path) from None


def text_field(value: Any, what: str, path: Path) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PoseCliError(f"{what} must be a string, got {type(value).__name__}", path)
    return str(value)


# ------------------------------------------------------------- JSON form
