"""MPI-INF-3DHP in mmpose's annotation npz layout (17 joints, `mpi_inf_3dhp17`).

Image names give the grouping: training frames 'S4_Seq2_Cam0_001033.jpg' (subject, sequence as
the action, camera), test frames 'TS1_002001.jpg' (one camera per test subject). The optional
mmpose camera pickles (`cameras_train.pkl` keyed 'S1_Seq1_Cam0', `cameras_test.pkl` keyed 'TS1')
supply intrinsics and image sizes; reading them needs --allow-pickle.
Splits: train = S1..S8, test = TS1..TS6. Frame rates: 25 Hz, except the outdoor test
sequences TS5 and TS6 (50 Hz).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from posecli.data.readers.mmpose_npz import mmpose_records
from posecli.data.readers.videopose3d import expand_inputs, split_subjects
from posecli.data.records import PrepareOptions, ReaderResult
from posecli.errors import PoseCliError
from posecli.skeleton import get_layout

LAYOUT = "mpi_inf_3dhp17"
SPLITS = {"train": tuple(f"S{i}" for i in range(1, 9)), "test": tuple(f"TS{i}" for i in range(1, 7))}
FPS = {"TS5": 50.0, "TS6": 50.0}
DEFAULT_FPS = 25.0
_TRAIN = re.compile(r"^(S\d+)_(Seq\d+)_(Cam\d+)_(\d+)\.\w+$")
_TEST = re.compile(r"^(TS\d+)_(\d+)\.\w+$")


def parse_3dhp_name(name: str) -> tuple[str, str, str, int]:
    """'S4_Seq2_Cam0_001033.jpg' -> (S4, Seq2, Cam0, 1033); 'TS1_002001.jpg' -> (TS1, TS1, TS1, 2001)."""
    base = Path(name).name
    if m := _TRAIN.match(base):
        return m.group(1), m.group(2), m.group(3), int(m.group(4))
    if m := _TEST.match(base):
        return m.group(1), m.group(1), m.group(1), int(m.group(2))
    raise ValueError(name)


def load_camera_pickle(path: Path, allow_pickle: bool) -> dict[str, tuple[np.ndarray, tuple[int, int] | None]]:
    """mmpose camera pickle -> {key: ((fx, fy, cx, cy), (width, height) or None if implausible)}."""
    if not allow_pickle:
        raise PoseCliError("camera file is a Python pickle; pass --allow-pickle if you trust it", path)
    try:
        with open(path, "rb") as f:
            cams = pickle.load(f)
        out = {}
        for k, v in cams.items():
            intr = np.array([*np.ravel(v["f"]), *np.ravel(v["c"])], dtype=np.float32)
            size = (int(v["w"]), int(v["h"]))
            # mmpose's training cameras say h=204 for 2048-px images: drop sizes the principal point contradicts.
            out[str(k)] = (intr, size if 0 < intr[2] < size[0] and 0 < intr[3] < size[1] else None)
        return out
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise PoseCliError(f"not an mmpose camera pickle ({exc.__class__.__name__})", path) from None


def read_3dhp(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """`posecli prepare 3dhp`: see the module docstring."""
    files = [p for p in expand_inputs(inputs, "*") if p.suffix in (".npz", ".pkl")]
    npz = [p for p in files if p.suffix == ".npz"]
    if not npz:
        raise PoseCliError("no MPI-INF-3DHP annotation npz among the inputs")
    cameras: dict[str, tuple[np.ndarray, tuple[int, int] | None]] = {}
    for path in (p for p in files if p.suffix == ".pkl"):
        cameras.update(load_camera_pickle(path, options.allow_pickle))

    def camera_info(subject: str, action: str, camera: str) -> tuple[np.ndarray, tuple[int, int] | None] | None:
        return cameras.get(subject if camera == subject else f"{subject}_{action}_{camera}")

    keep = split_subjects(options, SPLITS, "3dhp")
    records = []
    for path in npz:
        for record in mmpose_records(path, LAYOUT, parse_3dhp_name, keep, DEFAULT_FPS, camera_info):
            record.fps *= FPS.get(record.subject, DEFAULT_FPS) / DEFAULT_FPS
            records.append(record)
    layout = get_layout(LAYOUT)
    notes = [] if cameras else ["no camera pickle given: intrinsics unknown"]
    return ReaderResult(records=records, dataset="3dhp", source_layout=layout.name, joint_status=layout.status,
                        sources=files, notes=notes)
