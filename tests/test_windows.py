"""Window dataset, augmentation and the distributed batch sampler, on tiny caches made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posecli.data.augment import (BONE_GROUPS, JOINT_NOISE, UPPER_BODY, bend_forward, check_augment, detector_noise,
                                  flip_window, recline, scale_bones)
from posecli.data.cache import write_cache
from posecli.data.cameras import H36M_LIKE_INTRINSICS, project
from posecli.data.normalize import normalize_window
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.data.windows import WindowDataset, build_dataloader
from posecli.errors import PoseCliError
from posecli.geometry import bone_lengths, bone_vectors
from posecli.skeleton import H36M_BONES, H36M_FLIP_PAIRS, H36M_FLIP_PERM

torch.set_num_threads(1)
AUG = {"flip": 0.5, "noise": 1.0, "virtual_camera": 0.5}


def _pose3d(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A static-pelvis 3D sequence 5 m in front of the camera (camera frame, metres)."""
    pose = rng.normal(scale=0.25, size=(frames, 17, 3))
    pose[:, 0] = 0.0
    return (pose + np.array([0.2, 0.1, 5.0])).astype(np.float32)


def _write(path: Path, lengths: list[int], with3d: bool, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for n in lengths:
        kp3d = _pose3d(rng, n)
        records.append(SequenceRecord(
            keypoints2d=project(kp3d, H36M_LIKE_INTRINSICS).astype(np.float32),
            confidence=np.ones((n, 17), np.float32), keypoints3d=kp3d if with3d else None,
            intrinsics=H36M_LIKE_INTRINSICS if with3d else None, subject="S1", action="walk"))
    result = ReaderResult(records=records, dataset="synthetic", source_layout="h36m17",
                          joint_status=np.zeros(17, np.uint8), sources=[])
    return write_cache(path, result, split="train")


@pytest.fixture()
def caches(tmp_path: Path) -> tuple[str, str]:
    return (str(_write(tmp_path / "mocap.h5", [40, 25, 3], True, 0)),
            str(_write(tmp_path / "photos.h5", [1] * 30, False, 1)))


def test_sample_contents(caches: tuple[str, str]) -> None:
    ds = WindowDataset([{"path": caches[0], "weight": 1.0}], 9, {}, split_seed=3)
    assert len(ds) == 68
    s = ds[5]
    assert s["input"].shape == (9, 17, 3) and s["target2d"].shape == (9, 17, 2)
    assert s["conf"].shape == (9, 17) and s["target3d"].shape == (9, 17, 3)
    assert all(v.dtype == torch.float32 for k, v in s.items() if k != "has3d")
    assert bool(s["has3d"]) and torch.equal(s["target3d"][:, 0], torch.zeros(9, 3))
    assert torch.equal(s["input"][..., :2], s["target2d"])      # no augmentation: input is clean
    c, seq, start, _ = ds.locate(5)
    raw = ds.caches[c].window(seq, start, 9)
    norm, _, scale = normalize_window(raw["keypoints2d"], raw["confidence"])
    np.testing.assert_allclose(s["target2d"].numpy(), norm, atol=1e-6)
    assert float(s["scale"]) == pytest.approx(scale)


def test_upright_windows_are_turned_as_prediction_turns_them(caches: tuple[str, str]) -> None:
    from posecli.geometry import rotate_xy, upright_angle

    plain = WindowDataset([{"path": caches[0]}], 9, {}, split_seed=3)
    for tolerance in (0.0, 20.0):
        turned = WindowDataset([{"path": caches[0]}], 9, {"upright": 1.0}, split_seed=3, upright_deg=tolerance)
        leaned = 0
        for i in range(12):
            a, b = plain[i], turned[i]
            angle = upright_angle(a["target2d"].numpy(), a["conf"].numpy(), tolerance)
            leaned += angle != 0.0
            # 2D and 3D turned by the one angle, about the window centre and the optical axis
            np.testing.assert_allclose(b["target2d"].numpy(), rotate_xy(a["target2d"].numpy(), angle), atol=1e-5)
            np.testing.assert_allclose(b["target3d"].numpy(), rotate_xy(a["target3d"].numpy(), angle), atol=1e-6)
            assert torch.equal(b["input"][..., :2], b["target2d"])
            # and the turned window is one prediction leaves as it is
            assert upright_angle(b["target2d"].numpy(), b["conf"].numpy(), tolerance) == pytest.approx(0.0, abs=1e-6)
        assert leaned == 12 if tolerance == 0.0 else leaned < 12


def test_photos_are_padded_windows_without_3d(caches: tuple[str, str]) -> None:
    s = WindowDataset([{"path": caches[1]}], 5, {}, split_seed=0)[7]
    assert not bool(s["has3d"]) and torch.equal(s["target3d"], torch.zeros(5, 17, 3))
    assert all(torch.equal(s["target2d"][i], s["target2d"][0]) for i in range(5))


def test_deterministic_by_seed_and_index(caches: tuple[str, str]) -> None:
    sources = [{"path": caches[0], "weight": 1.0}, {"path": caches[1], "weight": 1.0}]
    a = WindowDataset(sources, 9, AUG, split_seed=11)
    b = WindowDataset(sources, 9, AUG, split_seed=11)
    for i in (0, 17, 123456):
        for key in a[i]:
            assert torch.equal(a[i][key], b[i][key])
    assert not torch.equal(a[0]["input"], a[1]["input"])
    assert not torch.equal(a[0]["input"], WindowDataset(sources, 9, AUG, split_seed=12)[0]["input"])


def test_weighted_sampling(caches: tuple[str, str]) -> None:
    only3d = WindowDataset([{"path": caches[0], "weight": 1.0}, {"path": caches[1], "weight": 0.0}], 3, {},
                           split_seed=0)
    assert all(only3d.locate(i)[0] == 0 for i in range(200))
    mixed = WindowDataset([{"path": caches[0], "weight": 3.0}, {"path": caches[1], "weight": 1.0}], 3, {},
                          split_seed=0)
    first = np.mean([mixed.locate(i)[0] == 0 for i in range(2000)])
    assert abs(first - 0.75) < 0.03
    # within a cache, sequences are drawn by frame count: 40, 25 and 3 frames of 68
    seqs = np.bincount([only3d.locate(i)[1] for i in range(3000)], minlength=3) / 3000
    np.testing.assert_allclose(seqs, [40 / 68, 25 / 68, 3 / 68], atol=0.03)


def test_ranks_split_the_global_batch(caches: tuple[str, str]) -> None:
    cfg = {"sources": [{"path": caches[0], "weight": 1.0}, {"path": caches[1], "weight": 1.0}],
           "augment": AUG, "epoch_length": 24}
    single = list(build_dataloader(cfg, 9, batch_size=4, seed=5))
    rank0 = list(build_dataloader(cfg, 9, batch_size=2, seed=5, rank=0, world_size=2))
    rank1 = list(build_dataloader(cfg, 9, batch_size=2, seed=5, rank=1, world_size=2))
    assert len(single) == len(rank0) == len(rank1) == 6
    for whole, r0, r1 in zip(single, rank0, rank1):
        for key in whole:
            assert torch.equal(whole[key], torch.cat([r0[key], r1[key]]))


def test_epochs_differ_and_resume(caches: tuple[str, str]) -> None:
    loader = build_dataloader({"sources": [{"path": caches[0]}], "epoch_length": 8}, 9, 4, seed=0)
    epoch0, epoch1 = list(loader.batch_sampler), list(loader.batch_sampler)
    assert epoch0 == [[0, 1, 2, 3], [4, 5, 6, 7]] and epoch1 == [[8, 9, 10, 11], [12, 13, 14, 15]]
    loader.batch_sampler.set_epoch(1, start_batch=1)
    assert list(loader.batch_sampler) == [[12, 13, 14, 15]]


def _symmetric_2d(rng: np.random.Generator) -> np.ndarray:
    """A mirror-symmetric 2D window: centre-line joints on x = 0, left joints mirror the right ones."""
    pose = rng.normal(size=(4, 17, 2)).astype(np.float32)
    pose[:, [0, 7, 8, 9, 10], 0] = 0.0
    for right, left in H36M_FLIP_PAIRS:
        pose[:, left] = pose[:, right] * np.array([-1, 1], np.float32)
    return pose


def test_flip_of_symmetric_pose_is_identity() -> None:
    rng = np.random.default_rng(0)
    pose2d = _symmetric_2d(rng)
    pose3d = np.concatenate([pose2d, rng.normal(size=(4, 17, 1)).astype(np.float32)], -1)
    for right, left in H36M_FLIP_PAIRS:
        pose3d[:, left, 2] = pose3d[:, right, 2]
    conf = np.ones((4, 17), np.float32)
    f2, fc, f3 = flip_window(pose2d, conf, pose3d)
    np.testing.assert_array_equal(f2, pose2d)
    np.testing.assert_array_equal(f3, pose3d)
    # an asymmetric pose: flipping swaps sides and mirrors x, flipping twice is the identity
    pose = rng.normal(size=(2, 17, 2)).astype(np.float32)
    conf = rng.random((2, 17)).astype(np.float32)
    f2, fc, _ = flip_window(pose, conf)
    assert f2[0, 1, 0] == -pose[0, 4, 0] and f2[0, 1, 1] == pose[0, 4, 1] and fc[0, 1] == conf[0, 4]
    np.testing.assert_array_equal(flip_window(f2, fc)[0], pose)
    assert (H36M_FLIP_PERM[H36M_FLIP_PERM] == np.arange(17)).all()


def test_virtual_camera_keeps_2d_and_3d_consistent(caches: tuple[str, str]) -> None:
    ds = WindowDataset([{"path": caches[0]}], 9, {"virtual_camera": 1.0}, split_seed=0)
    plain = WindowDataset([{"path": caches[0]}], 9, {}, split_seed=0)
    c, seq, start, _ = ds.locate(3)
    pelvis = ds.caches[c].window(seq, start, 9)["keypoints3d"][:, :1]
    s, p = ds[3], plain[3]
    bones = lambda x: np.linalg.norm(x[:, 1:] - x[:, :1], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bones(s["target3d"].numpy()), bones(p["target3d"].numpy()), atol=1e-5)
    assert not torch.allclose(s["target3d"], p["target3d"], atol=1e-3)
    # the pivot is the (static) pelvis, so the 2D target is the projection of the rotated 3D
    reproj = project(s["target3d"].numpy() + pelvis, H36M_LIKE_INTRINSICS).astype(np.float32)
    expected, _, _ = normalize_window(reproj, np.ones((9, 17), np.float32))
    np.testing.assert_allclose(s["target2d"].numpy(), expected, atol=1e-4)


def test_bone_groups_pair_each_bone_with_its_mirror() -> None:
    assert BONE_GROUPS.max() + 1 == 10                       # 6 left/right pairs and 4 spine/head bones
    for k, (a, b) in enumerate(H36M_BONES):
        mirror = H36M_BONES.index((int(H36M_FLIP_PERM[a]), int(H36M_FLIP_PERM[b])))
        assert BONE_GROUPS[k] == BONE_GROUPS[mirror]
    assert BONE_GROUPS[1] != BONE_GROUPS[2]                  # thigh and shin scale apart


def test_scale_bones_keeps_directions_and_scales_mirror_bones_alike() -> None:
    rng = np.random.default_rng(4)
    kp3d, conf = _pose3d(rng, 6), np.ones((6, 17), np.float32)
    out = scale_bones(kp3d, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(1), spread=0.2)
    assert out is not None
    new3d, new2d = out
    np.testing.assert_array_equal(new3d[:, 0], kp3d[:, 0])                    # the pelvis stays
    ratio = bone_lengths(new3d) / bone_lengths(kp3d)                          # [T, bones]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)  # one factor per window
    for group in range(10):                                                   # mirror bones alike
        assert np.ptp(ratio[0][BONE_GROUPS == group]) < 1e-5
    assert np.all(ratio[0] >= np.exp(-2.5 * 0.2) - 1e-6) and np.all(ratio[0] <= np.exp(2.5 * 0.2) + 1e-6)
    assert np.ptp(ratio[0]) > 0.05
    old_dir, new_dir = bone_vectors(kp3d), bone_vectors(new3d)
    cos = (old_dir * new_dir).sum(-1) / np.linalg.norm(old_dir, axis=-1) / np.linalg.norm(new_dir, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-5)
    np.testing.assert_allclose(new2d, project(new3d, H36M_LIKE_INTRINSICS), atol=1e-4)
    # a joint missing in one frame leaves the bones touching it as they were, in every frame
    conf[3, 13] = 0.0
    partial, _ = scale_bones(kp3d, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(1), spread=0.2)
    np.testing.assert_allclose(partial[:, 13] - partial[:, 12], kp3d[:, 13] - kp3d[:, 12], atol=1e-6)
    # zero spread is the identity
    full = np.ones((6, 17), np.float32)
    same, _ = scale_bones(kp3d, full, H36M_LIKE_INTRINSICS, rng, spread=0.0)
    np.testing.assert_allclose(same, kp3d, atol=1e-6)
    # a forearm pointing at the camera, its wrist just past the near limit: a longer forearm is refused
    near = kp3d.copy()
    near[:, 13, :2], near[:, 13, 2] = near[:, 12, :2], 0.105
    views = [scale_bones(near, full, H36M_LIKE_INTRINSICS, np.random.default_rng(k), spread=0.2) for k in range(20)]
    assert 0 < sum(v is None for v in views) < 20
    assert all((v[0][..., 2] >= 0.1).all() for v in views if v is not None)


def _facing_camera(frames: int) -> np.ndarray:
    """An upright person 4 m in front of the camera, facing it (camera frame: x right, y down)."""
    pose = np.zeros((17, 3))
    pose[[1, 2, 3]] = [[-0.1, 0.0, 0], [-0.1, 0.45, 0], [-0.1, 0.9, 0]]       # right leg on the image's left
    pose[[4, 5, 6]] = [[0.1, 0.0, 0], [0.1, 0.45, 0], [0.1, 0.9, 0]]
    pose[[7, 8, 9, 10]] = [[0, -0.25, 0], [0, -0.5, 0], [0, -0.6, 0], [0, -0.75, 0]]
    pose[[11, 12, 13]] = [[0.2, -0.5, 0], [0.2, -0.2, 0], [0.2, 0.05, 0]]
    pose[[14, 15, 16]] = [[-0.2, -0.5, 0], [-0.2, -0.2, 0], [-0.2, 0.05, 0]]
    return np.broadcast_to(pose + [0.0, 0.0, 4.0], (frames, 17, 3)).astype(np.float32)


def test_bend_forward_turns_the_upper_body_towards_where_it_faces() -> None:
    kp3d, conf = _facing_camera(5), np.ones((5, 17), np.float32)
    draws = [bend_forward(kp3d, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(k), 80.0) for k in range(10)]
    angles = []
    for bent, bent2d in draws:
        np.testing.assert_array_equal(bent[:, :7], kp3d[:, :7])                  # hips and legs stay
        np.testing.assert_allclose(bone_lengths(bent), bone_lengths(kp3d), atol=1e-6)
        np.testing.assert_allclose(bent2d, project(bent, H36M_LIKE_INTRINSICS), atol=1e-3)
        up, new_up = kp3d[0, 8] - kp3d[0, 0], bent[0, 8] - bent[0, 0]
        angle = np.degrees(np.arccos(up @ new_up / np.linalg.norm(up) / np.linalg.norm(new_up)))
        np.testing.assert_allclose(bent[0, 8, 2], 4.0 - 0.5 * np.sin(np.radians(angle)), atol=1e-5)  # towards the camera
        assert abs(bent[0, 8, 0]) < 1e-6                                        # no sideways lean
        angles.append(angle)
    assert 0.0 <= min(angles) and max(angles) <= 80.0 + 1e-4 and np.ptp(angles) > 20
    conf[2, 7] = 0.0                                                            # no spine in one frame: no bend
    assert bend_forward(kp3d, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(0), 80.0) is None
    assert set(UPPER_BODY) == set(range(7, 17))


def test_recline_tilts_the_whole_body_about_a_horizontal_axis_through_the_pelvis() -> None:
    kp3d, conf = _facing_camera(5), np.ones((5, 17), np.float32)
    tilts = []
    for k in range(40):
        tilted, tilted2d = recline(kp3d, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(k), 90.0)
        np.testing.assert_allclose(tilted[:, 0], kp3d[:, 0], atol=1e-6)          # the pelvis stays
        np.testing.assert_allclose(bone_lengths(tilted), bone_lengths(kp3d), atol=1e-5)
        np.testing.assert_allclose(tilted2d, project(tilted, H36M_LIKE_INTRINSICS), atol=1e-3)
        # one rigid rotation: recover it from the pelvis-relative joints (Kabsch) and read its axis
        a, b = (kp3d[0] - kp3d[0, 0]).astype(np.float64), (tilted[0] - tilted[0, 0]).astype(np.float64)
        u, _, vt = np.linalg.svd(a.T @ b)
        rot = (u @ vt).T
        np.testing.assert_allclose(b, a @ rot.T, atol=1e-5)
        angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
        axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
        assert angle <= 90.0 + 1e-3
        if angle > 5:
            assert abs(axis[1]) / np.linalg.norm(axis) < 1e-4                   # horizontal axis
        up, new_up = kp3d[0, 8] - kp3d[0, 0], tilted[0, 8] - tilted[0, 0]       # the spine leaves the vertical
        tilts.append(np.degrees(np.arccos(up @ new_up / np.linalg.norm(up) / np.linalg.norm(new_up))))
    assert max(tilts) > 75 and min(tilts) < 25                                  # lying down and barely leaning
    # a body lying towards the camera that would reach behind it is refused
    near = kp3d.copy()
    near[..., 2] -= 3.5                                                        # pelvis 0.5 m from the camera
    draws = [recline(near, conf, H36M_LIKE_INTRINSICS, np.random.default_rng(k), 90.0) for k in range(40)]
    assert 0 < sum(d is None for d in draws) < 40
    with pytest.raises(PoseCliError, match="max_recline_deg"):
        check_augment({"max_recline_deg": 100})


def test_bone_scale_windows_feed_the_new_rig_to_input_and_target(caches: tuple[str, str]) -> None:
    plain = WindowDataset([{"path": caches[0]}], 9, {}, split_seed=0)
    scaled = WindowDataset([{"path": caches[0]}], 9, {"bone_scale": 1.0, "bone_spread": 0.2}, split_seed=0)
    s, p = scaled[3], plain[3]
    ratio = bone_lengths(s["target3d"].numpy()) / bone_lengths(p["target3d"].numpy())
    assert np.ptp(ratio[0]) > 0.05
    c, seq, start, _ = scaled.locate(3)
    pelvis = scaled.caches[c].window(seq, start, 9)["keypoints3d"][:, :1]
    reproj = project(s["target3d"].numpy() + pelvis, H36M_LIKE_INTRINSICS).astype(np.float32)
    expected, _, _ = normalize_window(reproj, np.ones((9, 17), np.float32))
    np.testing.assert_allclose(s["target2d"].numpy(), expected, atol=1e-4)
    # off by default, and then the sample stream is the one presets had before the option existed
    assert check_augment({})["bone_scale"] == 0.0
    assert torch.equal(WindowDataset([{"path": caches[0]}], 9, {"bone_spread": 0.3}, split_seed=0)[3]["target3d"],
                       p["target3d"])
    with pytest.raises(PoseCliError, match="bone_spread"):
        check_augment({"bone_spread": 0.9})
    with pytest.raises(PoseCliError, match="max_bend_deg"):
        check_augment({"max_bend_deg": 120})
    bent = WindowDataset([{"path": caches[0]}], 9, {"bend": 1.0, "max_bend_deg": 60}, split_seed=0)[3]
    assert torch.equal(bent["target3d"][:, :7], p["target3d"][:, :7])
    assert not torch.allclose(bent["target3d"][:, 7:], p["target3d"][:, 7:], atol=1e-3)
    lying = WindowDataset([{"path": caches[0]}], 9, {"recline": 1.0}, split_seed=0)[3]
    np.testing.assert_allclose(bone_lengths(lying["target3d"].numpy()), bone_lengths(p["target3d"].numpy()), atol=1e-5)
    assert not torch.allclose(lying["target3d"], p["target3d"], atol=1e-3)


def test_detector_noise_statistics() -> None:
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, size=(4000, 17, 2)).astype(np.float32)
    clean[:, 0] = [-1, -1]
    clean[:, 1] = [1, 1]                     # every frame's box is exactly 2 x 2
    conf = np.ones((4000, 17), np.float32)
    conf[:, 5] = 0.0
    noisy, nconf = detector_noise(clean, conf, rng, jitter=0.02, swap=0.0, dropout=0.1, outlier=0.0)
    kept = nconf > 0
    assert not kept[:, 5].any() and (noisy[~kept] == 0).all()
    assert abs(1 - kept[:, np.arange(17) != 5].mean() / 0.9) < 0.01
    assert nconf[kept].min() >= 0.05 * 0.999 and nconf.max() <= 1.0
    err = noisy - clean
    std = np.array([err[kept[:, j], j].std() for j in range(17) if j != 5])
    np.testing.assert_allclose(std, 0.02 * 2.0 * np.delete(JOINT_NOISE, 5), rtol=0.08)
    dist = np.linalg.norm(err, axis=-1)[kept]
    assert np.corrcoef(dist, nconf[kept])[0, 1] < -0.3
    swapped, _ = detector_noise(clean, conf, rng, jitter=0.0, swap=1.0, dropout=0.0, outlier=0.0)
    np.testing.assert_array_equal(swapped[:, 1], clean[:, 4])


