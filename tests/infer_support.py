"""Small synthetic inputs shared by the infer tests: a tiny H.264 video, a stick figure, a tiny lifter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from posecli.infer.detector import Detection, detection_from_layout
from posecli.infer.video import H264Writer

# A standing person in COCO-17 order, pixels, about 100 px tall with the feet at y = 110.
COCO_STANDING = np.array([
    [80, 20], [83, 17], [77, 17], [86, 19], [74, 19],     # nose, eyes, ears
    [92, 35], [68, 35], [96, 55], [64, 55], [98, 72], [62, 72],   # shoulders, elbows, wrists
    [88, 70], [72, 70], [89, 90], [71, 90], [90, 110], [70, 110],  # hips, knees, ankles
], dtype=np.float32)


def coco_person(frame: int, dx: float = 0.0) -> np.ndarray:
    """The standing person walking right by 1 px per frame, shifted by dx."""
    return COCO_STANDING + np.array([frame + dx, 0.0], dtype=np.float32)


def make_video(path: Path, frames: int = 24, size: tuple[int, int] = (160, 120), fps: float = 24.0) -> Path:
    """A short H.264 clip with a moving gradient (content is irrelevant to the fake detector)."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    with H264Writer(path, fps) as writer:
        for f in range(frames):
            img = np.broadcast_to((x + 8 * f) % 256, (h, w, 3)).astype(np.uint8)
            writer.write(img)
    return path


class ScriptedDetector:
    """Detector stand-in: returns the COCO person for frames not in `missing` (one or two people)."""

    def __init__(self, missing: set[int] = frozenset(), people: int = 1):
        self.missing, self.people, self.calls, self.closed = set(missing), people, 0, False

    def __call__(self, frame_rgb: np.ndarray) -> list[Detection]:
        f, self.calls = self.calls, self.calls + 1
        if f in self.missing:
            return []
        conf = np.full(17, 0.9, np.float32)
        return [detection_from_layout(coco_person(f, dx=60.0 * p), conf, "coco17") for p in range(self.people)]

    def close(self) -> None:
        self.closed = True


def tiny_model(window: int = 9, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised stformer small enough for tests."""
    from posecli.models import build_model

    torch.manual_seed(seed)
    return build_model({"name": "stformer", "size": "xs", "window": window, "dim": 32, "depth": 1}).eval()
