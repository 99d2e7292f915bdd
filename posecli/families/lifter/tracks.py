"""The lifter's stage of `posecli infer`: each contiguous run of each track is smoothed in 2D (in
units of the person's size) and lifted with lift_sequence, the same windows as `posecli eval`."""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from posecli.families.lifter.predict import lift_sequence
from posecli.families.tracks import (
    Clock,
    TrackInput,
    TrackOptions,
    TrackPoses,
    bridge,
    seen_2d,
    smooth_poses,
    smooth_runs,
)
from posecli.geometry import box_side
from posecli.skeleton import NUM_JOINTS


def person_scale(kp: np.ndarray, conf: np.ndarray) -> float:
    """Median box side of a run of frames [T, 17, 2], in pixels (the 2D smoothing unit)."""
    seen = conf > 0
    sides = box_side(kp, seen)[seen.any(axis=-1)]
    return float(np.median(sides)) if len(sides) else 1.0


def lift_tracks(model: nn.Module, tracks: TrackInput, options: TrackOptions, clock: Clock) -> TrackPoses:
    """Bridge gaps, smooth and lift every contiguous run of every track."""
    runs = bridge(tracks, options.max_gap)
    with clock.timed("smooth"):
        kp2 = smooth_runs(runs.keypoints2d, runs, options.fps, options.smooth, scale=person_scale)
    kp3 = np.full((tracks.num_frames, tracks.num_tracks, NUM_JOINTS, 3), np.nan, np.float32)
    with clock.task("lift", tracks.num_tracks):
        for t in range(tracks.num_tracks):
            t0 = time.perf_counter()
            for a, b in runs.runs(t):
                kp3[a:b, t] = lift_sequence(model, kp2[a:b, t], runs.confidence[a:b, t], flip=options.flip,
                                            batch_size=options.batch_size, device=options.device,
                                            upright=options.upright)
            clock.add("lift", time.perf_counter() - t0)
            clock.advance()
    with clock.timed("smooth"):
        kp3 = smooth_poses(kp3, runs, options.fps, options.smooth)
    return TrackPoses(seen_2d(kp2, runs.confidence), runs.confidence, kp3, runs.valid, runs.interpolated)


def lift_people(model: nn.Module, keypoints2d: np.ndarray, confidence: np.ndarray,
                options: TrackOptions) -> np.ndarray:
    """Root-relative 3D [N, 17, 3] of N unrelated people (photos), each lifted as a one-frame sequence."""
    out = np.zeros((len(keypoints2d), NUM_JOINTS, 3), np.float32)
    for i, (kp, conf) in enumerate(zip(keypoints2d, confidence)):
        k3 = lift_sequence(model, kp[None], conf[None], flip=options.flip, device=options.device,
                           upright=options.upright)[0]
        out[i] = k3 - k3[:1]
    return out
