"""Mocap: BVH parsing and FK, expmap FK, virtual-camera filming, splits, resampling, cache counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posecli.data.cache import open_cache, write_cache
from posecli.data.cameras import project, unproject
from posecli.data.rig import cache_bone_lengths
from posecli.data.readers.bvh import read_bvh
from posecli.data.readers.expmap import find_skeleton, load_skeleton, read_expmap_file
from posecli.data.readers.mocap import bvh_unit, read_mocap, resample
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from posecli.geometry import bone_lengths, retarget
from posecli.skeleton import H36M_BONES
from tests.engine_data import make_cache
from tests.conftest import shared_file

NPZ = "mocap/cmu_expmap_li2018/cmu_li2018_positions38_120fps.npz"
TXT = "mocap/cmu_expmap_li2018/raw_expmap_txt"
ASF = 2.54 / 0.45 / 100

TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Spine
  {
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 0 1
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0083333
1 2 3 90 0 0 0 90 90
0 0 0 0 0 0 0 0 0
"""


def test_bvh_fk_honours_channel_order(tmp_path):
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY_BVH)
    motion = read_bvh(path)
    assert motion.names == ["Hips", "Spine", "Spine_end"]
    assert motion.fps == pytest.approx(120.0, abs=1e-2)
    pos = motion.positions()
    # Frame 0: root at (1,2,3) turned 90 deg about Z; Spine = Rx(90) @ Ry(90) (ZXY order).
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [0, 2, 3], [0, 3, 3]], atol=1e-12)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 1, 0], [0, 1, 1]], atol=1e-12)


def test_bvh_malformed(tmp_path):
    path = tmp_path / "bad.bvh"
    path.write_text(TINY_BVH.replace("0 0 0 0 0 0 0 0 0\n", "0 0 0\n"))
    with pytest.raises(PoseCliError, match="bad.bvh.*2 frames x 9 channels"):
        read_bvh(path)


@pytest.mark.parametrize("name", ["131_01.bvh", "131_02.bvh", "131_03.bvh"])
def test_cmu_bvh_bone_lengths_constant(name):
    motion = read_bvh(shared_file(f"mocap/cmu_bvh_samples/{name}"))
    orders = {j.channels[-3:] for j in motion.joints if j.channels}
    assert ("Zrotation", "Yrotation", "Xrotation") in orders and ("Zrotation", "Xrotation", "Yrotation") in orders
    pos = motion.positions() * ASF
    parents = [j.parent for j in motion.joints]
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, parents[1:]], axis=-1)
    assert np.abs(lengths - lengths[0]).max() < 1e-4
    assert bvh_unit(motion.positions())[0] == "cmu-asf"


def test_expmap_fk_matches_positions_npz():
    path = shared_file(f"{TXT}/test/running/running_1.txt.gz")
    skeleton = load_skeleton(find_skeleton(path))
    positions = read_expmap_file(path, skeleton)
    ref = np.load(shared_file(NPZ))["test__running__running_1"]
    assert positions.shape == (ref.shape[0] - 1, 38, 3)       # rest-pose row dropped
    assert np.abs(positions - ref[1:]).max() < 1e-4


def test_resample_linear():
    t = np.arange(13, dtype=np.float64)[:, None, None] / 120.0 * np.ones((1, 2, 3))
    out = resample(t * 2.0, 120.0, 50.0)
    assert out.shape == (6, 2, 3)                              # floor(12 * 50/120) + 1
    np.testing.assert_allclose(out[:, 0, 0], np.arange(6) / 50.0 * 2.0, atol=1e-12)


def test_mocap_npz_test_split_filmed():
    opts = PrepareOptions(split="test", cameras=3, seed=1)
    result = read_mocap([shared_file(NPZ)], opts)
    assert {r.camera for r in result.records} == {"vcam0", "vcam1", "vcam2"}
    assert len(result.records) == 24 * 3
    # 14,095 test frames minus one rest-pose row per take.
    assert sum(len(r) for r in result.records) == (14_095 - 24) * 3
    rec = next(r for r in result.records if r.subject == "running_1")
    assert rec.action == "running" and rec.fps == 120.0 and len(rec) == 162
    assert rec.image_size == (1000.0, 1000.0)
    np.testing.assert_allclose(rec.intrinsics, [1145, 1145, 500, 500])
    back = unproject(rec.keypoints2d, rec.keypoints3d[..., 2], rec.intrinsics)
    np.testing.assert_allclose(back, rec.keypoints3d, atol=1e-5)
    assert (rec.keypoints3d[..., 2] > 3.0).all()
    # Same seed -> same cameras; the filmed pose keeps its bone lengths in every camera.
    again = read_mocap([shared_file(NPZ)], opts)
    np.testing.assert_array_equal(again.records[0].keypoints2d, result.records[0].keypoints2d)
    views = [r for r in result.records if r.subject == "running_1"]
    thigh = [np.linalg.norm(v.keypoints3d[:, 1] - v.keypoints3d[:, 2], axis=-1) for v in views]
    np.testing.assert_allclose(thigh[0], thigh[1], atol=1e-5)


