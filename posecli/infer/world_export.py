"""`posecli export bvh|trc|c3d POSES.npz` and `infer --bvh/--trc`: world-frame files per track.

A poses file is checked whole before anything is written: it must hold H36M-17 3D
(`keypoints3d` [F, P, 17, 3]) with tracks (`track_ids` [P], `valid` [F, P]). Its world frame is
taken from `keypoints3d_world` when infer wrote one, else computed here (posecli.infer.world) from
the 2D, the 3D and the camera intrinsics. Missing frames stay missing: TRC/C3D write blank markers,
BVH (which cannot hold a gap) refuses a track with interior gaps unless `fill_gaps` interpolates
them; frames before a track starts or after it ends are left out of its BVH.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.atomic import atomic_folder
from posecli.errors import PoseCliError
from posecli.infer.bvh_export import bvh_text, check_track, fit_skeleton
from posecli.infer.intrinsics import camera_intrinsics
from posecli.infer.markers import trc_text, write_c3d
from posecli.infer.world import locate
from posecli.skeleton import NUM_JOINTS

FORMATS = ("bvh", "trc", "c3d")
MAX_FRAMES = 10_000_000       # bounds a file's sizes before anything is allocated from them
MAX_TRACKS = 10_000


@dataclass
class PosesFile:
    """The arrays of a poses.npz that the exporters need."""

    path: Path
    keypoints2d: np.ndarray | None    # [F, P, 17, 2] pixels
    confidence: np.ndarray | None     # [F, P, 17]
    keypoints3d: np.ndarray           # [F, P, 17, 3] metres, root-relative, camera frame
    world: np.ndarray | None          # [F, P, 17, 3] keypoints3d_world when present
    valid: np.ndarray                 # [F, P]
    track_ids: np.ndarray             # [P]
    fps: float
    image_size: tuple[int, int] | None


def _array(data, key: str) -> np.ndarray | None:
    return np.asarray(data[key]) if key in data.files else None


def read_poses_file(path: str | Path) -> PosesFile:
    """Load and check a posecli poses.npz; every problem is one PoseCliError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PoseCliError("poses file not found", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            skeleton = str(data["skeleton"]) if "skeleton" in data.files else "h36m17"
            if skeleton != "h36m17":
                raise PoseCliError(f"poses are of the '{skeleton}' skeleton; export needs h36m17", path)
            kp3 = _array(data, "keypoints3d")
            if kp3 is None:
                raise PoseCliError("poses file has no 3D (keypoints3d); run `posecli infer` first", path)
            if kp3.ndim == 3:
                raise PoseCliError("poses file has no tracks (keypoints3d is [F, 17, 3], expected [F, P, 17, 3] "
                                   "with track_ids and valid)", path)
            if kp3.ndim != 4 or kp3.shape[2:] != (NUM_JOINTS, 3):
                raise PoseCliError(f"keypoints3d has shape {kp3.shape}, expected [F, P, {NUM_JOINTS}, 3] "
                                   "(H36M-17)", path)
            frames, tracks = kp3.shape[:2]
            if not 0 < frames <= MAX_FRAMES or not 0 < tracks <= MAX_TRACKS:
                raise PoseCliError(f"poses file has {frames} frames and {tracks} tracks", path)
            ids, valid = _array(data, "track_ids"), _array(data, "valid")
            if ids is None or valid is None:
                raise PoseCliError("poses file has no tracks (track_ids and valid are missing)", path)
            if ids.shape != (tracks,) or valid.shape != (frames, tracks):
                raise PoseCliError(f"track_ids {ids.shape} / valid {valid.shape} do not match keypoints3d "
                                   f"{kp3.shape}", path)
            kp2, conf, world = (_array(data, k) for k in ("keypoints2d", "confidence", "keypoints3d_world"))
            fps = float(data["fps"]) if "fps" in data.files else 0.0
            size = tuple(int(v) for v in data["image_size"]) if "image_size" in data.files else None
    except PoseCliError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise PoseCliError(f"not a readable poses npz ({exc})", path) from None
    if not np.isfinite(fps) or fps <= 0:
        raise PoseCliError(f"poses file has no usable fps ({fps})", path)
    valid = valid.astype(bool)
    kp3 = kp3.astype(np.float32)
    if not np.isfinite(kp3[valid]).all():
        raise PoseCliError("keypoints3d has NaN in frames marked valid", path)
    for name, arr, tail in (("keypoints2d", kp2, (NUM_JOINTS, 2)), ("confidence", conf, (NUM_JOINTS,)),
                            ("keypoints3d_world", world, (NUM_JOINTS, 3))):
        if arr is not None and arr.shape != (frames, tracks, *tail):
            raise PoseCliError(f"{name} has shape {arr.shape}, expected {(frames, tracks, *tail)}", path)
    kp3[~valid] = np.nan
    if world is not None:
        world = np.where(valid[..., None, None], world.astype(np.float32), np.nan)
    return PosesFile(path, kp2, conf, kp3, world, valid, ids.astype(np.int64), fps, size)


def world_positions(poses: PosesFile, *, focal: float | None = None, fov: float | None = None,
                    fix_feet: bool = False) -> np.ndarray:
    """[F, P, 17, 3] world positions: the file's own, or computed from its 2D, 3D and intrinsics."""
    if poses.world is not None and focal is None and fov is None and not fix_feet:
        return poses.world
    if poses.keypoints2d is None or poses.confidence is None or poses.image_size is None:
        raise PoseCliError("poses file has no keypoints3d_world and no 2D (keypoints2d, confidence, "
                           "image_size) to compute it from", poses.path)
    intrinsics, _ = camera_intrinsics(poses.image_size, focal=focal, fov=fov)
    confidence = np.where(poses.valid[..., None], poses.confidence, 0.0)
    return locate(poses.keypoints2d, confidence, poses.keypoints3d, intrinsics, poses.fps, poses.image_size,
                  fix_feet=fix_feet).keypoints3d_world


def interpolate_gaps(positions: np.ndarray) -> np.ndarray:
    """Linear interpolation over a track's interior missing frames ([F, 17, 3]); ends stay NaN."""
    out = np.array(positions, dtype=np.float32, copy=True)
    have = np.isfinite(out).all(axis=(-1, -2))
    frames = np.flatnonzero(have)
    if len(frames) < 2:
        return out
    inside = np.arange(frames[0], frames[-1] + 1)
    flat = out.reshape(len(out), -1)
    for k in range(flat.shape[1]):
        flat[inside, k] = np.interp(inside, frames, flat[frames, k])
    return out


def export_texts(positions: np.ndarray, track_ids: np.ndarray, fps: float, formats: tuple[str, ...], stem: str,
                 source: str | Path, fill_gaps: bool = False) -> dict[str, str | np.ndarray]:
    """File name -> BVH/TRC text (or C3D positions) for every track; raises before anything is written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PoseCliError(f"unknown export format '{unknown[0]}' (known: {', '.join(FORMATS)})")
    out: dict[str, str | np.ndarray] = {}
    for p, tid in enumerate(np.asarray(track_ids).tolist()):
        track = interpolate_gaps(positions[:, p]) if fill_gaps else positions[:, p]
        name = f"{stem}_track{tid:02d}"
        if "bvh" in formats:
            a, b = check_track(track, source, tid)
            out[f"{name}.bvh"] = bvh_text(fit_skeleton(track[a:b], fps))
        if "trc" in formats:
            out[f"{name}.trc"] = trc_text(track, fps, f"{name}.trc")
        if "c3d" in formats:
            out[f"{name}.c3d"] = track
    return out


def write_exports(folder: Path, files: dict[str, str | np.ndarray], fps: float) -> list[Path]:
    """Write the prepared files into `folder` (which must exist; callers make it atomic)."""
    written = []
    for name, content in files.items():
        target = folder / name
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            write_c3d(target, content, fps)
        written.append(target)
    return written


def export_poses(npz: str | Path, formats: tuple[str, ...], out_dir: str | Path | None = None, *,
                 focal: float | None = None, fov: float | None = None, fix_feet: bool = False,
                 fill_gaps: bool = False) -> list[Path]:
    """Read, check, convert every track, then move all files into `out_dir` at once."""
    poses = read_poses_file(npz)
    if "c3d" in formats:
        try:
            import ezc3d  # noqa: F401
        except ImportError:
            raise PoseCliError('C3D export needs the ezc3d package: pip install "posecli[c3d]"') from None
    positions = world_positions(poses, focal=focal, fov=fov, fix_feet=fix_feet)
    files = export_texts(positions, poses.track_ids, poses.fps, formats, poses.path.stem, poses.path, fill_gaps)
    out = Path(out_dir) if out_dir is not None else poses.path.parent
    with atomic_folder(out, merge=True) as tmp:
        write_exports(tmp, files, poses.fps)
    return [out / name for name in files]
