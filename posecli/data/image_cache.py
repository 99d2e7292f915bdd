"""The image group of cache schema v2: one person crop per cache frame, plus its crop -> image affine.

Layout (an `image` group beside the v1 arrays; v1 readers ignore it):
- `image/crops`: uint8 [N, S, S, 3] RGB, chunked one crop per chunk (encoding "raw"), or
  variable-length uint8 [N] JPEG bytes (encoding "jpeg": ~15x smaller, needs OpenCV to read);
- `image/affine`: float64 [N, 2, 3], crop pixels -> original image pixels (pixel-centre convention
  of posecli.data.crops), so 2D predictions map back to the photo;
- attrs: `encoding`, `crop_size`, `margin` (box enlargement used), `affine` (a one-line description).
Frame i of the cache is crop i. Crops are cut once at prepare time with a margin; augmentation
(scale, rotation, flip, colour) happens at load time on the stored crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from posecli.data.cache_schema import check_cache_file
from posecli.data.crops import decode_jpeg, encode_jpeg, extract_crop, read_image
from posecli.data.records import SequenceRecord
from posecli.errors import PoseCliError

GROUP = "image"
ENCODINGS = ("raw", "jpeg")
AFFINE_DOC = "crop pixel -> image pixel, 2x3, integer coordinates are pixel centres"


def write_image_group(h5file: h5py.File | h5py.Group, crops: np.ndarray | Sequence[np.ndarray],
                      affines: np.ndarray, *, encoding: str = "raw", margin: float = 1.25,
                      jpeg_quality: int = 95) -> h5py.Group:
    """Add the image group to an open (temporary) cache file; crops [N, S, S, 3] uint8, affines [N, 2, 3]."""
    if encoding not in ENCODINGS:
        raise PoseCliError(f"unknown crop encoding '{encoding}' (known: {', '.join(ENCODINGS)})")
    affines = np.asarray(affines, dtype=np.float64)
    n = len(crops)
    if affines.shape != (n, 2, 3):
        raise ValueError(f"affines must be [{n}, 2, 3], got {affines.shape}")
    if n == 0:
        raise ValueError("no crops to write")
    size = int(np.asarray(crops[0]).shape[0])
    for i, crop in enumerate(crops):
        if np.asarray(crop).shape != (size, size, 3) or np.asarray(crop).dtype != np.uint8:
            raise ValueError(f"crop {i} is not uint8 [{size}, {size}, 3]")
    group = h5file.create_group(GROUP)
    if encoding == "raw":
        group.create_dataset("crops", data=np.stack([np.asarray(c) for c in crops]),
                             chunks=(1, size, size, 3))
    else:
        data = group.create_dataset("crops", shape=(n,), dtype=h5py.vlen_dtype(np.uint8))
        for i, crop in enumerate(crops):
            data[i] = np.frombuffer(encode_jpeg(np.asarray(crop), jpeg_quality), dtype=np.uint8)
    group.create_dataset("affine", data=affines)
    group.attrs.update({"encoding": encoding, "crop_size": size, "margin": float(margin), "affine": AFFINE_DOC})
    return group


def read_crop(cache: h5py.File | h5py.Group, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop `index` (RGB uint8 [S, S, 3]) and its crop -> image affine [2, 3] from an open cache."""
    group = cache.get(GROUP)
    if group is None:
        raise PoseCliError("cache has no image crops: prepare it with --images DIR", cache.file.filename)
    raw = group["crops"][index]
    crop = decode_jpeg(raw) if group.attrs["encoding"] == "jpeg" else np.asarray(raw)
    return crop, np.asarray(group["affine"][index], dtype=np.float64)


class ImageStore:
    """Read-only access to a cache's crops; the HDF5 file opens lazily, so a pickled store (data
    loader workers) reopens it in its own process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: h5py.File | None = None
        f = self.file
        if GROUP not in f:
            raise PoseCliError("cache has no image crops: prepare it with --images DIR", self.path)
        try:
            check_cache_file(f, self.path, str(f.attrs.get("command", "posecli prepare ...")))
        except PoseCliError:
            self.close()
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            self.close()
            raise PoseCliError(f"damaged cache: cannot read it ({exc.__class__.__name__})", self.path) from None
        self.crop_size = int(f[GROUP].attrs["crop_size"])
        self.encoding = str(f[GROUP].attrs["encoding"])
        self.num_crops = int(f[GROUP]["affine"].shape[0])

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise PoseCliError(f"not a readable HDF5 file ({exc.__class__.__name__})", self.path) from None
        return self._file

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None}

    def __len__(self) -> int:
        return self.num_crops

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_crop(self.file, index)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def crops_for_records(records: Sequence[SequenceRecord], image_dir: Path, crop_size: int = 256,
                      margin: float = 1.25) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut one crop per frame of every record, from `image_dir / frame_name`, around its keypoints.

    Returns crops (uint8 [S, S, 3] each) and affines [N, 2, 3] in cache frame order. A frame
    without a name, or whose image is missing, is a user error naming the file.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise PoseCliError("image folder not found", image_dir)
    crops, affines = [], []
    for record in records:
        if record.frame_names is None:
            raise PoseCliError(f"sequence '{record.subject}' has no frame names to find its images in", image_dir)
        for t, name in enumerate(record.frame_names):
            if not (record.confidence[t] > 0).any():
                raise PoseCliError(f"frame {name} has no labelled joint to place a crop around", image_dir)
            image = read_image(image_dir / name)
            crop, affine = extract_crop(image, record.keypoints2d[t], record.confidence[t], crop_size, margin)
            crops.append(crop)
            affines.append(affine)
    return crops, np.stack(affines)
