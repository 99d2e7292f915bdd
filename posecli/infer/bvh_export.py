"""BVH for Blender, Unity, Unreal and MotionBuilder: joint rotations from H36M-17 world positions.

One skeleton per track, its bone lengths the track's medians (BVH offsets are constant). Rotations
come from the positions by inverse kinematics on the 17-joint tree:

- the pelvis and the thorax, which have three children each, get the frame spanned by their
  hips (shoulders) and the spine (neck): x to the person's left, y up the body, z forward;
  their children's rest offsets are the track's median offsets in that frame;
- every other joint has one child and turns by the smallest rotation that takes its rest bone
  direction (legs down, spine and neck up, arms out in a T) onto the bone, given its parent's
  frame. That swing has no twist to pick, so it is the same from frame to frame (no flips) and is
  singular only for a bone pointing exactly against its rest direction (a knee folded 180 degrees).

Euler angles (Zrotation Xrotation Yrotation, R = Rz Rx Ry on column vectors, degrees) take, per
frame, whichever of the two equivalent solutions, shifted by whole turns, is nearest the previous
frame, so curves are continuous. The root carries the world trajectory (y up, floor at y = 0).
Lengths are written in centimetres (the unit of most BVH tools; Blender imports with scale 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError
from posecli.skeleton import H36M_JOINTS, NUM_JOINTS

UNITS_PER_METRE = 100.0          # centimetres
BVH_NAMES = ("Hips", "RightUpLeg", "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot",
             "Spine", "Spine1", "Neck", "Head", "LeftArm", "LeftForeArm", "LeftHand",
             "RightArm", "RightForeArm", "RightHand")
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
_J = {name: i for i, name in enumerate(H36M_JOINTS)}
_FRAMED = {_J["pelvis"]: (_J["r_hip"], _J["l_hip"], _J["spine"]),            # joint: (right, left, up)
           _J["thorax"]: (_J["r_shoulder"], _J["l_shoulder"], _J["neck"])}
_DOWN, _UP, _LEFT, _RIGHT = (0.0, -1.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)
# Rest direction of the bone from each single-child joint to its child (in the parent's frame).
_REST_DIRECTION = {_J["r_hip"]: _DOWN, _J["r_knee"]: _DOWN, _J["l_hip"]: _DOWN, _J["l_knee"]: _DOWN,
                   _J["spine"]: _UP, _J["neck"]: _UP, _J["l_shoulder"]: _LEFT, _J["l_elbow"]: _LEFT,
                   _J["r_shoulder"]: _RIGHT, _J["r_elbow"]: _RIGHT}
_END_SITE = {_J["r_ankle"]: (0.0, -4.0, 10.0), _J["l_ankle"]: (0.0, -4.0, 10.0), _J["head"]: (0.0, 10.0, 0.0),
             _J["l_wrist"]: (8.0, 0.0, 0.0), _J["r_wrist"]: (-8.0, 0.0, 0.0)}   # centimetres, cosmetic
CHILDREN = tuple(tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS))


@dataclass
class BvhSkeleton:
    """A track's skeleton and motion: rest offsets (metres), root trajectory and per-joint rotations."""

    offsets: np.ndarray       # [17, 3] offset of each joint from its parent in the rest pose (root: 0)
    root: np.ndarray          # [T, 3] pelvis positions (metres, world frame)
    rotations: np.ndarray     # [T, 17, 3, 3] local rotation of each joint (global = parent's @ local)
    fps: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(right: np.ndarray, left: np.ndarray, up: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """[T, 3, 3] rotation with columns x = left - right, y = up (made orthogonal), z = x cross y."""
    x = _unit(left - right)
    y = up - origin
    y = _unit(y - (y * x).sum(-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[T, 3, 3] smallest rotations taking unit vector(s) a onto unit vectors b [T, 3]."""
    a = np.broadcast_to(a, b.shape)
    k = np.cross(a, b)
    c = (a * b).sum(-1)
    kx = np.zeros(b.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    kx[..., 1, 0], kx[..., 2, 0], kx[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    factor = 1.0 / np.maximum(1.0 + c, 1e-9)
    return np.eye(3) + kx + kx @ kx * factor[..., None, None]


def fit_skeleton(positions: np.ndarray, fps: float) -> BvhSkeleton:
    """Inverse kinematics for one track's world positions [T, 17, 3] (metres, finite)."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 3 or pos.shape[1:] != (NUM_JOINTS, 3) or not len(pos):
        raise ValueError(f"expected positions [T, {NUM_JOINTS}, 3], got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions must be finite (fill or drop gaps first)")
    t = len(pos)
    lengths = np.array([np.median(np.linalg.norm(pos[:, j] - pos[:, PARENTS[j]], axis=-1)) if j else 0.0
                        for j in range(NUM_JOINTS)])
    glob = np.zeros((t, NUM_JOINTS, 3, 3))
    offsets = np.zeros((NUM_JOINTS, 3))
    for j in range(NUM_JOINTS):                         # parents come before children
        parent = glob[:, PARENTS[j]] if j else np.broadcast_to(np.eye(3), (t, 3, 3))
        if j in _FRAMED:
            right, left, up = _FRAMED[j]
            glob[:, j] = _frame(pos[:, right], pos[:, left], pos[:, up], pos[:, j])
            for c in CHILDREN[j]:
                local = np.einsum("tji,tj->ti", glob[:, j], pos[:, c] - pos[:, j])
                offsets[c] = _unit(np.median(_unit(local), axis=0)) * lengths[c]
        elif CHILDREN[j]:
            (c,) = CHILDREN[j]
            rest = np.asarray(_REST_DIRECTION[j])
            bone = np.einsum("tji,tj->ti", parent, _unit(pos[:, c] - pos[:, j]))
            glob[:, j] = parent @ swing(rest, bone)
            offsets[c] = rest * lengths[c]
        else:
            glob[:, j] = parent
    local = np.empty_like(glob)
    local[:, 0] = glob[:, 0]
    for j in range(1, NUM_JOINTS):
        local[:, j] = np.swapaxes(glob[:, PARENTS[j]], -1, -2) @ glob[:, j]
    return BvhSkeleton(offsets, pos[:, 0].copy(), local, float(fps))


def forward_kinematics(skeleton: BvhSkeleton) -> np.ndarray:
    """World positions [T, 17, 3] (metres) of a fitted skeleton: what a BVH reader reconstructs."""
    t = len(skeleton.root)
    glob = np.zeros((t, NUM_JOINTS, 3, 3))
    pos = np.zeros((t, NUM_JOINTS, 3))
    for j in range(NUM_JOINTS):
        if j == 0:
            glob[:, 0], pos[:, 0] = skeleton.rotations[:, 0], skeleton.root
        else:
            p = PARENTS[j]
            glob[:, j] = glob[:, p] @ skeleton.rotations[:, j]
            pos[:, j] = pos[:, p] + glob[:, p] @ skeleton.offsets[j]
    return pos


def euler_zxy(rotations: np.ndarray) -> np.ndarray:
    """Degrees (z, x, y) with R = Rz @ Rx @ Ry for rotations [T, J, 3, 3], continuous along T."""
    r = rotations
    beta = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    gamma = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    alpha = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    first = np.stack([alpha, beta, gamma], axis=-1)                          # [T, J, 3]
    second = np.stack([alpha + np.pi, np.pi - beta, gamma + np.pi], axis=-1)
    out = np.empty_like(first)
    out[0] = np.where((np.abs(first[0]).sum(-1) <= np.abs(_wrap(second[0])).sum(-1))[..., None],
                      first[0], _wrap(second[0]))
    two_pi = 2.0 * np.pi
    for f in range(1, len(r)):
        prev = out[f - 1]
        best = None
        for cand in (first[f], second[f]):
            shifted = cand + two_pi * np.round((prev - cand) / two_pi)
            cost = np.abs(shifted - prev).sum(-1)
            best = (shifted, cost) if best is None else (np.where((cost < best[1])[..., None], shifted, best[0]),
                                                         np.minimum(cost, best[1]))
        out[f] = best[0]
    return np.degrees(out)


def _wrap(angles: np.ndarray) -> np.ndarray:
    return (angles + np.pi) % (2.0 * np.pi) - np.pi


def bvh_text(skeleton: BvhSkeleton) -> str:
    """The whole BVH file for one skeleton."""
    cm = skeleton.offsets * UNITS_PER_METRE
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        head = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{head} {BVH_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {cm[j, 0]:.4f} {cm[j, 1]:.4f} {cm[j, 2]:.4f}")
        channels = "6 Xposition Yposition Zposition" if j == 0 else "3"
        lines.append(f"{pad}  CHANNELS {channels} Zrotation Xrotation Yrotation")
        for c in CHILDREN[j]:
            joint(c, depth + 1)
        if not CHILDREN[j]:
            end = _END_SITE[j]
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {end[0]:.4f} {end[1]:.4f} {end[2]:.4f}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    angles = euler_zxy(skeleton.rotations)                     # [T, 17, 3], joints in H36M order
    order = _channel_order()
    motion = np.concatenate([skeleton.root * UNITS_PER_METRE, angles[:, order].reshape(len(angles), -1)], axis=1)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {1.0 / skeleton.fps:.8f}"]
    lines += [" ".join(f"{v:.4f}" for v in row) for row in motion]
    return "\n".join(lines) + "\n"


def _channel_order() -> list[int]:
    """Joints in the depth-first order their channels appear in the MOTION rows."""
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in CHILDREN[j]:
            visit(c)

    visit(0)
    return order


def check_track(positions: np.ndarray, source: str | Path, track_id: int) -> tuple[int, int]:
    """The [first, last + 1) frame span of a track, refusing interior gaps (BVH cannot hold them)."""
    have = np.isfinite(positions).all(axis=(-1, -2))
    frames = np.flatnonzero(have)
    if not len(frames):
        raise PoseCliError(f"track {track_id} has no 3D pose in any frame", source)
    a, b = int(frames[0]), int(frames[-1]) + 1
    if not have[a:b].all():
        missing = int((~have[a:b]).sum())
        raise PoseCliError(f"track {track_id} has {missing} missing frames between frames {a} and {b - 1}; "
                           "BVH cannot hold gaps: pass --fill-gaps to interpolate them", source)
    return a, b
