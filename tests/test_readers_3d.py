"""Human3.6M (VideoPose3D + mmpose layouts), MPI-INF-3DHP, 3DPW and HumanEva readers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from posecli.data.cameras import camera_to_world, project
from posecli.data.h36m_cameras import CAMERA_IDS, EXTRINSICS, h36m_camera, project_distorted
from posecli.data.readers.h36m import KEEP_32_TO_17, read_h36m
from posecli.data.readers.humaneva import read_humaneva
from posecli.data.readers.threedhp import read_3dhp
from posecli.data.readers.threedpw import read_3dpw
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from tests.conftest import shared_file


def _world(t: int, joints: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=0.3, size=(t, joints, 3)) + [0.0, 0.0, 1.0]).astype(np.float32)


@pytest.fixture()
def vp3d_h36m(tmp_path):
    positions = {"S1": {"Walking": _world(5, 32, 0), "Eating 2": _world(3, 32, 1)},
                 "S9": {"Walking 1": _world(4, 32, 2)}, "S11": {"Sitting": _world(2, 32, 3)}}
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d=positions)
    return tmp_path, positions


def test_h36m_needs_allow_pickle(vp3d_h36m):
    folder, _ = vp3d_h36m
    with pytest.raises(PoseCliError, match="data_3d_h36m.npz.*--allow-pickle"):
        read_h36m([folder / "data_3d_h36m.npz"], PrepareOptions())


def test_h36m_videopose3d_cameras_and_split(vp3d_h36m):
    folder, positions = vp3d_h36m
    train = read_h36m([folder], PrepareOptions(split="train", allow_pickle=True))
    assert {(r.subject, r.action) for r in train.records} == {("S1", "Walking"), ("S1", "Eating 2")}
    assert [r.camera for r in train.records[:4]] == list(CAMERA_IDS)
    test = read_h36m([folder], PrepareOptions(split="test", allow_pickle=True))
    assert sorted({r.subject for r in test.records}) == ["S11", "S9"] and len(test.records) == 8
    only = read_h36m([folder], PrepareOptions(split="train", subjects=["S11"], allow_pickle=True))
    assert {r.subject for r in only.records} == {"S11"}
    with pytest.raises(PoseCliError, match="split must be one of train, test, all"):
        read_h36m([folder], PrepareOptions(split="val", allow_pickle=True))

    rec = next(r for r in train.records if r.action == "Walking" and r.camera == "55011271")
    cam = h36m_camera("S1", "55011271")
    expected = positions["S1"]["Walking"][:, KEEP_32_TO_17]
    np.testing.assert_allclose(camera_to_world(rec.keypoints3d, cam.R, cam.t), expected, atol=1e-5)
    assert (rec.keypoints3d[..., 2] > 3.0).all()               # cameras are ~5 m from the centre
    np.testing.assert_allclose(rec.keypoints2d, project_distorted(rec.keypoints3d, "55011271"), atol=1e-3)
    assert rec.fps == 50.0 and rec.image_size == (1000.0, 1000.0)
    assert rec.intrinsics[0] == pytest.approx(1149.6757, abs=1e-3)


def test_h36m_with_2d_file(vp3d_h36m):
    folder, positions = vp3d_h36m
    det = {s: {a: [np.full((len(p) + 1, 17, 2), 100.0 + c, np.float32) for c in range(4)]
               for a, p in acts.items()} for s, acts in positions.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(folder / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=det, metadata=meta)
    result = read_h36m([folder / "data_3d_h36m.npz"],
                       PrepareOptions(split="test", detector="cpn_ft_h36m_dbb", allow_pickle=True))
    rec = next(r for r in result.records if r.subject == "S9" and r.camera == CAMERA_IDS[2])
    assert len(rec) == 4 and np.all(rec.keypoints2d == 102.0)
    assert result.dropped["frames beyond the shorter of 2D and 3D"] == 8   # 2 actions x 4 cameras
    with pytest.raises(PoseCliError, match="data_2d_h36m_sh.npz"):
        read_h36m([folder / "data_3d_h36m.npz"], PrepareOptions(detector="sh", allow_pickle=True))


def test_h36m_cameras_match_mmpose_calibration():
    calib = pickle.loads(shared_file("mmpose_fixtures/h36m/cameras.pkl").read_bytes())
    for subject in EXTRINSICS:
        for camera_id in CAMERA_IDS:
            ref = calib[(subject, camera_id)]
            cam = h36m_camera(subject, camera_id)
            # mmpose: X_cam = (X_world - T^T) @ R, i.e. our R is its transpose and T the centre.
            np.testing.assert_allclose(cam.R, ref["R"].T, atol=1e-4)
            np.testing.assert_allclose(cam.center, ref["T"][:, 0], atol=1e-4)
            np.testing.assert_allclose(cam.intrinsics, [*ref["f"][:, 0], *ref["c"][:, 0]], atol=1e-3)
            assert cam.image_size == (ref["w"], ref["h"])


def test_h36m_mmpose_npz():
    path = shared_file("mmpose_fixtures/h36m/test_h36m_body3d.npz")
    result = read_h36m([path], PrepareOptions())
    got = [(r.subject, r.action, r.camera, len(r)) for r in result.records]
    assert got == [("S1", "Directions 1", "54138969", 1), ("S5", "SittingDown", "54138969", 1),
                   ("S7", "Greeting", "55011271", 1), ("S8", "WalkDog 1", "55011271", 1)]
    data = np.load(path)
    np.testing.assert_allclose(result.records[0].keypoints3d[0], data["S"][0, :, :3], atol=1e-6)
    for rec in result.records:     # the embedded lens model reproduces mmpose's 2D annotations
        np.testing.assert_allclose(project_distorted(rec.keypoints3d, rec.camera), rec.keypoints2d, atol=1e-3)
    assert read_h36m([path], PrepareOptions(split="test")).records == []
    assert [r.subject for r in read_h36m([path], PrepareOptions(subjects=["S5"])).records] == ["S5"]


def test_3dhp_mmpose_npz():
    folder = shared_file("mmpose_fixtures/mpi_inf_3dhp")
    with pytest.raises(PoseCliError, match="cameras_.*--allow-pickle"):
        read_3dhp([folder], PrepareOptions())
    result = read_3dhp([folder], PrepareOptions(allow_pickle=True))
    assert [(r.subject, r.action, r.camera) for r in result.records] == [
        ("TS1", "TS1", "TS1"), ("TS2", "TS2", "TS2"), ("S4", "Seq2", "Cam0"), ("S8", "Seq1", "Cam8")]
    raw = np.load(folder / "test_3dhp_test.npz")["S"][0]
    ts1 = result.records[0]
    np.testing.assert_allclose(ts1.keypoints3d[0, 0], raw[14, :3], atol=1e-6)    # pelvis
    np.testing.assert_allclose(ts1.keypoints3d[0, 10], raw[0, :3], atol=1e-6)    # head top
    np.testing.assert_allclose(ts1.intrinsics, [1500.0686, 1500.6591, 1017.3795, 1043.0629], atol=1e-3)
    uv = project(ts1.keypoints3d, ts1.intrinsics)
    assert np.abs(uv - ts1.keypoints2d).max() < 3.0            # lens distortion only
    assert result.records[2].image_size is None                # mmpose's h=204 is rejected
    train = read_3dhp([folder / "test_3dhp_train.npz"], PrepareOptions(split="train"))
    assert [r.subject for r in train.records] == ["S4", "S8"]


def _3dpw_file(path, t=6):
    rng = np.random.default_rng(0)
    joints = rng.normal(scale=0.3, size=(t, 24, 3)) + [0.5, 0.0, 0.0]
    angle = 0.3
    poses = np.tile(np.eye(4), (t, 1, 1))
    poses[:, :3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    poses[:, :3, 3] = [0.1, 0.2, 4.0]
    valid = np.ones(t, bool)
    valid[2] = False
    det = rng.uniform(100, 900, size=(t, 3, 18))
    det[:, 2] = 0.9
    data = {"sequence": "courtyard_walk_00", "jointPositions": [joints.reshape(t, 72)], "poses2d": [det],
            "cam_poses": poses, "cam_intrinsics": np.array([[1960.0, 0, 540], [0, 1970.0, 960], [0, 0, 1]]),
            "campose_valid": [valid], "img_frame_ids": np.arange(t), "genders": ["m"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=2))
    return joints, poses


def test_3dpw_sequence_file(tmp_path):
    path = tmp_path / "sequenceFiles" / "test" / "courtyard_walk_00.pkl"
    joints, poses = _3dpw_file(path)
    with pytest.raises(PoseCliError, match="--allow-pickle"):
        read_3dpw([tmp_path], PrepareOptions())
    result = read_3dpw([tmp_path], PrepareOptions(allow_pickle=True))
    assert [len(r) for r in result.records] == [2, 3]           # frame 2 has no valid camera pose
    assert result.dropped["frames without a valid camera pose"] == 1
    rec = result.records[1]
    cam = joints[3:] @ poses[0, :3, :3].T + poses[0, :3, 3]
    np.testing.assert_allclose(rec.keypoints3d[:, 1], cam[:, 2], atol=1e-5)      # r_hip = SMPL 2
    np.testing.assert_allclose(rec.keypoints3d[:, 0], cam[:, 0], atol=1e-5)      # pelvis
    assert (rec.confidence[:, 10] == 0).all()                                   # no head top in SMPL
    np.testing.assert_allclose(rec.intrinsics, [1960, 1970, 540, 960])
    np.testing.assert_allclose(rec.keypoints2d[:, 0], project(rec.keypoints3d[:, 0], rec.intrinsics), atol=1e-3)
    assert rec.frame_names[0] == "courtyard_walk_00/image_00003.jpg" and rec.fps == 30.0
    assert read_3dpw([tmp_path], PrepareOptions(split="train", allow_pickle=True)).records == []
    det = read_3dpw([tmp_path], PrepareOptions(allow_pickle=True, detector="poses2d")).records[0]
    raw = pickle.loads(path.read_bytes())["poses2d"][0]
    np.testing.assert_allclose(det.keypoints2d[:, 9], raw[:2, :2, 0], atol=1e-4)   # neck slot = nose


def test_humaneva_videopose3d(tmp_path):
    positions = {"Train/S1": {"Walk 1 chunk0": _world(5, 15, 0)}, "Validate/S2": {"Jog 1 chunk0": _world(4, 15, 1)}}
    np.savez_compressed(tmp_path / "data_3d_humaneva15.npz", positions_3d=positions)
    det = {s: {a: [np.full((len(p), 15, 2), 10.0 * (c + 1), np.float32) for c in range(3)]
               for a, p in acts.items()} for s, acts in positions.items()}
    np.savez_compressed(tmp_path / "data_2d_humaneva15_gt.npz", positions_2d=det,
                        metadata={"layout_name": "humaneva15", "num_joints": 15})
    result = read_humaneva([tmp_path], PrepareOptions(split="train", allow_pickle=True))
    assert [(r.subject, r.camera) for r in result.records] == [("Train/S1", c) for c in ("C1", "C2", "C3")]
    rec = result.records[1]
    assert np.all(rec.keypoints2d[:, 1] == 20.0) and rec.fps == 60.0 and rec.intrinsics is None
    world = positions["Train/S1"]["Walk 1 chunk0"]
    from posecli.data.readers.humaneva import subject_cameras
    cam = subject_cameras("Train/S1")[1]
    np.testing.assert_allclose(camera_to_world(rec.keypoints3d[:, 0], cam.R, cam.t), world[:, 0], atol=1e-5)
    np.testing.assert_allclose(cam.center, [0.8448131, -3.8052092, 1.5049929], atol=1e-7)
    test = read_humaneva([tmp_path], PrepareOptions(split="test", allow_pickle=True))
    assert {r.subject for r in test.records} == {"Validate/S2"}
