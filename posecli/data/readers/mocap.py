"""Motion capture (CMU positions npz, CMU expmap txt, BVH, ASF/AMC) seen by virtual cameras.

Mocap is 3D without images. Each sequence is converted to H36M-17 in its Y-up world, optionally
resampled, optionally given another rig's bone lengths (`--bone-lengths CACHE.h5`,
posecli.data.rig: one joint definition across rigs), centred on the floor under its mean pelvis, and filmed by `options.cameras` static
Human3.6M-like cameras at random azimuths (seeded by `options.seed` and the sequence name, so a
sequence gets the same views whatever else is prepared with it). Every (sequence, camera) becomes
one SequenceRecord with 3D in that camera's frame and its pinhole projection as 2D.

Splits follow Li et al. 2018: the npz key prefix (`train__...`) or the `train`/`test` folder of a
txt file, with one take per training action moved to a validation split (`--split val`,
posecli.data.splits). The CMU dance BVH release (salsa/martial/indian folders) has the fixed
train/val/test files of posecli.data.splits; other BVH files carry no split and are kept whatever
the split.

ASF/AMC files (CMU's native format, HDM05's) take their split from a `train`/`test` folder above
them; AMC files outside such folders carry none.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.cameras import project, random_virtual_cameras, world_to_camera
from posecli.data.readers._files import load_npz, require_finite
from posecli.data.readers.asf import AsfSkeleton, amc_fps, asf_motion, bvh_names, find_asf, read_amc, read_asf
from posecli.data.readers.bvh import read_bvh
from posecli.data.readers.expmap import ExpmapSkeleton, find_skeleton, load_skeleton, read_expmap_file
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.data.splits import bvh_split, li2018_split
from posecli.errors import PoseCliError
from posecli.geometry import retarget
from posecli.limits import check_frames
from posecli.skeleton import Layout, bvh_layout, convert_to_h36m, get_layout

CMU_FPS = 120.0                  # the Li 2018 files do not state it; CMU captures at 120 Hz
CMU_LAYOUT = "cmu38"
MIN_DEPTH_M = 0.5                # a view with any joint closer than this is dropped
# Metres per file unit, tried in this order when a BVH file does not say (it never does).
BVH_UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu-asf": 2.54 / 0.45 / 100.0}
TYPICAL_STATURE_M = 1.7
STATURE_RANGE_M = (0.1, 10.0)    # --units giving a subject outside this height is a wrong unit
MAX_FPS = 1000.0                 # --fps above this is a typo (and would allocate fps/120 x the frames)
_SUFFIXES = (".npz", ".txt", ".txt.gz", ".bvh", ".amc", ".json", ".asf")
_AUXILIARY = (".json", ".asf")   # skeleton files read on behalf of the motion files


@dataclass
class WorldSequence:
    """One mocap take in its own Y-up world frame, metres."""

    split: str                  # train / val / test / "" (unknown)
    action: str
    name: str
    positions: np.ndarray       # float [T, K, 3]
    fps: float
    layout: Layout
    source: Path


def _kind(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in _SUFFIXES if name.endswith(s)), "")


def _folder_split(path: Path) -> str:
    return next((p.name for p in path.parents if p.name in ("train", "test")), "")


def _amc_sequence(path: Path, skeleton: AsfSkeleton, units: float | None, notes: list[str]) -> WorldSequence:
    motion = asf_motion(skeleton, read_amc(path, skeleton), amc_fps(path))
    positions = motion.positions()
    if units is None:
        units = skeleton.metres_per_unit
        if units is None:
            unit_name, units = bvh_unit(positions)
            notes.append(f"{path.name}: ASF gives no length unit, guessed as {unit_name} ({units:g} m per unit)")
    layout = bvh_layout(bvh_names(motion.names), [j.parent for j in motion.joints], source=skeleton.source)
    return WorldSequence(_folder_split(path), path.parent.name, path.name[:-4], positions * units,
                         motion.fps, layout, path)


def collect_files(inputs: list[Path]) -> list[Path]:
    """Files of supported types among `inputs`, expanding folders recursively (sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and _kind(p))
            if not any(_kind(p) not in _AUXILIARY for p in found):
                raise PoseCliError("folder holds no mocap files (.npz, .txt(.gz), .bvh, .amc)", item)
            files.extend(found)
        elif item.is_file():
            if not _kind(item):
                raise PoseCliError("not a mocap file: expected .npz, .txt(.gz), .bvh, .amc or a skeleton "
                                   ".json/.asf", item)
            files.append(item)
        else:
            raise PoseCliError("input not found", item)
    return files


