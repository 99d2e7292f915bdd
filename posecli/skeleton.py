"""Every keypoint layout posecli knows, and its conversion to the canonical Human3.6M-17 skeleton.

A layout maps each H36M-17 joint to a weighted sum of its own joints: one source with weight 1 is
*observed*, several sources (e.g. pelvis = mid-hips) are *derived*, none is *missing*. Converting
keeps a confidence per joint: a derived joint is as confident as its least confident source, and a
missing one has confidence 0, which every loss and metric treats as "ignore".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

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


def mean_of(*sources: Source) -> Source:
    """Average of several sources, e.g. spine = mean_of(mid(hips), obs(neck)); weights are merged."""
    weights: dict[int, float] = {}
    for source in sources:
        for index, weight in source:
            weights[index] = weights.get(index, 0.0) + weight / len(sources)
    return tuple(weights.items())


def bones_from_parents(parents: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Drawing bones (parent, child) of a kinematic tree given as a parent index per joint (-1 = root)."""
    return tuple((p, i) for i, p in enumerate(parents) if p >= 0)


def pairs_by_name(joints: tuple[str, ...], left: str = "l_", right: str = "r_") -> tuple[tuple[int, int], ...]:
    """Left/right pairs found by name prefix, for layouts named that way."""
    out = []
    for i, name in enumerate(joints):
        if name.startswith(left) and right + name[len(left):] in joints:
            out.append((i, joints.index(right + name[len(left):])))
    return tuple(out)


# ---------------------------------------------------------------- layouts


def _legs_arms(joints: tuple[str, ...]) -> tuple[list[Source], list[Source]]:
    """Observed H36M leg joints (r then l: hip, knee, ankle) and arm joints (l then r), by name."""
    legs = [obs(joints.index(side + part)) for side in ("r_", "l_") for part in ("hip", "knee", "ankle")]
    arms = [obs(joints.index(side + part)) for side in ("l_", "r_") for part in ("shoulder", "elbow", "wrist")]
    return legs, arms


def _shoulders_hips_mapping(joints: tuple[str, ...], head: Source) -> tuple[Source, ...]:
    """H36M sources for layouts with COCO's body points: pelvis = mid-hips, thorax = mid-shoulders,
    spine halfway between them, neck/nose = nose; `head` differs per layout."""
    legs, arms = _legs_arms(joints)
    pelvis = mid(joints.index("l_hip"), joints.index("r_hip"))
    thorax = mid(joints.index("l_shoulder"), joints.index("r_shoulder"))
    return (pelvis, *legs, mean_of(pelvis, thorax), thorax, obs(joints.index("nose")), head, *arms)


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
    to_h36m=_shoulders_hips_mapping(_COCO, head=mid(1, 2)),
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

# Layouts with a "neck" at the base of the neck and a head-top point (CrowdPose, AI Challenger,
# LSP): that neck sits where H36M puts the thorax, H36M's neck/nose is taken halfway to the head
# top, and the spine halfway between mid-hips and the neck.

def _neck_head_top_layout(name: str, joints: tuple[str, ...], bones: tuple[tuple[int, int], ...],
                          alias: str, head_top: str = "head_top") -> Layout:
    """A 14-joint layout of limbs plus a base-of-neck point and a head top, mapped by joint name."""
    legs, arms = _legs_arms(joints)
    pelvis = mid(joints.index("l_hip"), joints.index("r_hip"))
    neck, top = joints.index("neck"), joints.index(head_top)
    return Layout(
        name=name,
        joints=joints,
        to_h36m=(pelvis, *legs, mean_of(pelvis, obs(neck)), obs(neck), mid(top, neck), obs(top), *arms),
        flip_pairs=pairs_by_name(joints),
        bones=bones,
        aliases=(alias,),
    )


