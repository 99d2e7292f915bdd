"""Human3.6M in VideoPose3D's npz layout or mmpose's annotation npz.

(a) VideoPose3D: `data_3d_h36m.npz` holds a pickled dict `positions_3d[subject][action]` of
[T, 32, 3] world metres; the 17 canonical joints are picked as VideoPose3D does. Each subject's
four calibrated cameras (posecli.data.h36m_cameras) give one sequence per camera in that camera's
frame. 2D comes from `data_2d_h36m_<detector>.npz` (`positions_2d[subject][action][camera]`,
pixels) when given, else from projecting the 3D with the camera's lens model, as Human3.6M's own
2D annotations are made. (b) mmpose: `imgname`/`part`/`S` per frame, grouped into sequences.

Default split: S1, S5, S6, S7, S8 train; S9, S11 test (the standard protocol).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from posecli.data.cameras import Camera
from posecli.data.h36m_cameras import CAMERA_IDS, h36m_camera, h36m_intrinsics, project_distorted
from posecli.data.readers.mmpose_npz import is_mmpose_npz, mmpose_records
from posecli.data.readers.videopose3d import (camera_records, expand_inputs, find_2d, load_2d,
                                              load_pickled_npz, split_subjects)
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import get_layout

FPS = 50.0
SPLITS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
# The 17 of Human3.6M's 32 points that VideoPose3D keeps (the others are static or duplicates).
KEEP_32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
_MMPOSE_NAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.\w+$")


def select_h36m17(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T, 32, 3] (or already [T, 17, 3]) -> canonical 17 joints, all observed."""
    if world.shape[1] == 32:
        world = world[:, KEEP_32_TO_17]
    elif world.shape[1] != 17:
        raise PoseCliError(f"Human3.6M positions need 32 or 17 joints, got {world.shape[1]}")
    return world, np.ones(world.shape[:2], dtype=np.float32)


def subject_cameras(subject: str) -> list[Camera]:
    return [h36m_camera(subject, camera_id) for camera_id in CAMERA_IDS]


def _project(kp3d: np.ndarray, cam: Camera) -> np.ndarray:
    return project_distorted(kp3d, cam.name)


def parse_mmpose_h36m_name(name: str) -> tuple[str, str, str, int]:
    """'S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg' -> (S1, Directions 1, 54138969, 1)."""
    m = _MMPOSE_NAME.match(Path(name).name)
    if m is None:
        raise ValueError(name)
    return m.group(1), m.group(2).replace("_", " "), m.group(3), int(m.group(4))


def _h36m_camera_info(subject: str, action: str, camera: str) -> tuple[np.ndarray, tuple[int, int]] | None:
    return h36m_intrinsics(camera) if camera in CAMERA_IDS else None


def read_h36m(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """`posecli prepare h36m`: see the module docstring."""
    files = expand_inputs(inputs, "*.npz")
    keep = split_subjects(options, SPLITS, "h36m")
    records: list[SequenceRecord] = []
    notes: list[str] = []
    dropped: Counter = Counter()
    sources: list[Path] = []
    layout = "h36m17"
    for path in files:
        if path.name.startswith("data_2d_"):
            continue
        if is_mmpose_npz(path):
            records.extend(mmpose_records(path, "h36m17", parse_mmpose_h36m_name, keep, FPS, _h36m_camera_info))
            sources.append(path)
            continue
        positions, _ = load_pickled_npz(path, "positions_3d", options.allow_pickle)
        path2d = find_2d(path, files, "h36m", options.detector)
        poses2d = None
        if path2d is not None:
            poses2d, layout = load_2d(path2d, options.allow_pickle, "h36m17")
            notes.append(f"2D from {path2d.name} (layout {layout})")
        else:
            notes.append("2D = projection of the 3D with the Human3.6M cameras (lens distortion included)")
        records.extend(camera_records(positions, subject_cameras, select_h36m17, keep=keep, fps=FPS,
                                      poses2d=poses2d, layout2d=layout, project2d=_project,
                                      dropped=dropped, path=path))
        sources.extend([path] + ([path2d] if path2d else []))
    if not sources:
        raise PoseCliError("no Human3.6M 3D file among the inputs (need data_3d_h36m.npz or an mmpose npz)")
    notes.append("subjects: " + ", ".join(sorted({r.subject for r in records}, key=lambda s: (len(s), s))))
    return ReaderResult(records=records, dataset="h36m", source_layout=layout,
                        joint_status=get_layout(layout).status, sources=sources, dropped=dropped, notes=notes)
