"""World trajectory, floor frame, foot contact, and the BVH / TRC / C3D exports."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from posecli.data.cameras import look_at, project, world_to_camera
from posecli.data.readers.bvh import read_bvh
from posecli.errors import PoseCliError
from posecli.infer.blender_check import blender_available, blender_positions
from posecli.infer.bvh_export import (BVH_NAMES, PARENTS, bvh_text, euler_zxy, fit_skeleton,
                                      forward_kinematics)
from posecli.infer.intrinsics import camera_intrinsics, focal_from_fov, focal_from_tags
from posecli.infer.markers import MARKER_NAMES, trc_text
from posecli.infer.world import (ANKLE_HEIGHT, FEET, foot_contact, gravity_frame, locate,
                                 remove_foot_sliding, root_translation, skating_speed)
from posecli.infer.world_export import export_poses, interpolate_gaps, read_poses_file
from posecli.skeleton import H36M_JOINTS, NUM_JOINTS

FPS = 30.0
INTRINSICS = np.array([1000.0, 1000.0, 640.0, 360.0], np.float32)

# A standing person in a Y-up world (metres), facing +z, ankles 8 cm above the floor.
STANDING = np.array([
    [0, 0.95, 0], [-0.12, 0.93, 0], [-0.13, 0.52, 0.02], [-0.13, 0.08, 0], [0.12, 0.93, 0],
    [0.13, 0.52, 0.02], [0.13, 0.08, 0], [0, 1.18, 0.01], [0, 1.42, 0], [0, 1.55, 0.03], [0, 1.70, 0],
    [0.19, 1.40, 0], [0.22, 1.12, 0.02], [0.24, 0.86, 0.05], [-0.19, 1.40, 0], [-0.22, 1.12, 0.02],
    [-0.24, 0.86, 0.05],
])


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros(np.shape(angle) + (3, 3))
    i, j = [k for k in range(3) if k != axis]
    r[..., axis, axis] = 1
    r[..., i, i] = r[..., j, j] = c
    r[..., i, j], r[..., j, i] = -s, s
    return r


def walking(frames: int = 90, seed: int = 0) -> np.ndarray:
    """[T, 17, 3] world positions: the standing figure swinging its limbs, turning and walking a
    curve, with 3 mm joint noise (so bone lengths are not constant, as in smoothed predictions)."""
    t = np.arange(frames) / FPS
    phase = 2 * np.pi * 1.0 * t
    pos = np.repeat(STANDING[None], frames, axis=0)
    for hip, knee, ankle, sign in ((1, 2, 3, 1.0), (4, 5, 6, -1.0)):   # swing legs about their hips (x axis)
        swing = _rot(0, sign * 0.4 * np.sin(phase))
        for j in (knee, ankle):
            pos[:, j] = STANDING[hip] + np.einsum("tij,j->ti", swing, STANDING[j] - STANDING[hip])
    for shoulder, elbow, wrist, sign in ((11, 12, 13, 1.0), (14, 15, 16, -1.0)):   # raised sideways
        raise_ = _rot(2, sign * (0.3 + 1.2 * (0.5 + 0.5 * np.sin(phase / 2))))
        for j in (elbow, wrist):
            pos[:, j] = STANDING[shoulder] + np.einsum("tij,j->ti", raise_, STANDING[j] - STANDING[shoulder])
    heading = 0.8 * t
    turned = np.einsum("tij,tkj->tki", _rot(1, heading), pos)
    path = np.stack([np.sin(heading) * 1.5, np.zeros(frames), 1.5 - np.cos(heading) * 1.5], axis=-1)
    rng = np.random.default_rng(seed)
    return turned + path[:, None] + rng.normal(0, 0.003, (frames, NUM_JOINTS, 3))


def filmed(world: np.ndarray, eye=(0.5, 1.6, 6.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera-frame positions, 2D, camera R) of a world sequence seen by a tilted camera."""
    R, t = look_at(np.array(eye), np.array([0.0, 0.9, 1.0]))
    cam = world_to_camera(world, R, t).astype(np.float64)
    return cam, project(cam, INTRINSICS), R


