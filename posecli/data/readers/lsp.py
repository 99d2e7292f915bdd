"""Leeds Sports Pose (Johnson & Everingham, BMVC 2010): `joints.mat`, 3 x 14 x 2000 (x, y, flag).

The flag is 1 for *occluded* joints, not visible ones: drawn on the photos, flagged joints are the
far-side limbs hidden behind the body (e.g. the left arm and leg of a pitcher seen from his right),
and only 7% of joints carry it. Every joint of the original LSP is labelled, occluded ones
included (as in MPII), so every joint gets confidence 1 and the flag is not used. Each photo is a
length-1 sequence named after its image file (im0001.jpg ...). Split: the usual train = images
1-1000, test = 1001-2000; `all` keeps both. The 10,000-image LSP extended set (14 x 3 x N, other
flag meaning) is a different file and refused. Reading .mat needs SciPy (extra `image`).
Licence: none stated; use for tests and local benchmarks only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from posecli.data.readers._files import require_finite
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import LSP14, convert_to_h36m

SPLITS = {"train": slice(0, 1000), "test": slice(1000, 2000), "all": slice(None)}


def load_lsp_joints(path: Path) -> np.ndarray:
    """The `joints` array of an LSP joints.mat as float64 [N, 14, 3] (x, y, occluded flag)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise PoseCliError("reading MATLAB .mat files needs SciPy: pip install 'posecli[image]'", path) from None
    try:
        mat = loadmat(path, variable_names=["joints"])
    except (ValueError, OSError, TypeError) as exc:
        raise PoseCliError(f"not a readable MATLAB file ({exc.__class__.__name__})", path) from None
    if "joints" not in mat:
        raise PoseCliError("MATLAB file has no 'joints' variable", path)
    joints = np.asarray(mat["joints"], dtype=np.float64)
    if joints.ndim != 3 or joints.shape[:2] != (3, 14):
        hint = " (LSP extended's 14x3xN layout is not supported)" if joints.shape[:2] == (14, 3) else ""
        raise PoseCliError(f"'joints' has shape {joints.shape}, expected 3 x 14 x N{hint}", path)
    return joints.transpose(2, 1, 0)


def read_lsp(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """Read LSP joints.mat (one input); options.split picks train / test / all."""
    mats = [p for p in inputs if p.suffix.lower() == ".mat"]
    if len(mats) != 1:
        raise PoseCliError("LSP needs exactly one joints.mat input", inputs[0] if inputs else None)
    path = mats[0]
    if options.split not in SPLITS:
        raise PoseCliError(f"unknown LSP split '{options.split}' (known: {', '.join(SPLITS)})", path)
    joints = load_lsp_joints(path)
    names = [f"im{i + 1:04d}.jpg" for i in range(len(joints))]
    chosen = np.arange(len(joints))[SPLITS[options.split]]
    if chosen.size == 0:
        raise PoseCliError(f"split '{options.split}' selects no image of {len(joints)}", path)
    xy = joints[chosen, :, :2]
    require_finite(xy, path, "image", [names[i] for i in chosen])
    kp, conf = convert_to_h36m(xy, np.ones(xy.shape[:2], np.float32), LSP14)
    records = [SequenceRecord(keypoints2d=kp[k:k + 1], confidence=conf[k:k + 1], subject=names[i],
                              frame_names=[names[i]]) for k, i in enumerate(chosen)]
    occluded = float(joints[chosen, :, 2].mean())
    notes = [f"LSP occlusion flag set on {occluded:.1%} of joints (all joints are labelled; flag not stored)",
             "LSP images have no size in joints.mat: image_size unknown"]
    return ReaderResult(records=records, dataset="lsp", source_layout=LSP14.name, joint_status=LSP14.status,
                        sources=[path], dropped=Counter(), notes=notes)
