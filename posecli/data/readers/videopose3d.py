"""VideoPose3D's dataset npz layout, shared by Human3.6M and HumanEva.

`data_3d_<name>.npz` holds a pickled dict `positions_3d[subject][action]` of world-frame metres;
`data_2d_<name>_<detector>.npz` holds `positions_2d[subject][action]` = one [T, J, 2] pixel array
per camera plus `metadata` (`layout_name`, ...). With each subject's calibrated cameras this gives
one sequence per (subject, action, camera), 3D in that camera's frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from posecli.data.cameras import Camera, world_to_camera
from posecli.data.readers._files import load_npz
from posecli.data.records import PrepareOptions, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m, get_layout

# world [T, K, 3] -> (H36M-17 keypoints, confidence)
ToH36M = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# (camera-frame H36M-17 3D [T, 17, 3], camera) -> pixels [T, 17, 2]
Projector = Callable[[np.ndarray, Camera], np.ndarray]


def split_subjects(options: PrepareOptions, splits: dict[str, tuple[str, ...]], dataset: str) -> set[str] | None:
    """Subjects to keep (None = all): `options.subjects` wins over `options.split`."""
    if options.subjects:
        return set(options.subjects)
    if options.split == "all":
        return None
    if options.split not in splits:
        raise PoseCliError(f"{dataset} split must be one of {', '.join([*splits, 'all'])}, got '{options.split}'")
    return set(splits[options.split])


def expand_inputs(inputs: list[Path], pattern: str) -> list[Path]:
    """Files given directly, plus those matching `pattern` in given folders."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(item.glob(pattern)))
        elif item.is_file():
            files.append(item)
        else:
            raise PoseCliError("input not found", item)
    return files


def _unwrap(value: np.ndarray) -> object:
    return value.item() if value.dtype == object and value.shape == () else value


def load_pickled_npz(path: Path, key: str, allow_pickle: bool) -> tuple[object, dict]:
    """The pickled object under `key` (and the other entries) of a VideoPose3D-style npz."""
    if not allow_pickle:
        raise PoseCliError(f"'{key}' is a pickled Python object; pass --allow-pickle if you trust this file", path)
    data = load_npz(path, allow_pickle=True)
    if key not in data:
        raise PoseCliError(f"npz has no '{key}' entry (has: {', '.join(data)})", path)
    others = {k: _unwrap(v) for k, v in data.items() if k != key}
    value = _unwrap(data[key])
    if key.startswith("positions") and not isinstance(value, dict):
        raise PoseCliError(f"'{key}' is not a subject -> action -> array dict", path)
    return value, others


def find_2d(path3d: Path, files: list[Path], dataset: str, detector: str | None) -> Path | None:
    """The 2D file: one given among the inputs, else `data_2d_<dataset>_<detector>.npz` beside the 3D."""
    given = [p for p in files if p.name.startswith("data_2d_")]
    if given:
        return given[0]
    if detector:
        candidate = path3d.parent / f"data_2d_{dataset}_{detector}.npz"
        if not candidate.is_file():
            raise PoseCliError(f"2D keypoints for --detector {detector} not found", candidate)
        return candidate
    return None


def load_2d(path2d: Path, allow_pickle: bool, default_layout: str) -> tuple[dict, str]:
    """`positions_2d` and the layout name from its metadata."""
    poses2d, others = load_pickled_npz(path2d, "positions_2d", allow_pickle)
    meta = others.get("metadata", {})
    name = str(meta.get("layout_name", default_layout)) if isinstance(meta, dict) else default_layout
    with naming(path2d):
        return poses2d, get_layout(name).name


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Pin errors raised without a file (layout and calibration look-ups) on the file being read."""
    try:
        yield
    except PoseCliError as exc:
        if exc.path is not None:
            raise
        raise PoseCliError(str(exc), path) from None
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise PoseCliError(f"unexpected content ({exc.__class__.__name__}: {str(exc)[:160]})", path) from None


def camera_records(
    positions: dict, cameras: Callable[[str], list[Camera]], to_h36m: ToH36M, *, keep: set[str] | None,
    fps: float, poses2d: dict | None, layout2d: str, project2d: Projector | None, dropped: Counter,
    path: Path,
) -> list[SequenceRecord]:
    """One record per (subject, action, camera): 3D in the camera frame, 2D from `poses2d` (trimmed
    to the shorter of 2D and 3D, as VideoPose3D does) or from `project2d`."""
    with naming(path):
        return _camera_records(positions, cameras, to_h36m, keep=keep, fps=fps, poses2d=poses2d,
                               layout2d=layout2d, project2d=project2d, dropped=dropped, path=path)


def _camera_records(
    positions: dict, cameras: Callable[[str], list[Camera]], to_h36m: ToH36M, *, keep: set[str] | None,
    fps: float, poses2d: dict | None, layout2d: str, project2d: Projector | None, dropped: Counter,
    path: Path,
) -> list[SequenceRecord]:
    records = []
    for subject in sorted(positions):
        if keep is not None and subject not in keep:
            continue
        if not isinstance(positions[subject], dict):
            raise PoseCliError(f"'{subject}' is not an action -> array dict", path)
        for action in sorted(positions[subject]):
            world = np.asarray(positions[subject][action], dtype=np.float64)
            if world.ndim != 3 or world.shape[-1] != 3:
                raise PoseCliError(f"{subject}/{action}: expected [T, J, 3] positions, got {world.shape}", path)
            kp_world, conf3d = to_h36m(world)
            for c, cam in enumerate(cameras(subject)):
                kp3d = world_to_camera(kp_world.astype(np.float64), cam.R, cam.t).astype(np.float32)
                kp3d[conf3d <= 0] = 0.0
                if poses2d is not None:
                    try:
                        det = np.asarray(poses2d[subject][action][c], dtype=np.float32)
                    except (KeyError, IndexError, TypeError):
                        dropped["camera views without 2D keypoints"] += 1
                        continue
                    t = min(len(det), len(kp3d))
                    dropped["frames beyond the shorter of 2D and 3D"] += abs(len(det) - len(kp3d))
                    kp2d, conf = convert_to_h36m(det[:t, :, :2], None, layout2d)
                    conf = np.minimum(conf, conf3d[:t])
                    kp3d = kp3d[:t]
                elif project2d is not None:
                    kp2d, conf = project2d(kp3d, cam).astype(np.float32), conf3d
                    kp2d[conf <= 0] = 0.0
                else:
                    raise PoseCliError("this dataset needs a 2D keypoint file (data_2d_*.npz)", path)
                records.append(SequenceRecord(
                    keypoints2d=kp2d, confidence=conf.astype(np.float32), keypoints3d=kp3d,
                    subject=subject, action=action, camera=cam.name,
                    intrinsics=None if np.isnan(cam.intrinsics).any() else cam.intrinsics,
                    image_size=(float(cam.image_size[0]), float(cam.image_size[1])), fps=fps))
    return records