# ---------------------------------------------------------------- trajectory and floor

def test_root_translation_recovers_the_camera_frame_pelvis():
    cam, kp2, _ = filmed(walking(40))
    rel = cam - cam[:, :1]
    conf = np.ones(kp2.shape[:2])
    root = root_translation(kp2[:, None], conf[:, None], rel[:, None], INTRINSICS)[:, 0]
    assert np.abs(root - cam[:, 0]).max() < 1e-3
    conf[5] = 0                                                           # a frame without 2D
    assert np.isnan(root_translation(kp2[:, None], conf[:, None], rel[:, None], INTRINSICS)[5, 0]).all()


def test_locate_puts_the_floor_at_zero_with_y_up():
    world = walking(120)
    cam, kp2, R = filmed(world)
    rel = (cam - cam[:, :1]).astype(np.float32)
    out = locate(kp2[:, None], np.ones((120, 1, 17)), rel[:, None], INTRINSICS, FPS, (1280, 720), smooth=0.0)
    assert out.root_camera.shape == (120, 1, 3) and out.keypoints3d_world.shape == (120, 1, 17, 3)
    assert out.contact.shape == (120, 1, 2) and out.contact.dtype == bool
    up_true = R[:, 1]                                                     # world +y in camera coordinates
    assert np.degrees(np.arccos(out.camera.R[:, 1] @ up_true)) < 2.0
    ankles = out.keypoints3d_world[:, 0, list(FEET), 1]
    assert abs(np.percentile(ankles.min(-1), 5) - ANKLE_HEIGHT) < 0.02   # feet on the floor
    assert 1.55 < out.keypoints3d_world[:, 0, H36M_JOINTS.index("head"), 1].mean() < 1.85
    # the camera stored with the output maps the world back to the camera frame
    back = world_to_camera(out.keypoints3d_world[:, 0], out.camera.R, out.camera.t)
    assert np.abs(back - (rel + out.root_camera[:, 0, None])).max() < 1e-4


def test_gravity_frame_falls_back_to_the_body_axis_for_a_standing_person():
    cam, _, R = filmed(np.repeat(STANDING[None], 30, axis=0))
    rotation, height, source = gravity_frame(cam[:, None])
    assert source == "body" and np.degrees(np.arccos(rotation[1] @ R[:, 1])) < 3.0
    assert abs(height - 1.6) < 0.15                                       # the camera's eye height


def test_contact_and_sliding_clean_up():
    world = np.repeat(STANDING[None, None], 60, axis=0).astype(np.float32)
    world[:, 0, :, 0] += np.linspace(0, 0.3, 60)[:, None]                 # slides 30 cm in 2 s: skating
    contact = foot_contact(world, FPS)
    assert contact.all()
    assert skating_speed(world, contact, FPS) == pytest.approx(0.3 / 59 * FPS, rel=1e-5)
    fixed = remove_foot_sliding(world, contact)
    assert skating_speed(fixed, contact, FPS) < 1e-6
    assert np.abs((fixed - fixed[:, :, :1]) - (world - world[:, :, :1])).max() < 1e-6   # pose unchanged
    lifted = world.copy()
    lifted[20:30, 0, 3, 1] += 0.3                                         # right foot in the air
    assert not foot_contact(lifted, FPS)[20:30, 0, 0].any() and foot_contact(lifted, FPS)[20:30, 0, 1].all()


def test_intrinsics_sources():
    k, source = camera_intrinsics((1920, 1080))
    assert source == "default" and k[0] == pytest.approx(np.hypot(1920, 1080)) and tuple(k[2:]) == (960, 540)
    assert camera_intrinsics((1920, 1080), focal=1500)[0][0] == 1500
    assert focal_from_fov(90.0, (1920, 1080)) == pytest.approx(960.0)
    assert focal_from_tags({"com.apple.quicktime.camera.focal_length.35mm_equivalent": "26"}, (1920, 1080)) \
        == pytest.approx(26 / np.hypot(36, 24) * np.hypot(1920, 1080))
    assert camera_intrinsics((1920, 1080), tags={"FocalLengthIn35mmFilm": "52"})[1] == "metadata"
    with pytest.raises(PoseCliError, match="not both"):
        camera_intrinsics((1920, 1080), focal=1000, fov=60)


