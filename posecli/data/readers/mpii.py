"""MPII Human Pose readers: Kaggle CSV, stacked-hourglass .h5, H36M-ordered .npy, mmpose JSON list.

`read_mpii` dispatches on each input's suffix; every kind is first brought to the MPII-16 layout
and then converted once with posecli.skeleton, so all four give identical caches for the same
person. Confidence means *annotated* (COCO v=1 or 2): MPII's visibility flags mark occlusion, and
occluded joints still carry coordinates (the CSV lists them), so only joints without coordinates
(-1,-1 in the CSV, 0,0 in the .h5) are missing. Each person is a length-1 sequence whose subject
and frame name is the image file name.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.readers._files import h5_array, load_json, load_npy, open_h5, read_text, require_finite
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import MPII16, convert_to_h36m

NO_KEYPOINTS = "no labelled keypoints"
CSV_JOINTS = ("r ankle", "r knee", "r hip", "l hip", "l knee", "l ankle", "pelvis", "thorax", "upper neck",
              "head top", "r wrist", "r elbow", "r shoulder", "l shoulder", "l elbow", "l wrist")
# The .npy stores H36M-17 slots holding MPII joints: 7 = MPII thorax, 8 = MPII upper neck,
# 9 = mean(8, 10) (dropped, it carries no information), 10 = head top. MPII-16 index -> npy slot:
NPY_TO_MPII = np.array([3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13])
KINDS = {".csv": "Kaggle CSV", ".h5": "hourglass HDF5", ".hdf5": "hourglass HDF5", ".npy": "H36M-ordered npy",
         ".json": "mmpose JSON"}


@dataclass
class MpiiArrays:
    """One file's persons in the MPII-16 layout."""

    xy: np.ndarray        # float64 [N, 16, 2] pixels
    conf: np.ndarray      # float32 [N, 16], 1 = annotated
    names: list[str]      # image file name per person
    actions: list[str]    # activity per person ("" when the file has none)


