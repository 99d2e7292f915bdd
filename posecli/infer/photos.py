"""`posecli infer` on photos: a folder or glob of images, each lifted on its own (T = 1).

Photos are unrelated, so nothing is tracked, smoothed or interpolated across them: the detector
forgets the previous image (`reset()`), and column p of image i is simply that image's p-th most
confident person. Frame i of the outputs is image i (`images.txt` lists them in order), so the
files have the video path's layout and the same writers and viewer serve both.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError
from posecli.infer.detector import Detection, Detector
from posecli.infer.outputs import PoseSequence
from posecli.infer.video import scaled_size
from posecli.skeleton import NUM_JOINTS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def image_files(source: str | Path) -> list[Path] | None:
    """The images a source names (a folder, or a glob pattern), sorted by name; None for anything
    else (a video file). A folder or pattern without images is an error naming it."""
    text = str(source)
    if Path(text).is_dir():
        files = [p for p in Path(text).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    elif any(c in text for c in "*?[") and not Path(text).exists():
        files = [Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    else:
        return None
    if not files:
        raise PoseCliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", text)
    return sorted(files)


def detect_photos(files: list[Path], detector: Detector, detect_side: int | None,
                  max_people: int | None) -> tuple[list[list[Detection]], tuple[int, int]]:
    """Detect each image on its own (keypoints in its full-resolution pixels); returns the people
    per image, most confident first, and the first image's (width, height)."""
    import cv2

    from posecli.data.crops import read_image

    people, size = [], None
    for path in files:
        image = read_image(path)
        h, w = image.shape[:2]
        size = size or (w, h)
        sw, sh = scaled_size(w, h, detect_side)
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA) if (sw, sh) != (w, h) else image
        if hasattr(detector, "reset"):
            detector.reset()
        found = sorted(detector(np.ascontiguousarray(small)), key=lambda d: -d.score)[:max_people]
        for d in found:
            d.keypoints = d.keypoints * np.float32(w / sw)
        people.append(found)
    return people, size


def lift_photos(people: list[list[Detection]], image_size: tuple[int, int],
                lift: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> PoseSequence:
    """Every person of every image in one sequence; `lift(keypoints2d [N, 17, 2], confidence
    [N, 17])` gives their root-relative 3D (the model family's predict_people)."""
    f, p = len(people), max([len(found) for found in people] + [0])
    if p == 0:
        raise PoseCliError("nobody was detected in any image")
    kp2 = np.full((f, p, NUM_JOINTS, 2), np.nan, np.float32)
    kp3 = np.full((f, p, NUM_JOINTS, 3), np.nan, np.float32)
    conf = np.zeros((f, p, NUM_JOINTS), np.float32)
    world = np.full((f, p, NUM_JOINTS, 3), np.nan, np.float32)
    valid = np.zeros((f, p), bool)
    for i, found in enumerate(people):
        if not found:
            continue
        n = len(found)
        kp3[i, :n] = lift(np.stack([d.keypoints for d in found]), np.stack([d.confidence for d in found]))
        for j, d in enumerate(found):
            kp2[i, j] = np.where(d.confidence[:, None] > 0, d.keypoints, np.nan)
            conf[i, j], valid[i, j] = d.confidence, True
            if d.world3d is not None:
                world[i, j] = d.world3d
    has_world = any(d.world3d is not None for found in people for d in found)
    return PoseSequence(kp2, conf, np.arange(p, dtype=np.int64), kp3, valid, np.zeros((f, p), bool), 0.0,
                        image_size, world3d=world if has_world else None)
