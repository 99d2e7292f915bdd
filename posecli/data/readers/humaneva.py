"""HumanEva-I in VideoPose3D's npz layout (15 joints, `humaneva15`).

`data_3d_humaneva15.npz`: pickled `positions_3d[subject][action]` of [T, 15, 3] world metres with
subjects such as 'Train/S1' and 'Validate/S2'; `data_2d_humaneva15_gt.npz` (or another detector):
`positions_2d[subject][action]` = 3 cameras (C1, C2, C3) of [T, 15, 2] pixels. 3D is moved into
each camera's frame with the published extrinsics; HumanEva's intrinsics are not published in
this layout, so the 2D file is required and records carry no intrinsics.
Splits follow VideoPose3D: train = 'Train/S1..S3', test (or val) = 'Validate/S1..S3'. 60 Hz.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from posecli.data.cameras import Camera
from posecli.data.h36m_cameras import camera_from_quaternion
from posecli.data.readers.videopose3d import (camera_records, expand_inputs, find_2d, load_2d,
                                              load_pickled_npz, split_subjects)
from posecli.data.records import PrepareOptions, ReaderResult
from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m, get_layout

FPS = 60.0
LAYOUT = "humaneva15"
CAMERA_IDS = ("C1", "C2", "C3")
IMAGE_SIZE = (640, 480)
_TRAIN = tuple(f"Train/S{i}" for i in (1, 2, 3))
_VALIDATE = tuple(f"Validate/S{i}" for i in (1, 2, 3))
SPLITS = {"train": _TRAIN, "test": _VALIDATE, "val": _VALIDATE}

# Source: HumanEva-I calibration as published by VideoPose3D (facebookresearch/VideoPose3D,
# common/humaneva_dataset.py): per subject and camera C1..C3, the orientation quaternion (w, x, y, z,
# camera -> world) and the camera centre in world millimetres. S3 shares S1's calibration.
EXTRINSICS: dict[str, tuple[tuple[tuple[float, float, float, float], tuple[float, float, float]], ...]] = {
    "S1": (((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.227, 663.2477, 1528.397)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.67377, 3916.3174, 1433.6602))),
    "S2": (((0.4214752, -0.4961493, -0.5838273, 0.4851187), (4112.9121, 626.4929, 1545.2988)),
           ((0.6501393, -0.7476588, -0.0954617, 0.0959808), (923.5740, -3877.9243, 1504.5518)),
           ((0.0699353, -0.0712403, 0.7421637, -0.662742), (-781.4915, 3838.8853, 1444.9929))),
    "S3": (((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.2271, 663.2477, 1528.3970)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.6738, 3916.3174, 1433.6602))),
}


def subject_cameras(subject: str) -> list[Camera]:
    """Cameras of a VideoPose3D subject key such as 'Train/S1' (prefixes are ignored)."""
    base = subject.rsplit("/", 1)[-1]
    if base not in EXTRINSICS:
        raise PoseCliError(f"no HumanEva calibration for subject '{subject}' (known: S1, S2, S3)")
    unknown = np.full(4, np.nan, dtype=np.float32)
    return [camera_from_quaternion(camera_id, q, centre_mm, unknown.copy(), IMAGE_SIZE)
            for camera_id, (q, centre_mm) in zip(CAMERA_IDS, EXTRINSICS[base])]


def _to_h36m(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return convert_to_h36m(world, None, LAYOUT)


def read_humaneva(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """`posecli prepare humaneva`: see the module docstring."""
    files = expand_inputs(inputs, "data_*humaneva*.npz")
    path3d = next((p for p in files if not p.name.startswith("data_2d_")), None)
    if path3d is None:
        raise PoseCliError("no HumanEva 3D file among the inputs (need data_3d_humaneva15.npz)")
    path2d = find_2d(path3d, files, "humaneva15", options.detector or "gt")
    positions, _ = load_pickled_npz(path3d, "positions_3d", options.allow_pickle)
    poses2d, layout2d = load_2d(path2d, options.allow_pickle, LAYOUT)
    dropped: Counter = Counter()
    records = camera_records(positions, subject_cameras, _to_h36m, keep=split_subjects(options, SPLITS, "humaneva"),
                             fps=FPS, poses2d=poses2d, layout2d=layout2d, project2d=None, dropped=dropped,
                             path=path3d)
    status = np.maximum(get_layout(LAYOUT).status, get_layout(layout2d).status)
    return ReaderResult(records=records, dataset="humaneva", source_layout=LAYOUT, joint_status=status,
                        sources=[path3d, path2d], dropped=dropped, notes=[f"2D from {path2d.name}"])
