"""CMU exponential-map motion files (Li et al. 2018 subset) and their forward kinematics.

Each row holds 117 floats: the root translation TX, TY, TZ in ASF units, then an exponential-map
rotation per point of the 38-point skeleton. The kinematic tree and bone offsets come from a
skeleton JSON (`point_names`, `parents`, `offsets_asf_units`, `unit_m_per_asf_unit`). The first
row of every file is a rest pose and is dropped. FK uses the row-vector convention of the source
code: G_0 = R_0, p_0 = t; p_i = off_i @ G_parent + p_parent, G_i = R_i @ G_parent. The translation
is taken in TX, TY, TZ order (the source code's TZ, TY, TX order makes walking sideways).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.readers._files import load_json, read_text, require_finite
from posecli.errors import PoseCliError
from posecli.geometry import expmap_to_rotmat

ASF_UNIT_M = 2.54 / 0.45 / 100.0      # one CMU ASF length unit in metres (0.056444)
SKELETON_FILE = "skeleton_cmu38.json"


@dataclass(frozen=True)
class ExpmapSkeleton:
    names: tuple[str, ...]
    parents: np.ndarray         # int [K], -1 for the root
    offsets: np.ndarray         # float64 [K, 3], ASF units
    unit_m: float               # metres per ASF unit

    @property
    def num_points(self) -> int:
        return len(self.names)


def load_skeleton(path: Path) -> ExpmapSkeleton:
    """Read the kinematic tree JSON; PoseCliError when keys are missing or inconsistent."""
    data = load_json(Path(path))
    try:
        names = tuple(data["point_names"])
        parents = np.asarray(data["parents"], dtype=np.int64)
        offsets = np.asarray(data["offsets_asf_units"], dtype=np.float64)
        unit = float(data.get("unit_m_per_asf_unit", ASF_UNIT_M))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoseCliError(f"not a usable expmap skeleton JSON ({exc.__class__.__name__}: {exc})", path) from None
    k = len(names)
    if parents.shape != (k,) or offsets.shape != (k, 3) or parents[0] != -1 or (parents[1:] >= np.arange(1, k)).any():
        raise PoseCliError("skeleton JSON needs K names, K parents (each before its child) and K x 3 offsets", path)
    return ExpmapSkeleton(names, parents, offsets, unit)


def find_skeleton(motion_file: Path) -> Path | None:
    """The skeleton JSON beside the `raw_expmap_txt` folder (or in any folder above the file)."""
    for folder in Path(motion_file).resolve().parents:
        candidate = folder / SKELETON_FILE
        if candidate.is_file():
            return candidate
    return None


def read_expmap_rows(path: Path) -> np.ndarray:
    """The [T, 117] float rows of a .txt or .txt.gz file, rest-pose row included."""
    lines = read_text(path).splitlines()
    try:
        rows = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise PoseCliError(f"cannot read expmap rows ({exc.__class__.__name__}: {str(exc)[:200]})", path) from None
    require_finite(rows, path, "row")
    return rows


def expmap_forward_kinematics(rows: np.ndarray, skeleton: ExpmapSkeleton) -> np.ndarray:
    """Joint positions [T, K, 3] in metres (Y-up ASF world) from rows [T, 3 + 3K]."""
    k = skeleton.num_points
    if rows.ndim != 2 or rows.shape[1] != 3 + 3 * k:
        raise ValueError(f"expected rows of {3 + 3 * k} floats, got shape {rows.shape}")
    t = rows.shape[0]
    local = expmap_to_rotmat(rows[:, 3:].reshape(t, k, 3))
    glob = np.empty_like(local)
    pos = np.empty((t, k, 3))
    glob[:, 0] = local[:, 0]
    pos[:, 0] = rows[:, :3]
    for i in range(1, k):
        p = skeleton.parents[i]
        pos[:, i] = skeleton.offsets[i] @ glob[:, p] + pos[:, p]
        glob[:, i] = local[:, i] @ glob[:, p]
    return pos * skeleton.unit_m


def read_expmap_file(path: Path, skeleton: ExpmapSkeleton) -> np.ndarray:
    """Positions [T-1, K, 3] metres of one file, with its rest-pose first row dropped."""
    rows = read_expmap_rows(path)
    if rows.shape[1] != 3 + 3 * skeleton.num_points:
        raise PoseCliError(f"expected {3 + 3 * skeleton.num_points} floats per row for the "
                           f"{skeleton.num_points}-point skeleton, got {rows.shape[1]}", path)
    if rows.shape[0] < 2:
        raise PoseCliError("expmap file has no frames after its rest-pose row", path)
    return expmap_forward_kinematics(rows[1:], skeleton)