CROWDPOSE14 = _neck_head_top_layout(
    "crowdpose14",
    ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
     "l_knee", "r_knee", "l_ankle", "r_ankle", "head", "neck"),
    ((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7), (6, 8),
     (8, 10), (7, 9), (9, 11)),
    "crowdpose", head_top="head",
)
AIC14 = _neck_head_top_layout(
    "aic14",
    ("r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip", "r_knee",
     "r_ankle", "l_hip", "l_knee", "l_ankle", "head_top", "neck"),
    ((2, 1), (1, 0), (0, 13), (13, 3), (3, 4), (4, 5), (8, 7), (7, 6), (6, 9), (9, 10), (10, 11),
     (12, 13), (0, 6), (3, 9)),
    "aic",
)
LSP14 = _neck_head_top_layout(
    "lsp14",
    ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
     "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top"),
    ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 12), (12, 9), (9, 10), (10, 11),
     (12, 13), (2, 8), (3, 9)),
    "lsp",
)

# Halpe: COCO's 17 points, then head (top), neck, hip (mid-hip) and six foot points. The neck and
# hip points are unlabelled in much of the data, so the torso is derived from the COCO points as
# for COCO; only the head top is taken from Halpe's own point.
_HALPE26 = _COCO + (
    "head", "neck", "hip", "l_big_toe", "r_big_toe", "l_small_toe", "r_small_toe", "l_heel", "r_heel",
)
_HALPE_TO_H36M = _shoulders_hips_mapping(_HALPE26, head=obs(17))
_HALPE_BONES = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 19), (12, 19), (17, 18), (18, 19),
                (18, 5), (5, 7), (7, 9), (18, 6), (6, 8), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3),
                (2, 4), (15, 20), (15, 22), (15, 24), (16, 21), (16, 23), (16, 25))
HALPE26 = Layout(
    name="halpe26",
    joints=_HALPE26,
    to_h36m=_HALPE_TO_H36M,
    flip_pairs=pairs_by_name(_HALPE26),
    bones=_HALPE_BONES,
    aliases=("halpe",),
)

