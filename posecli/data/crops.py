"""Person crops for the image family: decode a photo, cut a square box around a person, augment.

Every crop carries the 2x3 affine from image to crop pixels (integer coordinates are pixel
centres, as in posecli.models.heatmaps), so predictions map back to the photo exactly with its
inverse. Augmentation composes a second affine on the stored crop (scale, rotation, horizontal
flip about the crop centre) and a colour jitter; a flip also swaps left/right joints.

Decoding JPEGs needs OpenCV (preferred) or PyAV, both optional: `read_image` says which extra to
install. Warping uses OpenCV when present and falls back to torch's grid_sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from posecli.errors import PoseCliError
from posecli.skeleton import H36M_FLIP_PERM

IMAGE_EXTRA = "pip install 'posecli[image]'"
AUGMENT_DEFAULTS: dict[str, float] = {
    "scale": 0.25,        # crop scale factor drawn from [1 - s, 1 + s]
    "rotation": 30.0,     # degrees, drawn from [-r, r] ...
    "rotation_prob": 0.6,  # ... with this probability (else 0)
    "flip": 0.5,          # probability of a horizontal flip (with joint swap)
    "colour": 0.2,        # per-channel gain drawn from [1 - c, 1 + c]
}


def _cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8 [H, W, 3] with OpenCV or PyAV."""
    path = Path(path)
    if not path.is_file():
        raise PoseCliError("image file not found", path)
    cv2 = _cv2()
    if cv2 is not None:
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise PoseCliError("not a readable image (truncated or unknown format)", path)
        return np.ascontiguousarray(image[:, :, ::-1])
    try:
        import av
    except ImportError:
        raise PoseCliError(f"decoding images needs OpenCV or PyAV: {IMAGE_EXTRA}", path) from None
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, StopIteration, ValueError):
        raise PoseCliError("not a readable image (truncated or unknown format)", path) from None


def decode_jpeg(data: bytes | np.ndarray) -> np.ndarray:
    """Encoded image bytes -> RGB uint8 [H, W, 3] (OpenCV)."""
    cv2 = _cv2()
    if cv2 is None:
        raise PoseCliError(f"cache stores JPEG crops; decoding them needs OpenCV: {IMAGE_EXTRA}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PoseCliError("cache holds a damaged JPEG crop")
    return np.ascontiguousarray(image[:, :, ::-1])


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """RGB uint8 image -> JPEG bytes (OpenCV)."""
    cv2 = _cv2()
    if cv2 is None:
        raise PoseCliError(f"storing JPEG crops needs OpenCV: {IMAGE_EXTRA}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise PoseCliError("JPEG encoding failed")
    return buf.tobytes()


# ---------------------------------------------------------------- affine transforms


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points [..., 2] through a 2x3 affine."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine that applies `inner` first, then `outer`."""
    return (np.vstack([outer, [0.0, 0.0, 1.0]]) @ np.vstack([inner, [0.0, 0.0, 1.0]]))[:2]


def person_box(keypoints: np.ndarray, confidence: np.ndarray, margin: float = 1.25,
               min_size: float = 32.0) -> tuple[np.ndarray, float]:
    """Square box (centre [2], side) around the confident joints, enlarged by `margin`."""
    valid = np.asarray(confidence) > 0
    if not valid.any():
        raise ValueError("no confident joint to place a box around")
    pts = np.asarray(keypoints, dtype=np.float64)[valid]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return (lo + hi) / 2, float(max((hi - lo).max() * margin, min_size))


def crop_transform(center: np.ndarray, size: float, out_size: int) -> np.ndarray:
    """Image -> crop affine putting a square box (centre, side) onto an out_size x out_size crop."""
    k = out_size / size
    c = (out_size - 1) / 2
    return np.array([[k, 0.0, c - k * center[0]], [0.0, k, c - k * center[1]]])


def augment_transform(out_size: int, scale: float = 1.0, rotation_deg: float = 0.0,
                      flip: bool = False) -> np.ndarray:
    """Crop -> augmented crop affine: zoom by `scale`, rotate, mirror, all about the crop centre."""
    c = (out_size - 1) / 2
    t = np.deg2rad(rotation_deg)
    m = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    if flip:
        m = np.diag([-1.0, 1.0]) @ m
    return np.hstack([m, (np.array([c, c]) - m @ np.array([c, c]))[:, None]])


def random_augmentation(rng: np.random.Generator, out_size: int, cfg: dict | None = None
                        ) -> tuple[np.ndarray, bool, np.ndarray]:
    """Random (crop -> augmented crop affine, flipped?, per-channel colour gains [3])."""
    cfg = {**AUGMENT_DEFAULTS, **(cfg or {})}
    scale = float(rng.uniform(1 - cfg["scale"], 1 + cfg["scale"]))
    rotation = float(rng.uniform(-cfg["rotation"], cfg["rotation"])) if rng.random() < cfg["rotation_prob"] else 0.0
    flip = bool(rng.random() < cfg["flip"])
    gains = rng.uniform(1 - cfg["colour"], 1 + cfg["colour"], size=3)
    return augment_transform(out_size, scale, rotation, flip), flip, gains


def flip_joints(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap left and right H36M joints (after mirroring coordinates, the labels follow)."""
    return keypoints[..., H36M_FLIP_PERM, :], confidence[..., H36M_FLIP_PERM]


def apply_colour(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per-channel gain on a uint8 RGB image."""
    return np.clip(image.astype(np.float32) * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- warping


def warp(image: np.ndarray, affine: np.ndarray, out_size: int) -> np.ndarray:
    """Resample uint8 [H, W, 3] through `affine` (source -> target pixels) to [out, out, 3], black outside."""
    cv2 = _cv2()
    if cv2 is not None:
        return cv2.warpAffine(image, affine.astype(np.float64), (out_size, out_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return warp_torch(image, affine, out_size)


def warp_torch(image: np.ndarray, affine: np.ndarray, out_size: int) -> np.ndarray:
    """Same as `warp` with torch's grid_sample (no OpenCV needed)."""
    h, w = image.shape[:2]
    inverse = invert_affine(affine)
    ys, xs = np.meshgrid(np.arange(out_size, dtype=np.float64), np.arange(out_size, dtype=np.float64),
                         indexing="ij")
    src = apply_affine(inverse, np.stack([xs, ys], axis=-1))
    grid = np.stack([(src[..., 0] + 0.5) / w * 2 - 1, (src[..., 1] + 0.5) / h * 2 - 1], axis=-1)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.grid_sample(tensor, torch.from_numpy(grid[None]).float(), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def extract_crop(image: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, out_size: int = 256,
                 margin: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Crop [out, out, 3] around a person and its crop -> image affine [2, 3]."""
    center, size = person_box(keypoints, confidence, margin)
    to_crop = crop_transform(center, size, out_size)
    return warp(image, to_crop, out_size), invert_affine(to_crop)
