"""mmpose's processed body-3D annotation npz (Human3.6M, MPI-INF-3DHP): frames -> sequences.

The file holds per frame `imgname`, `part` [N, J, 3] (pixels + visibility) and `S` [N, J, 4]
(camera-frame metres + visibility). Each dataset parses its own image names into
(subject, action, camera, frame number); frames sharing the first three become one sequence,
sorted by frame number.
"""

from __future__ import annotations

from collections.abc import Callable
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.readers._files import load_npz
from posecli.data.records import SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m, get_layout

REQUIRED_KEYS = ("imgname", "part", "S")
NameParser = Callable[[str], tuple[str, str, str, int]]
# (subject, action, camera) -> ((fx, fy, cx, cy), (width, height)), or None when unknown
CameraInfo = Callable[[str, str, str], "tuple[np.ndarray, tuple[int, int] | None] | None"]


@dataclass
class FrameGroup:
    subject: str
    action: str
    camera: str
    frames: np.ndarray          # int [T] frame numbers, sorted
    index: np.ndarray           # int [T] rows of the npz
    names: list[str]            # image names, same order


def is_mmpose_npz(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n.removesuffix(".npy") for n in archive.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return all(k in names for k in REQUIRED_KEYS)


def load_mmpose_npz(path: Path, num_joints: int) -> dict[str, np.ndarray]:
    """`imgname` [N] str, `part` [N, J, 3], `S` [N, J, 4] (checked, float64)."""
    data = load_npz(path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise PoseCliError(f"not an mmpose body-3D npz: missing {', '.join(missing)}", path)
    out = {k: data[k] for k in REQUIRED_KEYS}
    if out["imgname"].ndim != 1:
        raise PoseCliError(f"imgname must be a list of names, got shape {out['imgname'].shape}", path)
    n = len(out["imgname"])
    if out["part"].shape != (n, num_joints, 3) or out["S"].shape != (n, num_joints, 4):
        raise PoseCliError(f"expected part [N,{num_joints},3] and S [N,{num_joints},4], got "
                           f"{out['part'].shape} and {out['S'].shape}", path)
    out["imgname"] = np.asarray([str(s) for s in out["imgname"]])
    return out


def group_frames(names: np.ndarray, parse: NameParser, path: Path) -> list[FrameGroup]:
    """Group rows by (subject, action, camera) parsed from image names, sorted by frame number."""
    groups: dict[tuple[str, str, str], list[tuple[int, int, str]]] = {}
    for row, name in enumerate(names):
        try:
            subject, action, camera, frame = parse(name)
        except ValueError:
            raise PoseCliError(f"cannot parse subject/action/camera/frame from image name '{name}'", path) from None
        groups.setdefault((subject, action, camera), []).append((frame, row, name))
    out = []
    for (subject, action, camera), items in sorted(groups.items()):
        items.sort()
        out.append(FrameGroup(subject, action, camera, np.array([f for f, _, _ in items]),
                              np.array([r for _, r, _ in items]), [n for _, _, n in items]))
    return out


def group_fps(frames: np.ndarray, base_fps: float) -> float:
    """Frame rate of a group sampled every k-th frame of a base_fps video (0 if irregular)."""
    if len(frames) < 2:
        return base_fps
    steps = np.diff(frames)
    return base_fps / float(steps[0]) if (steps == steps[0]).all() and steps[0] > 0 else 0.0


def mmpose_records(path: Path, layout: str, parse: NameParser, keep: set[str] | None,
                   base_fps: float, camera_info: CameraInfo) -> list[SequenceRecord]:
    """Sequences (H36M-17) of an mmpose body-3D npz in `layout`, for the subjects in `keep`."""
    source = get_layout(layout)
    data = load_mmpose_npz(path, source.num_joints)
    records = []
    for g in group_frames(data["imgname"], parse, path):
        if keep is not None and g.subject not in keep:
            continue
        part, s = data["part"][g.index], data["S"][g.index]
        visible = ((part[..., 2] > 0) & (s[..., 3] > 0)).astype(np.float32)
        kp2d, conf = convert_to_h36m(part[..., :2], visible, source)
        kp3d, _ = convert_to_h36m(s[..., :3], visible, source)
        info = camera_info(g.subject, g.action, g.camera)
        records.append(SequenceRecord(
            keypoints2d=kp2d, confidence=conf, keypoints3d=kp3d,
            subject=g.subject, action=g.action, camera=g.camera,
            intrinsics=None if info is None else info[0],
            image_size=None if info is None or info[1] is None else (float(info[1][0]), float(info[1][1])),
            fps=group_fps(g.frames, base_fps), frame_names=g.names))
    return records