def test_mocap_expmap_equals_npz_and_resamples():
    folder = shared_file(f"{TXT}/test/running")
    via_txt = read_mocap([folder], PrepareOptions(split="test", cameras=2))
    via_npz = read_mocap([shared_file(NPZ)], PrepareOptions(split="test", cameras=2, subjects=["running_1"]))
    assert len(via_txt.records) == len(via_npz.records) == 2
    for a, b in zip(via_txt.records, via_npz.records):
        np.testing.assert_allclose(a.keypoints3d, b.keypoints3d, atol=1e-4)
    slow = read_mocap([folder], PrepareOptions(split="test", cameras=1, fps=50))
    assert slow.records[0].fps == 50.0 and len(slow.records[0]) == 68     # floor(161 * 50/120) + 1
    with pytest.raises(PoseCliError, match="no mocap sequences for split 'train'"):
        read_mocap([folder], PrepareOptions(split="train"))


def test_mocap_split_selection_and_errors(tmp_path):
    data = {f"{s}__walk__w{i}": np.random.default_rng(i).normal(size=(6, 38, 3)).astype(np.float32) + [0, 1, 0]
            for i, s in enumerate(["train", "train", "test"])}
    path = tmp_path / "pos.npz"
    np.savez(path, **data)
    train = read_mocap([path], PrepareOptions(split="train", cameras=1))
    assert sorted(r.subject for r in train.records) == ["w0", "w1"]
    assert all(len(r) == 5 for r in train.records)
    assert [r.subject for r in read_mocap([path], PrepareOptions(split="test", cameras=1)).records] == ["w2"]
    with pytest.raises(PoseCliError, match="split must be train, val, test or all"):
        read_mocap([path], PrepareOptions(split="dev"))
    with pytest.raises(PoseCliError, match="not a mocap file"):
        read_mocap([tmp_path / "pos.npz", _touch(tmp_path / "x.csv")], PrepareOptions())


def _touch(path):
    path.write_text("")
    return path


def test_mocap_bvh_and_cache(tmp_path):
    result = read_mocap([shared_file("mocap/cmu_bvh_samples/131_01.bvh")], PrepareOptions(cameras=2))
    assert len(result.records) == 2 and len(result.records[0]) == 994
    assert result.records[0].subject == "131_01"
    out = write_cache(tmp_path / "bvh.h5", result, split="all")
    cache = open_cache(out)
    assert cache.num_frames == 2 * 994 and cache.has3d
    assert float(cache.fps[0]) == 120.0


def test_full_npz_frame_count(tmp_path):
    result = read_mocap([shared_file(NPZ)], PrepareOptions(cameras=4))
    # 67,870 rows in 96 takes, each starting with a rest pose that is dropped.
    assert sum(len(r) for r in result.records) == (67_870 - 96) * 4
    assert not result.dropped


def test_mocap_validation_takes_leave_train(tmp_path):
    """The fixed validation takes (posecli.data.splits) move out of train; test stays as published."""
    names = ["train__walk__walking_5", "train__walk__walking_6", "test__walk__walking_1"]
    data = {k: np.random.default_rng(i).normal(size=(6, 38, 3)).astype(np.float32) + [0, 1, 0]
            for i, k in enumerate(names)}
    path = tmp_path / "pos.npz"
    np.savez(path, **data)
    subjects = {split: [r.subject for r in read_mocap([path], PrepareOptions(split=split, cameras=1)).records]
                for split in ("train", "val", "test")}
    assert subjects == {"train": ["walking_6"], "val": ["walking_5"], "test": ["walking_1"]}


def test_bvh_split_of_cmu_dance_release():
    from posecli.data.splits import bvh_split
    assert bvh_split(Path("x/salsa/01.bvh")) == "test" and bvh_split(Path("x/salsa/16.bvh")) == "test"
    assert bvh_split(Path("x/salsa/02.bvh")) == "val" and bvh_split(Path("x/indian/04.bvh")) == "train"
    assert bvh_split(Path("x/walks/01.bvh")) == ""