def test_bad_configs_name_the_problem(tmp_path: Path, caches: tuple[str, str]) -> None:
    with pytest.raises(PoseCliError, match="unknown augment option 'flop'"):
        check_augment({"flop": 0.5})
    with pytest.raises(PoseCliError, match="probability"):
        check_augment({"flip": 2})
    with pytest.raises(PoseCliError, match="cache file not found"):
        build_dataloader({"sources": [{"path": str(tmp_path / "none.h5")}]}, 9, 2, seed=0)
    with pytest.raises(PoseCliError, match="needs 'path'"):
        build_dataloader({"sources": [{"weight": 1}]}, 9, 2, seed=0)


def test_wide_camera_augment_options_are_checked():
    from posecli.data.augment import check_augment
    assert check_augment({"distance_min": 2, "distance_max": 9, "off_axis_deg": 25})["distance_max"] == 9.0
    for bad in ({"off_axis_deg": 120}, {"roll_deg": float("nan")}, {"distance_min": 5, "distance_max": 3},
                {"distance_min": 0.0, "distance_max": 3.0}):
        with pytest.raises(PoseCliError):
            check_augment(bad)


def test_detector_face_inputs_put_the_nose_in_front_of_the_neck():
    """A person facing the camera (left = image right, up = -y): the nose sits 10 cm closer and
    1 cm higher than the neck joint, the eyes 8.5 cm closer and 4 cm higher; 3D is untouched."""
    from posecli.data.augment import detector_face_inputs
    kp3d = np.zeros((1, 17, 3)) + [0.0, 0.3, 5.0]
    kp3d[0, 8] = [0.0, 0.1, 5.0]
    kp3d[0, 9] = [0.0, 0.0, 5.0]
    kp3d[0, 10] = [0.0, -0.092, 5.0]
    kp3d[0, 11], kp3d[0, 14] = [0.2, 0.1, 5.0], [-0.2, 0.1, 5.0]
    conf = np.ones((1, 17), np.float32)
    intrinsics = np.array([1000.0, 1000.0, 500.0, 500.0])
    kp2d = project(kp3d, intrinsics).astype(np.float32)
    out = detector_face_inputs(kp3d, conf, kp2d, intrinsics)
    np.testing.assert_allclose(out[0, 9], [500.0, 500.0 - 1000.0 * 0.01 / 4.9], atol=1e-3)
    np.testing.assert_allclose(out[0, 10], [500.0, 500.0 - 1000.0 * 0.04 / 4.915], atol=1e-3)
    np.testing.assert_array_equal(np.delete(out, [9, 10], axis=1), np.delete(kp2d, [9, 10], axis=1))
    conf[0, 11] = 0.0                                          # no shoulders: no face frame
    np.testing.assert_array_equal(detector_face_inputs(kp3d, conf, kp2d, intrinsics), kp2d)
