"""viewer.html: a self-contained page (inline JS canvas, no network) to orbit the 3D poses in time.

The template ships as package data (posecli/infer/viewer.html); the poses are embedded as JSON in
place of its `/*POSECLI_DATA*/null` marker, so the file works from disk and can be mailed around.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from posecli.infer.outputs import PoseSequence
from posecli.infer.render import BONE_COLORS, bone_colors
from posecli.skeleton import H36M_BONES

MARKER = "/*POSECLI_DATA*/null"


def viewer_data(poses: PoseSequence, title: str) -> dict:
    """The JSON the page reads: per track, its bone colours (render.mp4's) and a [17, 3] pose
    (mm-rounded metres) or null per frame."""
    tracks = []
    for p, tid in enumerate(poses.track_ids.tolist()):
        rounded = np.round(poses.keypoints3d[:, p].astype(np.float64), 3)
        tracks.append({"id": int(tid), "bone_colors": ["#%02x%02x%02x" % c for c in bone_colors(p)],
                       "poses": [rounded[f].tolist() if poses.valid[f, p] else None
                                                 for f in range(poses.num_frames)]})
    return {"title": title, "fps": float(poses.fps) or 30.0, "num_frames": poses.num_frames,
            "bones": [list(b) for b in H36M_BONES],
            "bone_colors": ["#%02x%02x%02x" % c for c in BONE_COLORS], "tracks": tracks}


def render_viewer(poses: PoseSequence, title: str = "posecli") -> str:
    template = resources.files("posecli.infer").joinpath("viewer.html").read_text(encoding="utf-8")
    payload = json.dumps(viewer_data(poses, title), separators=(",", ":"))
    payload = payload.replace("</", "<\\/")     # a title can never close the <script> element
    return template.replace(MARKER, payload, 1)


def write_viewer(path: Path, poses: PoseSequence, title: str = "posecli") -> None:
    Path(path).write_text(render_viewer(poses, title), encoding="utf-8")
