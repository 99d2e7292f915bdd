"""Metrics against exactly known answers and independent per-frame loop references."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from posecli import metrics as M


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _poses(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    return rng.normal(scale=300.0, size=(n, 17, 3))


def test_p1_of_per_joint_translation_is_its_norm():
    gt = _poses(np.random.default_rng(0))
    pred = gt.copy()
    pred[:, 1:] += np.array([30.0, 40.0, 0.0])            # |v| = 50 mm on every non-root joint
    valid = np.ones((8, 17), bool)
    valid[:, 0] = False
    assert M.mpjpe(pred, gt, valid).value == pytest.approx(50.0, abs=1e-9)
    assert M.mpjpe(pred, gt, valid).count == 8 * 16
    assert M.mpjpe(pred, gt).value == pytest.approx(50.0 * 16 / 17, abs=1e-9)
    assert M.mpjpe(gt + np.array([1e3, -2e3, 5e3]), gt).value == pytest.approx(0.0, abs=1e-9)


def test_p2_of_similarity_copy_is_zero_and_n_of_scaled_copy_is_zero():
    rng = np.random.default_rng(1)
    gt = _poses(rng)
    pred = np.stack([0.7 * g @ _rotation(rng).T + rng.normal(size=3) * 1e3 for g in gt])
    assert M.p_mpjpe(pred, gt).value == pytest.approx(0.0, abs=1e-8)
    assert M.mpjpe(pred, gt).value > 50.0
    scaled = 1.3 * M.root_relative(gt)
    assert M.n_mpjpe(scaled, gt).value == pytest.approx(0.0, abs=1e-9)
    rr = M.root_relative(gt)
    expected = 0.3 * np.linalg.norm(rr, axis=-1).mean()
    assert M.mpjpe(scaled, gt).value == pytest.approx(expected, rel=1e-12)


def test_reflection_gives_a_proper_rotation():
    rng = np.random.default_rng(2)
    planar = _poses(rng, 4)
    planar[..., 2] = 0.0
    mirrored = planar * np.array([-1.0, 1.0, 1.0])
    # a planar pose mirrored in x is a 180 degree turn about y away: exactly 0 after alignment
    assert M.p_mpjpe(mirrored, planar).value == pytest.approx(0.0, abs=1e-8)
    solid = _poses(rng, 4)
    mirrored = solid * np.array([-1.0, 1.0, 1.0])
    aligned = M.procrustes_align(mirrored, solid)
    assert M.p_mpjpe(mirrored, solid).value > 10.0        # a reflection is not a rotation
    for a, m in zip(aligned, mirrored):
        h = (m - m.mean(0)).T @ (a - a.mean(0))
        assert np.linalg.det(h) > 0                       # orientation kept: proper rotation
    np.testing.assert_allclose(aligned, _horn_align(mirrored, solid, np.ones((4, 17), bool)), atol=1e-6)


def _horn_align(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Independent per-frame reference: Horn's quaternion method (always a proper rotation)."""
    out = np.empty_like(pred)
    for i in range(len(pred)):
        w = valid[i]
        p, g = pred[i][w], gt[i][w]
        mp, mg = p.mean(0), g.mean(0)
        p0, g0 = p - mp, g - mg
        s = p0.T @ g0
        (sxx, sxy, sxz), (syx, syy, syz), (szx, szy, szz) = s
        n = np.array([
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz]])
        q0, qx, qy, qz = np.linalg.eigh(n)[1][:, -1]
        r = np.array([
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)],
            [2 * (qx * qy + q0 * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - q0 * qx)],
            [2 * (qx * qz - q0 * qy), 2 * (qy * qz + q0 * qx), 1 - 2 * (qx * qx + qy * qy)]])
        rotated = p0 @ r.T
        scale = (rotated * g0).sum() / (p0 * p0).sum()
        out[i] = scale * (pred[i] - mp) @ r.T + mg
    return out


def test_vectorised_metrics_match_loop_references():
    rng = np.random.default_rng(3)
    gt = _poses(rng, 50)
    pred = gt + rng.normal(scale=40.0, size=gt.shape)
    valid = rng.random((50, 17)) > 0.2
    valid[:, :4] = True                                   # >= 4 joints per frame for alignment
    ref_p1, ref_p2, ref_n = [], [], []
    aligned = _horn_align(pred, gt, valid)
    for i in range(50):
        p = pred[i] - pred[i, 0]
        g = gt[i] - gt[i, 0]
        scale = sum(p[j] @ g[j] for j in range(17) if valid[i, j]) / sum(
            p[j] @ p[j] for j in range(17) if valid[i, j])
        for j in range(17):
            if valid[i, j]:
                ref_p1.append(np.sqrt(((p[j] - g[j]) ** 2).sum()))
                ref_p2.append(np.sqrt(((aligned[i, j] - gt[i, j]) ** 2).sum()))
                ref_n.append(np.sqrt(((scale * p[j] - g[j]) ** 2).sum()))
    assert M.mpjpe(pred, gt, valid).value == pytest.approx(np.mean(ref_p1), abs=1e-6)
    assert M.p_mpjpe(pred, gt, valid).value == pytest.approx(np.mean(ref_p2), abs=1e-6)
    assert M.n_mpjpe(pred, gt, valid).value == pytest.approx(np.mean(ref_n), abs=1e-6)
    assert M.p_mpjpe(pred, gt, valid).count == int(valid.sum())