def _npz_sequences(path: Path) -> list[WorldSequence]:
    """CMU positions npz: keys `<split>__<action>__<name>`, [T, 38, 3] metres, first frame = rest pose."""
    layout = get_layout(CMU_LAYOUT)
    out = []
    for key, arr in load_npz(path).items():
        parts = key.split("__")
        if len(parts) != 3:
            raise PoseCliError(f"key '{key}' is not <split>__<action>__<name>", path)
        if arr.ndim != 3 or arr.shape[1:] != (layout.num_joints, 3) or arr.dtype.kind not in "fiu":
            raise PoseCliError(f"'{key}' has shape {arr.shape} ({arr.dtype}), expected [T, {layout.num_joints}, 3] "
                               "numbers", path)
        if len(arr) < 2:
            raise PoseCliError(f"'{key}' has no frames after its rest-pose frame", path)
        require_finite(arr.reshape(len(arr), -1), path, f"'{key}' frame")
        out.append(WorldSequence(li2018_split(parts[0], parts[2]), parts[1], parts[2], arr[1:], CMU_FPS, layout, path))
    return out


def _txt_sequence(path: Path, skeleton: ExpmapSkeleton) -> WorldSequence:
    parents = [p.name for p in path.parents]
    split = next((s for s in parents if s in ("train", "test")), "")
    name = path.name.removesuffix(".gz").removesuffix(".txt")
    positions = read_expmap_file(path, skeleton)
    return WorldSequence(li2018_split(split, name), path.parent.name, name, positions, CMU_FPS,
                         get_layout(CMU_LAYOUT), path)


def bvh_unit(positions: np.ndarray) -> tuple[str, float]:
    """Guess a BVH file's length unit from its subject's height (frame 0, file units)."""
    height = float(np.ptp(positions[0, :, 1])) or 1.0
    name = min(BVH_UNITS, key=lambda u: abs(np.log(height * BVH_UNITS[u] / TYPICAL_STATURE_M)))
    return name, BVH_UNITS[name]


def _bvh_sequence(path: Path, units: float | None, notes: list[str]) -> WorldSequence:
    motion = read_bvh(path)
    positions = motion.positions()
    if units is None:
        unit_name, units = bvh_unit(positions)
        notes.append(f"{path.name}: units guessed as {unit_name} ({units:g} m per unit)")
    else:
        height = float(np.ptp(positions[0, :, 1])) * units
        low, high = STATURE_RANGE_M
        if height > 0 and not low <= height <= high:
            guess = bvh_unit(positions)
            raise PoseCliError(f"--units {units:g} makes the subject {height:.3g} m tall (outside {low:g}..{high:g} m);"
                               f" the file looks like {guess[0]} ({guess[1]:g} m per unit)", path)
    fps = motion.fps
    fps = float(round(fps)) if abs(fps - round(fps)) < 0.01 else fps
    layout = bvh_layout(motion.names, [j.parent for j in motion.joints], source=path)
    return WorldSequence(bvh_split(path), path.parent.name, path.name.removesuffix(".bvh"), positions * units, fps,
                         layout, path)


def load_world_sequences(files: list[Path], units: float | None = None,
                         notes: list[str] | None = None) -> list[WorldSequence]:
    """Read every mocap file into world-frame sequences (expmap needs a skeleton JSON)."""
    notes = notes if notes is not None else []
    given = [p for p in files if _kind(p) == ".json"]
    given_asf = [p for p in files if _kind(p) == ".asf"]
    skeletons: dict[Path, ExpmapSkeleton] = {}
    asf_skeletons: dict[Path, AsfSkeleton] = {}
    sequences: list[WorldSequence] = []
    for path in files:
        kind = _kind(path)
        if kind == ".npz":
            sequences.extend(_npz_sequences(path))
        elif kind in (".txt", ".txt.gz"):
            skel_path = given[0] if given else find_skeleton(path)
            if skel_path is None:
                raise PoseCliError("expmap file needs its skeleton JSON: pass skeleton_cmu38.json as an "
                                   "input or keep it beside the raw_expmap_txt folder", path)
            if skel_path not in skeletons:
                skeletons[skel_path] = load_skeleton(skel_path)
            sequences.append(_txt_sequence(path, skeletons[skel_path]))
        elif kind == ".bvh":
            sequences.append(_bvh_sequence(path, units, notes))
        elif kind == ".amc":
            asf_path = find_asf(path, given_asf)
            if asf_path not in asf_skeletons:
                asf_skeletons[asf_path] = read_asf(asf_path)
            sequences.append(_amc_sequence(path, asf_skeletons[asf_path], units, notes))
    return sequences


