"""Left and right labels that stay with the body from frame to frame.

Image detectors (BlazePose, COCO-style heatmap models) decide left from right in every frame on
their own, and on a person seen from the front or the back they often mirror the arms or the
legs for single frames or runs of frames: the left wrist's label jumps onto the right wrist and
back, at full confidence. A lifter reads each mirrored frame as a body that turned round in one
frame, and its 3D follows. Continuity tells the two apart: between neighbouring frames a joint
moves a little, while a mirrored label jumps the distance between the two sides.

Per track and limb group (arms, legs) each detection is either as given or mirrored, and the
labelling of the whole track is the cheapest path (Viterbi, two states) where moving from one
detection to the next costs how far the joints travel under the two labellings (in units of the
person's size), and every mirrored detection costs MIRROR_COST on top: the detector is right more
often than not, so a labelling is only changed where continuity pays for it. A run of mirrored
frames between correctly labelled ones is relabelled when its two jumps cost more than
MIRROR_COST per frame of it (runs up to ~60 frames with arms 0.3 of the height apart); where the
two sides overlap (side views, crossed legs) the two labellings cost the same and the detector's
stands; detections further apart than MAX_LINK_GAP frames are not compared at all. Only the 2D is
relabelled; the detector's own 3D is kept as it came, for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli.geometry import box_side
from posecli.skeleton import H36M_FLIP_PAIRS

LEG_PAIRS = tuple(p for p in H36M_FLIP_PAIRS if p[0] in (1, 2, 3))
ARM_PAIRS = tuple(p for p in H36M_FLIP_PAIRS if p[0] in (11, 12, 13))
LIMB_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {"legs": LEG_PAIRS, "arms": ARM_PAIRS}
MIRROR_COST = 0.01    # per mirrored detection, in person sizes of joint travel (benchmarks/bench_sides.py)
MAX_LINK_GAP = 3      # detections further apart (frames) are not compared: motion over a gap is unknown


@dataclass
class SideFix:
    keypoints2d: np.ndarray   # [F, P, 17, 2], relabelled
    confidence: np.ndarray    # [F, P, 17], relabelled with the keypoints
    mirrored: np.ndarray      # bool [F, P, G]: frames whose group's labels were exchanged (G = LIMB_GROUPS)


def _travel(kp0: np.ndarray, c0: np.ndarray, kp1: np.ndarray, c1: np.ndarray, size: np.ndarray,
            pairs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """([L], [L]) mean joint travel from pose 0 to pose 1 of a limb group, in units of `size` (the
    person's box, <= 0 where unknown), with
    pose 1's labels as they are and mirrored; 0 for both where no pair is seen in both poses."""
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    seen = (c0[:, a] > 0) & (c0[:, b] > 0) & (c1[:, a] > 0) & (c1[:, b] > 0)
    dist = lambda x, y: np.linalg.norm(x - y, axis=-1)                      # noqa: E731
    same = (dist(kp1[:, a], kp0[:, a]) + dist(kp1[:, b], kp0[:, b])) / 2
    cross = (dist(kp1[:, a], kp0[:, b]) + dist(kp1[:, b], kp0[:, a])) / 2
    scale = np.maximum(seen.sum(axis=1), 1) * np.where(size > 0, size, np.inf)
    return np.where(seen, same, 0.0).sum(axis=1) / scale, np.where(seen, cross, 0.0).sum(axis=1) / scale


def _cheapest_labelling(same: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """[n] bool, which of n detections to mirror: the two-state Viterbi path where detection i -> i+1
    costs same[i] when both keep or both change their labels, cross[i] otherwise, and each mirrored
    detection MIRROR_COST (ties keep the detector's labels)."""
    n = len(same) + 1
    cost = [0.0, MIRROR_COST]                               # best path ending as given / mirrored
    came_from = np.zeros((n, 2), dtype=bool)                # True: from the other state
    for i in range(1, n):
        s, c = float(same[i - 1]), float(cross[i - 1])
        keep_from_other, mirror_from_other = cost[1] + c < cost[0] + s, cost[0] + c < cost[1] + s
        came_from[i] = keep_from_other, mirror_from_other
        cost = [min(cost[0] + s, cost[1] + c), min(cost[1] + s, cost[0] + c) + MIRROR_COST]
    state = cost[1] < cost[0]
    path = np.zeros(n, dtype=bool)
    for i in range(n - 1, -1, -1):
        path[i] = state
        state = state ^ bool(came_from[i, int(state)])
    return path


def consistent_sides(keypoints2d: np.ndarray, confidence: np.ndarray) -> SideFix:
    """Relabel each track's arms and legs so that left and right stay with the body (module doc).
    `keypoints2d` [F, P, 17, 2] in any unit (pixels or normalised), `confidence` [F, P, 17]."""
    kp, conf = keypoints2d, confidence
    frames, people = conf.shape[:2]
    mirrored = np.zeros((frames, people, len(LIMB_GROUPS)), dtype=bool)
    for p in range(people):
        seen = np.nonzero((conf[:, p] > 0).any(axis=1))[0]
        if len(seen) < 2:
            continue
        f0, f1 = seen[:-1], seen[1:]
        size = np.maximum(box_side(kp[f0, p], conf[f0, p] > 0), box_side(kp[f1, p], conf[f1, p] > 0))
        near = f1 - f0 <= MAX_LINK_GAP
        for g, pairs in enumerate(LIMB_GROUPS.values()):
            same, cross = _travel(kp[f0, p], conf[f0, p], kp[f1, p], conf[f1, p], size, pairs)
            mirrored[seen[_cheapest_labelling(np.where(near, same, 0.0), np.where(near, cross, 0.0))], p, g] = True
    return SideFix(mirror_groups(kp, mirrored), mirror_groups(conf, mirrored), mirrored)


def mirror_groups(values: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Exchange the left and right joints of each limb group where `mirrored` [F, P, G] says so;
    `values` [F, P, 17, ...] (keypoints, confidence, the detector's 3D). Returns a new array."""
    out = values.copy()
    for g, pairs in enumerate(LIMB_GROUPS.values()):
        f, p = np.nonzero(mirrored[..., g])
        for a, b in pairs:
            out[f, p, a], out[f, p, b] = values[f, p, b], values[f, p, a]
    return out
