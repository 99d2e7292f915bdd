"""The one validation layer for cache files: every reader of a cache (PoseCache, so eval, train,
info and the study; ImageStore for the crops) checks an open HDF5 file here before using it.

A damaged or hand-edited cache (a missing dataset or attribute, a group where a dataset belongs,
arrays of different lengths, sequences outside the frames, 16 joints, NaN, a dataset that declares
far more frames than the file stores) is refused with one line naming the file and the problem,
before anything is allocated from its declared sizes.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from posecli.errors import PoseCliError
from posecli.skeleton import NUM_JOINTS, JointStatus

READABLE_VERSIONS = (1, 2)   # v2 = v1 + the optional image group
FINITE_CHECK_FRAMES = 1 << 16
# frame arrays: name -> trailing shape; sequence arrays: name -> trailing shape (None = strings)
FRAME_ARRAYS: dict[str, tuple[int, ...]] = {"keypoints2d": (NUM_JOINTS, 2), "confidence": (NUM_JOINTS,),
                                            "keypoints3d": (NUM_JOINTS, 3)}
SEQUENCE_ARRAYS: dict[str, tuple[int, ...] | None] = {
    "seq_start": (), "seq_length": (), "subject": None, "action": None, "camera": None,
    "intrinsics": (4,), "image_size": (2,), "fps": ()}
OPTIONAL = ("keypoints3d", "frame_name")
IMAGE_GROUP = "image"
IMAGE_ENCODINGS = ("raw", "jpeg")


def _fail(message: str, path: Path) -> None:
    raise PoseCliError(f"damaged cache: {message}", path)


def schema_version(f: h5py.File, path: Path, rerun: str) -> int:
    """The file's schema version, an integer this posecli reads (else the command to rerun)."""
    version = f.attrs.get("schema_version")
    if version is None:
        raise PoseCliError("not a posecli cache (no schema_version attribute)", path)
    value = np.asarray(version)
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        _fail(f"schema_version must be an integer, got {np.asarray(version).tolist()!r}", path)
    if int(value) not in READABLE_VERSIONS:
        raise PoseCliError(
            f"cache schema v{int(value)} but this posecli reads "
            f"v{', v'.join(map(str, READABLE_VERSIONS))}: rerun the command stored in its attrs ({rerun})", path)
    return int(value)


def _dataset(f: h5py.File, name: str, path: Path) -> h5py.Dataset:
    item = f.get(name)
    if item is None:
        _fail(f"the '{name}' dataset is missing", path)
    if not isinstance(item, h5py.Dataset):
        _fail(f"'{name}' is a {type(item).__name__.lower()} where a dataset belongs", path)
    return item


def _stored_fully(ds: h5py.Dataset, name: str, path: Path) -> None:
    """An uncompressed numeric dataset must store every byte it declares: a tiny file that declares
    2^36 frames is refused before anything of that size is read."""
    if ds.compression is None and ds.dtype.kind in "biuf" and ds.id.get_storage_size() < ds.size * ds.dtype.itemsize:
        _fail(f"'{name}' declares shape {ds.shape} but the file stores only {ds.id.get_storage_size()} bytes "
              "of it (truncated or damaged)", path)


def _shaped(ds: h5py.Dataset, name: str, rows: int | None, tail: tuple[int, ...] | None, path: Path) -> int:
    """Check a dataset's shape ([rows, *tail]) and kind (numbers, or strings for tail None)."""
    if ds.ndim == 0:
        _fail(f"'{name}' is a scalar, expected an array", path)
    if tail is None:
        if ds.dtype.kind not in "OSU" or ds.ndim != 1:
            _fail(f"'{name}' must be a 1-D array of strings, got {ds.dtype} {ds.shape}", path)
    else:
        if ds.dtype.kind not in "biuf":
            _fail(f"'{name}' must hold numbers, got {ds.dtype}", path)
        if ds.shape[1:] != tail:
            if name in FRAME_ARRAYS and ds.ndim >= 2 and ds.shape[1] != NUM_JOINTS:
                _fail(f"'{name}' has {ds.shape[1]} joints, expected {NUM_JOINTS} (H36M-17)", path)
            expected = ", ".join(map(str, ("N" if name in FRAME_ARRAYS else "S", *tail)))
            _fail(f"'{name}' has shape {ds.shape}, expected [{expected}]", path)
        _stored_fully(ds, name, path)
    if rows is not None and ds.shape[0] != rows:
        _fail(f"'{name}' has {ds.shape[0]} rows but there are {rows} "
              f"{'frames' if name in FRAME_ARRAYS or name == 'frame_name' else 'sequences'}", path)
    return int(ds.shape[0])


def _all_finite(ds: h5py.Dataset | np.ndarray, name: str, path: Path) -> None:
    for a in range(0, len(ds), FINITE_CHECK_FRAMES):
        block = np.asarray(ds[a:a + FINITE_CHECK_FRAMES])
        if not np.isfinite(block).all():
            frame = a + int(np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0])
            _fail(f"'{name}' has NaN or inf values (frame {frame})", path)


