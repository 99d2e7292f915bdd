"""Link per-frame detections into person tracks by pose similarity (OKS), with box IoU as fallback.

Greedy matching on the similarity matrix is enough here: detections of different people rarely
compete for the same track at video frame rates, and it needs no solver dependency. A track that
is not matched for `max_age` frames is closed, so a person who leaves and comes back much later
gets a new id (the gap logic then treats the first track's end as the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from posecli.geometry import box_iou
from posecli.metrics import oks
from posecli.infer.detector import Detection
from posecli.skeleton import H36M_FLIP_PERM, NUM_JOINTS


@dataclass
class Tracks:
    """Per-frame, per-track keypoints; frames where a track has no detection have confidence 0."""

    keypoints2d: np.ndarray  # float32 [F, P, 17, 2] pixels
    confidence: np.ndarray   # float32 [F, P, 17]
    track_ids: np.ndarray    # int64 [P]
    # The detector's own metric 3D where it has one (BlazePose world landmarks, metres, H36M-17
    # order, NaN where not detected): kept for comparisons, never an input of the lifter.
    world3d: np.ndarray | None = field(default=None, kw_only=True)   # float32 [F, P, 17, 3]
    # Track-frames whose arms or legs posecli.infer.sides relabelled (None: not run).
    relabelled: np.ndarray | None = field(default=None, kw_only=True)  # bool [F, P]

    @property
    def num_frames(self) -> int:
        return int(self.keypoints2d.shape[0])

    @property
    def num_tracks(self) -> int:
        return int(self.keypoints2d.shape[1])


def _box(kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
    seen = kp[conf > 0]
    if len(seen) == 0:
        return np.zeros(4)
    return np.concatenate([seen.min(axis=0), seen.max(axis=0)]).astype(np.float64)


def person_area(kp: np.ndarray, conf: np.ndarray) -> float:
    """The OKS scale of a pose: its box area with the short side raised to at least half the long
    side. A person standing with arms down, or seen side on, has a box a tenth as wide as it is
    tall; its bare area would make OKS so strict that the same person doing a jumping jack one
    frame later scores as a stranger (and the track breaks)."""
    seen = kp[conf > 0]
    if len(seen) == 0:
        return 0.0
    side = seen.max(axis=0) - seen.min(axis=0)
    long, short = float(side.max()), float(side.min())
    return long * max(short, long / 2)


def similarity(track_kp: np.ndarray, track_conf: np.ndarray, det: Detection) -> float:
    """COCO OKS against the track's last pose (posecli.metrics.oks) at the track's
    `person_area`, or box IoU when the two share no joint that has an OKS sigma.

    The detection counts with its left and right joints as given or swapped, whichever is
    closer: a person turning round is often seen from one side and then mirrored for a few
    frames, and with arms spread that alone would break the track."""
    area = np.array([person_area(track_kp, track_conf)])
    values = []
    for order in (slice(None), H36M_FLIP_PERM):
        kp, conf = det.keypoints[order], det.confidence[order]
        values.append(float(oks(kp[None], track_kp[None], ((track_conf > 0) & (conf > 0))[None], area)[0]))
    value = max(values)
    if np.isfinite(value):
        return value
    return box_iou(_box(track_kp, track_conf), _box(det.keypoints, det.confidence))


PREDICT_FRAMES = 10   # a track's motion is extrapolated at most this many frames past its last detection


def _centre(kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
    seen = conf > 0
    return kp[seen].mean(axis=0) if seen.any() else kp.mean(axis=0)


def _predicted(track: dict, frame: int) -> np.ndarray:
    """The track's last pose moved by its velocity (pixels/frame) up to `frame`: people who cross
    keep going, so two poses that meet are told apart by where each was heading."""
    steps = min(frame - track["last"], PREDICT_FRAMES)
    return track["kp"] + track["vel"] * np.float32(steps)


def _followed(track: dict, det: Detection) -> float:
    """1 when the detector followed `det` from the track's last detection (its id chain may skip
    frames where it followed the person without reporting them), else 0."""
    return 1.0 if det.follow_id is not None and det.follow_id == track["follow"] else 0.0


def track_detections(frames: list[list[Detection]], *, max_people: int | None = None,
                     min_similarity: float = 0.2, max_age: int = 30, min_frames: int = 1) -> Tracks:
    """Assign each frame's detections to tracks and keep the `max_people` longest ones.

    Each frame, every open track is compared (OKS, or box IoU) with every detection at the pose
    it is predicted to have now (constant velocity), and pairs are taken greedily, most similar
    first, each track and detection at most once. A detection that the detector itself followed
    from the track's last detection (same `follow_id`) goes first whatever its
    similarity: the detector saw the person through a flip or a turn that changes the pose too
    much for OKS. A detection left over starts a new track, so a person never takes the id of
    someone else who is still being followed; a track unmatched for more than `max_age` frames is
    closed for good."""
    active: list[dict] = []      # {"id", "kp", "conf", "last", "vel", "follow"}
    assigned: list[list[tuple[int, Detection]]] = []
    next_id = 0
    for f, dets in enumerate(frames):
        active = [t for t in active if f - t["last"] <= max_age]
        predicted = [_predicted(t, f) for t in active]
        pairs = sorted(
            ((similarity(predicted[ti], t["conf"], d) + _followed(t, d), ti, di)
             for ti, t in enumerate(active) for di, d in enumerate(dets)),
            key=lambda x: x[0], reverse=True,
        )
        used_t, used_d, out = set(), set(), []
        for sim, ti, di in pairs:
            if sim < min_similarity or ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            out.append((active[ti]["id"], dets[di]))
        for di, d in enumerate(dets):
            if di not in used_d:
                active.append({"id": next_id, "kp": d.keypoints, "conf": d.confidence, "last": f,
                               "vel": np.zeros(2, np.float32), "follow": d.follow_id})
                out.append((next_id, d))
                next_id += 1
        by_id = {t["id"]: t for t in active}
        for tid, d in out:
            t = by_id[tid]
            if t["last"] < f:
                step = (_centre(d.keypoints, d.confidence) - _centre(t["kp"], t["conf"])) / (f - t["last"])
                t["vel"] = (0.5 * t["vel"] + 0.5 * step).astype(np.float32)
            t["kp"], t["conf"], t["last"], t["follow"] = d.keypoints, d.confidence, f, d.follow_id
        assigned.append(out)
    return _to_arrays(assigned, len(frames), next_id, max_people=max_people, min_frames=min_frames)


def min_track_length(num_frames: int, min_frames: int) -> int:
    """Frames a track needs to be kept: `min_frames`, but never more than half the clip.

    A short track is flicker only in comparison with the clip: in a photo (1 frame) or a 3-frame
    clip every real person is seen in few frames, and a fixed minimum would drop them all."""
    return max(1, min(int(min_frames), math.ceil(num_frames / 2)))


def _to_arrays(assigned: list[list[tuple[int, Detection]]], num_frames: int, num_ids: int, *,
               max_people: int | None, min_frames: int) -> Tracks:
    weight = np.zeros(num_ids)
    count = np.zeros(num_ids, dtype=np.int64)
    for out in assigned:
        for tid, d in out:
            weight[tid] += d.score
            count[tid] += 1
    required = min_track_length(num_frames, min_frames)
    keep = [i for i in np.argsort(-weight, kind="stable") if count[i] >= required]
    if max_people is not None:
        keep = keep[:max_people]
    keep = sorted(keep)                      # ids in order of first appearance
    column = {tid: p for p, tid in enumerate(keep)}
    kp = np.zeros((num_frames, len(keep), NUM_JOINTS, 2), dtype=np.float32)
    conf = np.zeros((num_frames, len(keep), NUM_JOINTS), dtype=np.float32)
    has_world = any(d.world3d is not None for out in assigned for _, d in out)
    world = np.full((num_frames, len(keep), NUM_JOINTS, 3), np.nan, np.float32) if has_world else None
    for f, out in enumerate(assigned):
        for tid, d in out:
            if tid in column:
                kp[f, column[tid]] = d.keypoints
                conf[f, column[tid]] = d.confidence
                if world is not None and d.world3d is not None:
                    world[f, column[tid]] = d.world3d
    return Tracks(kp, conf, np.arange(len(keep), dtype=np.int64), world3d=world)