SIX_CHANNEL_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.0333333
1 2 3 0 0 0 0 10 0 0 0 0
"""


def test_bvh_position_channels_replace_the_offset(tmp_path):
    """Rigs with 6 channels on every joint (Bandai-Namco) store the bone in the position channels:
    the Spine sits 10 units above the root, not 20."""
    path = tmp_path / "six.bvh"
    path.write_text(SIX_CHANNEL_BVH)
    pos = read_bvh(path).positions()
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 12, 3], [1, 17, 3]], atol=1e-12)


def test_bvh_layout_knows_daz_and_bandai_names():
    from posecli.skeleton import bvh_layout
    daz = ["hip", "abdomen", "chest", "neck", "head", "rCollar", "rShldr", "rForeArm", "rHand", "lCollar", "lShldr",
           "lForeArm", "lHand", "rButtock", "rThigh", "rShin", "rFoot", "lButtock", "lThigh", "lShin", "lFoot"]
    layout = bvh_layout(daz)
    picked = [daz[layout.to_h36m[j][0][0]] for j in (1, 2, 3, 11, 12, 13)]
    assert picked == ["rThigh", "rShin", "rFoot", "lShldr", "lForeArm", "lHand"]
    bandai = ["joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L",
              "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L",
              "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"]
    layout = bvh_layout(bandai)
    picked = [bandai[layout.to_h36m[j][0][0]] for j in (4, 5, 6, 14, 15, 16)]
    assert picked == ["UpperLeg_L", "LowerLeg_L", "Foot_L", "UpperArm_R", "LowerArm_R", "Hand_R"]


def test_cmu_dance_release_splits_and_scale():
    """The cgspeed Daz rig reads in centimetres with CMU-like bone lengths; hold-out files stay out of train."""
    folder = shared_file("mocap/cmu_bvh_dance_martial/martial")
    result = read_mocap([folder], PrepareOptions(split="test", cameras=1, fps=50))
    assert sorted({r.subject for r in result.records}) == ["10"]
    kp = result.records[0].keypoints3d
    shin = np.linalg.norm(kp[:, 2] - kp[:, 3], axis=-1)
    assert 0.40 < shin.mean() < 0.50 and shin.std() < 1e-3
    train = read_mocap([folder], PrepareOptions(split="train", cameras=1, fps=50))
    assert "10" not in {r.subject for r in train.records} and "09" not in {r.subject for r in train.records}


def test_retarget_keeps_directions_and_sets_lengths():
    """retarget gives every bone the asked length along its own direction; with the pose's own
    lengths it returns the pose unchanged."""
    rng = np.random.default_rng(1)
    poses = rng.normal(size=(4, 17, 3))
    lengths = np.linspace(0.1, 0.5, len(H36M_BONES))
    out = retarget(poses, lengths)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(lengths, (4, 16)), atol=1e-12)
    for parent, child in H36M_BONES:
        a, b = out[:, child] - out[:, parent], poses[:, child] - poses[:, parent]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-12)
    np.testing.assert_allclose(retarget(poses, bone_lengths(poses)), poses, atol=1e-12)
    # A joint the rig lacks (and a bone without a reference length) keeps its own vector.
    valid = np.ones(17, bool)
    valid[10] = False                                          # head
    nan_lengths = lengths.copy()
    nan_lengths[0] = np.nan                                    # pelvis -> r_hip
    out = retarget(poses, nan_lengths, valid)
    kept = [k for k, (a, b) in enumerate(H36M_BONES) if b == 10 or k == 0]
    np.testing.assert_allclose(bone_lengths(out)[:, kept], bone_lengths(poses)[:, kept], atol=1e-12)
    others = [k for k in range(len(H36M_BONES)) if k not in kept]
    np.testing.assert_allclose(bone_lengths(out)[:, others], np.broadcast_to(lengths[others], (4, len(others))),
                               atol=1e-12)


def test_cache_bone_lengths_needs_3d(tmp_path):
    with pytest.raises(PoseCliError, match="has no 3D keypoints"):
        cache_bone_lengths(make_cache(tmp_path / "2d.h5", with3d=False))
    reference = make_cache(tmp_path / "3d.h5")
    with open_cache(reference) as cache:
        expected = np.median(bone_lengths(np.asarray(cache.keypoints3d[::25], np.float64)), axis=0)
    np.testing.assert_allclose(cache_bone_lengths(reference), expected)


def test_prepare_mocap_bone_lengths_maps_the_rig(tmp_path):
    """--bone-lengths: every frame of every view gets the reference cache's median bone lengths,
    bone directions stay those of the take, and the 2D is the projection of the new 3D."""
    bvh = shared_file("mocap/cmu_bvh_samples/131_01.bvh")
    reference = make_cache(tmp_path / "rig.h5")
    lengths = cache_bone_lengths(reference)
    plain = read_mocap([bvh], PrepareOptions(cameras=2))
    mapped = read_mocap([bvh], PrepareOptions(cameras=2, bone_lengths=reference))
    assert any("bone lengths set to the medians of" in note for note in mapped.notes)
    assert not np.allclose(bone_lengths(plain.records[0].keypoints3d[:5]), lengths, atol=0.01)
    for before, after in zip(plain.records, mapped.records):
        np.testing.assert_allclose(bone_lengths(after.keypoints3d), np.broadcast_to(lengths, (len(after), 16)),
                                   atol=1e-4)
        a = after.keypoints3d[:, [c for _, c in H36M_BONES]] - after.keypoints3d[:, [p for p, _ in H36M_BONES]]
        b = before.keypoints3d[:, [c for _, c in H36M_BONES]] - before.keypoints3d[:, [p for p, _ in H36M_BONES]]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() > 0.9999
        np.testing.assert_allclose(after.keypoints2d, project(after.keypoints3d, after.intrinsics), atol=1e-2)
