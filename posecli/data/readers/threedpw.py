"""3DPW sequence files (sequenceFiles/<split>/<sequence>.pkl, Python pickles: need --allow-pickle).

Each file holds, per actor, `jointPositions` [T, 72] (SMPL-24 joints, world metres) and
`poses2d` [T, 3, 18] (OpenPose/COCO-18 detections x, y, confidence), plus per image frame
`cam_poses` [T, 4, 4] (world -> camera, OpenCV axes) and `cam_intrinsics` [3, 3], and per actor
`campose_valid` [T] (frames whose camera pose was aligned to the image). Each actor becomes one
record per run of consecutive valid frames: 3D in the (moving) camera frame; 2D is the pinhole
projection of those joints (consistent with the 3D), or with `--detector poses2d` the dataset's
2D detections (COCO joints, not the SMPL joints). Splits come from the train/validation/test
folders. Images are 30 Hz; the image size is not stored in the files.
"""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np

from posecli.data.cameras import project
from posecli.data.readers.videopose3d import expand_inputs
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m, get_layout

FPS = 30.0
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
# OpenPose COCO-18 (nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip, r_knee, r_ank,
# l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear) -> COCO-17 order.
OPENPOSE18_TO_COCO17 = np.array([0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10])
REQUIRED = ("sequence", "jointPositions", "cam_poses", "cam_intrinsics")


def load_sequence_file(path: Path, allow_pickle: bool) -> dict:
    if not allow_pickle:
        raise PoseCliError("3DPW sequence files are Python pickles; pass --allow-pickle if you trust them", path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise PoseCliError(f"cannot unpickle 3DPW sequence file ({exc.__class__.__name__})", path) from None
    missing = [k for k in REQUIRED if not isinstance(data, dict) or k not in data]
    if missing:
        raise PoseCliError(f"not a 3DPW sequence file: missing {', '.join(missing)}", path)
    return data


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True values."""
    padded = np.concatenate([[False], valid.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _split_of(path: Path) -> str | None:
    folders = {p.name for p in path.parents}
    return next((s for s, folder in SPLIT_FOLDERS.items() if folder in folders), None)


def sequence_records(data: dict, path: Path, use_detections: bool, dropped: Counter) -> list[SequenceRecord]:
    name = str(data["sequence"])
    k = np.asarray(data["cam_intrinsics"], dtype=np.float64)
    intrinsics = np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], dtype=np.float32)
    cam_poses = np.asarray(data["cam_poses"], dtype=np.float64)
    records = []
    for actor, joints in enumerate(data["jointPositions"]):
        world = np.asarray(joints, dtype=np.float64).reshape(len(joints), 24, 3)
        if len(world) != len(cam_poses):
            raise PoseCliError(f"actor {actor}: {len(world)} poses but {len(cam_poses)} camera poses", path)
        cam = np.einsum("tij,tkj->tki", cam_poses[:, :3, :3], world) + cam_poses[:, None, :3, 3]
        kp3d, conf = convert_to_h36m(cam, None, "smpl24")
        if use_detections:
            det = np.asarray(data["poses2d"][actor], dtype=np.float64).transpose(0, 2, 1)[:, OPENPOSE18_TO_COCO17]
            kp2d, conf2d = convert_to_h36m(det[..., :2], det[..., 2], "coco17")
            conf = np.minimum(conf, conf2d)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):   # missing joints are 0: masked below
                kp2d = project(kp3d, intrinsics).astype(np.float32)
            kp2d[conf <= 0] = 0.0
        flags = data.get("campose_valid")
        valid = np.ones(len(world), bool) if flags is None else np.asarray(flags[actor], bool).copy()
        valid &= kp3d[:, 0, 2] > 0
        dropped["frames without a valid camera pose"] += int((~valid).sum())
        for a, b in valid_runs(valid):
            records.append(SequenceRecord(
                keypoints2d=kp2d[a:b].astype(np.float32), confidence=conf[a:b].astype(np.float32),
                keypoints3d=kp3d[a:b].astype(np.float32), subject=f"{name}/actor{actor}",
                action=name.rsplit("_", 1)[0], camera="phone", intrinsics=intrinsics, fps=FPS,
                frame_names=[f"{name}/image_{i:05d}.jpg" for i in range(a, b)]))
    return records


def read_3dpw(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """`posecli prepare 3dpw`: see the module docstring."""
    if options.split not in (*SPLIT_FOLDERS, "all"):
        raise PoseCliError(f"3dpw split must be train, val, test or all, got '{options.split}'")
    if options.detector not in (None, "poses2d"):
        raise PoseCliError(f"3dpw --detector must be 'poses2d' (the dataset's 2D detections), got '{options.detector}'")
    files = [p for p in expand_inputs(inputs, "**/*.pkl") if p.suffix == ".pkl"]
    if not files:
        raise PoseCliError("no 3DPW sequence files (.pkl) among the inputs")
    keep = [p for p in files if options.split == "all" or _split_of(p) in (None, options.split)]
    records: list[SequenceRecord] = []
    dropped: Counter = Counter()
    for path in keep:
        data = load_sequence_file(path, options.allow_pickle)
        if options.subjects and str(data["sequence"]) not in options.subjects:
            continue
        records.extend(sequence_records(data, path, options.detector == "poses2d", dropped))
    layout = get_layout("smpl24")
    status = layout.status if options.detector is None else np.maximum(layout.status, get_layout("coco17").status)
    return ReaderResult(records=records, dataset="3dpw", source_layout=layout.name, joint_status=status,
                        sources=keep, dropped=dropped,
                        notes=["2D: " + ("dataset detections (poses2d)" if options.detector else "projection of SMPL joints")])
