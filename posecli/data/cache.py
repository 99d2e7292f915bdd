"""HDF5 cache, schema v2: one file per dataset split, read by every engine.

Layout (see docs/architecture.md): frame arrays `keypoints2d` [N,17,2] pixels, `confidence` [N,17],
optional `keypoints3d` [N,17,3] metres; sequence arrays `seq_start`, `seq_length`, `subject`,
`action`, `camera`, `intrinsics` [S,4], `image_size` [S,2], `fps` [S]; optional `frame_name` [N].
Attributes carry the schema version, skeleton, normalisation convention and provenance.
Schema v2 only adds the optional `image` group of person crops (posecli.data.image_cache), so v1
files stay readable; caches are written as v2.
Writing goes to a temporary file in the target folder, renamed into place only when complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from posecli import __version__
from posecli.atomic import atomic_output
from posecli.data.cache_schema import READABLE_VERSIONS, check_cache_file  # noqa: F401 (re-exported)
from posecli.data.normalize import CONVENTION
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import H36M_JOINTS, NUM_JOINTS

SCHEMA_VERSION = 2
CHUNK_FRAMES = 512
_STR = h5py.string_dtype("utf-8")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_record(record: SequenceRecord, index: int) -> None:
    t = len(record)
    if t == 0:
        raise PoseCliError(f"sequence {index} is empty")
    if record.keypoints2d.shape != (t, NUM_JOINTS, 2) or record.confidence.shape != (t, NUM_JOINTS):
        raise PoseCliError(
            f"sequence {index}: expected keypoints2d [T,{NUM_JOINTS},2] and confidence [T,{NUM_JOINTS}],"
            f" got {record.keypoints2d.shape} and {record.confidence.shape}"
        )
    if record.keypoints3d is not None and record.keypoints3d.shape != (t, NUM_JOINTS, 3):
        raise PoseCliError(f"sequence {index}: keypoints3d has shape {record.keypoints3d.shape}")
    arrays = [record.keypoints2d, record.confidence]
    if record.keypoints3d is not None:
        arrays.append(record.keypoints3d)
    for a in arrays:
        if not np.isfinite(a).all():
            raise PoseCliError(f"sequence {index} ({record.subject} {record.action}) has NaN or inf values")


def write_cache(path: Path, result: ReaderResult, *, split: str, force: bool = False,
                command: str | None = None,
                image_crops: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
                crop_encoding: str = "raw") -> Path:
    """Write a reader's records to `path` atomically; refuse to overwrite unless `force`.

    `image_crops` = (crops, crop->image affines), one per frame in record order (as
    posecli.data.image_cache.crops_for_records returns them), adds the v2 image group."""
    path = Path(path)
    records = result.records
    if not records:
        raise PoseCliError("no sequences left after filtering: nothing to write", path)
    if path.exists() and not force:
        raise PoseCliError("output exists (use --force to overwrite)", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PoseCliError("output folder does not exist", parent)
    if not os.access(parent, os.W_OK):
        raise PoseCliError("output folder is not writable", parent)
    for i, record in enumerate(records):
        check_record(record, i)
    has3d = [r.keypoints3d is not None for r in records]
    if any(has3d) and not all(has3d):
        raise PoseCliError("some sequences have 3D and some do not; split them into two caches", path)

    frames = sum(len(r) for r in records)
    if image_crops is not None and len(image_crops[0]) != frames:
        raise PoseCliError(f"{len(image_crops[0])} image crops for {frames} frames", path)

    with atomic_output(path, overwrite=force) as tmp:
        _write(tmp, result, split=split, command=command, with3d=all(has3d))
        if image_crops is not None:
            from posecli.data.image_cache import write_image_group   # pulls in torch: only when needed

            with h5py.File(tmp, "a") as f:
                write_image_group(f, image_crops[0], image_crops[1], encoding=crop_encoding)
    return path


def _frames_dataset(f: h5py.File, name: str, arrays: Iterable[np.ndarray], shape: tuple[int, ...]) -> None:
    """One chunked frame array; sequences are concatenated first (one HDF5 write, not one each)."""
    data = np.concatenate([np.asarray(a, dtype=np.float32) for a in arrays]).reshape(shape)
    f.create_dataset(name, data=data, chunks=(min(CHUNK_FRAMES, shape[0]), *shape[1:]))


def _write(tmp: Path, result: ReaderResult, *, split: str, command: str | None, with3d: bool) -> None:
    records = result.records
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n = int(lengths.sum())
    nan4 = np.full(4, np.nan, dtype=np.float32)
    with h5py.File(tmp, "w") as f:
        _frames_dataset(f, "keypoints2d", (r.keypoints2d for r in records), (n, NUM_JOINTS, 2))
        _frames_dataset(f, "confidence", (r.confidence for r in records), (n, NUM_JOINTS))
        if with3d:
            _frames_dataset(f, "keypoints3d", (r.keypoints3d for r in records), (n, NUM_JOINTS, 3))
        f["seq_start"] = starts
        f["seq_length"] = lengths
        for key in ("subject", "action", "camera"):
            f.create_dataset(key, data=[getattr(r, key) for r in records], dtype=_STR)
        f["intrinsics"] = np.stack([nan4 if r.intrinsics is None else np.asarray(r.intrinsics, np.float32)
                                    for r in records])
        f["image_size"] = np.array([(np.nan, np.nan) if r.image_size is None else r.image_size
                                    for r in records], dtype=np.float32)
        f["fps"] = np.array([r.fps for r in records], dtype=np.float32)
        if any(r.frame_names is not None for r in records):
            names = []
            for r in records:
                names.extend(r.frame_names if r.frame_names is not None else [""] * len(r))
            f.create_dataset("frame_name", data=names, dtype=_STR)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["skeleton"] = "h36m17"
        f.attrs["joints"] = json.dumps(list(H36M_JOINTS))
        f.attrs["joint_status"] = np.asarray(result.joint_status, dtype=np.uint8)
        f.attrs["source_layout"] = result.source_layout
        f.attrs["dataset"] = result.dataset
        f.attrs["split"] = split
        f.attrs["units"] = json.dumps({"keypoints2d": "pixels", "keypoints3d": "metres"})
        f.attrs["normalisation"] = CONVENTION
        f.attrs["sources"] = json.dumps([{"name": Path(p).name, "sha256": sha256_of(Path(p))}
                                         for p in result.sources if Path(p).is_file()])
        f.attrs["dropped"] = json.dumps(dict(result.dropped))
        f.attrs["notes"] = json.dumps(result.notes)
        f.attrs["posecli_version"] = __version__
        f.attrs["command"] = command if command is not None else " ".join(sys.argv)
        f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class PoseCache:
    """A validated, read-only cache. Arrays are loaded into memory (fast random windows) unless
    `in_memory=False`, in which case they are read from disk on demand."""

    def __init__(self, path: str | Path, in_memory: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise PoseCliError("cache file not found", self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise PoseCliError(f"not a readable HDF5 file ({exc.__class__.__name__})", self.path) from None
        try:
            self._load(in_memory)
        except PoseCliError:
            self._file.close()
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
            self._file.close()
            raise PoseCliError(f"damaged cache: cannot read it ({exc.__class__.__name__})", self.path) from None
        if in_memory:
            self._file.close()

    def _load(self, in_memory: bool) -> None:
        """Validate the open file (posecli.data.cache_schema), then read its arrays."""
        f = self._file
        rerun = f.attrs.get("command", "posecli prepare ...")
        check_cache_file(f, self.path, rerun.decode(errors="replace") if isinstance(rerun, bytes) else str(rerun))
        self.attrs: dict = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v)
                            for k, v in f.attrs.items()}
        load = (lambda d: d[()]) if in_memory else (lambda d: d)
        self.keypoints2d = load(f["keypoints2d"])
        self.confidence = load(f["confidence"])
        self.keypoints3d = load(f["keypoints3d"]) if "keypoints3d" in f else None
        self.seq_start = f["seq_start"][()].astype(np.int64)
        self.seq_length = f["seq_length"][()].astype(np.int64)
        self.subject = [s.decode() if isinstance(s, bytes) else str(s) for s in f["subject"][()]]
        self.action = [s.decode() if isinstance(s, bytes) else str(s) for s in f["action"][()]]
        self.camera = [s.decode() if isinstance(s, bytes) else str(s) for s in f["camera"][()]]
        self.intrinsics = f["intrinsics"][()]
        self.image_size = f["image_size"][()]
        self.fps = f["fps"][()]
        self.frame_name = f["frame_name"] if "frame_name" in f else None
        self.has_images = "image" in f         # schema v2 person crops (posecli.data.image_cache)

    # -- facts
    @property
    def num_frames(self) -> int:
        return int(self.seq_length.sum())

    @property
    def num_sequences(self) -> int:
        return len(self.seq_length)

    @property
    def has3d(self) -> bool:
        return self.keypoints3d is not None

    @property
    def dataset(self) -> str:
        return str(self.attrs.get("dataset", ""))

    @property
    def joint_status(self) -> np.ndarray:
        return np.asarray(self.attrs["joint_status"], dtype=np.uint8)

    # -- reads
    def window(self, seq: int, start: int, length: int) -> dict[str, np.ndarray]:
        """Frames [start, start+length) of sequence `seq`, edge-padded beyond its ends."""
        s0, n = int(self.seq_start[seq]), int(self.seq_length[seq])
        idx = np.clip(np.arange(start, start + length), 0, n - 1) + s0
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        sl = slice(lo, hi)
        take = idx - lo
        out = {"keypoints2d": np.asarray(self.keypoints2d[sl])[take],
               "confidence": np.asarray(self.confidence[sl])[take]}
        if self.keypoints3d is not None:
            out["keypoints3d"] = np.asarray(self.keypoints3d[sl])[take]
        return out

    def sequence(self, seq: int) -> SequenceRecord:
        s0, n = int(self.seq_start[seq]), int(self.seq_length[seq])
        sl = slice(s0, s0 + n)
        intr = self.intrinsics[seq]
        size = self.image_size[seq]
        return SequenceRecord(
            keypoints2d=np.asarray(self.keypoints2d[sl]), confidence=np.asarray(self.confidence[sl]),
            keypoints3d=None if self.keypoints3d is None else np.asarray(self.keypoints3d[sl]),
            subject=self.subject[seq], action=self.action[seq], camera=self.camera[seq],
            intrinsics=None if np.isnan(intr).any() else intr,
            image_size=None if np.isnan(size).any() else (float(size[0]), float(size[1])),
            fps=float(self.fps[seq]),
        )

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> "PoseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cache(path: str | Path, in_memory: bool = True) -> PoseCache:
    return PoseCache(path, in_memory=in_memory)
