"""Frames where a tracked person was not detected: bridge short gaps, mark long ones missing.

A gap is a run of frames without a detection between two detected frames of the same track.
Gaps of at most `max_gap` frames are filled by linear interpolation of each joint's position and
confidence (only joints seen on both sides; the others stay at confidence 0). Longer gaps, and the
frames before a track starts or after it ends, stay missing: confidence 0, and the pipeline writes
NaN keypoints there with `valid` False.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np


def present_frames(confidence: np.ndarray) -> np.ndarray:
    """[F] bool: frames where any joint was detected (confidence [F, 17])."""
    return (confidence > 0).any(axis=-1)


def fill_gaps(keypoints2d: np.ndarray, confidence: np.ndarray, max_gap: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate gaps of <= max_gap frames in one track.

    keypoints2d [F, 17, 2], confidence [F, 17] -> (keypoints2d, confidence, interpolated [F] bool).
    """
    kp = keypoints2d.astype(np.float32, copy=True)
    conf = confidence.astype(np.float32, copy=True)
    interpolated = np.zeros(len(conf), dtype=bool)
    seen = np.flatnonzero(present_frames(confidence))
    for a, b in pairwise(seen.tolist()):
        gap = b - a - 1
        if gap == 0 or gap > max_gap:
            continue
        t = (np.arange(1, gap + 1, dtype=np.float32) / (gap + 1))[:, None]
        both = (confidence[a] > 0) & (confidence[b] > 0)
        kp[a + 1:b] = np.where(both[None, :, None],
                               kp[a][None] * (1 - t[..., None]) + kp[b][None] * t[..., None], 0.0)
        conf[a + 1:b] = np.where(both[None], conf[a][None] * (1 - t) + conf[b][None] * t, 0.0)
        interpolated[a + 1:b] = True
    return kp, conf, interpolated


def segments(valid: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) runs of True in a [F] bool mask."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