def read_mpii(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """Read one or more MPII files of any supported kind (a names .txt may follow its .npy)."""
    parts: list[MpiiArrays] = []
    sources: list[Path] = []
    names_files = {p.resolve() for p in inputs if p.suffix.lower() == ".txt"}
    for path in inputs:
        if path.suffix.lower() == ".txt":
            continue
        txt = next((t for t in names_files if t.parent == path.resolve().parent), None)
        parts.append(read_arrays(path, options, names_file=txt))
        sources.append(path)
        if path.suffix.lower() == ".npy":
            sources.append(txt or names_file_for(path))
    if not parts:
        raise PoseCliError("no MPII data file among the inputs (.csv, .h5, .npy or .json)", inputs[0])
    xy = np.concatenate([p.xy for p in parts])
    conf = np.concatenate([p.conf for p in parts])
    names = [n for p in parts for n in p.names]
    actions = [a for p in parts for a in p.actions]
    dropped: Counter = Counter()
    keep = (conf > 0).any(axis=1)
    if not keep.all():
        dropped[NO_KEYPOINTS] += int((~keep).sum())
    kp, h36m_conf = convert_to_h36m(xy[keep], conf[keep], MPII16)
    kept = np.flatnonzero(keep)
    records = [SequenceRecord(keypoints2d=kp[i:i + 1], confidence=h36m_conf[i:i + 1], subject=names[j],
                              action=actions[j], frame_names=[names[j]]) for i, j in enumerate(kept)]
    notes = ["MPII images have no size in these files: image_size unknown"]
    return ReaderResult(records=records, dataset="mpii", source_layout=MPII16.name, joint_status=MPII16.status,
                        sources=sources, dropped=dropped, notes=notes)


def read_arrays(path: Path, options: PrepareOptions, names_file: Path | None = None) -> MpiiArrays:
    """Dispatch one MPII file on its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    if suffix == ".npy":
        return _read_npy(path, names_file, options.allow_pickle)
    if suffix == ".json":
        return _read_json(path)
    raise PoseCliError(f"unknown MPII file type '{suffix}' (expected {', '.join(KINDS)})", path)


def image_names(path: Path, options: PrepareOptions | None = None) -> list[str]:
    """Image names of every person in an MPII file of any kind (for --exclude)."""
    return read_arrays(path, options or PrepareOptions()).names


def _annotated(xy: np.ndarray) -> np.ndarray:
    """1 where a joint has coordinates; (-1,-1) and (0,0) mean not annotated. Visibility flags are
    not used: they mark occlusion, and occluded joints keep their coordinates."""
    x, y = xy[..., 0], xy[..., 1]
    missing = ((x == -1) & (y == -1)) | ((x == 0) & (y == 0))
    return (~missing).astype(np.float32)


def _read_csv(path: Path) -> MpiiArrays:
    try:
        rows = list(csv.reader(read_text(path).splitlines()))
    except csv.Error as exc:
        raise PoseCliError(f"malformed CSV ({exc})", path) from None
    if not rows:
        raise PoseCliError("file is empty", path)
    header = [h.strip() for h in rows[0]]
    wanted = ["NAME"] + [f"{j}_{axis}" for j in CSV_JOINTS for axis in "XY"]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise PoseCliError(f"not an MPII CSV: missing column(s) {', '.join(missing[:3])}", path)
    cols = [header.index(c) for c in wanted[1:]]
    name_col = header.index("NAME")
    action_col = header.index("Activity") if "Activity" in header else None
    values = np.empty((len(rows) - 1, len(cols)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise PoseCliError(f"line {i + 2} has {len(row)} fields, expected {len(header)} (truncated?)", path)
        try:
            values[i] = [float(row[c]) for c in cols]
        except ValueError:
            raise PoseCliError(f"line {i + 2} has a non-numeric coordinate", path) from None
    require_finite(values, path, "line", list(range(2, len(rows) + 1)))
    xy = values.reshape(-1, 16, 2)
    return MpiiArrays(xy=xy, conf=_annotated(xy), names=[r[name_col] for r in rows[1:]],
                      actions=[r[action_col] if action_col is not None else "" for r in rows[1:]])


def _read_h5(path: Path) -> MpiiArrays:
    with open_h5(path) as f:
        part = np.asarray(h5_array(f, "part", path), dtype=np.float64)
        names_raw = h5_array(f, "imgname", path)
    if part.ndim != 3 or part.shape[1:] != (16, 2):
        raise PoseCliError(f"'part' has shape {part.shape}, expected (N, 16, 2) MPII joints", path)
    if len(names_raw) != len(part):
        raise PoseCliError(f"{len(names_raw)} 'imgname' entries for {len(part)} persons in 'part'", path)
    require_finite(part, path, "person")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names_raw]
    return MpiiArrays(xy=part, conf=_annotated(part), names=names, actions=[""] * len(part))


def names_file_for(npy: Path) -> Path:
    """The image-names text file beside an .npy: '<stem>_image_names.txt', or the one
    '<prefix>_image_names.txt' whose prefix starts the .npy's name (mpii_poses_h36m17order.npy ->
    mpii_poses_image_names.txt)."""
    exact = npy.with_name(f"{npy.stem}_image_names.txt")
    if exact.is_file():
        return exact
    for candidate in sorted(npy.parent.glob("*_image_names.txt")):
        if npy.stem.startswith(candidate.name[: -len("_image_names.txt")]):
            return candidate
    raise PoseCliError(f"no image names file beside it (expected {exact.name}; or pass the .txt as an input)", npy)


def _read_npy(path: Path, names_file: Path | None, allow_pickle: bool) -> MpiiArrays:
    array = load_npy(path, allow_pickle=allow_pickle)
    names_file = names_file or names_file_for(path)
    if array.ndim == 2 and array.shape[1] == 34:
        array = array.reshape(-1, 17, 2)
    if array.ndim != 3 or array.shape[1:] != (17, 2):
        raise PoseCliError(f"array has shape {array.shape}, expected (N, 34) or (N, 17, 2) in H36M order", path)
    try:
        names = names_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PoseCliError(f"cannot read image names ({exc.__class__.__name__})", names_file) from None
    while names and not names[-1].strip():
        names.pop()
    if len(names) != len(array):
        raise PoseCliError(f"{len(names)} image names for {len(array)} persons in {path.name}", names_file)
    xy = np.asarray(array, dtype=np.float64)[:, NPY_TO_MPII]
    require_finite(xy, path, "row")
    return MpiiArrays(xy=xy, conf=_annotated(xy), names=[n.strip() for n in names], actions=[""] * len(xy))


def _read_json(path: Path) -> MpiiArrays:
    data = load_json(path)
    if not isinstance(data, list) or not all(isinstance(e, dict) and "joints" in e and "image" in e for e in data):
        raise PoseCliError("not an mmpose MPII JSON: expected a list of {image, joints, joints_vis}", path)
    try:
        xy = np.asarray([e["joints"] for e in data], dtype=np.float64).reshape(len(data), -1, 2)
    except (TypeError, ValueError):
        raise PoseCliError("joints must be 16 [x, y] pairs per person", path) from None
    if xy.shape[1] != 16:
        raise PoseCliError(f"expected 16 MPII joints per person, got {xy.shape[1]}", path)
    require_finite(xy, path, "entry")
    return MpiiArrays(xy=xy, conf=_annotated(xy), names=[str(e["image"]) for e in data],
                      actions=[""] * len(data))
