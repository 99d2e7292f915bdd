"""Left/right labels kept with the body (posecli.infer.sides), on tracks whose labels are known."""

from __future__ import annotations

import numpy as np

from posecli.infer.detector import Detection
from posecli.infer.pipeline import InferOptions, track_people
from posecli.infer.sides import LIMB_GROUPS, MAX_LINK_GAP, consistent_sides, mirror_groups
from posecli.skeleton import NUM_JOINTS

ARMS, LEGS = list(LIMB_GROUPS).index("arms"), list(LIMB_GROUPS).index("legs")

# A person facing the camera, image coordinates (y down), 400 px tall: H36M-17 order.
FRONT = np.array([
    [0, 0], [-30, 0], [-35, 100], [-40, 200], [30, 0], [35, 100], [40, 200],      # pelvis, right leg, left leg
    [0, -60], [0, -120], [0, -150], [0, -190],                                     # spine, thorax, neck, head
    [40, -115], [90, -80], [140, -60], [-40, -115], [-90, -80], [-140, -60],       # left arm, right arm
], dtype=np.float32)


def walker(frames: int, turn: float = 0.0) -> np.ndarray:
    """[F, 17, 2]: FRONT moving right 3 px a frame, arms swinging; `turn` radians of turning round
    about the vertical over the clip (x of every joint scaled by cos)."""
    t = np.arange(frames, dtype=np.float32)
    kp = np.repeat(FRONT[None], frames, axis=0).copy()
    kp[:, [13, 16], 1] += 15 * np.sin(t / 5)[:, None]
    kp[..., 0] *= np.cos(turn * t / max(frames - 1, 1))[:, None]
    kp[..., 0] += 500 + 3 * t[:, None]
    kp[..., 1] += 500
    return kp


def mirrored_copy(kp: np.ndarray, conf: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return mirror_groups(kp[:, None], mask[:, None])[:, 0], mirror_groups(conf[:, None], mask[:, None])[:, 0]


def test_flicker_is_undone_exactly_and_only_where_it_was():
    truth = walker(60)
    conf = np.linspace(0.5, 1.0, NUM_JOINTS, dtype=np.float32)[None].repeat(60, axis=0)
    mask = np.zeros((60, len(LIMB_GROUPS)), dtype=bool)
    mask[[10, 11, 20, 30, 31, 32, 33], ARMS] = True
    mask[[12, 40], LEGS] = True
    kp, c = mirrored_copy(truth, conf, mask)
    assert not np.array_equal(kp, truth)
    fix = consistent_sides(kp[:, None], c[:, None])
    assert np.array_equal(fix.mirrored[:, 0], mask)
    assert np.array_equal(fix.keypoints2d[:, 0], truth)
    assert np.array_equal(fix.confidence[:, 0], conf)          # confidence travels with its joint


def test_a_person_turning_round_keeps_the_detectors_labels():
    # Left and right cross over continuously: no frame is a mirror of its neighbour.
    kp = walker(80, turn=np.pi)
    conf = np.ones((80, NUM_JOINTS), np.float32)
    fix = consistent_sides(kp[:, None], conf[:, None])
    assert not fix.mirrored.any()
    assert np.array_equal(fix.keypoints2d[:, 0], kp)


def test_a_run_mirrored_from_the_first_frame_is_the_minority_and_is_relabelled():
    truth = walker(20)
    conf = np.ones((20, NUM_JOINTS), np.float32)
    mask = np.zeros((20, len(LIMB_GROUPS)), dtype=bool)
    mask[:3] = True                                             # both groups, frames 0-2
    kp, c = mirrored_copy(truth, conf, mask)
    fix = consistent_sides(kp[:, None], c[:, None])
    assert np.array_equal(fix.keypoints2d[:, 0], truth)


def test_chains_break_at_gaps_and_a_consistent_chain_is_kept_as_given():
    # Frames 0-9 as they are, a gap longer than MAX_LINK_GAP, then frames mirrored throughout:
    # nothing links the second chain to the first, and within it the labels agree, so it stays.
    gap = MAX_LINK_GAP + 2
    truth = walker(20 + gap)
    conf = np.ones((20 + gap, NUM_JOINTS), np.float32)
    conf[10:10 + gap] = 0.0
    mask = np.zeros((20 + gap, len(LIMB_GROUPS)), dtype=bool)
    mask[10 + gap:] = True
    kp, c = mirrored_copy(truth, conf, mask)
    fix = consistent_sides(kp[:, None], c[:, None])
    assert not fix.mirrored.any()
    # The same clip without the gap is one chain: its 10 mirrored frames are the minority against
    # the 10 + gap frames before them, and are relabelled.
    kp2, c2 = mirrored_copy(truth, np.ones_like(conf), mask)
    flips = consistent_sides(kp2[:, None], c2[:, None]).mirrored[:, 0]
    assert flips[10 + gap:].all() and not flips[:10 + gap].any()


def test_infer_tracking_fixes_sides_unless_turned_off_and_keeps_the_detectors_3d():
    truth = walker(30)
    conf = np.ones((30, NUM_JOINTS), np.float32)
    mask = np.zeros((30, len(LIMB_GROUPS)), dtype=bool)
    mask[[7, 8, 15], ARMS] = True
    kp, c = mirrored_copy(truth, conf, mask)
    world = np.random.default_rng(0).normal(size=(30, NUM_JOINTS, 3)).astype(np.float32)
    frames = [[Detection(kp[f], c[f], 1.0, world3d=world[f])] for f in range(30)]
    fixed = track_people(frames, 30.0, InferOptions())
    assert np.array_equal(fixed.keypoints2d[:, 0], truth)
    assert np.nonzero(fixed.relabelled[:, 0])[0].tolist() == [7, 8, 15]
    assert np.array_equal(fixed.world3d[:, 0], world)
    raw = track_people(frames, 30.0, InferOptions(fix_sides=False))
    assert np.array_equal(raw.keypoints2d[:, 0], kp) and raw.relabelled is None


def test_a_mirrored_run_is_relabelled_only_while_its_two_jumps_cost_more_than_the_run():
    # FRONT's arm pairs are on average 180 px apart on a 390 px tall person: each jump into or out
    # of a mirrored run costs ~0.46 person sizes of travel, so a run of up to ~0.92 / MIRROR_COST
    # frames is relabelled and a longer one is taken to be the detector's consistent reading.
    from posecli.infer.sides import MIRROR_COST

    limit = int(0.92 / MIRROR_COST)
    for run, relabelled in ((limit // 2, True), (limit * 2, False)):
        frames = run + 200
        truth = walker(frames)
        conf = np.ones((frames, NUM_JOINTS), np.float32)
        mask = np.zeros((frames, len(LIMB_GROUPS)), dtype=bool)
        mask[100:100 + run, ARMS] = True
        kp, c = mirrored_copy(truth, conf, mask)
        flips = consistent_sides(kp[:, None], c[:, None]).mirrored[:, 0]
        assert np.array_equal(flips, mask if relabelled else np.zeros_like(mask)), run
