"""A BVH (Biovision Hierarchy) parser with vectorised forward kinematics.

BVH stores a joint tree (offsets in file units) and, per frame, the channels of every joint. Each
joint lists its own rotation order: CMU's 3ds-Max release mixes `Zrotation Yrotation Xrotation` and
`Zrotation Xrotation Yrotation` in one file, so the order is honoured per joint. Channels compose
in the listed order on column vectors (R = R_first @ R_second @ R_third, angles in degrees), a
joint's local translation is its OFFSET, except along the axes it has position channels for: there
the channel value is the translation (as Blender's importer reads them). Rigs exported with 6
channels on every joint (Bandai-Namco's) store the bone vector in those channels, so adding them to
OFFSET would double every bone. End sites become points named `<parent>_end` (the head's end site
is the head top).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.readers._files import read_text, require_finite
from posecli.errors import PoseCliError

_AXES = {"X": 0, "Y": 1, "Z": 2}
_ROT = ("Xrotation", "Yrotation", "Zrotation")
_POS = ("Xposition", "Yposition", "Zposition")
MIN_FRAME_TIME = 1e-4        # seconds (10 kHz): no capture system records faster


@dataclass
class BvhJoint:
    name: str
    parent: int                 # -1 for the root
    offset: np.ndarray          # float64 [3], file units
    channels: tuple[str, ...]   # empty for end sites
    channel_start: int          # column of the first channel in the motion rows


@dataclass
class BvhMotion:
    joints: list[BvhJoint]      # parents come before children; end sites included
    frames: np.ndarray          # float64 [T, C] raw channel values
    frame_time: float           # seconds

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def positions(self) -> np.ndarray:
        """Global joint positions [T, J, 3] in file units."""
        return forward_kinematics(self)


def _axis_rotations(axis: int, degrees: np.ndarray) -> np.ndarray:
    """[T, 3, 3] rotations about one coordinate axis (column-vector convention)."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    i, j = [k for k in range(3) if k != axis]
    out[:, axis, axis] = 1.0
    # For x: (y, z) plane; for y: (z, x) with sign flip; for z: (x, y).
    sign = -1.0 if axis == 1 else 1.0
    out[:, i, i] = c
    out[:, j, j] = c
    out[:, i, j] = -s * sign
    out[:, j, i] = s * sign
    return out


def forward_kinematics(motion: BvhMotion) -> np.ndarray:
    t = motion.frames.shape[0]
    positions = np.zeros((t, len(motion.joints), 3))
    rotations = np.zeros((len(motion.joints), t, 3, 3))
    for index, joint in enumerate(motion.joints):
        local_t = np.broadcast_to(joint.offset, (t, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (t, 3, 3)).copy()
        for k, channel in enumerate(joint.channels):
            values = motion.frames[:, joint.channel_start + k]
            if channel in _POS:
                local_t[:, _POS.index(channel)] = values
            else:
                local_r = local_r @ _axis_rotations(_ROT.index(channel), values)
        if joint.parent < 0:
            positions[:, index] = local_t
            rotations[index] = local_r
        else:
            parent_r = rotations[joint.parent]
            positions[:, index] = positions[:, joint.parent] + np.einsum("tij,tj->ti", parent_r, local_t)
            rotations[index] = parent_r @ local_r
    return positions


def _parse_hierarchy(tokens: list[str], path: Path) -> tuple[list[BvhJoint], int]:
    """Parse tokens from HIERARCHY up to MOTION; returns joints and the token index of MOTION."""
    joints: list[BvhJoint] = []
    stack: list[int] = []
    pending: tuple[str, int] | None = None
    n_channels = 0
    i = 1
    try:
        while i < len(tokens) and tokens[i] != "MOTION":
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                pending = (tokens[i + 1], stack[-1] if stack else -1)
                i += 2
            elif tok == "End":
                parent = stack[-1]
                pending = (f"{joints[parent].name}_end", parent)
                i += 2
            elif tok == "{":
                if pending is None:
                    raise ValueError("'{' without a joint")
                joints.append(BvhJoint(pending[0], pending[1], np.zeros(3), (), n_channels))
                stack.append(len(joints) - 1)
                pending = None
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                joints[stack[-1]].offset = np.array([float(v) for v in tokens[i + 1:i + 4]])
                i += 4
            elif tok == "CHANNELS":
                count = int(tokens[i + 1])
                names = tuple(tokens[i + 2:i + 2 + count])
                bad = [c for c in names if c not in _ROT + _POS]
                if bad:
                    raise ValueError(f"unknown channel {bad[0]}")
                joint = joints[stack[-1]]
                joint.channels, joint.channel_start = names, n_channels
                n_channels += count
                i += 2 + count
            else:
                raise ValueError(f"unexpected token '{tok}'")
    except (IndexError, ValueError) as exc:
        raise PoseCliError(f"malformed BVH hierarchy ({exc})", path) from None
    if stack or not joints or i >= len(tokens):
        raise PoseCliError("malformed BVH hierarchy (unbalanced braces or no MOTION section)", path)
    return joints, i


def read_bvh(path: str | Path) -> BvhMotion:
    """Parse a BVH file; raises PoseCliError naming the file when it is malformed."""
    path = Path(path)
    text = read_text(path, errors="replace")
    head, sep, motion_text = text.partition("MOTION")
    tokens = head.split()
    if not tokens or tokens[0] != "HIERARCHY" or not sep:
        raise PoseCliError("not a BVH file (expected HIERARCHY ... MOTION)", path)
    joints, _ = _parse_hierarchy(tokens + ["MOTION"], path)
    n_channels = sum(len(j.channels) for j in joints)
    lines = motion_text.split("\n", 3)
    try:
        frames_line = [ln for ln in lines[:3] if ln.strip().startswith("Frames:")][0]
        time_line = [ln for ln in lines[:3] if ln.strip().startswith("Frame Time:")][0]
        n_frames = int(frames_line.split(":")[1])
        frame_time = float(time_line.split(":")[1])
    except (IndexError, ValueError):
        raise PoseCliError("malformed BVH MOTION header (need 'Frames:' and 'Frame Time:')", path) from None
    if not MIN_FRAME_TIME <= frame_time < float("inf"):
        raise PoseCliError(f"BVH frame time must be a finite number of seconds >= {MIN_FRAME_TIME:g}, "
                           f"got {frame_time}", path)
    if n_frames <= 0:
        raise PoseCliError("BVH file has no frames", path)
    rows = [line for line in lines[3].split("\n") if line.strip()] if len(lines) > 3 else []
    if len(rows) != n_frames:
        raise PoseCliError(f"BVH declares {n_frames} frames x {n_channels} channels but holds {len(rows)} "
                           "motion rows", path)
    values = np.empty((n_frames, n_channels), dtype=np.float64)
    for i, row in enumerate(rows):
        cells = row.split()
        if len(cells) != n_channels:
            raise PoseCliError(f"BVH declares {n_frames} frames x {n_channels} channels but frame {i} "
                               f"has {len(cells)} values", path)
        try:
            values[i] = [float(c) for c in cells]
        except ValueError:
            raise PoseCliError(f"BVH frame {i} holds a value that is not a number", path) from None
    require_finite(values, path, "BVH frame")
    return BvhMotion(joints, values, frame_time)