def check_cache_file(f: h5py.File, path: Path, rerun: str) -> tuple[int, int]:
    """Validate an open cache file; return (frames, sequences). Values of the frame arrays are
    checked for NaN/inf in blocks, so a lazily read cache is as safe as a loaded one."""
    schema_version(f, path, rerun)
    frames = _shaped(_dataset(f, "keypoints2d", path), "keypoints2d", None, FRAME_ARRAYS["keypoints2d"], path)
    for name, tail in FRAME_ARRAYS.items():
        if name in f or name not in OPTIONAL:
            _shaped(_dataset(f, name, path), name, frames, tail, path)
    if "frame_name" in f:
        _shaped(_dataset(f, "frame_name", path), "frame_name", frames, None, path)
    sequences = _shaped(_dataset(f, "seq_length", path), "seq_length", None, (), path)
    if sequences == 0 or sequences > max(frames, 1):
        _fail(f"{sequences} sequences for {frames} frames", path)
    for name, tail in SEQUENCE_ARRAYS.items():
        _shaped(_dataset(f, name, path), name, sequences, tail, path)
    for name in ("seq_start", "seq_length"):
        if f[name].dtype.kind not in "iu":
            _fail(f"'{name}' must hold integers, got {f[name].dtype}", path)
    _check_sequences(np.asarray(f["seq_start"][()], np.int64), np.asarray(f["seq_length"][()], np.int64),
                     frames, path)
    _check_joint_status(f.attrs.get("joint_status"), path)
    skeleton = f.attrs.get("skeleton", "h36m17")
    skeleton = skeleton.decode(errors="replace") if isinstance(skeleton, bytes) else skeleton
    if skeleton != "h36m17":
        _fail(f"skeleton attribute is {skeleton!r}, expected 'h36m17'", path)
    fps = np.asarray(f["fps"][()], np.float64)
    if not (np.isfinite(fps) & (fps >= 0)).all():
        _fail("'fps' must be finite and >= 0", path)
    for name in FRAME_ARRAYS:
        if name in f:
            _all_finite(f[name], name, path)
    if IMAGE_GROUP in f:
        check_image_group(f, path, frames)
    return frames, sequences


def _check_sequences(start: np.ndarray, length: np.ndarray, frames: int, path: Path) -> None:
    """Sequences must tile the frames in order, as prepare writes them: start 0, each one after the
    last, the lengths adding up to the frame count."""
    if (length < 1).any():
        i = int(np.flatnonzero(length < 1)[0])
        _fail(f"seq_length[{i}] is {int(length[i])}: every sequence needs at least one frame", path)
    if (start < 0).any():
        i = int(np.flatnonzero(start < 0)[0])
        _fail(f"seq_start[{i}] is {int(start[i])}, negative", path)
    end = start + length
    if (end > frames).any():
        i = int(np.flatnonzero(end > frames)[0])
        _fail(f"sequence {i} (seq_start {int(start[i])}, seq_length {int(length[i])}) ends past the "
              f"{frames} frames", path)
    expected = np.concatenate([[0], np.cumsum(length)[:-1]])
    if (start != expected).any() or int(length.sum()) != frames:
        i = int(np.flatnonzero(start != expected)[0]) if (start != expected).any() else len(start) - 1
        _fail(f"sequences do not tile the {frames} frames in order (sequence {i} starts at "
              f"{int(start[i])}, expected {int(expected[i])}; lengths add up to {int(length.sum())})", path)


def _check_joint_status(status, path: Path) -> None:
    if status is None:
        _fail("the 'joint_status' attribute is missing", path)
    status = np.asarray(status)
    known = {int(s) for s in JointStatus}
    if status.shape != (NUM_JOINTS,) or status.dtype.kind not in "iu" or not set(status.tolist()) <= known:
        _fail(f"'joint_status' must be {NUM_JOINTS} codes in {sorted(known)}, got {status.tolist()!r}", path)


def check_image_group(f: h5py.File, path: Path, frames: int) -> None:
    """The schema v2 image group: one crop and one affine per frame, a known encoding."""
    group = f[IMAGE_GROUP]
    if not isinstance(group, h5py.Group):
        _fail(f"'{IMAGE_GROUP}' is a dataset where a group belongs", path)
    encoding = group.attrs.get("encoding")
    encoding = encoding.decode(errors="replace") if isinstance(encoding, bytes) else encoding
    if encoding not in IMAGE_ENCODINGS:
        _fail(f"image encoding {encoding!r} is not one of {', '.join(IMAGE_ENCODINGS)}", path)
    size = np.asarray(group.attrs.get("crop_size", -1))
    if size.shape != () or size.dtype.kind not in "iu" or not 1 <= int(size) <= 4096:
        _fail(f"image crop_size must be an integer in 1..4096, got {size.tolist()!r}", path)
    crops = _dataset(f, f"{IMAGE_GROUP}/crops", path)
    affine = _dataset(f, f"{IMAGE_GROUP}/affine", path)
    _shaped(affine, "image/affine", frames, (2, 3), path)
    if encoding == "raw":
        _shaped(crops, "image/crops", frames, (int(size), int(size), 3), path)
        if crops.dtype != np.uint8:
            _fail(f"'image/crops' must be uint8, got {crops.dtype}", path)
    elif crops.ndim != 1 or crops.shape[0] != frames or h5py.check_vlen_dtype(crops.dtype) != np.uint8:
        _fail(f"'image/crops' must be {frames} variable-length JPEG byte strings", path)
