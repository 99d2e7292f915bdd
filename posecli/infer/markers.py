"""TRC and C3D marker files for OpenSim and biomechanics tools, one file per track.

Markers are the H36M-17 joints under the names Pose2Sim and Sports2D write (Hip, RHip, RKnee,
RAnkle, ..., Neck = base of the neck, Nose, Head); H36M's mid-back point, which those skeletons
lack, is `Spine`. Coordinates are the gravity-aligned world frame (y up, floor at y = 0), in metres
as the header says. Frame i of the video is row `Frame# = i + 1` at `Time = i / fps`; a frame
where the track has no pose is a row of blank markers (TRC) or NaN points (C3D), never invented.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError

MARKER_NAMES = ("Hip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Spine", "Neck", "Nose",
                "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")


def trc_text(positions: np.ndarray, fps: float, name: str, units: str = "m") -> str:
    """A TRC file (tab-separated, Pose2Sim's header layout) for positions [F, 17, 3] in metres."""
    scale = {"m": 1.0, "mm": 1000.0}[units]
    frames = len(positions)
    rate = f"{fps:g}"
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate}\t{rate}\t{frames}\t{len(MARKER_NAMES)}\t{units}\t{rate}\t1\t{frames}",
        "Frame#\tTime\t" + "\t\t\t".join(MARKER_NAMES) + "\t\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(MARKER_NAMES) + 1)),
        "",
    ]
    values = np.asarray(positions, dtype=np.float64).reshape(frames, -1) * scale
    for f in range(frames):
        row = values[f]
        cells = ["" if not np.isfinite(v) else f"{v:.6f}" for v in row]
        # A row ending in a blank marker gets a trailing tab: tab-splitting readers (OpenSim's
        # TRCFileAdapter among them) drop a final empty field and would count a column short.
        tail = "\t" if not cells[-1] else ""
        lines.append(f"{f + 1}\t{f / fps:.6f}\t" + "\t".join(cells) + tail)
    return "\n".join(lines) + "\n"


def write_trc(path: Path, positions: np.ndarray, fps: float, units: str = "m") -> None:
    Path(path).write_text(trc_text(positions, fps, Path(path).name, units), encoding="utf-8")


def write_c3d(path: Path, positions: np.ndarray, fps: float) -> None:
    """C3D through ezc3d (optional extra `posecli[c3d]`): points in metres, NaN where missing."""
    try:
        import ezc3d
    except ImportError:
        raise PoseCliError('C3D export needs the ezc3d package: pip install "posecli[c3d]"') from None
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [float(fps)]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = list(MARKER_NAMES)
    c3d.add_parameter("POINT", "UNITS", ["m"])
    points = np.ones((4, len(MARKER_NAMES), len(positions)))
    points[:3] = np.transpose(np.asarray(positions, dtype=np.float64), (2, 1, 0))
    points[:, ~np.isfinite(points[:3]).all(0)] = np.nan
    c3d["data"]["points"] = points
    c3d.write(str(path))
