"""Left and right labels that stay with the body from frame to frame.

Image detectors (BlazePose, COCO-style heatmap models) decide left from right in every frame on
their own, and on a person seen from the front or the back they often mirror the arms or the
legs for single frames or runs of frames: the left wrist's label jumps onto the right wrist and
back, at full confidence. A lifter reads each mirrored frame as a body that turned round in one
frame, and its 3D follows. Continuity tells the two apart: between neighbouring frames a joint
moves a little, while a mirrored label jumps the distance between the two sides.

So each pair of consecutive detections of a track is *linked* per limb group (arms, legs) when one
labelling of the later frame is clearly closer to the earlier one than the other: "same" or
"mirrored". Where neither is clearly closer (side views, crossed legs, a long gap) the chain of
links breaks, since a guess there could mirror everything after it. Within each chain the
labelling is then made consistent, and of its two consistent labellings the one that keeps more
of the detector's own labels wins (the detector is right more often than not), so a chain is
never mirrored as a whole on the strength of a few frames. Only the 2D is relabelled; the
detector's own 3D is kept as it came, for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli.skeleton import H36M_FLIP_PAIRS

LEG_PAIRS = tuple(p for p in H36M_FLIP_PAIRS if p[0] in (1, 2, 3))
ARM_PAIRS = tuple(p for p in H36M_FLIP_PAIRS if p[0] in (11, 12, 13))
LIMB_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {"legs": LEG_PAIRS, "arms": ARM_PAIRS}
LINK_MARGIN = 0.1     # one labelling must be closer by this share of the person's size to link frames
MAX_LINK_GAP = 3      # detections further apart (frames) are not linked: motion over a gap is unknown


@dataclass
class SideFix:
    keypoints2d: np.ndarray   # [F, P, 17, 2], relabelled
    confidence: np.ndarray    # [F, P, 17], relabelled with the keypoints
    mirrored: np.ndarray      # bool [F, P, G]: frames whose group's labels were exchanged (G = LIMB_GROUPS)


def _person_sizes(kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """[N] long side of the box of each pose's seen joints (0 where none is seen)."""
    seen = conf > 0
    low = np.where(seen[..., None], kp, np.inf).min(axis=1)
    high = np.where(seen[..., None], kp, -np.inf).max(axis=1)
    side = (high - low).max(axis=-1)
    return np.where(seen.any(axis=1), side, 0.0)


def _links(kp0: np.ndarray, c0: np.ndarray, kp1: np.ndarray, c1: np.ndarray, size: np.ndarray,
           pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """[L] per pair of poses (0 -> 1): +1 when pose 1's labels continue pose 0's, -1 when they are
    mirrored, 0 when neither labelling is closer by LINK_MARGIN x `size`, or no pair is seen in both."""
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    seen = (c0[:, a] > 0) & (c0[:, b] > 0) & (c1[:, a] > 0) & (c1[:, b] > 0)
    dist = lambda x, y: np.linalg.norm(x - y, axis=-1)                      # noqa: E731
    same = (dist(kp1[:, a], kp0[:, a]) + dist(kp1[:, b], kp0[:, b])) / 2
    cross = (dist(kp1[:, a], kp0[:, b]) + dist(kp1[:, b], kp0[:, a])) / 2
    count = seen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(seen, cross - same, 0.0).sum(axis=1) / count        # > 0: labels continue
    clear = (count > 0) & (size > 0) & (np.abs(np.nan_to_num(gain)) >= LINK_MARGIN * size)
    return np.where(clear, np.sign(np.nan_to_num(gain)), 0).astype(np.int64)


def _chain_flips(links: np.ndarray) -> np.ndarray:
    """Which of n detections (n-1 links between them) to mirror: per chain of linked detections,
    the consistent labelling that changes the fewest of them (none on a tie)."""
    n = len(links) + 1
    flips = np.zeros(n, dtype=bool)
    start = 0
    for end in range(1, n + 1):
        if end < n and links[end - 1] != 0:
            continue
        parity = np.zeros(end - start, dtype=bool)           # relative to the chain's first detection
        for i in range(start + 1, end):
            parity[i - start] = parity[i - 1 - start] ^ (links[i - 1] < 0)
        mirrored_if_first_kept = int(parity.sum())
        if mirrored_if_first_kept < (end - start) - mirrored_if_first_kept:
            flips[start:end] = parity
        elif mirrored_if_first_kept > (end - start) - mirrored_if_first_kept:
            flips[start:end] = ~parity
        start = end
    return flips


def consistent_sides(keypoints2d: np.ndarray, confidence: np.ndarray) -> SideFix:
    """Relabel each track's arms and legs so that left and right stay with the body (module doc).
    `keypoints2d` [F, P, 17, 2] in any unit (pixels or normalised), `confidence` [F, P, 17]."""
    kp, conf = keypoints2d.copy(), confidence.copy()
    frames, people = conf.shape[:2]
    mirrored = np.zeros((frames, people, len(LIMB_GROUPS)), dtype=bool)
    for p in range(people):
        seen = np.nonzero((conf[:, p] > 0).any(axis=1))[0]
        if len(seen) < 2:
            continue
        f0, f1 = seen[:-1], seen[1:]
        size = np.maximum(_person_sizes(kp[f0, p], conf[f0, p]), _person_sizes(kp[f1, p], conf[f1, p]))
        for g, pairs in enumerate(LIMB_GROUPS.values()):
            links = _links(kp[f0, p], conf[f0, p], kp[f1, p], conf[f1, p], size, pairs)
            links[f1 - f0 > MAX_LINK_GAP] = 0
            mirrored[seen[_chain_flips(links)], p, g] = True
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
