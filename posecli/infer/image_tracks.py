"""The image family's stage of `posecli infer`: tracked 2D boxes -> crops -> 2D + 3D per track.

Where the lifter lifts each track's 2D keypoints, an image-family model looks at the pixels: the
video is decoded a second time at full resolution, each tracked person is cropped around its
(gap-filled, smoothed) detector keypoints with posecli.data.crops.extract_crop, and the model's
2D (mapped back to the frame through the crop's affine) and root-relative 3D (posecli.predict_image)
replace the detector's. The result has the lifter path's PoseSequence layout, so outputs,
viewer and rendering are shared.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from posecli.data.crops import extract_crop
from posecli.infer.gaps import fill_gaps, present_frames, segments
from posecli.infer.outputs import PoseSequence
from posecli.infer.smooth import smooth_sequence
from posecli.infer.track import Tracks
from posecli.infer.video import iter_frames
from posecli.families.image.predict import predict_crops
from posecli.skeleton import NUM_JOINTS

if TYPE_CHECKING:
    from posecli.infer.pipeline import InferOptions, _Stages


def predict_tracks(video, tracks: Tracks, fps: float, image_size: tuple[int, int], model: nn.Module,
                   options: "InferOptions", progress: "_Stages") -> PoseSequence:
    """Crop and predict every present frame of every track (see module docstring)."""
    f, p = tracks.num_frames, tracks.num_tracks
    boxes = np.zeros((f, p, NUM_JOINTS, 2), np.float32)
    conf = np.zeros((f, p, NUM_JOINTS), np.float32)
    valid = np.zeros((f, p), bool)
    interp = np.zeros((f, p), bool)
    t0 = time.perf_counter()
    for t in range(p):
        k, c, interp[:, t] = fill_gaps(tracks.keypoints2d[:, t], tracks.confidence[:, t], options.max_gap)
        valid[:, t] = present_frames(c)
        for a, b in segments(valid[:, t]):
            boxes[a:b, t] = smooth_sequence(k[a:b], fps, options.smooth)
            conf[a:b, t] = c[a:b]
    progress.add("smooth", time.perf_counter() - t0)

    kp2 = np.full((f, p, NUM_JOINTS, 2), np.nan, np.float32)
    kp3 = np.full((f, p, NUM_JOINTS, 3), np.nan, np.float32)
    size = int(model.input_size)
    with progress.task("lift", f):
        for i, frame in enumerate(iter_frames(video, max_frames=f)):
            people = np.flatnonzero(valid[i])
            if len(people):
                t1 = time.perf_counter()
                cut = [extract_crop(frame, boxes[i, t], conf[i, t], size) for t in people]
                out = predict_crops(model, [c for c, _ in cut], np.stack([a for _, a in cut]),
                                    flip=options.flip or None, device=options.device)
                kp2[i, people], kp3[i, people] = out["keypoints2d"], out["keypoints3d"]
                progress.add("lift", time.perf_counter() - t1)
            progress.advance()
    t2 = time.perf_counter()
    for t in range(p):
        for a, b in segments(valid[:, t]):
            kp3[a:b, t] = smooth_sequence(kp3[a:b, t], fps, options.smooth)
            kp3[a:b, t] -= kp3[a:b, t, :1]
    progress.add("smooth", time.perf_counter() - t2)
    return PoseSequence(kp2, conf, tracks.track_ids, kp3, valid, interp & valid, fps, image_size,
                        world3d=tracks.world3d)
