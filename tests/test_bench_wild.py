"""The wild benchmark's pieces: QCA calibration parsing, lens undistortion, weighted DLT
triangulation and its scoring, with exact numbers on synthetic cameras; a smoke run on shared data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from posecli.data.cameras import Camera, look_at, project
from posecli.data.qualisys import distort_points, read_qca, undistort_points
from posecli.errors import PoseCliError
from posecli.geometry import bone_lengths, retarget
from posecli.eval.triangulate import reprojection_errors, triangulate, triangulate_consistent
from tests.conftest import shared_file

REPO = Path(__file__).resolve().parents[1]

QCA = """<?xml version='1.0' encoding='ASCII'?>
<calibration>
  <cameras>
    <camera active="1" serial="camA">
      <fov_video bottom="1919" left="0" right="1087" top="0"/>
      <transform r11="1" r12="0" r13="0" r21="0" r22="1" r23="0" r31="0" r32="0" r33="1"
                 x="0" y="0" z="3000"/>
      <intrinsic centerPointU="34816" centerPointV="61440" focalLengthU="96000" focalLengthV="96000"
                 radialDistortion1="-0.064" radialDistortion2="0.128" tangentalDistortion1="0.0064"
                 tangentalDistortion2="0"/>
    </camera>
    <camera active="1" serial="camB">
      <fov_video bottom="1099" left="100" right="1099" top="100"/>
      <transform r11="0" r12="0" r13="-1" r21="0" r22="1" r23="0" r31="1" r32="0" r33="0"
                 x="2000" y="0" z="0"/>
      <intrinsic centerPointU="38400" centerPointV="38400" focalLengthU="64000" focalLengthV="64000"
                 radialDistortion1="0" radialDistortion2="0" tangentalDistortion1="0" tangentalDistortion2="0"/>
    </camera>
  </cameras>
</calibration>
"""


def test_read_qca_exact(tmp_path):
    path = tmp_path / "Calib.qca.txt"
    path.write_text(QCA)
    cam_a, cam_b = read_qca(path)
    a = cam_a.camera
    assert a.name == "camA" and a.image_size == (1088, 1920)
    np.testing.assert_allclose(a.intrinsics, [1500, 1500, 544, 960])
    np.testing.assert_allclose(cam_a.distortion, [-0.001, 0.002, 0.0001, 0.0])
    # Qualisys looks down its -z with y up: identity rotation at z = 3 m sees the origin 3 m ahead.
    np.testing.assert_allclose(a.R, np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(a.t, [0, 0, 3])
    np.testing.assert_allclose(a.project_world(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])),
                               [[544, 960], [1044, 960], [544, 460]], atol=1e-9)
    b = cam_b.camera
    assert b.image_size == (1000, 1000)
    np.testing.assert_allclose(b.intrinsics, [1000, 1000, 500, 500])      # centre minus the fov origin
    np.testing.assert_allclose(b.center, [2, 0, 0], atol=1e-12)
    assert b.to_camera(np.zeros((1, 3)))[0, 2] > 0                         # the origin is in front


def test_read_qca_errors(tmp_path):
    path = tmp_path / "bad.qca.txt"
    path.write_text(QCA.replace(' x="0" y="0" z="3000"', ""))
    with pytest.raises(PoseCliError, match=r"bad.qca.txt: camera 'camA': <transform> lacks attribute 'x'"):
        read_qca(path)
    path.write_text("<calibration><cameras>")
    with pytest.raises(PoseCliError, match="bad.qca.txt: cannot read QCA calibration"):
        read_qca(path)


def test_undistort_inverts_distort():
    intr = np.array([1500.0, 1500.0, 544.0, 960.0])
    dist = np.array([-0.2, 0.05, 0.001, 0.001])
    ideal = np.array([[544.0, 960.0], [100.0, 200.0], [1000.0, 1800.0]])
    seen = distort_points(ideal, intr, dist)
    assert np.abs(seen[1:] - ideal[1:]).max() > 5                     # the lens moves corner points
    np.testing.assert_allclose(seen[0], ideal[0])                     # not the principal point
    np.testing.assert_allclose(undistort_points(seen, intr, dist, iterations=50), ideal, atol=1e-6)


def _ring_cameras() -> list[Camera]:
    cams = []
    for k, (eye, f) in enumerate([((4.0, 1.5, 0.0), 1200.0), ((0.0, 2.5, 5.0), 900.0), ((-3.0, 0.5, -3.0), 1500.0)]):
        R, t = look_at(np.array(eye), np.array([0.0, 1.0, 0.0]))
        cams.append(Camera(f"c{k}", R, t, np.array([f, f, 540.0, 960.0], np.float32), (1080, 1920)))
    return cams


def test_triangulate_known_points_exactly():
    cams = _ring_cameras()
    points = np.array([[[0.1, 1.0, -0.2], [0.3, 1.7, 0.1]], [[-0.4, 0.2, 0.5], [0.0, 1.0, 0.0]]])   # [2, 2, 3]
    uv = np.stack([project(c.to_camera(points), np.asarray(c.intrinsics, np.float64)) for c in cams])
    conf = np.array([[[0.9, 0.5], [1.0, 0.8]], [[0.6, 0.4], [0.7, 0.9]], [[0.35, 1.0], [0.1, 0.3]]])
    out, valid = triangulate(uv, conf, cams)
    assert valid.all()
    np.testing.assert_allclose(out, points, atol=1e-9)
    np.testing.assert_allclose(reprojection_errors(out, uv, conf, cams)[conf >= 0.3], 0.0, atol=1e-6)
    assert np.isnan(reprojection_errors(out, uv, conf, cams)[2, 1, 0])       # 0.1 < 0.3: view not used
    # Only one view at confidence >= 0.3: not triangulated.
    low = conf.copy()
    low[1:, 0, 0] = 0.2
    out, valid = triangulate(uv, low, cams)
    assert not valid[0, 0] and np.isnan(out[0, 0]).all() and valid[1].all()


def test_triangulate_weights_favour_confident_views():
    """With one view's 2D off by 20 px, its confidence decides how far the solution moves."""
    cams = _ring_cameras()
    point = np.array([[0.1, 1.2, 0.0]])
    uv = np.stack([project(c.to_camera(point), np.asarray(c.intrinsics, np.float64)) for c in cams])
    uv[2, 0, 0] += 20.0
    errors = []
    for weight in (1.0, 0.35):
        conf = np.array([[1.0], [1.0], [weight]])
        out, _ = triangulate(uv, conf, cams)
        errors.append(np.linalg.norm(out - point))
    assert errors[1] < 0.5 * errors[0]