def resample(positions: np.ndarray, fps_in: float, fps_out: float, source: Path | None = None) -> np.ndarray:
    """Linear interpolation of [T, ...] frames from fps_in to fps_out (first frame kept)."""
    t = positions.shape[0]
    n = int(np.floor((t - 1) * fps_out / fps_in + 1e-9)) + 1
    check_frames(n, source, f"resampling {t:,} frames from {fps_in:g} to {fps_out:g} Hz")
    src = np.arange(n) * (fps_in / fps_out)
    i0 = np.minimum(np.floor(src).astype(np.int64), t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (src - i0).reshape(-1, *([1] * (positions.ndim - 1)))
    return positions[i0] * (1 - w) + positions[i1] * w


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def film(world: np.ndarray, confidence: np.ndarray, n_cameras: int, rng: np.random.Generator
         ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]] | None]:
    """Film an H36M-17 world sequence [T, 17, 3] (Y-up metres) with random virtual cameras.

    The subject is centred horizontally on its mean pelvis with the floor (1st percentile of the
    lowest joint) at y = 0; cameras look at the mean pelvis height from H36M-like distances,
    pushed back by how far the pelvis wanders so that the subject stays in front of them.
    Returns per camera (name, keypoints3d [T,17,3] camera frame, keypoints2d [T,17,2], intrinsics,
    image size), or None for a view that would put a joint closer than MIN_DEPTH_M.
    """
    valid = confidence > 0
    pelvis = world[:, 0]
    floor = np.percentile(world[:, valid, 1].min(axis=1), 1)
    centre = np.array([pelvis[:, 0].mean(), floor, pelvis[:, 2].mean()])
    placed = world - centre
    radius = float(np.hypot(placed[:, 0, 0], placed[:, 0, 2]).max())
    target = (0.0, float(placed[:, 0, 1].mean()), 0.0)
    cameras = random_virtual_cameras(n_cameras, rng, distance=(4.5 + radius, 6.0 + radius), target=target)
    views = []
    for cam in cameras:
        cam3d = world_to_camera(placed, cam.R, cam.t).astype(np.float32)
        if (cam3d[:, valid, 2] < MIN_DEPTH_M).any():
            views.append(None)
            continue
        cam2d = project(cam3d, cam.intrinsics).astype(np.float32)
        cam3d[:, ~valid] = 0.0
        cam2d[:, ~valid] = 0.0
        views.append((cam.name, cam3d, cam2d, cam.intrinsics, cam.image_size))
    return views


def _select(sequences: list[WorldSequence], options: PrepareOptions) -> list[WorldSequence]:
    if options.split not in ("train", "val", "test", "all"):
        raise PoseCliError(f"mocap split must be train, val, test or all, got '{options.split}'")
    keep = [s for s in sequences if options.split == "all" or s.split in ("", options.split)]
    if options.subjects:
        wanted = set(options.subjects)
        keep = [s for s in keep if s.name in wanted or f"{s.action}/{s.name}" in wanted]
    return keep


def read_mocap(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """`posecli prepare mocap`: see the module docstring."""
    if options.cameras < 1:
        raise PoseCliError(f"mocap needs at least one virtual camera, got --cameras {options.cameras}")
    if options.units is not None and not 0 < options.units < float("inf"):
        raise PoseCliError(f"--units must be a positive number (metres per file unit), got {options.units}")
    if options.fps is not None and not 0 < options.fps <= MAX_FPS:
        raise PoseCliError(f"--fps must be a number in (0, {MAX_FPS:g}] Hz, got {options.fps}")
    files = collect_files(inputs)
    lengths = None
    if options.bone_lengths is not None:
        from posecli.data.rig import cache_bone_lengths

        lengths = cache_bone_lengths(options.bone_lengths)
    notes: list[str] = []
    sequences = _select(load_world_sequences(files, options.units, notes), options)
    if not sequences:
        raise PoseCliError(f"no mocap sequences for split '{options.split}' in the given inputs")
    records: list[SequenceRecord] = []
    dropped: Counter = Counter()
    status = np.zeros(17, dtype=np.uint8)
    layouts: list[str] = []
    for seq in sequences:
        world, conf = convert_to_h36m(seq.positions, None, seq.layout)
        status = np.maximum(status, seq.layout.status)
        if seq.layout.name not in layouts:
            layouts.append(seq.layout.name)
        fps = seq.fps
        if options.fps is not None and abs(options.fps - fps) > 1e-6:
            world, fps = resample(world, fps, options.fps, seq.source), float(options.fps)
        if lengths is not None:      # after resampling, whose interpolation would shorten rotating bones
            world = retarget(world, lengths, conf[0] > 0).astype(world.dtype)
        key = f"{seq.split}/{seq.action}/{seq.name}"
        for view in film(world.astype(np.float64), conf[0], options.cameras, _rng(options.seed, key)):
            if view is None:
                dropped["view with a joint behind or too close to the camera"] += 1
                continue
            name, kp3d, kp2d, intrinsics, size = view
            records.append(SequenceRecord(
                keypoints2d=kp2d, confidence=np.broadcast_to(conf[:1], (len(kp2d), 17)).astype(np.float32),
                keypoints3d=kp3d, subject=seq.name, action=seq.action, camera=name,
                intrinsics=np.asarray(intrinsics, np.float32), image_size=(float(size[0]), float(size[1])),
                fps=fps))
    notes.insert(0, f"{len(sequences)} sequences x {options.cameras} virtual cameras (seed {options.seed})")
    if lengths is not None:
        notes.append(f"bone lengths set to the medians of {options.bone_lengths} (directions kept)")
    if options.fps is not None:
        notes.append(f"resampled to {options.fps:g} Hz by linear interpolation")
    if any(_kind(s.source) in (".npz", ".txt", ".txt.gz") for s in sequences):
        notes.append("CMU Li2018: first frame of each take (rest pose) dropped; 120 Hz assumed")
    return ReaderResult(records=records, dataset="mocap", source_layout="+".join(layouts),
                        joint_status=status, sources=sorted({s.source for s in sequences}), dropped=dropped, notes=notes)
