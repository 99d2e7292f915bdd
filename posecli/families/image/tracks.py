"""The image family's stage of `posecli infer`: tracked 2D boxes -> crops -> 2D + 3D per track.

Where the lifter lifts each track's 2D keypoints, an image-family model looks at the pixels: the
video is decoded a second time at full resolution, each tracked person is cropped around its
(gap-filled, smoothed) detector keypoints with posecli.data.crops.extract_crop, and the model's
2D (mapped back to the frame through the crop's affine) and root-relative 3D (predict_crops)
replace the detector's. The result has the lifter's TrackPoses layout, so outputs, viewer and
rendering are shared.
"""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from posecli.data.crops import extract_crop
from posecli.families.image.predict import predict_crops
from posecli.families.tracks import (
    Clock,
    TrackInput,
    TrackOptions,
    TrackPoses,
    bridge,
    smooth_poses,
    smooth_runs,
)
from posecli.skeleton import NUM_JOINTS


def predict_tracks(model: nn.Module, tracks: TrackInput, options: TrackOptions, clock: Clock) -> TrackPoses:
    """Crop and predict every present frame of every track (see module docstring)."""
    runs = bridge(tracks, options.max_gap)
    with clock.timed("smooth"):
        boxes = smooth_runs(runs.keypoints2d, runs, options.fps, options.smooth)
    f, p = tracks.num_frames, tracks.num_tracks
    kp2 = np.full((f, p, NUM_JOINTS, 2), np.nan, np.float32)
    kp3 = np.full((f, p, NUM_JOINTS, 3), np.nan, np.float32)
    size = int(model.input_size)
    with clock.task("lift", f):
        for i, frame in enumerate(tracks.frames(f)):
            people = np.flatnonzero(runs.valid[i])
            if len(people):
                t1 = time.perf_counter()
                cut = [extract_crop(frame, boxes[i, t], runs.confidence[i, t], size) for t in people]
                out = predict_crops(model, [c for c, _ in cut], np.stack([a for _, a in cut]),
                                    flip=options.flip or None, device=options.device)
                kp2[i, people], kp3[i, people] = out["keypoints2d"], out["keypoints3d"]
                clock.add("lift", time.perf_counter() - t1)
            clock.advance()
    with clock.timed("smooth"):
        kp3 = smooth_poses(kp3, runs, options.fps, options.smooth)
    return TrackPoses(kp2, runs.confidence, kp3, runs.valid, runs.interpolated)