def test_triangulate_consistent_drops_the_wrong_view():
    """A fourth view 120 px off is dropped: the other three give the point back exactly; with a
    threshold above its error it is kept and pulls the point away."""
    cams = _ring_cameras()
    R, t = look_at(np.array([0.0, 1.2, -4.0]), np.array([0.0, 1.0, 0.0]))
    cams.append(Camera("c3", R, t, np.array([1000.0, 1000.0, 540.0, 960.0], np.float32), (1080, 1920)))
    points = np.array([[0.1, 1.2, 0.0], [-0.3, 0.4, 0.2]])
    uv = np.stack([project(c.to_camera(points), np.asarray(c.intrinsics, np.float64)) for c in cams])
    uv[3, 0, 1] += 120.0
    conf = np.full((4, 2), 0.9)
    out, valid, used = triangulate_consistent(uv, conf, cams, max_error_px=40.0)
    assert valid.all()
    np.testing.assert_allclose(out, points, atol=1e-9)
    assert used[:, 0].tolist() == [True, True, True, False] and used[:, 1].all()
    out, _, used = triangulate_consistent(uv, conf, cams, max_error_px=1e6)
    assert used.all() and np.linalg.norm(out[0] - points[0]) > 0.01


def _bench():
    spec = importlib.util.spec_from_file_location("bench_wild", REPO / "benchmarks" / "bench_wild.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_wild"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_scoring_exact():
    """score_view on synthetic poses: a rotated, scaled, shifted copy of the reference scores 0, and a
    head moved by 100 mm counts on all 17 joints only."""
    bench = _bench()
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 17, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    similar = 0.5 * gt @ rot.T + 3.0
    moved = gt.copy()
    moved[:, 10, 0] += 0.1
    valid = np.ones((5, 17), bool)
    score = bench.score_view(similar.astype(np.float32), moved.astype(np.float32), gt, valid)
    assert score.frames == 5
    assert score.lifter["15"] == pytest.approx(0.0, abs=1e-3) and score.lifter["17"] == pytest.approx(0.0, abs=1e-3)
    assert score.mediapipe["15"] == pytest.approx(0.0, abs=1e-3)       # float32 inputs
    assert 3.0 < score.mediapipe["17"] < 20.0
    assert np.isnan(score.mediapipe_joint[10]) and score.mediapipe_joint17[10] > 50.0
    with pytest.raises(PoseCliError, match="nothing was scored"):
        bench.score_view(similar.astype(np.float32), moved.astype(np.float32), gt, np.zeros((5, 17), bool))


def test_bench_wild_quick_smoke(tmp_path, capsys):
    """--quick on the real pose2sim views: the calibration reprojects the detector's 2D to a few px."""
    pytest.importorskip("ai_edge_litert")
    video_dir = shared_file("video/pose2sim_singleperson/Calib.qca.txt").parent
    bench = _bench()
    assert bench.main(["--quick", "--skip", "cross", "--video-dir", str(video_dir),
                       "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Wild: pose2sim, 4 views x 20 frames" in out
    reproj = float(out.split("reprojection error ")[1].split(" px")[0])
    assert 0.0 < reproj < 25.0                 # a wrong calibration gives hundreds of px
    assert sorted(p.name for p in (tmp_path / "detections").iterdir()) == [
        f"cam0{i}-first20-bundled.npz" for i in range(1, 5)]
    # Second run: detections come from the cache.
    assert bench.main(["--quick", "--skip", "cross", "--video-dir", str(video_dir),
                       "--work-dir", str(tmp_path)]) == 0
    assert "detections: cached" in capsys.readouterr().out


def test_motion_classes_weigh_sequences_by_joints():
    rows = [{"name": "HDM_mm_squat1Reps_019_120", "joints": 100, "p1": 100.0, "p2": 50.0},
            {"name": "HDM_tr_squat1Reps_002_120", "joints": 300, "p1": 200.0, "p2": 90.0},
            {"name": "HDM_mm_grabHighR_017_120", "joints": 100, "p1": 80.0, "p2": 40.0},
            {"name": "take7", "joints": 0, "p1": 0.0, "p2": 0.0}]
    classes = _bench().motion_classes(rows[:3])
    assert [c[0] for c in classes] == ["squat1Reps", "grabHighR"]
    assert classes[0][1:] == pytest.approx((0.8, 175.0, 80.0)) and classes[1][1:] == pytest.approx((0.2, 80.0, 40.0))
    with pytest.raises(PoseCliError, match="nothing was scored"):
        _bench().motion_classes(rows[3:])


def test_rig_scores_separate_rig_from_pose():
    """A prediction with the right bone directions but another rig's lengths scores 0 at the test
    rig's lengths, and the rig gap of the test poses against their own lengths is 0."""
    bench = _bench()

    class Cache:
        seq_start, seq_length = np.array([0, 3]), np.array([3, 3])
        joint_status = np.zeros(17, np.uint8)

    rng = np.random.default_rng(2)
    Cache.keypoints3d = rng.normal(size=(6, 17, 3))
    own = np.median(bone_lengths(Cache.keypoints3d), axis=0)
    other_rig = retarget(Cache.keypoints3d, 2.0 * own)
    gap, at_rig = bench.rig_scores(Cache, [0, 1], other_rig, own)
    assert at_rig == pytest.approx(0.0, abs=1e-9)
    assert gap > 10.0                               # per-frame lengths differ from their median
    gap_self, _ = bench.rig_scores(Cache, [0, 1], other_rig, bone_lengths(Cache.keypoints3d))
    assert gap_self == pytest.approx(0.0, abs=1e-9)


def test_reference_view_is_the_reference_seen_through_the_lens(tmp_path):
    """The perfect-detector view reprojects the reference exactly (lens distortion included), at
    confidence 1, keeps the detector's 2D where the reference has no joint and frames nobody was
    detected in empty."""
    bench = _bench()
    path = tmp_path / "calib.qca.txt"
    path.write_text(QCA)
    lens = read_qca(path)[0]
    camera = type(lens)(lens.camera, np.array([-0.2, 0.05, 0.001, 0.0]))   # a strong lens: visible distortion
    rng = np.random.default_rng(1)
    gt = rng.normal(scale=0.3, size=(3, 17, 3)) + np.array([0.8, 1.2, 0.0])   # off axis
    valid = np.ones((3, 17), bool)
    valid[1, 5] = False
    detected = bench.ViewDetections(np.full((3, 17, 2), 7.0, np.float32), np.full((3, 17), 0.5, np.float32),
                                    np.zeros((3, 17, 3), np.float32), 30.0, (1088, 1920))
    detected.confidence[2] = 0.0
    view = bench.reference_view(detected, camera, gt, valid)
    ideal = undistort_points(view.keypoints2d[0], camera.camera.intrinsics, camera.distortion)
    assert np.abs(ideal - camera.camera.project_world(gt[0])).max() < 1e-2           # pixels
    assert not np.allclose(view.keypoints2d[0], camera.camera.project_world(gt[0]), atol=0.5)   # distorted
    assert (view.confidence[0] == 1.0).all()
    assert view.confidence[1, 5] == 0.5 and (view.keypoints2d[1, 5] == 7.0).all()
    assert (view.confidence[2] == 0.0).all() and len(view.detections()[2]) == 0


def test_wide_cameras_are_the_wild_recipes(tmp_path):
    """The cross-dataset wide-camera rows film with the cameras the wild recipe trains with, and
    score every sequence of a cache deterministically (the same views for every model)."""
    from posecli.config import load_config
    from posecli.data.cache import open_cache
    from posecli.models import build_model
    from tests.engine_data import make_cache

    bench = _bench()
    augment = load_config("wild-v2")["data"]["augment"]
    assert bench.WIDE_CAMERAS == {"max_elev_deg": augment["max_elevation_deg"],
                                  "distance": (augment["distance_min"], augment["distance_max"]),
                                  "off_axis_deg": augment["off_axis_deg"], "roll_deg": augment["roll_deg"]}
    model = build_model({"name": "stformer", "size": "xs", "window": 27, "dim": 32, "depth": 1}).eval()
    with open_cache(make_cache(tmp_path / "walk.h5", sequences=2, length=30)) as cache:
        first = bench.wide_camera_scores(cache, [0, 1], model, noise=1.0)
        again = bench.wide_camera_scores(cache, [0, 1], model, noise=1.0)
        clean = bench.wide_camera_scores(cache, [0, 1], model, noise=0.0)
        one_camera_each = bench.wide_camera_scores(cache, [0, 1], model, noise=1.0, min_cameras=1)
    assert first == again
    assert all(np.isfinite(first)) and first[1] <= first[0] and first != clean
    assert one_camera_each != first          # 32 cameras per sequence by default, not one
    assert (bench.wide_draws(2), bench.wide_draws(16), bench.wide_draws(96), bench.wide_draws(0)) == (32, 4, 1, 64)


def test_camera_tilt_and_rolled_view_are_exact():
    """A z-up camera 3 m away, 20 degrees above its target and rolled by 25 degrees about its
    optical axis: camera_tilt reads (roll, pitch) back, and rotating what it sees by -roll gives
    exactly what the same camera without the roll sees."""
    from posecli.data.cameras import rotation_z

    bench = _bench()
    pitch = np.deg2rad(20.0)
    eye = np.array([0.0, -3.0 * np.cos(pitch), 1.0 + 3.0 * np.sin(pitch)])
    R, t = look_at(eye, np.array([0.0, 0.0, 1.0]), up=np.array([0.0, 0.0, 1.0]))
    intrinsics = np.array([1500.0, 1500.0, 544.0, 960.0], np.float32)
    upright = Camera("up", R, t, intrinsics, (1088, 1920))
    tilted = Camera("tilted", rotation_z(np.deg2rad(25.0)) @ R, rotation_z(np.deg2rad(25.0)) @ t, intrinsics, (1088, 1920))
    roll, measured_pitch = bench.camera_tilt(tilted)
    assert bench.camera_tilt(upright) == pytest.approx((0.0, -20.0), abs=1e-9)      # looking down
    assert measured_pitch == pytest.approx(-20.0, abs=1e-9) and abs(roll) == pytest.approx(25.0, abs=1e-9)
    points = np.random.default_rng(3).normal(scale=0.4, size=(2, 17, 3)) + np.array([0.0, 0.0, 1.0])
    seen = bench.ViewDetections(tilted.project_world(points).astype(np.float32), np.ones((2, 17), np.float32),
                                np.zeros((2, 17, 3), np.float32), 30.0, (1088, 1920))
    qca = bench.QcaCamera(tilted, np.zeros(4))
    np.testing.assert_allclose(bench.rolled_view(seen, qca, -roll).keypoints2d, upright.project_world(points),
                               atol=1e-3)
    assert not np.allclose(seen.keypoints2d, upright.project_world(points), atol=10.0)


def test_rolled_cameras_differ_from_the_wide_ones_only_by_roll(tmp_path):
    """The rolled rows draw the same cameras as the wide rows but for a 3x wider roll range: the
    same draws (paired), different scores, and each deterministic."""
    from posecli.data.cache import open_cache
    from posecli.models import build_model
    from tests.engine_data import make_cache

    bench = _bench()
    assert bench.ROLLED_CAMERAS == {**bench.WIDE_CAMERAS, "roll_deg": 30.0}
    model = build_model({"name": "stformer", "size": "xs", "window": 27, "dim": 32, "depth": 1}).eval()
    with open_cache(make_cache(tmp_path / "walk.h5", sequences=2, length=30)) as cache:
        wide = bench.wide_camera_scores(cache, [0, 1], model, noise=0.0, min_cameras=2)
        rolled = bench.wide_camera_scores(cache, [0, 1], model, noise=0.0, min_cameras=2, cameras=bench.ROLLED_CAMERAS)
        again = bench.wide_camera_scores(cache, [0, 1], model, noise=0.0, min_cameras=2, cameras=bench.ROLLED_CAMERAS)
    assert rolled == again and rolled != wide and rolled[2] == wide[2] == 2