def test_procrustes_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(4)
    gt = _poses(rng, 37)
    pred = gt + rng.normal(scale=30.0, size=gt.shape)
    whole = M.p_mpjpe_errors(pred, gt)
    monkeypatch.setattr(M, "PROCRUSTES_CHUNK", 5)
    np.testing.assert_allclose(M.p_mpjpe_errors(pred, gt), whole, atol=1e-9)


def test_mpjve_constant_offset_is_zero_and_linear_drift_is_known():
    rng = np.random.default_rng(5)
    gt = _poses(rng, 20)
    assert M.mpjve(gt + rng.normal(size=(1, 17, 3)) * 50, gt).value == pytest.approx(0.0, abs=1e-9)
    drift = gt.copy()
    drift[:, 5] += np.arange(20)[:, None] * np.array([0.0, 6.0, 8.0])   # 10 mm/frame on joint 5
    score = M.mpjve(drift, gt)
    assert score.count == 19 * 17
    assert score.value == pytest.approx(10.0 / 17, abs=1e-9)
    # a jump between two sequences is not a velocity: seq_start masks it
    two = gt.copy()
    two[10:, 5] += 500.0
    assert M.mpjve(two, gt, seq_start=np.array([0, 10])).value == pytest.approx(0.0, abs=1e-9)
    assert M.mpjve(two, gt, seq_start=np.array([0, 10])).count == 18 * 17


def test_pck_and_auc_on_hand_made_errors():
    errors = np.array([[0.0, 100.0, 150.0, 151.0, 200.0, 1e4]])
    valid = np.array([[True, True, True, True, True, False]])
    assert M.pck(errors, valid).value == pytest.approx(60.0)
    # thresholds 0..150 step 5 (31): 0 mm passes 31, 100 mm passes 11, 150 mm passes 1
    assert M.auc(errors, valid).value == pytest.approx(100.0 * 43 / 155)
    assert M.auc(errors, valid).count == 5


def test_2d_pck_pckh_and_torso():
    gt = np.zeros((2, 17, 2))
    gt[:, 9] = [0.0, 0.0]
    gt[:, 10] = [0.0, -20.0]                              # head size 20 px
    gt[:, 11] = [30.0, 40.0]                              # torso (l_shoulder - r_hip) 50 px
    pred = gt.copy()
    pred[0, 2] += [9.0, 0.0]                              # 0.45 head: correct at 0.5
    pred[1, 2] += [11.0, 0.0]                             # 0.55 head: wrong
    assert M.pckh(pred, gt).value == pytest.approx(100.0 * 33 / 34)
    np.testing.assert_allclose(M.torso_size(gt), [50.0, 50.0])
    assert M.pck2d(pred, gt, M.torso_size(gt), 0.25).value == pytest.approx(100.0)
    assert M.pck2d(pred, gt, M.torso_size(gt), 0.2, valid=np.ones((2, 17), bool)).count == 34
    np.testing.assert_allclose(M.bbox_size(gt), [60.0, 60.0])  # y from -20 to 40


def test_oks_known_value():
    gt = np.zeros((1, 17, 2))
    gt[0, :, 0] = np.arange(17) * 10.0
    gt[0, :, 1] = np.arange(17) * 5.0
    pred = gt.copy()
    assert M.oks(pred, gt)[0] == pytest.approx(1.0)
    pred[0, 13] += [3.0, 4.0]                             # wrist (sigma .062), d = 5
    area = 400.0
    expected = (12 + np.exp(-25.0 / (2 * area * (2 * 0.062) ** 2))) / 13
    assert M.oks(pred, gt, area=np.array([area]))[0] == pytest.approx(expected, rel=1e-12)


COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                        1.07, 1.07, .87, .87, .89, .89]) / 10.0


