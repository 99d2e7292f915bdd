"""Every keypoint layout posecli knows, and its conversion to the canonical Human3.6M-17 skeleton.

A layout maps each H36M-17 joint to a weighted sum of its own joints: one source with weight 1 is
*observed*, several sources (e.g. pelvis = mid-hips) are *derived*, none is *missing*. Converting
keeps a confidence per joint: a derived joint is as confident as its least confident source, and a
missing one has confidence 0, which every loss and metric treats as "ignore".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from posecli.errors import PoseCliError

H36M_JOINTS: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "spine", "thorax", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)
NUM_JOINTS = len(H36M_JOINTS)
H36M_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
    (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
)
H36M_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16))


def flip_permutation(pairs: tuple[tuple[int, int], ...], num_joints: int) -> np.ndarray:
    """Index array that swaps left and right joints."""
    perm = np.arange(num_joints)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


H36M_FLIP_PERM = flip_permutation(H36M_FLIP_PAIRS, NUM_JOINTS)


class JointStatus(IntEnum):
    OBSERVED = 0
    DERIVED = 1
    MISSING = 2


Source = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Layout:
    """A keypoint layout: its joint names, how it becomes H36M-17, flip pairs and drawing bones."""

    name: str
    joints: tuple[str, ...]
    to_h36m: tuple[Source, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    bones: tuple[tuple[int, int], ...] = ()
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.to_h36m) != NUM_JOINTS:
            raise ValueError(f"layout {self.name}: to_h36m needs {NUM_JOINTS} entries")
        for source in self.to_h36m:
            for index, _ in source:
                if not 0 <= index < len(self.joints):
                    raise ValueError(f"layout {self.name}: source index {index} out of range")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def status(self) -> np.ndarray:
        """Per H36M joint: observed, derived or missing (uint8 [17])."""
        return np.array(
            [JointStatus.MISSING if not s else JointStatus.OBSERVED if len(s) == 1 and s[0][1] == 1.0
             else JointStatus.DERIVED for s in self.to_h36m],
            dtype=np.uint8,
        )

    def weight_matrix(self) -> np.ndarray:
        """[17, K] matrix so that h36m = W @ layout_keypoints."""
        w = np.zeros((NUM_JOINTS, self.num_joints), dtype=np.float64)
        for j, source in enumerate(self.to_h36m):
            for index, weight in source:
                w[j, index] += weight
        return w


def joint(name: str, joints: tuple[str, ...]) -> int:
    return joints.index(name)


def obs(i: int) -> Source:
    return ((i, 1.0),)


def mid(*indices: int) -> Source:
    return tuple((i, 1.0 / len(indices)) for i in indices)


MISSING: Source = ()


def pairs_by_name(joints: tuple[str, ...], left: str = "l_", right: str = "r_") -> tuple[tuple[int, int], ...]:
    """Left/right pairs found by name prefix, for layouts named that way."""
    out = []
    for i, name in enumerate(joints):
        if name.startswith(left) and right + name[len(left):] in joints:
            out.append((i, joints.index(right + name[len(left):])))
    return tuple(out)


# ---------------------------------------------------------------- layouts

H36M17 = Layout(
    name="h36m17",
    joints=H36M_JOINTS,
    to_h36m=tuple(obs(i) for i in range(NUM_JOINTS)),
    flip_pairs=H36M_FLIP_PAIRS,
    bones=H36M_BONES,
    aliases=("h36m",),
)

_COCO = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
COCO17 = Layout(
    name="coco17",
    joints=_COCO,
    to_h36m=(
        mid(11, 12), obs(12), obs(14), obs(16), obs(11), obs(13), obs(15),
        mid(5, 6, 11, 12), mid(5, 6), obs(0), mid(1, 2),
        obs(5), obs(7), obs(9), obs(6), obs(8), obs(10),
    ),
    flip_pairs=pairs_by_name(_COCO),
    bones=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
           (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4)),
    aliases=("coco",),
)

_MPII = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
    "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
MPII16 = Layout(
    name="mpii16",
    joints=_MPII,
    to_h36m=(
        obs(6), obs(2), obs(1), obs(0), obs(3), obs(4), obs(5),
        mid(6, 7), obs(7), obs(8), obs(9),
        obs(13), obs(14), obs(15), obs(12), obs(11), obs(10),
    ),
    flip_pairs=pairs_by_name(_MPII),
    bones=((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11),
           (11, 10), (7, 13), (13, 14), (14, 15)),
    aliases=("mpii",),
)

LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    for key in (layout.name, *layout.aliases):
        LAYOUTS[key] = layout
    return layout


for _layout in (H36M17, COCO17, MPII16):
    register(_layout)


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name.lower()]
    except KeyError:
        known = ", ".join(sorted({l.name for l in LAYOUTS.values()}))
        raise PoseCliError(f"unknown keypoint layout '{name}' (known: {known})") from None


def convert_to_h36m(
    keypoints: np.ndarray, confidence: np.ndarray | None, layout: Layout | str
) -> tuple[np.ndarray, np.ndarray]:
    """Convert [..., K, D] keypoints (+ [..., K] confidence) of a layout to H36M-17.

    Returns float32 keypoints [..., 17, D] and confidence [..., 17]; missing joints are 0 with
    confidence 0, derived joints take the minimum confidence of their sources.
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    keypoints = np.asarray(keypoints)
    if keypoints.shape[-2] != layout.num_joints:
        raise PoseCliError(
            f"layout {layout.name} has {layout.num_joints} joints, got keypoints of shape {keypoints.shape}"
        )
    if confidence is None:
        confidence = np.ones(keypoints.shape[:-1], dtype=np.float32)
    confidence = np.asarray(confidence, dtype=np.float32)
    weights = layout.weight_matrix()
    out = np.einsum("jk,...kd->...jd", weights, keypoints.astype(np.float64)).astype(np.float32)
    conf = np.zeros((*confidence.shape[:-1], NUM_JOINTS), dtype=np.float32)
    for j, source in enumerate(layout.to_h36m):
        if source:
            conf[..., j] = confidence[..., [i for i, _ in source]].min(axis=-1)
    out[conf <= 0] = 0.0
    return out, conf
