"""What `posecli infer` hands a family, and the steps of a track every family takes.

infer tracks people and bridges nothing itself: a family's `predict_tracks` gets the raw tracks
(TrackInput), bridges short gaps and smooths each contiguous run (`bridge`, `smooth_runs`, the one
copy of that loop), predicts, and smooths the 3D of each run (`smooth_poses`). Stage time and
progress go to a `Clock`, which infer's progress display implements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from posecli.data.gaps import fill_gaps, present_frames, segments
from posecli.data.smooth import smooth_sequence


class Clock(Protocol):
    """Busy seconds per stage plus a progress bar per task (posecli.infer.stages.Stages)."""

    def add(self, stage: str, seconds: float) -> None: ...
    def timed(self, stage: str) -> AbstractContextManager[None]: ...
    def task(self, name: str, total: int | None) -> AbstractContextManager[None]: ...
    def advance(self, n: int = 1) -> None: ...


class NoClock:
    """A Clock that keeps nothing (library calls without progress)."""

    def add(self, stage: str, seconds: float) -> None:
        pass

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        yield

    @contextmanager
    def task(self, name: str, total: int | None) -> Iterator[None]:
        yield

    def advance(self, n: int = 1) -> None:
        pass


@dataclass(frozen=True)
class TrackOptions:
    fps: float
    smooth: float = 1.0                  # One-Euro strength, 0 = off
    max_gap: int = 10                    # frames bridged by interpolation
    flip: bool = False                   # flip test-time augmentation
    upright: bool = True                 # lifters: turn leaning windows upright (predict.turn_upright)
    batch_size: int = 64
    device: str | torch.device = "cpu"


@dataclass
class TrackInput:
    """Tracked detector keypoints: [F, P, 17, 2] pixels and [F, P, 17] confidence (0 = not seen),
    and the video's frames (full resolution, upright) for families that read pixels."""

    keypoints2d: np.ndarray
    confidence: np.ndarray
    frames: Callable[[int], Iterable[np.ndarray]]     # frames(n): the first n frames, in order

    @property
    def num_frames(self) -> int:
        return self.keypoints2d.shape[0]

    @property
    def num_tracks(self) -> int:
        return self.keypoints2d.shape[1]


@dataclass
class TrackPoses:
    """A family's result per frame and track: 2D pixels (NaN where not seen), confidence, root-
    relative 3D metres (NaN where missing), `valid` and `interpolated` (bridged gap) flags."""

    keypoints2d: np.ndarray
    confidence: np.ndarray
    keypoints3d: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray


@dataclass
class Bridged:
    """Tracks with their short gaps bridged (`fill_gaps`); `valid` marks the frames present after."""

    keypoints2d: np.ndarray
    confidence: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray

    def runs(self, track: int) -> list[tuple[int, int]]:
        """The contiguous [start, end) runs of present frames of one track."""
        return segments(self.valid[:, track])


def bridge(tracks: TrackInput, max_gap: int) -> Bridged:
    """fill_gaps on every track; confidence stays 0 outside the present frames."""
    kp = np.zeros_like(tracks.keypoints2d, dtype=np.float32)
    conf = np.zeros_like(tracks.confidence, dtype=np.float32)
    valid = np.zeros(tracks.keypoints2d.shape[:2], bool)
    interp = np.zeros_like(valid)
    for t in range(tracks.num_tracks):
        k, c, interp[:, t] = fill_gaps(tracks.keypoints2d[:, t], tracks.confidence[:, t], max_gap)
        valid[:, t] = present_frames(c)
        for a, b in segments(valid[:, t]):
            kp[a:b, t], conf[a:b, t] = k[a:b], c[a:b]
    return Bridged(kp, conf, valid, interp & valid)


def smooth_runs(values: np.ndarray, bridged: Bridged, fps: float, strength: float,
                scale: Callable[[np.ndarray, np.ndarray], float] | None = None) -> np.ndarray:
    """One-Euro over each contiguous run of each track of `values` [F, P, ...]; `scale(kp, conf)`
    of the run gives its unit (default 1)."""
    out = np.array(values, copy=True)
    for t in range(values.shape[1]):
        for a, b in bridged.runs(t):
            unit = 1.0 if scale is None else scale(bridged.keypoints2d[a:b, t], bridged.confidence[a:b, t])
            out[a:b, t] = smooth_sequence(values[a:b, t], fps, strength, scale=unit)
    return out


def smooth_poses(keypoints3d: np.ndarray, bridged: Bridged, fps: float, strength: float) -> np.ndarray:
    """One-Euro on the 3D of each run (metres), then re-rooted on the pelvis."""
    out = smooth_runs(keypoints3d, bridged, fps, strength)
    return out - np.where(bridged.valid[..., None, None], out[:, :, :1], 0.0).astype(out.dtype)


def seen_2d(keypoints2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """2D keypoints with NaN where a joint is not seen (confidence 0)."""
    return np.where(confidence[..., None] > 0, keypoints2d, np.nan).astype(np.float32)