def test_oks_ap_matches_pycocotools(tmp_path):
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    rng = np.random.default_rng(6)
    n = 40
    gt = rng.uniform(100, 400, size=(n, 17, 2))
    vis = rng.random((n, 17)) > 0.15
    area = rng.uniform(2000, 40000, size=n)
    pred = gt + rng.normal(scale=rng.uniform(1, 25, size=(n, 1, 1)), size=gt.shape)
    scores = rng.random(n)
    images, anns, dets = [], [], []
    for i in range(n):
        images.append({"id": i + 1, "width": 640, "height": 480})
        kp = np.concatenate([gt[i], 2.0 * vis[i][:, None]], axis=1).ravel().tolist()
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "keypoints": kp, "area": area[i],
                     "num_keypoints": int(vis[i].sum()), "iscrowd": 0, "bbox": [100, 100, 300, 300]})
        dkp = np.concatenate([pred[i], np.ones((17, 1))], axis=1).ravel().tolist()
        dets.append({"image_id": i + 1, "category_id": 1, "keypoints": dkp, "score": float(scores[i])})
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                  "categories": [{"id": 1, "name": "person"}]}))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = coco_mod.COCO(str(tmp_path / "gt.json"))
        ev = cocoeval_mod.COCOeval(coco, coco.loadRes(dets), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = M.oks_ap(pred, gt, vis, scores=scores, area=area, sigmas=COCO_SIGMAS)
    assert ours["count"] == n
    assert ours["AP"] == pytest.approx(100.0 * ev.stats[0], abs=1e-9)
    assert ours["AP50"] == pytest.approx(100.0 * ev.stats[1], abs=1e-9)
    assert ours["AP75"] == pytest.approx(100.0 * ev.stats[2], abs=1e-9)
    assert 0.0 < ours["AP"] < 100.0


# ---------------------------------------------------------------- exact for any finite input

def test_huge_predictions_keep_their_huge_error():
    """1e30 m predictions: the root-relative error is computed before differencing, so the ground
    truth cannot vanish in the rounding (it used to give 0 mm and 100 % PCK)."""
    gt = _poses(np.random.default_rng(3), 4)
    pred = np.zeros_like(gt)
    pred[:, 1:, 0] = 1e33                                   # 1e30 m on every non-root joint, in mm
    errors = M.mpjpe_errors(pred, gt)
    rr = M.root_relative(gt)
    expected = np.linalg.norm(np.array([1e33, 0.0, 0.0]) - rr[:, 1:], axis=-1)
    np.testing.assert_allclose(errors[:, 1:], expected, rtol=1e-15)
    assert errors[:, 0].max() == 0.0
    assert M.mpjpe(pred, gt).value == pytest.approx(1e33 * 16 / 17, rel=1e-12)
    assert M.pck(errors).value == pytest.approx(100.0 / 17)       # only the roots are within 150 mm
    assert M.auc(errors).value == pytest.approx(100.0 / 17)
    # P-MPJPE scales the huge pose down to the best similarity fit: finite, and no better than
    # predicting the ground truth's centroid for every joint
    p2 = M.p_mpjpe(pred, gt).value
    centroid = np.linalg.norm(rr - rr.mean(axis=1, keepdims=True), axis=-1).mean()
    assert np.isfinite(p2) and 0.0 < p2 <= centroid + 1e-6


def test_constant_offset_of_1e30_is_a_collapsed_pose_not_a_perfect_one():
    gt = _poses(np.random.default_rng(4), 3)
    pred = gt + 1e33                 # in float64 every joint rounds to the same 1e33: a point
    assert np.ptp(pred, axis=1).max() == 0.0
    rr = M.root_relative(gt)
    assert M.mpjpe(pred, gt).value == pytest.approx(np.linalg.norm(rr, axis=-1).mean(), rel=1e-12)
    centroid = np.linalg.norm(rr - rr.mean(axis=1, keepdims=True), axis=-1).mean()
    assert M.p_mpjpe(pred, gt).value == pytest.approx(centroid, rel=1e-9)


def test_known_rotation_and_offset_give_exact_numbers():
    """A pose turned 90 degrees about the vertical through its root: every joint j moves by
    sqrt(2) * its horizontal distance from the root (P1); P2 undoes the turn (0)."""
    gt = _poses(np.random.default_rng(5), 2)
    rr = M.root_relative(gt)
    turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])   # about y
    pred = rr @ turn.T + np.array([5e3, 0.0, 0.0])
    horizontal = np.linalg.norm(rr[..., [0, 2]], axis=-1)
    np.testing.assert_allclose(M.mpjpe_errors(pred, gt), np.sqrt(2.0) * horizontal, rtol=1e-12, atol=1e-9)
    assert M.p_mpjpe(pred, gt).value == pytest.approx(0.0, abs=1e-8)


def test_norm_is_exact_near_the_float_limits():
    big = np.array([[3e200, 4e200, 0.0]])
    tiny = np.array([[3e-200, 4e-200, 0.0]])
    assert M.joint_errors(big, np.zeros_like(big))[0] == pytest.approx(5e200, rel=1e-15)
    assert M.joint_errors(tiny, np.zeros_like(tiny))[0] == pytest.approx(5e-200, rel=1e-15)