# Halpe full body (136): the 26 body points, 68 face points (iBUG-68 order), then 21 points per
# hand (left, then right). Only the body points feed H36M; the rest keep their flip pairs.
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_HAND = ("hand_root", *(f"{finger}{k}" for finger in _FINGERS for k in range(1, 5)))
_HALPE136 = (
    _HALPE26
    + tuple(f"face_{i}" for i in range(68))
    + tuple(f"l_{name}" for name in _HAND)
    + tuple(f"r_{name}" for name in _HAND)
)
# Mirror pairs of the iBUG-68 face points (jaw, brows, nose, eyes, outer and inner lips).
_FACE68_PAIRS = (
    *((i, 16 - i) for i in range(8)), *((17 + i, 26 - i) for i in range(5)), (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52),
    (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
)
_HAND_BONES = tuple((0 if k == 1 else 1 + 4 * f + k - 2, 1 + 4 * f + k - 1)
                    for f in range(5) for k in range(1, 5))
HALPE136 = Layout(
    name="halpe136",
    joints=_HALPE136,
    to_h36m=_HALPE_TO_H36M,
    flip_pairs=pairs_by_name(_HALPE136) + tuple((26 + a, 26 + b) for a, b in _FACE68_PAIRS),
    bones=_HALPE_BONES + tuple((94 + a, 94 + b) for a, b in _HAND_BONES)
    + tuple((115 + a, 115 + b) for a, b in _HAND_BONES) + ((9, 94), (10, 115)),
    aliases=(),
)

# MediaPipe / BlazePose 33 landmarks. Pelvis = mid-hips, thorax = mid-shoulders, spine halfway
# between them, neck/nose = nose, head = mid-eyes (as for COCO: no head-top landmark exists).
_BLAZEPOSE = (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer", "l_ear",
    "r_ear", "l_mouth", "r_mouth", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist",
    "r_wrist", "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip",
    "l_knee", "r_knee", "l_ankle", "r_ankle", "l_heel", "r_heel", "l_foot_index", "r_foot_index",
)
BLAZEPOSE33 = Layout(
    name="blazepose33",
    joints=_BLAZEPOSE,
    to_h36m=_shoulders_hips_mapping(_BLAZEPOSE, head=mid(2, 5)),
    flip_pairs=pairs_by_name(_BLAZEPOSE),
    bones=((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
           (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
           (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
           (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32)),
    aliases=("blazepose", "mediapipe"),
)

# HumanEva-I, VideoPose3D's 15-joint order; its head point is the top of the head.
_HUMANEVA = (
    "pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head",
)
HUMANEVA15 = Layout(
    name="humaneva15",
    joints=_HUMANEVA,
    to_h36m=(
        obs(0), obs(11), obs(12), obs(13), obs(8), obs(9), obs(10),
        mid(0, 1), obs(1), mid(1, 14), obs(14),
        obs(2), obs(3), obs(4), obs(5), obs(6), obs(7),
    ),
    flip_pairs=pairs_by_name(_HUMANEVA),
    bones=bones_from_parents((-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1)),
    aliases=("humaneva",),
)

# MPI-INF-3DHP: the 17-joint test order (mmpose's fixtures, the benchmark's "relevant" joints) is
# the H36M joint set in another order, so every joint is observed.
_3DHP17 = (
    "head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head",
)
MPI_INF_3DHP17 = Layout(
    name="mpi_inf_3dhp17",
    joints=_3DHP17,
    to_h36m=(
        obs(14), obs(8), obs(9), obs(10), obs(11), obs(12), obs(13),
        obs(15), obs(1), obs(16), obs(0),
        obs(5), obs(6), obs(7), obs(2), obs(3), obs(4),
    ),
    flip_pairs=pairs_by_name(_3DHP17),
    bones=bones_from_parents((16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)),
    aliases=("3dhp17",),
)

# The 28-joint full annotation order of MPI-INF-3DHP; the 17 test joints are a subset of it.
_3DHP28 = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top", "l_clavicle",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand", "r_clavicle", "r_shoulder", "r_elbow", "r_wrist",
    "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot", "l_toe", "r_hip", "r_knee", "r_ankle",
    "r_foot", "r_toe",
)
MPI_INF_3DHP28 = Layout(
    name="mpi_inf_3dhp28",
    joints=_3DHP28,
    to_h36m=(
        obs(4), obs(23), obs(24), obs(25), obs(18), obs(19), obs(20),
        obs(3), obs(5), obs(6), obs(7),
        obs(9), obs(10), obs(11), obs(14), obs(15), obs(16),
    ),
    flip_pairs=pairs_by_name(_3DHP28),
    bones=bones_from_parents((2, 0, 3, 4, -1, 1, 5, 6, 1, 8, 9, 10, 11, 1, 13, 14, 15, 16,
                              4, 18, 19, 20, 21, 4, 23, 24, 25, 26)),
    aliases=("3dhp28",),
)

# SMPL's 24 joints (3DPW). spine2 sits about where H36M's spine does, SMPL's neck at H36M's
# thorax and its head joint (chin height) at H36M's neck/nose; SMPL has no head top.
_SMPL = (
    "pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle",
    "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder",
    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hand", "r_hand",
)
SMPL24 = Layout(
    name="smpl24",
    joints=_SMPL,
    to_h36m=(
        obs(0), obs(2), obs(5), obs(8), obs(1), obs(4), obs(7),
        obs(6), obs(12), obs(15), MISSING,
        obs(16), obs(18), obs(20), obs(17), obs(19), obs(21),
    ),
    flip_pairs=pairs_by_name(_SMPL),
    bones=bones_from_parents((-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17,
                              18, 19, 20, 21)),
    aliases=("smpl",),
)

# PoseTrack18: nose, head_bottom, head_top, ears (usually unlabelled), then COCO's 12 body points.
# The torso is derived from the body points as for COCO; head = head top.
_POSETRACK = ("nose", "head_bottom", "head_top", "l_ear", "r_ear") + _COCO[5:]
POSETRACK18 = Layout(
    name="posetrack18",
    joints=_POSETRACK,
    to_h36m=_shoulders_hips_mapping(_POSETRACK, head=obs(2)),
    flip_pairs=pairs_by_name(_POSETRACK),
    bones=((2, 1), (0, 1), (3, 2), (4, 2), (1, 5), (1, 6), (5, 7), (7, 9), (6, 8), (8, 10),
           (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)),
    aliases=("posetrack",),
)

# The 38-point CMU mocap skeleton (ASF tree with zero-length "dup" points and end sites). Its root
# is ~10 cm above the hip centres, so pelvis = mid-hips; thorax = mid-shoulders.
_CMU38 = (
    "root", "root_dup_l", "l_hip", "l_knee", "l_ankle", "l_toe_base", "l_toe_tip", "root_dup_r",
    "r_hip", "r_knee", "r_ankle", "r_toe_base", "r_toe_tip", "root_dup_spine", "spine_mid",
    "thorax", "thorax_dup", "lower_neck_end", "upper_neck_end", "head_top", "l_clavicle_start",
    "l_shoulder", "l_elbow", "l_wrist", "l_wrist_dup", "l_hand_end", "l_fingers_end",
    "l_wrist_dup2", "l_thumb_end", "r_clavicle_start", "r_shoulder", "r_elbow", "r_wrist",
    "r_wrist_dup", "r_hand_end", "r_fingers_end", "r_wrist_dup2", "r_thumb_end",
)
_CMU38_PARENTS = (-1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18, 15, 20, 21,
                  22, 23, 24, 25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36)
CMU38 = Layout(
    name="cmu38",
    joints=_CMU38,
    to_h36m=(
        mid(2, 8), obs(8), obs(9), obs(10), obs(2), obs(3), obs(4),
        obs(14), mid(21, 30), obs(18), obs(19),
        obs(21), obs(22), obs(23), obs(30), obs(31), obs(32),
    ),
    flip_pairs=pairs_by_name(_CMU38) + ((1, 7),),
    bones=bones_from_parents(_CMU38_PARENTS),
    aliases=("cmu",),
)

LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    for key in (layout.name, *layout.aliases):
        LAYOUTS[key] = layout
    return layout


for _layout in (H36M17, COCO17, MPII16, CROWDPOSE14, AIC14, LSP14, HALPE26, HALPE136, BLAZEPOSE33,
                HUMANEVA15, MPI_INF_3DHP17, MPI_INF_3DHP28, SMPL24, POSETRACK18, CMU38):
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


# ---------------------------------------------------------------- BVH skeletons

# Accepted joint names per H36M joint, first match wins (compared lower-case, without any
# "namespace:" prefix). Order matters: in MotionBuilder-style files "LeftShoulder" is the clavicle
# and "LeftArm" the shoulder, while 3dsMax-style CMU files call the shoulder "LeftShoulder".
_BVH_REQUIRED: dict[str, tuple[str, ...]] = {
    "r_hip": ("rightupleg", "righthip", "rightupperleg", "rightthigh"),
    "r_knee": ("rightleg", "rightknee", "rightlowerleg", "rightshin"),
    "r_ankle": ("rightankle", "rightfoot"),
    "l_hip": ("leftupleg", "lefthip", "leftupperleg", "leftthigh"),
    "l_knee": ("leftleg", "leftknee", "leftlowerleg", "leftshin"),
    "l_ankle": ("leftankle", "leftfoot"),
    "head": ("head",),
    "l_shoulder": ("leftarm", "leftupperarm", "leftshldr", "leftshoulder"),
    "l_elbow": ("leftforearm", "leftelbow", "leftlowerarm"),
    "l_wrist": ("leftwrist", "lefthand"),
    "r_shoulder": ("rightarm", "rightupperarm", "rightshldr", "rightshoulder"),
    "r_elbow": ("rightforearm", "rightelbow", "rightlowerarm"),
    "r_wrist": ("rightwrist", "righthand"),
}
# Mid-back joint: 3dsMax-style CMU "Chest", MotionBuilder/Mixamo "Spine" (both ~12 cm above the root).
_BVH_SPINE = ("chest", "spine")
# The head's end site, if the BVH reader passes end sites; it is the head top.
_BVH_HEAD_TOP = ("head_end", "headend", "head_end_site", "headtop_end", "headtop", "head_top")


def _bvh_key(name: str) -> str:
    """Case-folded joint name with the side spelt out: Daz/cgspeed `lShldr` and Bandai-Namco
    `UpperArm_L` become `leftshldr` and `leftupperarm`, so one candidate table serves every rig."""
    name = name.rsplit(":", 1)[-1].strip()
    side = {"l": "left", "r": "right"}
    if len(name) > 1 and name[0] in side and name[1].isupper():
        name = side[name[0]] + name[1:]
    elif len(name) > 2 and name[-2] == "_" and name[-1] in "LR":
        name = side[name[-1].lower()] + name[:-2]
    return name.lower()


def _bvh_flip_pairs(keys: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Pairs Left*/Right* and L*/R* names (LHipJoint/RHipJoint, lhand/rhand)."""
    index = {k: i for i, k in enumerate(keys)}
    pairs = []
    for i, key in enumerate(keys):
        for left, right in (("left", "right"), ("l", "r")):
            if key.startswith(left) and right + key[len(left):] in index:
                pairs.append((i, index[right + key[len(left):]]))
                break
    return tuple(pairs)


def bvh_layout(
    joint_names: Sequence[str], parents: Sequence[int] | None = None, *, source: str | Path | None = None
) -> Layout:
    """Layout of a BVH skeleton, found by joint name (case-insensitive).

    Knows the CMU 3dsMax-friendly names (LeftHip/LeftKnee/LeftAnkle/LeftShoulder/.../Chest/Head)
    and the MotionBuilder/Mixamo ones (LeftUpLeg/LeftLeg/LeftFoot/LeftArm/LeftForeArm/LeftHand/
    Spine/Head). Pelvis = mid-hips (the BVH root sits above the hip centres), thorax =
    mid-shoulders, neck/nose = the Head joint (the top of the neck), head = the head's end site when
    it is passed (named e.g. "Head_End"), otherwise missing. `parents` (index per joint, -1 = root)
    gives the drawing bones; `source` names the file in errors.
    """
    names = tuple(str(n) for n in joint_names)
    keys = [_bvh_key(n) for n in names]
    index = {}
    for i, key in enumerate(keys):
        index.setdefault(key, i)

    def find(candidates: Sequence[str]) -> int | None:
        return next((index[c] for c in candidates if c in index), None)

    found = {joint: find(candidates) for joint, candidates in _BVH_REQUIRED.items()}
    missing = [f"{joint} ({' or '.join(c for c in cands[:2])})"
               for joint, cands in _BVH_REQUIRED.items() if found[joint] is None]
    if missing:
        raise PoseCliError(f"BVH skeleton lacks joints needed for H36M: {', '.join(missing)}", source)
    f = {joint: i for joint, i in found.items() if i is not None}
    pelvis = mid(f["l_hip"], f["r_hip"])
    thorax = mid(f["l_shoulder"], f["r_shoulder"])
    spine_index = find(_BVH_SPINE)
    head_key = keys[f["head"]]
    head_top = find((f"{head_key}_end", f"{head_key}end", *_BVH_HEAD_TOP))
    to_h36m = (
        pelvis, obs(f["r_hip"]), obs(f["r_knee"]), obs(f["r_ankle"]),
        obs(f["l_hip"]), obs(f["l_knee"]), obs(f["l_ankle"]),
        mean_of(pelvis, thorax) if spine_index is None else obs(spine_index), thorax, obs(f["head"]),
        MISSING if head_top is None else obs(head_top),
        obs(f["l_shoulder"]), obs(f["l_elbow"]), obs(f["l_wrist"]),
        obs(f["r_shoulder"]), obs(f["r_elbow"]), obs(f["r_wrist"]),
    )
    if parents is not None:
        if len(parents) != len(names):
            raise PoseCliError(f"BVH skeleton has {len(names)} joints but {len(parents)} parents", source)
        bones = bones_from_parents(parents)
    else:
        limbs = [f[a] for a in ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                                "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")]
        bones = tuple(zip(limbs[0::3], limbs[1::3])) + tuple(zip(limbs[1::3], limbs[2::3])) + (
            (f["l_hip"], f["r_hip"]), (f["l_shoulder"], f["r_shoulder"]),
            (f["l_hip"], f["l_shoulder"]), (f["r_hip"], f["r_shoulder"]),
        )
    return Layout(name="bvh", joints=names, to_h36m=to_h36m, flip_pairs=_bvh_flip_pairs(keys), bones=bones)
