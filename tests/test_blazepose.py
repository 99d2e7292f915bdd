"""The bundled multi-person BlazePose detector: its anchor, ROI and suppression rules exactly, and
the two people of the example clip found by the real models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from posecli.infer.blazepose import (
    ANCHORS,
    DETECTOR_MODEL,
    LANDMARK_MODEL,
    Roi,
    aligned_roi,
    detection_tiles,
    same_person,
    weighted_nms,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sports2d_demo_4s.mp4"


def test_models_ship_with_their_licence_note():
    assert DETECTOR_MODEL.stat().st_size == 2959046 and LANDMARK_MODEL.stat().st_size == 6440512
    note = (DETECTOR_MODEL.parent / "README.md").read_text()
    assert "Apache License 2.0" in note and "mediapipe 0.10.21".lower() in note.lower()


def test_ssd_anchors_match_the_detector_output():
    assert ANCHORS.shape == (2254, 2)
    # stride 8: 28x28 cells x 2 anchors, stride 16: 14x14 x 2, stride 32 (three layers): 7x7 x 6.
    assert np.allclose(ANCHORS[0], [0.5 / 28, 0.5 / 28]) and np.allclose(ANCHORS[1], ANCHORS[0])
    assert np.allclose(ANCHORS[1568], [0.5 / 14, 0.5 / 14])
    assert np.allclose(ANCHORS[1960:1966], [0.5 / 7, 0.5 / 7]) and np.allclose(ANCHORS[-1], [6.5 / 7, 6.5 / 7])


@pytest.mark.parametrize("direction", [(0.0, -1.0), (1.0, 0.0), (-0.6, -0.8), (0.0, 1.0)])
def test_aligned_roi_turns_hip_to_point_upright(direction):
    start = np.array([300.0, 200.0])
    end = start + 100.0 * np.array(direction)
    roi = aligned_roi(start, end)
    assert roi.side == pytest.approx(250.0) and (roi.cx, roi.cy) == (300.0, 200.0)
    to_image = roi.crop_to_image(256)
    # The crop's centre is the hip centre and the point 100 px "up" in the crop is `end`.
    up = 100.0 * 256 / 250.0
    for crop_point, image_point in (((128.0, 128.0), start), ((128.0, 128.0 - up), end)):
        assert np.allclose(to_image[:, :2] @ crop_point + to_image[:, 2], image_point)
    if direction == (0.0, -1.0):
        assert roi.angle == pytest.approx(0.0)


def test_detection_tiles_cover_wide_and_tall_frames():
    assert detection_tiles(540, 960) == [(0, 0, None), (0, 0, 540), (420, 0, 540)]
    assert detection_tiles(1920, 1080) == [(0, 0, None), (0, 0, 1080), (0, 840, 1080)]
    assert detection_tiles(480, 640) == [(0, 0, None)]                      # 4:3: the whole frame only
    assert detection_tiles(100, 1000)[1:] == [(0, 0, 100), (100, 0, 100), (200, 0, 100), (300, 0, 100),
                                              (400, 0, 100), (500, 0, 100), (600, 0, 100), (700, 0, 100),
                                              (800, 0, 100), (900, 0, 100)]


def test_weighted_nms_merges_one_person_and_keeps_another():
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [3, 3, 4, 4]], np.float64)
    keypoints = np.stack([np.zeros((4, 2)), np.ones((4, 2)), np.full((4, 2), 5.0)])
    people = weighted_nms(boxes, keypoints, np.array([0.9, 0.3, 0.8]))
    assert [s for _, s in people] == [0.9, 0.8]
    assert np.allclose(people[0][0], 0.3 / 1.2) and np.allclose(people[1][0], 5.0)


def test_same_person_by_hip_distance_or_overlap():
    a = Roi(100.0, 100.0, 90.0, 0.0)
    assert same_person(a, Roi(129.0, 100.0, 300.0, 0.0))                   # hips 29 px apart < 90 / 3
    assert not same_person(a, Roi(131.0, 100.0, 90.0, 0.5))                 # 31 px, IoU 0.49
    assert same_person(a, Roi(100.0, 119.0, 60.0, 1.0))                      # 19 px < 60 / 3
    assert not same_person(a, Roi(100.0, 121.0, 60.0, 1.0))


def test_both_people_of_the_example_clip():
    pytest.importorskip("ai_edge_litert", reason='needs the video extra: pip install "posecli[video]"')
    pytest.importorskip("av")
    from posecli.infer.blazepose import BlazePoseMultiDetector
    from posecli.infer.video import iter_frames

    frames = list(iter_frames(EXAMPLE, max_frames=24))
    with BlazePoseMultiDetector(max_people=4) as detector:
        people = [detector(f) for f in frames]
        # The landmark model's presence flag is a probability: about 1 on a person, about 0 on
        # an empty region (a second sigmoid would put both at >= 0.5 and pass ghosts as people).
        person_roi = max(detector.detect(frames[0]), key=lambda p: p[1])[0]
        assert detector.landmarks(frames[0], person_roi)[3] > 0.9
        sky = Roi(100.0, 60.0, 100.0, 0.0)
        assert detector.landmarks(frames[0], sky)[3] < 0.01
        assert detector.landmarks(np.zeros_like(frames[0]), person_roi)[3] < 0.01
    assert all(1 <= len(p) <= 2 for p in people) and sum(len(p) == 2 for p in people[12:]) >= 10
    roof = [min(p, key=lambda d: d.keypoints[0, 1]) for p in people]
    for det in roof:             # the jumping-jack person on the roof, left of centre, upper half
        pelvis, head = det.keypoints[0], det.keypoints[10]
        assert 250 < pelvis[0] < 450 and 100 < pelvis[1] < 250 and pelvis[1] - head[1] > 50
        assert det.world3d.shape == (17, 3) and abs(det.world3d[0]).max() < 0.05   # world: hip-centred metres
        assert 0.3 < det.world3d[0, 1] - det.world3d[10, 1] < 0.9 or 0.3 < det.world3d[10, 1] - det.world3d[0, 1] < 0.9
    walker = people[20][1] if people[20][1] is not roof[20] else people[20][0]
    assert walker.keypoints[0, 0] > 600 and walker.keypoints[0, 1] > 300        # the walker, lower right
    assert walker.confidence[[0, 1, 4, 11, 14]].min() > 0.5
    assert detector.detector_runs < len(frames)                            # followed, not re-detected
    assert len({d.follow_id for d in roof}) == 1                           # one id while followed
    assert walker.follow_id != roof[20].follow_id
    assert math.isfinite(walker.score) and walker.score > 0.5


def test_mediapipe_alternative_with_whichever_version_is_present():
    """MediaPipe is optional: with 0.10.21 its one-person solution finds the roof person as the
    bundled detector does; with a newer release (no `solutions`) it is one clear error."""
    mediapipe = pytest.importorskip("mediapipe")
    pytest.importorskip("av")
    from posecli.errors import PoseCliError
    from posecli.infer.detector import BlazePoseDetector
    from posecli.infer.video import iter_frames

    try:
        detector = BlazePoseDetector()
    except PoseCliError as exc:
        assert f"mediapipe {mediapipe.__version__} has no legacy solutions API" in str(exc)
        assert not hasattr(mediapipe, "solutions")
        return
    frames = list(iter_frames(EXAMPLE, max_frames=6))
    with detector:
        found = [detector(f) for f in frames][-1]           # video mode: found from the 3rd frame on
    assert len(found) == 1
    assert 250 < found[0].keypoints[0, 0] < 450 and found[0].world3d.shape == (17, 3)


def test_detector_start_prints_nothing(capfd):
    """LiteRT's native "INFO: Created TensorFlow Lite XNNPACK delegate" line never reaches the
    user's terminal (it is written to file descriptor 2, below Python's sys.stderr)."""
    pytest.importorskip("ai_edge_litert")
    from posecli.infer.blazepose import BlazePoseMultiDetector

    detector = BlazePoseMultiDetector(max_people=2)
    detector.close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