# ---------------------------------------------------------------- BVH

def test_bvh_reproduces_the_equalised_skeleton_and_reads_back():
    world = walking(90)
    skeleton = fit_skeleton(world, FPS)
    fk = forward_kinematics(skeleton)
    lengths = np.linalg.norm(fk[:, 1:] - fk[:, list(PARENTS[1:])], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-9                           # constant bones
    median = np.median(np.linalg.norm(world[:, 1:] - world[:, list(PARENTS[1:])], axis=-1), axis=0)
    assert np.abs(lengths[0] - median).max() < 1e-9
    assert np.linalg.norm(fk - world, axis=-1).mean() < 0.01               # about the 5 mm noise is lost
    r = skeleton.rotations                                                # continuous: no flips
    step = np.einsum("tjik,tjik->tj", r[1:], r[:-1])                      # trace(R_t+1^T R_t)
    assert np.degrees(np.arccos(np.clip((step - 1) / 2, -1, 1))).max() < 30.0
    assert np.abs(fk[:, 0] - world[:, 0]).max() < 1e-9                    # trajectory on the root


def _walk_bvh(tmp_path, frames: int):
    """A walking clip's fitted skeleton written as walk.bvh: (world poses, skeleton, path)."""
    world = walking(frames)
    skeleton = fit_skeleton(world, FPS)
    path = tmp_path / "walk.bvh"
    path.write_text(bvh_text(skeleton))
    return world, skeleton, path


def test_bvh_file_reads_back_with_posecli_reader(tmp_path):
    _, skeleton, path = _walk_bvh(tmp_path, 60)
    motion = read_bvh(path)
    assert motion.fps == pytest.approx(FPS) and len(motion.frames) == 60
    back = motion.positions()[:, [motion.names.index(n) for n in BVH_NAMES]] / 100.0
    assert np.abs(back - forward_kinematics(skeleton)).max() < 1e-5


def test_euler_angles_stay_continuous_through_a_full_turn():
    turn = _rot(1, np.linspace(0, 4 * np.pi, 200))[:, None] @ _rot(0, np.full(200, 0.3))[:, None]
    angles = euler_zxy(turn)
    assert np.abs(np.diff(angles, axis=0)).max() < 5.0
    from posecli.data.readers.bvh import _axis_rotations

    a = angles[:, 0]
    rebuilt = _axis_rotations(2, a[:, 0]) @ _axis_rotations(0, a[:, 1]) @ _axis_rotations(1, a[:, 2])
    assert np.abs(rebuilt - turn[:, 0]).max() < 1e-9


@pytest.mark.skipif(not blender_available(), reason="Blender is not installed")
def test_bvh_round_trip_through_blender(tmp_path):
    world, skeleton, path = _walk_bvh(tmp_path, 40)
    back = blender_positions(path)
    assert back.shape == world.shape
    assert np.linalg.norm(back - forward_kinematics(skeleton), axis=-1).max() < 0.01   # <= 1 cm


# ---------------------------------------------------------------- files from a poses.npz

def poses_npz(path, frames: int = 60, tracks: int = 2, **changes) -> None:
    """A poses.npz as infer writes it (no world arrays), from filmed synthetic walkers."""
    kp2 = np.full((frames, tracks, 17, 2), np.nan, np.float32)
    kp3 = np.full((frames, tracks, 17, 3), np.nan, np.float32)
    for p in range(tracks):
        cam, k2, _ = filmed(walking(frames, seed=p) + np.array([1.5 * p, 0, 0]))
        kp2[:, p], kp3[:, p] = k2, cam - cam[:, :1]
    arrays = dict(keypoints2d=kp2, confidence=np.ones((frames, tracks, 17), np.float32), keypoints3d=kp3,
                  valid=np.ones((frames, tracks), bool), track_ids=np.arange(1, tracks + 1),
                  fps=np.float64(FPS), image_size=np.array([1280, 720]), skeleton=np.str_("h36m17"))
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def test_export_bvh_and_trc_per_track(tmp_path):
    poses_npz(tmp_path / "poses.npz")
    files = export_poses(tmp_path / "poses.npz", ("bvh", "trc"), tmp_path / "out", focal=1000.0)
    assert sorted(f.name for f in files) == ["poses_track01.bvh", "poses_track01.trc",
                                             "poses_track02.bvh", "poses_track02.trc"]
    assert all(f.is_file() for f in files)
    assert len(read_bvh(tmp_path / "out" / "poses_track02.bvh").frames) == 60


def test_trc_layout_units_and_blank_markers():
    world = walking(5)
    world[2] = np.nan
    lines = trc_text(world, FPS, "walk.trc").splitlines()
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t")))
    assert header["Units"] == "m" and header["NumFrames"] == "5" and header["NumMarkers"] == "17"
    assert lines[3].split("\t")[2::3][:17] == list(MARKER_NAMES)
    rows = [line.split("\t") for line in lines[6:]]
    assert rows[0][:2] == ["1", "0.000000"] and float(rows[1][1]) == pytest.approx(1 / FPS, abs=1e-6)
    assert np.allclose(np.array(rows[0][2:], float).reshape(17, 3), world[0], atol=1e-6)
    assert rows[2][2:] == [""] * 51 + [""]          # a gap stays a gap (a trailing tab keeps the last column)


def test_trc_reads_back_in_opensim(tmp_path):
    opensim = pytest.importorskip("opensim")
    world = walking(20)
    world[7] = np.nan
    path = tmp_path / "walk.trc"
    path.write_text(trc_text(world, FPS, path.name))
    table = opensim.TimeSeriesTableVec3(str(path))                        # through OpenSim's TRCFileAdapter
    assert table.getNumRows() == 20 and list(table.getColumnLabels()) == list(MARKER_NAMES)
    assert table.getTableMetaDataAsString("Units") == "m"
    hip = table.getDependentColumn("RHip")
    assert np.allclose([hip[3][k] for k in range(3)], world[3, 1], atol=1e-6)
    assert np.isnan(hip[7][0])
    assert table.getIndependentColumn()[10] == pytest.approx(10 / FPS)


def test_c3d_reads_back_with_ezc3d(tmp_path):
    ezc3d = pytest.importorskip("ezc3d")
    poses_npz(tmp_path / "poses.npz", tracks=1)
    (path,) = export_poses(tmp_path / "poses.npz", ("c3d",), tmp_path, focal=1000.0)
    c3d = ezc3d.c3d(str(path))
    assert c3d["parameters"]["POINT"]["LABELS"]["value"] == list(MARKER_NAMES)
    assert c3d["parameters"]["POINT"]["RATE"]["value"][0] == pytest.approx(FPS)
    world = read_poses_file(tmp_path / "poses.npz")
    assert c3d["data"]["points"].shape == (4, 17, 60)
    assert np.isfinite(c3d["data"]["points"][:3]).all() and world.fps == FPS


def test_bvh_refuses_gaps_unless_asked(tmp_path):
    kp3 = np.load(_written(tmp_path))["keypoints3d"]
    valid = np.ones((60, 2), bool)
    valid[20:25, 1] = False
    kp3[20:25, 1] = np.nan
    poses_npz(tmp_path / "gaps.npz", keypoints3d=kp3, valid=valid)
    with pytest.raises(PoseCliError, match="track 2 has 5 missing frames"):
        export_poses(tmp_path / "gaps.npz", ("bvh", "trc"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    files = export_poses(tmp_path / "gaps.npz", ("trc",), tmp_path / "out")
    rows = (tmp_path / "out" / "gaps_track02.trc").read_text().splitlines()[6:]
    assert rows[22].split("\t")[2:] == [""] * 52 and len(files) == 2
    export_poses(tmp_path / "gaps.npz", ("bvh",), tmp_path / "out", fill_gaps=True)
    assert len(read_bvh(tmp_path / "out" / "gaps_track02.bvh").frames) == 60


def _written(tmp_path):
    path = tmp_path / "ok.npz"
    poses_npz(path)
    return path


def test_interpolate_gaps_fills_inside_only():
    track = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((10, 17, 3), np.float32)
    track[[0, 4, 5]] = np.nan
    out = interpolate_gaps(track)
    assert np.isnan(out[0]).all() and np.allclose(out[4], 4.0) and np.allclose(out[5], 5.0)


@pytest.mark.parametrize("changes, message", [
    ({"keypoints3d": None}, "has no 3D"),
    ({"keypoints3d": np.zeros((60, 17, 3), np.float32)}, "has no tracks"),
    ({"track_ids": None}, "has no tracks"),
    ({"skeleton": np.str_("coco17")}, "'coco17' skeleton"),
    ({"keypoints3d": np.zeros((60, 2, 14, 3), np.float32)}, "expected \\[F, P, 17, 3\\]"),
])
def test_bad_poses_files_are_one_line_exit_2(tmp_path, changes, message):
    from posecli.cli import app, _register_all

    poses_npz(tmp_path / "bad.npz", **changes)
    with pytest.raises(PoseCliError, match=message):
        read_poses_file(tmp_path / "bad.npz")
    _register_all()
    before = set(tmp_path.iterdir())
    result = CliRunner().invoke(app, ["export", "bvh", str(tmp_path / "bad.npz")])
    assert result.exit_code != 0 and set(tmp_path.iterdir()) == before


def test_cli_export_bad_file_prints_one_line(tmp_path, capsys):
    from posecli.cli import main

    poses_npz(tmp_path / "bad.npz", keypoints3d=None)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "trc", str(tmp_path / "bad.npz")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.npz" in err[0] and "no 3D" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_cli_export_bvh_writes_beside_the_poses(tmp_path, capsys):
    from posecli.cli import main

    poses_npz(tmp_path / "poses.npz", tracks=1)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "bvh", str(tmp_path / "poses.npz"), "--fov", "60"])
    assert exit_info.value.code == 0
    assert (tmp_path / "poses_track01.bvh").is_file()   # main() returns normally on success
    assert "poses_track01.bvh" in capsys.readouterr().err


def test_infer_writes_world_arrays_bvh_and_trc(tmp_path):
    pytest.importorskip("av")
    from infer_support import ScriptedDetector, make_video, tiny_model

    from posecli.infer.pipeline import InferOptions, run_inference

    clip = make_video(tmp_path / "clip.mp4", frames=20)
    result = run_inference(clip, tmp_path / "out", InferOptions(viewer=True, bvh=True, trc=True, focal=300.0),
                           model=tiny_model(), detector=ScriptedDetector(people=2))
    names = {p.name for p in result.files}
    ids = result.poses.track_ids.tolist()
    assert len(ids) >= 1 and {f"clip_track{i:02d}.{ext}" for i in ids for ext in ("bvh", "trc")} <= names
    p = len(ids)
    with np.load(tmp_path / "out" / "poses.npz") as data:
        assert data["root_camera"].shape == (20, p, 3) and data["keypoints3d_world"].shape == (20, p, 17, 3)
        assert data["contact"].shape == (20, p, 2) and data["camera_intrinsics"][0] == 300.0
        assert "focal: focal" in str(data["camera_source"])
        assert np.isfinite(data["keypoints3d_world"]).all()
    assert '"floor":' in (tmp_path / "out" / "viewer.html").read_text()
    assert len(read_bvh(tmp_path / "out" / f"clip_track{ids[0]:02d}.bvh").frames) == 20
