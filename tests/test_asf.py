"""ASF/AMC: parsing, forward kinematics with exact positions, units, errors, HDM05 through prepare."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.data.readers.asf import asf_motion, find_asf, read_amc, read_asf
from posecli.data.readers.mocap import read_mocap
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from posecli.skeleton import H36M_JOINTS, convert_to_h36m
from tests.conftest import shared_file

# Two bones below the root. lfemur's local frame is turned 90 deg about Z (axis), so its rx dof
# turns about the world Y axis; ltibia lists its dofs as "rz ry" (rz applied first).
TINY_ASF = """# tiny skeleton
:version 1.10
:name tiny
:units
  mass 1.0
  length 0.5
  angle {angle}
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name lfemur
     direction 0 0 1
     length 2
     axis 0 0 {axis} XYZ
    dof rx
    limits (-160.0 20.0)
  end
  begin
     id 2
     name ltibia
     direction 1 0 0
     length 1
     axis 0 0 0 XYZ
    dof rz ry
    limits (-10.0 170.0)
           (-10.0 170.0)
  end
:hierarchy
  begin
    root lfemur
    lfemur ltibia
  end
"""
TINY_AMC = """#!OML:ASF tiny.asf
:FULLY-SPECIFIED
:{header}
1
root 1 2 3 0 0 0
lfemur {a90}
ltibia {a90} {a90}
2
root 0 0 0 {a90} 0 {a90}
lfemur 0
ltibia 0 0
"""
# File units. Frame 1: C Rx(90) C^-1 with C = Rz(90) is Ry(90): femur (0,0,2) -> (2,0,0); tibia
# Ry(90) Rz(90) x = y. Frame 2: root Rz(90) Rx(90) (rx applied first) turns z to x and x to y.
EXPECTED = np.array([
    [[1, 2, 3], [1, 2, 3], [3, 2, 3], [3, 3, 3]],
    [[0, 0, 0], [0, 0, 0], [2, 0, 0], [2, 1, 0]],
], dtype=np.float64)


def _write_tiny(tmp_path, angle: str = "deg", header: str = "DEGREES"):
    a90 = "90" if angle == "deg" else repr(np.pi / 2)
    (tmp_path / "tiny.asf").write_text(TINY_ASF.format(angle=angle, axis=a90))
    (tmp_path / "tiny_01.amc").write_text(TINY_AMC.format(a90=a90, header=header))
    return tmp_path / "tiny.asf", tmp_path / "tiny_01.amc"


@pytest.mark.parametrize("angle, header", [("deg", "DEGREES"), ("rad", "RADIANS")])
def test_asf_amc_forward_kinematics_exact(tmp_path, angle, header):
    asf, amc = _write_tiny(tmp_path, angle, header)
    skeleton = read_asf(asf)
    assert [b.name for b in skeleton.bones] == ["lfemur", "ltibia"]
    assert skeleton.bones[1].dofs == ("rz", "ry")
    assert skeleton.metres_per_unit == pytest.approx(0.0254 / 0.5)
    motion = asf_motion(skeleton, read_amc(amc, skeleton))
    assert motion.names == ["root", "lfemur", "ltibia", "ltibia_end"]
    assert motion.fps == pytest.approx(120.0)
    np.testing.assert_allclose(motion.positions(), EXPECTED, atol=1e-9)


def test_asf_rest_pose_is_sum_of_bone_vectors():
    """All-zero angles give the ASF rest pose: each bone ends at its start + direction x length."""
    asf_path = shared_file("mocap/hdm05_subset/test/1/HDM_mm.asf")
    skeleton = read_asf(asf_path)
    values = np.zeros((1, len(skeleton.root_order) + sum(len(b.dofs) for b in skeleton.bones)))
    positions = asf_motion(skeleton, values).positions()[0]
    starts = {"root": np.zeros(3)}
    ends = {}
    for bone in skeleton.bones:
        start = np.zeros(3) if bone.parent < 0 else ends[skeleton.bones[bone.parent].name]
        starts[bone.name] = start
        ends[bone.name] = start + bone.direction * bone.length
    names = asf_motion(skeleton, values).names
    for i, name in enumerate(names):
        want = ends[name[:-4]] if name.endswith("_end") else starts[name]
        np.testing.assert_allclose(positions[i], want, atol=1e-9)


def test_amc_errors_name_the_file(tmp_path):
    asf, amc = _write_tiny(tmp_path)
    skeleton = read_asf(asf)
    amc.write_text(TINY_AMC.format(a90="90", header="DEGREES").replace("ltibia 90 90", "ltibia 90"))
    with pytest.raises(PoseCliError, match=r"tiny_01.amc.*frame 1: 'ltibia' has 1 values, its ASF dof lists 2"):
        read_amc(amc, skeleton)
    amc.write_text(TINY_AMC.format(a90="90", header="DEGREES").replace("ltibia 0 0\n", ""))
    with pytest.raises(PoseCliError, match="tiny_01.amc.*frame 2 lacks some bones"):
        read_amc(amc, skeleton)
    amc.write_text(TINY_AMC.format(a90="90", header="RADIANS"))
    with pytest.raises(PoseCliError, match="tiny_01.amc.*header says rad"):
        read_amc(amc, skeleton)
    asf.write_text(TINY_ASF.format(angle="grad", axis="90"))
    with pytest.raises(PoseCliError, match="tiny.asf.*angle must be deg or rad"):
        read_asf(asf)
    asf.write_text("not an asf")
    with pytest.raises(PoseCliError, match="tiny.asf.*not an ASF file"):
        read_asf(asf)
    asf.unlink()
    with pytest.raises(PoseCliError, match="tiny_01.amc.*needs its ASF skeleton"):
        find_asf(amc, [])


def test_find_asf_by_prefix(tmp_path):
    for name in ("HDM_mm.asf", "HDM_tr.asf", "HDM_tr_kick.amc"):
        (tmp_path / name).write_text("")
    assert find_asf(tmp_path / "HDM_tr_kick.amc", []).name == "HDM_tr.asf"


def test_hdm05_test_actors_through_prepare():
    """Two HDM05 test clips (a squat, lying down): upright, constant limbs, metres."""
    folder = shared_file("mocap/hdm05_subset/test")
    files = [next((folder / "10").glob("HDM_mm_squat*.amc")), next((folder / "7").glob("HDM_tr_lieDown*.amc"))]
    result = read_mocap(files, PrepareOptions(cameras=2, fps=50))
    assert result.source_layout == "bvh"
    assert (result.joint_status == 0).sum() >= 14            # only pelvis, thorax derived
    assert len(result.records) == 4
    for record in result.records:
        assert record.fps == 50.0
        assert record.keypoints3d.shape[1:] == (17, 3)
        kp = record.keypoints3d
        femur = np.linalg.norm(kp[:, H36M_JOINTS.index("l_knee")] - kp[:, H36M_JOINTS.index("l_hip")], axis=-1)
        shin = np.linalg.norm(kp[:, H36M_JOINTS.index("r_ankle")] - kp[:, H36M_JOINTS.index("r_knee")], axis=-1)
        # constant up to linear resampling (120 -> 50 Hz), which shortens bones in fast motion
        assert 0.35 < femur.mean() < 0.5 and np.ptp(femur) < 5e-3
        assert 0.33 < shin.mean() < 0.48 and np.ptp(shin) < 5e-3
    # In the world frame the squatting subject stands upright at first: head top ~1.5 m above the ankles.
    from posecli.data.readers.mocap import load_world_sequences

    seq = load_world_sequences(files[:1])[0]
    assert seq.split == "test" and seq.fps == 120.0
    world, _ = convert_to_h36m(seq.positions, None, seq.layout)
    ankle = world[0, H36M_JOINTS.index("l_ankle"), 1]
    assert 1.35 < world[0, H36M_JOINTS.index("head"), 1] - ankle < 1.8
    assert world[0, H36M_JOINTS.index("head"), 1] > world[0, H36M_JOINTS.index("neck"), 1] > \
        world[0, H36M_JOINTS.index("thorax"), 1] > world[0, 0, 1]
