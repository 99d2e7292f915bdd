"""COCO 2017 keypoints as one npz of pixel arrays (all 156k persons of train2017 + val2017).

The official JSON is the primary COCO input (posecli.data.readers.coco). This layout serves users
whose COCO keypoints come from yolov7-pose-style label files converted to pixels: one row per
person with `split` (0 train2017, 1 val2017), `image_id`, `image_wh` (W, H), `keypoints`
[N, 17, 3] = (x px, y px, v) in COCO order, and optionally `bbox_xywh` and `wh_status`.
`--split train` keeps train2017 only and `val`/`test` val2017 only, so a model pretrained with
`--split train` never saw the val2017 images (including the 538-image val subset) it may be
tested on. Persons without a labelled keypoint are dropped and counted.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from posecli.data.readers._files import require_finite
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m, get_layout

REQUIRED = ("split", "image_id", "image_wh", "keypoints")
SPLITS = {"train": (0,), "val": (1,), "test": (1,), "all": (0, 1)}
MAX_PERSONS = 10_000_000          # COCO has 0.26 M person annotations; refuse absurd declared sizes
NO_KEYPOINTS = "no labelled keypoints"


def is_coco_npz(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


def read_coco_npz(path: Path, options: PrepareOptions) -> ReaderResult:
    """One SequenceRecord (T=1) per labelled person of the chosen split."""
    if options.split not in SPLITS:
        raise PoseCliError(f"COCO npz split must be one of {', '.join(SPLITS)}, got '{options.split}'", path)
    arrays = _load(path)
    n = len(arrays["split"])
    keypoints, image_id, image_wh = arrays["keypoints"], arrays["image_id"], arrays["image_wh"]
    if keypoints.shape != (n, 17, 3) or image_id.shape != (n,) or image_wh.shape != (n, 2):
        raise PoseCliError(f"arrays disagree: keypoints {keypoints.shape}, image_id {image_id.shape}, "
                           f"image_wh {image_wh.shape} for {n} persons (expected [N,17,3], [N], [N,2])", path)
    require_finite(keypoints, path, "person")
    rows = np.flatnonzero(np.isin(arrays["split"], SPLITS[options.split]))
    labelled = (keypoints[rows, :, 2] > 0).any(axis=1)
    dropped = Counter({NO_KEYPOINTS: int((~labelled).sum())}) if not labelled.all() else Counter()
    rows = rows[labelled]
    layout = get_layout("coco17")
    kp, conf = convert_to_h36m(keypoints[rows, :, :2].astype(np.float64),
                               (keypoints[rows, :, 2] > 0).astype(np.float32), layout)
    records = []
    for i, row in enumerate(rows):
        name = f"{int(image_id[row]):012d}.jpg"
        w, h = (float(v) for v in image_wh[row])
        records.append(SequenceRecord(keypoints2d=kp[i:i + 1], confidence=conf[i:i + 1], subject=name,
                                      image_size=(w, h) if w > 0 and h > 0 else None, frame_names=[name]))
    notes = [f"COCO npz layout: split '{options.split}' = "
             f"{' + '.join(('train2017', 'val2017')[s] for s in SPLITS[options.split])}, {len(records)} persons"]
    return ReaderResult(records=records, dataset="coco", source_layout=layout.name, joint_status=layout.status,
                        sources=[path], dropped=dropped, notes=notes)


def _load(path: Path) -> dict[str, np.ndarray]:
    """The required arrays, with their declared sizes checked before anything is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = {info.filename.removesuffix(".npy"): info.file_size for info in archive.infolist()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise PoseCliError(f"not a readable npz file ({exc})", path) from None
    missing = [k for k in REQUIRED if k not in declared]
    if missing:
        raise PoseCliError(f"not a COCO keypoints npz: missing {', '.join(missing)} "
                           f"(has {', '.join(sorted(declared)) or 'nothing'})", path)
    if declared["keypoints"] > MAX_PERSONS * 17 * 3 * 8:
        raise PoseCliError(f"'keypoints' declares {declared['keypoints']} bytes, more than {MAX_PERSONS} persons", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in REQUIRED}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise PoseCliError(f"cannot read npz arrays ({exc})", path) from None
