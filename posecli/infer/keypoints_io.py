"""Users' own 2D keypoints for `posecli infer --keypoints`, instead of running the detector.

Accepted (see docs/inference.md):
- COCO results JSON: a list of {image_id, keypoints: [x, y, score]*K, score?}; or a COCO annotation
  file (dict with "annotations"). The frame is `image_id` (int, 0-based) or the last number in a
  string id such as "000012.jpg" (AlphaPose writes those).
- Halpe / AlphaPose JSON: the same list layout with K = 26 or 136 (also COCO-WholeBody K = 133);
  their first 17 points are the COCO-17 body, which is what posecli uses.
- OpenPose: a folder of per-frame `*_keypoints.json` files ({"people": [{"pose_keypoints_2d": ...}]}),
  BODY_25 or COCO-18, frames in file-name order.
- posecli NPZ: `keypoints2d` [F, P, J, 2] or [F, J, 2], optional `confidence`, optional `skeleton`
  (a posecli.skeleton layout name, default h36m17); `poses.npz` written by `posecli infer` works.
All of them become, per frame, a list of H36M-17 Detections. Given the video's frame count, a
file that reaches past the video's last frame is refused (it belongs to another video or was cut
differently: trim it to the video first); frames the file does not cover have nobody in them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from posecli.data.readers._files import load_json, load_npz
from posecli.errors import PoseCliError
from posecli.limits import MAX_FRAMES
from posecli.skeleton import get_layout
from posecli.infer.detector import Detection, detection_from_layout

# Points per person -> how many leading points are the COCO-17 body.
_COCO_LIKE = {17: "COCO-17", 26: "Halpe-26", 133: "COCO-WholeBody-133", 136: "Halpe-136"}
# OpenPose layouts reordered to COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
_OPENPOSE_TO_COCO = {
    25: ("BODY_25", [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]),
    18: ("COCO-18", [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]),
}


def read_keypoints(path: str | Path, video_frames: int | None = None) -> list[list[Detection]]:
    """Read a keypoints file or OpenPose folder into per-frame H36M-17 detections; with
    `video_frames`, exactly that many frames (a file reaching past the video is refused)."""
    path = Path(path)
    limit = MAX_FRAMES if video_frames is None or video_frames <= 0 else int(video_frames)
    if path.is_dir():
        frames = _read_openpose(path, limit, video_frames)
    elif not path.is_file():
        raise PoseCliError("keypoints file not found", path)
    elif path.suffix.lower() == ".npz":
        frames = _read_npz(path, limit, video_frames)
    elif path.suffix.lower() == ".json":
        frames = _read_coco_like(path, load_json(path), limit, video_frames)
    else:
        raise PoseCliError("unknown keypoints format (expected .json, .npz or an OpenPose folder)", path)
    if video_frames:
        frames += [[] for _ in range(video_frames - len(frames))]
    return frames


def _too_long(frames: int, limit: int, video_frames: int | None, path: Path) -> PoseCliError:
    if video_frames:
        return PoseCliError(f"keypoints cover {frames:,} frames but the video has {video_frames:,}: "
                            "not this video's keypoints? (trim the file to the video)", path)
    return PoseCliError(f"keypoints cover {frames:,} frames, over the limit of {limit:,}", path)


def _frame_of(image_id, path: Path) -> int:
    if isinstance(image_id, bool) or not isinstance(image_id, (int, float, str)):
        raise PoseCliError(f"image_id {image_id!r} is not a frame number", path)
    if isinstance(image_id, float):
        if not (np.isfinite(image_id) and image_id == int(image_id)):
            raise PoseCliError(f"image_id {image_id!r} is not a whole frame number", path)
        image_id = int(image_id)
    if isinstance(image_id, int):
        if image_id < 0:
            raise PoseCliError(f"negative image_id {image_id}", path)
        return image_id
    numbers = re.findall(r"\d+", Path(image_id).stem)
    if not numbers:
        raise PoseCliError(f"image_id '{image_id}' has no frame number", path)
    return int(numbers[-1])


def _person(flat, path: Path, where: str, table: dict) -> Detection:
    if not isinstance(flat, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             or v is None for v in flat):
        raise PoseCliError(f"{where}: keypoints must be a flat list of numbers (x, y, score triples)", path)
    values = np.asarray([np.nan if v is None else v for v in flat], dtype=np.float64)
    if values.ndim != 1 or len(values) % 3:
        raise PoseCliError(f"{where}: keypoints must be a flat list of x, y, score triples", path)
    k = len(values) // 3
    if k not in table:
        known = ", ".join(f"{n * 3} ({name})" for n, name in
                          ((n, v if isinstance(v, str) else v[0]) for n, v in table.items()))
        raise PoseCliError(f"{where}: {len(values)} keypoint values per person; expected {known}", path)
    pts = values.reshape(k, 3)
    if isinstance(table[k], tuple):
        pts = pts[table[k][1]]
    pts = pts[:17]
    conf = np.clip(np.nan_to_num(pts[:, 2]), 0.0, 1.0)
    conf[~np.isfinite(pts[:, :2]).all(axis=1)] = 0.0
    return detection_from_layout(np.nan_to_num(pts[:, :2]).astype(np.float32), conf.astype(np.float32), "coco17")


def _read_coco_like(path: Path, data, limit: int, video_frames: int | None) -> list[list[Detection]]:
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
        if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
            raise PoseCliError("'annotations' must be a list of {image_id, keypoints} objects", path)
        data = [a for a in data if not isinstance(a.get("num_keypoints", 1), (int, float))
                or a.get("num_keypoints", 1) > 0]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise PoseCliError("expected a COCO/Halpe results list of {image_id, keypoints} objects", path)
    for i, entry in enumerate(data):
        if "keypoints" not in entry or "image_id" not in entry:
            raise PoseCliError(f"entry {i} lacks 'image_id' or 'keypoints'", path)
    frames = [_frame_of(entry["image_id"], path) for entry in data]
    if frames and max(frames) >= limit:                 # checked before any per-frame list exists
        raise _too_long(max(frames) + 1, limit, video_frames, path)
    people: dict[int, list[Detection]] = {}
    for i, (entry, frame) in enumerate(zip(data, frames)):
        people.setdefault(frame, []).append(_person(entry["keypoints"], path, f"entry {i}", _COCO_LIKE))
    if not people:
        raise PoseCliError("no people in keypoints file", path)
    return [people.get(f, []) for f in range(max(people) + 1)]


def _read_openpose(folder: Path, limit: int, video_frames: int | None) -> list[list[Detection]]:
    files = sorted(folder.glob("*_keypoints.json")) or sorted(folder.glob("*.json"))
    if not files:
        raise PoseCliError("no OpenPose *_keypoints.json files in folder", folder)
    if len(files) > limit:
        raise _too_long(len(files), limit, video_frames, folder)
    frames = []
    for file in files:
        data = load_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list) \
                or not all(isinstance(p, dict) for p in data["people"]):
            raise PoseCliError("not an OpenPose frame file (no 'people' list of objects)", file)
        frames.append([_person(p.get("pose_keypoints_2d", []), file, f"person {i}", _OPENPOSE_TO_COCO)
                       for i, p in enumerate(data["people"])])
    return frames


def _read_npz(path: Path, limit: int, video_frames: int | None) -> list[list[Detection]]:
    arrays = load_npz(path)
    if "keypoints2d" not in arrays:
        raise PoseCliError("NPZ has no 'keypoints2d' array", path)
    if arrays["keypoints2d"].dtype.kind not in "fiu" or arrays.get("confidence", np.ones(1)).dtype.kind not in "fiu":
        raise PoseCliError("keypoints2d and confidence must be numeric arrays", path)
    if arrays["keypoints2d"].ndim in (3, 4) and len(arrays["keypoints2d"]) > limit:
        raise _too_long(len(arrays["keypoints2d"]), limit, video_frames, path)
    kp = arrays["keypoints2d"].astype(np.float32)
    if kp.ndim == 3:
        kp = kp[:, None]
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise PoseCliError(f"keypoints2d must be [F, P, J, 2] or [F, J, 2], got {arrays['keypoints2d'].shape}", path)
    conf = arrays.get("confidence", np.ones(kp.shape[:-1], np.float32)).astype(np.float32)
    if conf.size != np.prod(kp.shape[:-1]):
        raise PoseCliError(f"confidence {conf.shape} does not match keypoints2d {arrays['keypoints2d'].shape}", path)
    conf = conf.reshape(kp.shape[:-1])
    usable = np.isfinite(kp).all(axis=-1) & np.isfinite(conf)
    conf = np.where(usable, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0).astype(np.float32)
    layout = str(arrays["skeleton"]) if "skeleton" in arrays else "h36m17"
    try:
        expected = get_layout(layout).num_joints
    except PoseCliError as exc:
        raise PoseCliError(str(exc), path) from None
    if kp.shape[2] != expected:
        raise PoseCliError(f"layout {layout} has {expected} joints, got keypoints2d of shape "
                           f"{arrays['keypoints2d'].shape}", path)
    frames = []
    for f in range(kp.shape[0]):
        frames.append([detection_from_layout(np.nan_to_num(kp[f, p]), conf[f, p], layout)
                       for p in range(kp.shape[1]) if (conf[f, p] > 0).any()])
    return frames
