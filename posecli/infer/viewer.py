"""viewer.html: a self-contained page (inline JS canvas, no network) to orbit the 3D poses in time.

The template ships as package data (posecli/infer/viewer.html); the poses are embedded as JSON in
place of its `/*POSECLI_DATA*/null` marker, so the file works from disk and can be mailed around.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from posecli.infer.outputs import PoseSequence
from posecli.infer.render import BONE_COLORS, bone_colors
from posecli.skeleton import H36M_BONES

MARKER = "/*POSECLI_DATA*/null"


def _per_frame(points: np.ndarray, valid: np.ndarray) -> list:
    rounded = np.round(points.astype(np.float64), 3)
    return [rounded[f].tolist() if valid[f] else None for f in range(len(points))]


def world_view_points(keypoints_world: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, float]:
    """World poses [F, P, 17, 3] in the page's y-down axes, centred on the whole trajectory with the
    floor 0.9 m below the centre (where the page draws its grid), and the grid's half side (m)."""
    from posecli.infer.render import world_view

    centres, side = world_view(keypoints_world, valid, follow=False)
    view = (keypoints_world.astype(np.float64) - centres[0]) * np.array([1.0, -1.0, -1.0])
    return view, side / 2.0


def viewer_data(poses: PoseSequence, title: str, video: str | None = None, world=None) -> dict:
    """The JSON the page reads: per track, its bone colours (render.mp4's) and a [17, 3] pose
    (mm-rounded metres) or null per frame; `video` is a path relative to the page, played beside
    the 3D view and driving its frame index; with `world` (posecli.infer.world.WorldPoses) the same
    poses in the world frame plus the floor size."""
    tracks = [{"id": int(tid), "bone_colors": ["#%02x%02x%02x" % c for c in bone_colors(p)],
               "poses": _per_frame(poses.keypoints3d[:, p], poses.valid[:, p])}
              for p, tid in enumerate(poses.track_ids.tolist())]
    data = {"title": title, "fps": float(poses.fps) or 30.0, "num_frames": poses.num_frames,
            "bones": [list(b) for b in H36M_BONES],
            "bone_colors": ["#%02x%02x%02x" % c for c in BONE_COLORS], "video": video, "tracks": tracks}
    if world is not None:
        view, half = world_view_points(world.keypoints3d_world, poses.valid)
        for p, track in enumerate(tracks):
            track["world"] = _per_frame(view[:, p], poses.valid[:, p])
        data["floor"] = round(half, 2)
    return data


def render_viewer(poses: PoseSequence, title: str = "posecli", video: str | None = None, world=None) -> str:
    template = resources.files("posecli.infer").joinpath("viewer.html").read_text(encoding="utf-8")
    payload = json.dumps(viewer_data(poses, title, video, world), separators=(",", ":"))
    payload = payload.replace("</", "<\\/")     # a title can never close the <script> element
    return template.replace(MARKER, payload, 1)


def write_viewer(path: Path, poses: PoseSequence, title: str = "posecli", video: str | None = None,
                 world=None) -> None:
    Path(path).write_text(render_viewer(poses, title, video, world), encoding="utf-8")


def relative_video(video: Path, out_dir: Path) -> str:
    """The video as the page in `out_dir` reaches it: a relative URL path (POSIX separators)."""
    return Path(os.path.relpath(Path(video).resolve(), Path(out_dir).resolve())).as_posix()
