"""Skeleton layouts: joint status, hand-computed conversions, flip consistency, BVH name mapping."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import shared_file
from posecli.errors import PoseCliError
from posecli.skeleton import (
    H36M_FLIP_PERM,
    LAYOUTS,
    NUM_JOINTS,
    JointStatus,
    Layout,
    bvh_layout,
    convert_to_h36m,
    flip_permutation,
    get_layout,
    mean_of,
    mid,
    obs,
)

# (observed, derived, missing) per layout
STATUS_COUNTS = {
    "h36m17": (17, 0, 0), "coco17": (13, 4, 0), "mpii16": (16, 1, 0), "crowdpose14": (14, 3, 0),
    "aic14": (14, 3, 0), "lsp14": (14, 3, 0), "halpe26": (14, 3, 0), "halpe136": (14, 3, 0),
    "blazepose33": (13, 4, 0), "humaneva15": (15, 2, 0), "mpi_inf_3dhp17": (17, 0, 0),
    "mpi_inf_3dhp28": (17, 0, 0), "smpl24": (16, 0, 1), "posetrack18": (14, 3, 0), "cmu38": (15, 2, 0),
}
SIZES = {"crowdpose14": 14, "aic14": 14, "lsp14": 14, "halpe26": 26, "halpe136": 136, "blazepose33": 33,
         "humaneva15": 15, "mpi_inf_3dhp17": 17, "mpi_inf_3dhp28": 28, "smpl24": 24, "posetrack18": 17,
         "cmu38": 38}
ALIASES = {"crowdpose": "crowdpose14", "aic": "aic14", "lsp": "lsp14", "halpe": "halpe26",
           "blazepose": "blazepose33", "humaneva": "humaneva15", "3dhp17": "mpi_inf_3dhp17",
           "3dhp28": "mpi_inf_3dhp28", "smpl": "smpl24", "posetrack": "posetrack18", "cmu": "cmu38",
           "COCO": "coco17"}

CMU_MAX = ("Hips LHipJoint LeftHip LeftKnee LeftAnkle LeftToe RHipJoint RightHip RightKnee RightAnkle "
           "RightToe lowerback Chest Chest2 lowerneck Neck Head LeftCollar LeftShoulder LeftElbow "
           "LeftWrist lhand LFingers LThumb RightCollar RightShoulder RightElbow RightWrist rhand RFingers "
           "RThumb").split()
CMU_MOTIONBUILDER = ("Hips LHipJoint LeftUpLeg LeftLeg LeftFoot LeftToeBase RHipJoint RightUpLeg RightLeg "
                     "RightFoot RightToeBase LowerBack Spine Spine1 Neck Neck1 Head LeftShoulder LeftArm "
                     "LeftForeArm LeftHand LeftFingerBase LeftHandIndex1 LThumb RightShoulder RightArm "
                     "RightForeArm RightHand RightFingerBase RightHandIndex1 RThumb").split()


def all_layouts() -> list[Layout]:
    unique = {layout.name: layout for layout in LAYOUTS.values()}
    return [unique[k] for k in sorted(unique)] + [bvh_layout(CMU_MAX), bvh_layout(CMU_MOTIONBUILDER + ["Head_End"])]


def counts(layout: Layout) -> tuple[int, int, int]:
    status = layout.status
    return tuple(int((status == s).sum()) for s in (JointStatus.OBSERVED, JointStatus.DERIVED, JointStatus.MISSING))


@pytest.mark.parametrize("name", sorted(STATUS_COUNTS))
def test_status_counts(name: str) -> None:
    assert counts(get_layout(name)) == STATUS_COUNTS[name]


def test_every_registered_layout_has_expected_counts_and_sizes() -> None:
    assert {layout.name for layout in LAYOUTS.values()} == set(STATUS_COUNTS)
    for name, size in SIZES.items():
        assert get_layout(name).num_joints == size
    for alias, name in ALIASES.items():
        assert get_layout(alias) is get_layout(name)


@pytest.mark.parametrize("layout", all_layouts(), ids=lambda l: l.name + str(l.num_joints))
def test_flip_then_convert_equals_convert_then_flip(layout: Layout) -> None:
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(3, layout.num_joints, 2)) * 100
    kp_flipped = kp[:, flip_permutation(layout.flip_pairs, layout.num_joints)]
    a, conf_a = convert_to_h36m(kp_flipped, None, layout)
    b, conf_b = convert_to_h36m(kp, None, layout)
    np.testing.assert_allclose(a, b[:, H36M_FLIP_PERM], atol=1e-4)
    np.testing.assert_array_equal(conf_a, conf_b[:, H36M_FLIP_PERM])


@pytest.mark.parametrize("layout", all_layouts(), ids=lambda l: l.name + str(l.num_joints))
def test_layout_tables_are_consistent(layout: Layout) -> None:
    assert len(set(layout.joints)) == layout.num_joints
    np.testing.assert_allclose(layout.weight_matrix().sum(axis=1)[layout.status != JointStatus.MISSING], 1.0)
    flipped = [i for pair in layout.flip_pairs for i in pair]
    assert len(flipped) == len(set(flipped))
    assert all(0 <= a < layout.num_joints and 0 <= b < layout.num_joints and a != b for a, b in layout.bones)


def test_coco_conversion_by_hand() -> None:
    kp = np.zeros((17, 2))
    kp[0] = (50, 10)                         # nose
    kp[1], kp[2] = (48, 8), (52, 8)          # eyes
    kp[5], kp[6] = (60, 30), (40, 30)        # l/r shoulder
    kp[9], kp[10] = (70, 60), (30, 64)       # l/r wrist
    kp[11], kp[12] = (56, 70), (44, 70)      # l/r hip
    kp[15] = (57, 120)                        # l ankle
    conf = np.ones(17)
    conf[2] = 0.0                             # right eye unseen -> head missing
    conf[11] = 0.4
    out, c = convert_to_h36m(kp, conf, "coco")
    np.testing.assert_allclose(out[0], (50, 70))        # pelvis = mid-hips
    np.testing.assert_allclose(out[7], (50, 50))        # spine = mean of shoulders and hips
    np.testing.assert_allclose(out[8], (50, 30))        # thorax = mid-shoulders
    np.testing.assert_allclose(out[9], (50, 10))        # neck/nose = nose
    np.testing.assert_allclose(out[10], (0, 0))         # head = mid-eyes, but one eye is missing
    np.testing.assert_allclose(out[6], (57, 120))       # l_ankle
    np.testing.assert_allclose(out[16], (30, 64))       # r_wrist
    assert c[0] == pytest.approx(0.4) and c[7] == pytest.approx(0.4) and c[10] == 0.0 and c[8] == 1.0


def test_mpii_conversion_by_hand() -> None:
    kp = np.arange(32, dtype=np.float64).reshape(16, 2)   # joint i = (2i, 2i+1)
    out, conf = convert_to_h36m(kp, None, "mpii16")
    np.testing.assert_allclose(out[0], (12, 13))          # pelvis (MPII 6)
    np.testing.assert_allclose(out[1], (4, 5))            # r_hip (MPII 2)
    np.testing.assert_allclose(out[7], (13, 14))          # spine = mid(pelvis 6, thorax 7)
    np.testing.assert_allclose(out[8], (14, 15))          # thorax 7
    np.testing.assert_allclose(out[10], (18, 19))         # head top 9
    np.testing.assert_allclose(out[11], (26, 27))         # l_shoulder 13
    np.testing.assert_allclose(out[16], (20, 21))         # r_wrist 10
    assert conf.tolist() == [1.0] * NUM_JOINTS


def test_blazepose_conversion_by_hand() -> None:
    kp = np.zeros((2, 33, 3))
    kp[:, 0] = (0.0, -1.6, 3.0)                          # nose
    kp[:, 2], kp[:, 5] = (0.03, -1.65, 3.0), (-0.03, -1.65, 3.0)   # l/r eye
    kp[:, 11], kp[:, 12] = (0.2, -1.4, 3.0), (-0.2, -1.4, 3.0)     # l/r shoulder
    kp[:, 23], kp[:, 24] = (0.1, -0.9, 3.2), (-0.1, -0.9, 3.0)     # l/r hip
    kp[:, 28] = (-0.1, 0.0, 3.1)                          # r ankle
    out, conf = convert_to_h36m(kp, None, "mediapipe")
    np.testing.assert_allclose(out[1, 0], (0.0, -0.9, 3.1), atol=1e-6)    # pelvis
    np.testing.assert_allclose(out[1, 7], (0.0, -1.15, 3.05), atol=1e-6)  # spine
    np.testing.assert_allclose(out[1, 8], (0.0, -1.4, 3.0), atol=1e-6)    # thorax
    np.testing.assert_allclose(out[1, 9], (0.0, -1.6, 3.0), atol=1e-6)    # nose
    np.testing.assert_allclose(out[1, 10], (0.0, -1.65, 3.0), atol=1e-6)  # mid-eyes
    np.testing.assert_allclose(out[1, 3], (-0.1, 0.0, 3.1), atol=1e-6)    # r ankle
    np.testing.assert_allclose(out[1, 4], (0.1, -0.9, 3.2), atol=1e-6)    # l hip
    assert conf.shape == (2, 17) and conf.min() == 1.0


def test_halpe136_uses_its_first_26_points() -> None:
    kp = np.random.default_rng(1).normal(size=(136, 2))
    a, _ = convert_to_h36m(kp, None, "halpe136")
    b, _ = convert_to_h36m(kp[:26], None, "halpe")
    np.testing.assert_array_equal(a, b)


def test_mean_of_merges_weights() -> None:
    assert dict(mean_of(mid(0, 1), obs(2))) == {0: 0.25, 1: 0.25, 2: 0.5}


def test_bvh_layout_3dsmax_names() -> None:
    layout = bvh_layout(CMU_MAX)
    j = CMU_MAX.index
    assert layout.to_h36m[1] == obs(j("RightHip")) and layout.to_h36m[6] == obs(j("LeftAnkle"))
    assert layout.to_h36m[7] == obs(j("Chest")) and layout.to_h36m[9] == obs(j("Head"))
    assert layout.to_h36m[11] == obs(j("LeftShoulder")) and layout.to_h36m[16] == obs(j("RightWrist"))
    assert dict(layout.to_h36m[0]) == {j("LeftHip"): 0.5, j("RightHip"): 0.5}
    assert counts(layout) == (14, 2, 1)            # no head end site -> head missing
    assert (j("LeftCollar"), j("RightCollar")) in layout.flip_pairs
    assert (j("lhand"), j("rhand")) in layout.flip_pairs


def test_bvh_layout_motionbuilder_names_case_and_namespace() -> None:
    names = ["mixamorig:" + n.upper() for n in CMU_MOTIONBUILDER] + ["Head_End"]
    layout = bvh_layout(names, parents=[-1] + [0] * (len(names) - 1))
    j = CMU_MOTIONBUILDER.index
    assert layout.to_h36m[11] == obs(j("LeftArm"))        # not the clavicle "LeftShoulder"
    assert layout.to_h36m[12] == obs(j("LeftForeArm")) and layout.to_h36m[13] == obs(j("LeftHand"))
    assert layout.to_h36m[2] == obs(j("RightLeg")) and layout.to_h36m[3] == obs(j("RightFoot"))
    assert layout.to_h36m[7] == obs(j("Spine")) and layout.to_h36m[10] == obs(len(names) - 1)
    assert counts(layout) == (15, 2, 0)
    assert len(layout.bones) == len(names) - 1


def test_bvh_layout_names_missing_joints() -> None:
    names = [n for n in CMU_MAX if n not in ("LeftKnee", "RightWrist")]
    with pytest.raises(PoseCliError, match=r"l_knee \(leftleg or leftknee\).*r_wrist") as err:
        bvh_layout(names, source="walk.bvh")
    assert "walk.bvh" in str(err.value)


def test_unknown_layout_and_wrong_joint_count() -> None:
    with pytest.raises(PoseCliError, match="unknown keypoint layout 'coco18'.*crowdpose14"):
        get_layout("coco18")
    with pytest.raises(PoseCliError, match="layout lsp14 has 14 joints"):
        convert_to_h36m(np.zeros((5, 13, 2)), None, "lsp")


# ------------------------------------------------------------- real files

def test_3dhp_fixture_converts_with_symmetric_bones() -> None:
    data = np.load(shared_file("mmpose_fixtures/mpi_inf_3dhp/test_3dhp_test.npz"))
    pose, _ = convert_to_h36m(data["S"][..., :3], data["S"][..., 3], "3dhp17")
    np.testing.assert_allclose(pose[:, 0], (pose[:, 1] + pose[:, 4]) / 2, atol=1e-4)  # pelvis = mid-hips
    for r_parent, r_child, l_parent, l_child in ((1, 2, 4, 5), (2, 3, 5, 6), (14, 15, 11, 12), (15, 16, 12, 13)):
        right = np.linalg.norm(pose[:, r_child] - pose[:, r_parent], axis=-1)
        left = np.linalg.norm(pose[:, l_child] - pose[:, l_parent], axis=-1)
        np.testing.assert_allclose(right, left, rtol=0.2)
    assert (pose[:, 10, 1] < pose[:, 9, 1]).all() and (pose[:, 9, 1] < pose[:, 0, 1]).all()  # y down


def test_fixture_keypoint_names_match_layouts() -> None:
    for rel, layout in (("crowdpose/test_crowdpose.json", "crowdpose14"), ("aic/test_aic.json", "aic14"),
                        ("posetrack18/annotations/test_posetrack18_val.json", "posetrack18")):
        names = json.loads(shared_file("mmpose_fixtures/" + rel).read_text())["categories"][0]["keypoints"]
        short = [re.sub(r"^left[ _]", "l_", re.sub(r"^right[ _]", "r_", n.lower())).replace(" ", "_")
                 for n in names]
        assert tuple(short) == get_layout(layout).joints


def test_cmu38_positions_give_equal_thighs() -> None:
    with np.load(shared_file("mocap/cmu_expmap_li2018/cmu_li2018_positions38_120fps.npz")) as data:
        seq = data["test__walking__walking_1"][:50]
    pose, _ = convert_to_h36m(seq, None, "cmu38")
    thigh_r = np.linalg.norm(pose[:, 2] - pose[:, 1], axis=-1)
    thigh_l = np.linalg.norm(pose[:, 5] - pose[:, 4], axis=-1)
    np.testing.assert_allclose(thigh_r, 0.429, atol=0.005)
    np.testing.assert_allclose(thigh_l, 0.429, atol=0.005)


def test_bvh_file_joint_names_map() -> None:
    text = shared_file("mocap/cmu_bvh_samples/131_01.bvh").read_text()
    names = re.findall(r"^\s*(?:ROOT|JOINT)\s+(\S+)", text, flags=re.M)
    assert names == CMU_MAX
    assert counts(bvh_layout(names)) == (14, 2, 1)
