"""The arrays `posecli infer` produces and the files it writes from them (NPZ, JSON, CSV).

Conventions (docs/inference.md): 2D in image pixels, 3D in metres, root-relative (pelvis = 0),
camera frame (x right, y down, z forward), H36M-17 joint order. A frame where a track is missing
(not detected and not bridged by interpolation) has `valid` False, confidence 0 and NaN keypoints.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli import __version__
from posecli.infer.track import Tracks
from posecli.skeleton import H36M_BONES, H36M_JOINTS


@dataclass
class PoseSequence(Tracks):
    """Tracks after gap filling and lifting, as written to disk."""

    keypoints3d: np.ndarray    # float32 [F, P, 17, 3] metres root-relative, NaN where not valid
    valid: np.ndarray          # bool [F, P]: detected or interpolated
    interpolated: np.ndarray   # bool [F, P]: filled across a short gap
    fps: float
    image_size: tuple[int, int]  # (width, height)
    # keypoints2d: NaN where not valid; confidence: 0 where not valid (fields of Tracks)


def write_npz(path: Path, poses: PoseSequence, extra: dict[str, np.ndarray] | None = None) -> None:
    """poses.npz; `extra` adds arrays (the world frame: root_camera, keypoints3d_world, contact, camera_*),
    and `detector_world3d` [F, P, 17, 3] (the detector's own metric 3D, for comparisons only) is
    there when the detector gives one."""
    extra = dict(extra or {})
    if poses.world3d is not None:
        extra["detector_world3d"] = poses.world3d
    with open(path, "wb") as f:
        np.savez_compressed(
            f,
            keypoints2d=poses.keypoints2d, confidence=poses.confidence, keypoints3d=poses.keypoints3d,
            valid=poses.valid, interpolated=poses.interpolated, track_ids=poses.track_ids,
            frame_index=np.arange(poses.num_frames, dtype=np.int64), fps=np.float64(poses.fps),
            image_size=np.asarray(poses.image_size, dtype=np.int64), skeleton=np.str_("h36m17"),
            joints=np.asarray(H36M_JOINTS), units=np.str_("keypoints2d: pixels; keypoints3d: metres, "
                                                          "root-relative, camera frame (x right, y down, z forward)"),
            **extra,
        )


def _rounded(a: np.ndarray, digits: int) -> list:
    return np.round(a.astype(np.float64), digits).tolist()


def poses_to_json(poses: PoseSequence) -> dict:
    """A JSON-friendly dict: per track, only its valid frames."""
    tracks = []
    for p, tid in enumerate(poses.track_ids.tolist()):
        frames = np.flatnonzero(poses.valid[:, p])
        tracks.append({
            "id": int(tid),
            "frames": frames.tolist(),
            "interpolated": poses.interpolated[frames, p].tolist(),
            "keypoints2d": _rounded(poses.keypoints2d[frames, p], 2),
            "confidence": _rounded(poses.confidence[frames, p], 3),
            "keypoints3d": _rounded(poses.keypoints3d[frames, p], 4),
        })
    return {
        "posecli_version": __version__, "skeleton": "h36m17", "joints": list(H36M_JOINTS),
        "bones": [list(b) for b in H36M_BONES], "fps": poses.fps, "num_frames": poses.num_frames,
        "image_size": list(poses.image_size), "tracks": tracks,
    }


def write_json(path: Path, poses: PoseSequence) -> None:
    path.write_text(json.dumps(poses_to_json(poses), separators=(",", ":")), encoding="utf-8")


def write_track_csv(path: Path, poses: PoseSequence, track: int) -> None:
    """One row per valid frame and joint: frame, joint, x, y, conf, X, Y, Z."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "joint", "x", "y", "conf", "X", "Y", "Z"])
        for frame in np.flatnonzero(poses.valid[:, track]):
            kp2, conf, kp3 = (poses.keypoints2d[frame, track], poses.confidence[frame, track],
                              poses.keypoints3d[frame, track])
            for j, name in enumerate(H36M_JOINTS):
                writer.writerow([int(frame), name, f"{kp2[j, 0]:.2f}", f"{kp2[j, 1]:.2f}", f"{conf[j]:.3f}",
                                 f"{kp3[j, 0]:.4f}", f"{kp3[j, 1]:.4f}", f"{kp3[j, 2]:.4f}"])
