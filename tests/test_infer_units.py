"""Unit tests of the infer building blocks: One-Euro, gap filling, tracking, keypoint readers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from infer_support import COCO_STANDING, coco_person

from posecli.errors import PoseCliError
from posecli.infer.detector import detection_from_layout
from posecli.data.gaps import fill_gaps, segments
from posecli.infer.keypoints_io import read_keypoints
from posecli.data.smooth import one_euro, smooth_sequence
from posecli.infer.track import box_iou, track_detections

# ---------------------------------------------------------------- smoothing


def test_one_euro_first_step_matches_formula():
    # beta = 0: a plain low-pass with alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc).
    out = one_euro(np.array([0.0, 1.0, 1.0]), fps=1.0, min_cutoff=1.0, beta=0.0)
    alpha = 2 * math.pi / (2 * math.pi + 1)
    assert out[0] == 0.0
    assert out[1] == pytest.approx(alpha, abs=1e-12)
    assert out[2] == pytest.approx(alpha + alpha * (1 - alpha), abs=1e-12)


def test_smoothing_keeps_constants_and_reduces_jitter():
    rng = np.random.default_rng(0)
    const = np.full((50, 17, 3), 0.25)
    assert np.allclose(smooth_sequence(const, 30.0, 1.0), 0.25)
    noisy = 100.0 + rng.normal(0.0, 2.0, size=(300, 17, 2))
    assert np.array_equal(smooth_sequence(noisy, 30.0, 0.0), noisy)       # strength 0 = off
    std = [smooth_sequence(noisy, 30.0, s, scale=100.0)[30:].std() for s in (0.5, 1.0, 2.0)]
    assert std[0] < 2.0 * 0.8 and std[2] < std[1] < std[0]


# ---------------------------------------------------------------- gaps


def test_fill_gaps_interpolates_short_and_keeps_long_missing():
    f = 20
    kp = np.zeros((f, 17, 2), np.float32)
    conf = np.zeros((f, 17), np.float32)
    for t in [0, 1, 4, 15, 16]:                          # gap 2..3 (2 frames), gap 5..14 (10 frames)
        kp[t] = t * 10.0
        conf[t] = 1.0
    conf[4, 3] = 0.0                                     # joint 3 unseen after the short gap
    out, c, interp = fill_gaps(kp, conf, max_gap=3)
    assert interp.tolist() == [t in (2, 3) for t in range(f)]
    assert out[2, 0, 0] == pytest.approx(20.0) and out[3, 0, 0] == pytest.approx(30.0)
    assert c[2, 0] == 1.0 and c[2, 3] == 0.0 and out[2, 3, 0] == 0.0
    assert (c[5:15] == 0).all()
    assert segments((c > 0).any(axis=1)) == [(0, 5), (15, 17)]


# ---------------------------------------------------------------- tracking


def _det(frame: int, dx: float):
    return detection_from_layout(coco_person(frame, dx), np.full(17, 0.9, np.float32), "coco17")


def test_tracks_follow_people_whatever_the_detection_order():
    frames = [[_det(f, 0.0), _det(f, 80.0)][:: 1 if f % 2 else -1] for f in range(12)]
    tracks = track_detections(frames)
    assert tracks.num_tracks == 2 and tracks.track_ids.tolist() == [0, 1]
    x = tracks.keypoints2d[:, :, 0, 0]                   # pelvis x of each track
    first = 0 if x[0, 0] < x[0, 1] else 1
    assert np.allclose(x[:, first], 80 + np.arange(12)) and np.allclose(x[:, 1 - first], 160 + np.arange(12))


def test_max_people_keeps_the_longest_track_and_min_frames_drops_flicker():
    frames = [[_det(f, 0.0)] + ([_det(f, 300.0)] if f < 3 else []) for f in range(10)]
    assert track_detections(frames).num_tracks == 2
    assert track_detections(frames, max_people=1).confidence[:, 0].all()
    assert track_detections(frames, min_frames=5).num_tracks == 1


def _walker(frame: int, x0: float, speed: float):
    """The standing person with its pelvis at x0 + speed * frame."""
    kp = COCO_STANDING + np.array([x0 - 80.0 + speed * frame, 0.0], np.float32)
    return detection_from_layout(kp, np.full(17, 0.9, np.float32), "coco17")


def _pelvis_x(tracks) -> np.ndarray:
    """Pelvis x per frame and track, NaN where the track has no detection."""
    return np.where(tracks.confidence[:, :, 0] > 0, tracks.keypoints2d[:, :, 0, 0], np.nan)


def test_two_people_crossing_with_occlusion_keep_their_ids():
    # A walks right from x=20, B walks left from x=260 (6 px/frame each); they meet at frame 20,
    # and while they overlap (frames 17-23) only A, in front, is detected.
    frames = []
    for f in range(40):
        a, b = _walker(f, 20.0, 6.0), _walker(f, 260.0, -6.0)
        frames.append([a] if 17 <= f <= 23 else [b, a] if f % 2 else [a, b])
    tracks = track_detections(frames)
    assert tracks.num_tracks == 2
    x = _pelvis_x(tracks)
    a_col = 0 if x[0, 0] < x[0, 1] else 1
    assert np.allclose(x[:, a_col], 20.0 + 6.0 * np.arange(40))                    # A all the way
    b_seen = np.isfinite(x[:, 1 - a_col])
    assert b_seen.sum() == 33 and not b_seen[17:24].any()
    assert np.allclose(x[b_seen, 1 - a_col], 260.0 - 6.0 * np.flatnonzero(b_seen))  # B, never A


def test_crossing_with_the_detectors_follow_ids_keeps_both_ids():
    # As above, with the ids a following detector gives: A is followed throughout (id 1); B is
    # lost behind A and found again by the person detector under a new id (2, then 3).
    frames = []
    for f in range(40):
        a, b = _walker(f, 20.0, 6.0), _walker(f, 260.0, -6.0)
        a.follow_id, b.follow_id = 1, 2 if f < 17 else 3
        frames.append([a] if 17 <= f <= 23 else [b, a] if f % 2 else [a, b])
    tracks = track_detections(frames)
    assert tracks.num_tracks == 2
    x = _pelvis_x(tracks)
    a_col = 0 if x[0, 0] < x[0, 1] else 1
    assert np.allclose(x[:, a_col], 20.0 + 6.0 * np.arange(40))
    b_seen = np.isfinite(x[:, 1 - a_col])
    assert b_seen.sum() == 33 and np.allclose(x[b_seen, 1 - a_col], 260.0 - 6.0 * np.flatnonzero(b_seen))


def test_person_who_leaves_and_returns_never_takes_someone_elses_id():
    # B stands still at x=300 throughout; A is seen at frames 0-9 and 25-39 near x=100.
    frames = [[_walker(f, 300.0, 0.0)] + ([_walker(f, 100.0, 0.0)] if f < 10 or f >= 25 else [])
              for f in range(40)]
    kept = track_detections(frames, max_age=30)
    x = _pelvis_x(kept)
    assert kept.num_tracks == 2                                          # A came back as itself
    a_col = int(np.nanmean(x[:, 0]) > np.nanmean(x[:, 1]))
    assert np.allclose(x[np.isfinite(x[:, a_col]), a_col], 100.0)
    assert np.allclose(x[:, 1 - a_col], 300.0)
    new = track_detections(frames, max_age=5)
    x = _pelvis_x(new)
    assert new.num_tracks == 3                                           # A came back as a new id
    assert sorted(np.flatnonzero(np.isfinite(x[:, p])).tolist()[0] for p in range(3)) == [0, 0, 25]
    for p in range(3):                                                   # no track holds both people
        seen = x[np.isfinite(x[:, p]), p]
        assert np.ptp(seen) == 0.0


def test_tracks_carry_the_detectors_world_landmarks():
    frames = []
    for f in range(5):
        d = _walker(f, 100.0, 1.0)
        d.world3d = np.full((17, 3), 0.1 * f, np.float32)
        frames.append([d] if f != 2 else [])
    tracks = track_detections(frames)
    assert tracks.world3d.shape == (5, 1, 17, 3)
    assert np.isnan(tracks.world3d[2]).all() and np.allclose(tracks.world3d[4], 0.4)
    assert track_detections([[_walker(0, 100.0, 0.0)]]).world3d is None


# The example clip's jumping-jack person (examples/sports2d_demo_4s.mp4) as the bundled detector
# finds it at frames 22 and 23, H36M order, pixels: arms straight up and legs together (a box 26 px
# wide and 209 px tall), then arms and legs spread out.
THIN_POSE = np.array([[346, 153], [347, 153], [352, 190], [357, 234], [344, 154], [337, 195], [331, 236],
                      [347, 119], [348, 85], [343, 61], [343, 59], [345, 85], [349, 54], [352, 27], [351, 84],
                      [340, 56], [342, 27]], np.float32)
SPREAD_POSE = np.array([[345, 149], [332, 148], [313, 188], [298, 231], [357, 150], [371, 194], [387, 231],
                        [345, 114], [346, 80], [344, 55], [344, 52], [364, 80], [385, 56], [393, 34], [328, 80],
                        [303, 51], [298, 20]], np.float32)


def test_a_thin_pose_and_the_same_person_a_frame_later_stay_one_track():
    from posecli.infer.detector import Detection
    from posecli.infer.track import person_area, similarity

    conf = np.ones(17, np.float32)
    assert person_area(THIN_POSE, conf) == pytest.approx(209.0 * 209.0 / 2)      # not 26 x 209
    assert person_area(SPREAD_POSE, conf) == pytest.approx(211.0 * 211.0 / 2)     # 95 x 211
    star = np.float32([[0, 0], [100, 80]] * 8 + [[50, 40]])
    assert person_area(star, conf) == pytest.approx(100.0 * 80.0)                # a wide box as it is
    assert similarity(THIN_POSE, conf, Detection(SPREAD_POSE, conf, 1.0)) > 0.4
    tracks = track_detections([[Detection(THIN_POSE, conf, 1.0)], [Detection(SPREAD_POSE, conf, 1.0)]])
    assert tracks.num_tracks == 1 and (tracks.confidence[:, 0] > 0).all()
    # Someone else half a body height away is still a stranger.
    assert similarity(THIN_POSE, conf, Detection(THIN_POSE + np.float32([100, 0]), conf, 1.0)) < 0.01
    assert track_detections([[Detection(THIN_POSE, conf, 1.0)],
                             [Detection(SPREAD_POSE + np.float32([100, 0]), conf, 1.0)]]).num_tracks == 2


def test_a_person_seen_mirrored_for_a_frame_keeps_the_track():
    from posecli.infer.detector import Detection
    from posecli.infer.track import similarity
    from posecli.skeleton import H36M_FLIP_PERM

    conf = np.ones(17, np.float32)
    mirrored = SPREAD_POSE[H36M_FLIP_PERM]          # the same pixels, left and right labels swapped
    assert similarity(SPREAD_POSE, conf, Detection(mirrored, conf, 1.0)) == pytest.approx(1.0)
    frames = [[Detection(SPREAD_POSE + np.float32([f, 0]) if f != 3 else mirrored, conf, 1.0)] for f in range(6)]
    tracks = track_detections(frames)
    assert tracks.num_tracks == 1 and (tracks.confidence[:, 0] > 0).all()
    assert np.array_equal(tracks.keypoints2d[3, 0], mirrored)          # kept as detected


def test_a_person_the_detector_followed_through_a_flip_keeps_the_track():
    from posecli.infer.detector import Detection

    conf = np.ones(17, np.float32)
    centre = THIN_POSE[0]
    turned = [(THIN_POSE - centre) @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]], np.float32) + centre
              for a in np.radians([0, 90, 180, 270, 360])]     # a flip seen at a low frame rate

    def frames(follow_ids):
        return [[Detection(kp, conf, 1.0, follow_id=fid)] for kp, fid in zip(turned, follow_ids)]

    assert track_detections(frames([None] * 5)).num_tracks > 1                  # OKS alone loses it
    followed = track_detections(frames([7] * 5))
    assert followed.num_tracks == 1 and (followed.confidence[:, 0] > 0).all()
    # Only the same id links, also across frames the detector followed without reporting them.
    assert track_detections(frames([7, 7, 8, 8, 8])).num_tracks > 1
    gap = frames([7] * 5)
    gap[2] = []
    assert track_detections(gap).num_tracks == 1


def test_box_iou_exact():
    assert box_iou(np.array([0, 0, 2, 2]), np.array([1, 0, 3, 2])) == pytest.approx(1 / 3)
    assert box_iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0.0


# ---------------------------------------------------------------- keypoint readers


def _coco_flat(points: np.ndarray, score: float = 0.8) -> list[float]:
    return np.concatenate([points, np.full((len(points), 1), score)], axis=1).ravel().tolist()


def test_coco_results_json(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([
        {"image_id": 0, "category_id": 1, "keypoints": _coco_flat(COCO_STANDING), "score": 0.9},
        {"image_id": 2, "category_id": 1, "keypoints": _coco_flat(COCO_STANDING + 5), "score": 0.9},
    ]))
    frames = read_keypoints(path)
    assert [len(f) for f in frames] == [1, 0, 1]
    det = frames[0][0]
    assert det.keypoints[0].tolist() == [80.0, 70.0]                  # pelvis = mid-hips
    assert det.keypoints[1].tolist() == [72.0, 70.0]                  # r_hip = COCO 12
    assert det.confidence[0] == pytest.approx(0.8)


def test_halpe_alphapose_string_ids(tmp_path):
    halpe = np.concatenate([COCO_STANDING, np.full((9, 2), 500.0)])   # 26 points, body first
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps([{"image_id": "000003.jpg", "keypoints": _coco_flat(halpe), "idx": 1}]))
    frames = read_keypoints(path)
    assert len(frames) == 4 and frames[3][0].keypoints[13].tolist() == COCO_STANDING[9].tolist()


def test_openpose_body25_folder(tmp_path):
    body25 = np.zeros((25, 2), np.float32)
    order = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
    body25[order] = COCO_STANDING
    for f in range(3):
        people = [{"pose_keypoints_2d": _coco_flat(body25)}] if f != 1 else []
        (tmp_path / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    frames = read_keypoints(tmp_path)
    assert [len(f) for f in frames] == [1, 0, 1]
    assert frames[2][0].keypoints[16].tolist() == COCO_STANDING[10].tolist()   # r_wrist


def test_npz_roundtrip_and_skeleton_key(tmp_path):
    kp = np.stack([coco_person(f) for f in range(4)])
    np.savez(tmp_path / "coco.npz", keypoints2d=kp, confidence=np.ones((4, 17)), skeleton="coco17")
    frames = read_keypoints(tmp_path / "coco.npz")
    assert len(frames) == 4 and frames[3][0].keypoints[0].tolist() == [83.0, 70.0]


@pytest.mark.parametrize("content, message", [
    ([{"image_id": 0, "keypoints": [1.0] * 42}], "42 keypoint values per person"),
    ({"people": []}, "COCO/Halpe results list"),
    ([{"image_id": 0}], "lacks 'image_id' or 'keypoints'"),
])
def test_wrong_keypoint_layouts_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(PoseCliError, match=message) as info:
        read_keypoints(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_npz_with_wrong_joint_count(tmp_path):
    np.savez(tmp_path / "bad.npz", keypoints2d=np.zeros((3, 14, 2)))
    with pytest.raises(PoseCliError, match="h36m17 has 17 joints"):
        read_keypoints(tmp_path / "bad.npz")
