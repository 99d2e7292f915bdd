"""2D readers (COCO family, MPII) on small files made here, then on the real data when present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from posecli.data.exclude import apply_exclude, load_exclude_names
from posecli.data.info import cache_info
from posecli.data.prepare import prepare
from posecli.data.readers.coco import read_aic, read_coco, read_crowdpose, read_halpe, read_posetrack18
from posecli.data.readers.mpii import CSV_JOINTS, NPY_TO_MPII, read_mpii
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from conftest import shared_file

OPTS = PrepareOptions()


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _coco_kps(points: dict[int, tuple[float, float, int]], k: int = 17) -> list[float]:
    out = [0.0] * (3 * k)
    for i, (x, y, v) in points.items():
        out[3 * i:3 * i + 3] = [x, y, v]
    return out


def _coco_file(path: Path, annotations: list[dict], k: int = 17) -> Path:
    images = [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
              {"id": 2, "file_name": "b.jpg", "width": 800, "height": 600}]
    for i, ann in enumerate(annotations):
        ann.setdefault("id", 100 + i)
        ann.setdefault("image_id", 1)
        ann.setdefault("category_id", 1)
        ann.setdefault("iscrowd", 0)
    cats = [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(k)]}]
    return _write_json(path, {"images": images, "annotations": annotations, "categories": cats})


# COCO indices: 5 l_shoulder, 6 r_shoulder, 11 l_hip, 12 r_hip, 0 nose, 3 l_ear
FULL = {0: (50, 10, 2), 5: (40, 30, 2), 6: (60, 30, 1), 11: (42, 70, 2), 12: (58, 70, 2)}


def test_coco_drops_crowd_and_empty_and_converts(tmp_path):
    path = _coco_file(tmp_path / "ann.json", [
        {"keypoints": _coco_kps(FULL)},
        {"keypoints": _coco_kps({}), "iscrowd": 1},
        {"keypoints": _coco_kps({})},
        {"keypoints": _coco_kps({3: (5, 5, 2)}), "image_id": 2},   # only an ear: kept, no H36M joint
    ])
    result = read_coco([path], OPTS)
    assert len(result.records) == 2
    assert dict(result.dropped) == {"crowd region": 1, "no labelled keypoints": 1}
    first = result.records[0]
    assert first.subject == "a.jpg" and first.frame_names == ["a.jpg"] and first.image_size == (640.0, 480.0)
    assert first.action == "" and first.camera == "" and len(first) == 1
    kp, conf = first.keypoints2d[0], first.confidence[0]
    np.testing.assert_allclose(kp[0], [50, 70])           # pelvis = mid-hips
    np.testing.assert_allclose(kp[8], [50, 30])           # thorax = mid-shoulders
    np.testing.assert_allclose(kp[7], [50, 50])           # spine = mean of shoulders and hips
    np.testing.assert_allclose(kp[9], [50, 10])           # nose
    assert conf.tolist() == [1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0]   # v=1 counts as labelled
    assert result.records[1].subject == "b.jpg" and result.records[1].confidence.sum() == 0
    assert result.source_layout == "coco17" and result.dataset == "coco"


def test_coco_results_scores_and_image_info(tmp_path):
    ann = _coco_file(tmp_path / "ann.json", [])
    per_kp = _coco_kps({11: (42, 70, 0.9), 12: (58, 70, 0.6), 5: (40, 30, 0.75)})
    flags = _coco_kps({11: (42, 70, 1), 12: (58, 70, 1)})
    res = _write_json(tmp_path / "res.json", [
        {"image_id": 2, "category_id": 1, "keypoints": per_kp, "score": 0.5},
    ])
    result = read_coco([res, ann], OPTS)
    conf = result.records[0].confidence[0]
    assert conf[0] == pytest.approx(0.6) and conf[4] == pytest.approx(0.9) and conf[11] == pytest.approx(0.75)
    assert result.records[0].subject == "b.jpg" and result.records[0].image_size == (800.0, 600.0)

    res2 = _write_json(tmp_path / "res2.json", [{"image_id": 7, "keypoints": flags, "score": 0.25}])
    bare = read_coco([res2], OPTS)
    assert bare.records[0].subject == "7" and bare.records[0].image_size is None
    assert bare.records[0].confidence[0, 0] == pytest.approx(0.25) and bare.records[0].confidence[0, 3] == 0
    with pytest.raises(PoseCliError, match="image_id 7"):
        read_coco([res2, ann], OPTS)


def test_halpe_26_and_136_give_the_same_pose(tmp_path):
    points = {**FULL, 17: (50, 2, 2)}        # Halpe's own head point
    a = read_halpe([_coco_file(tmp_path / "h26.json", [{"keypoints": _coco_kps(points, 26)}], 26)], OPTS)
    b = read_halpe([_coco_file(tmp_path / "h136.json", [{"keypoints": _coco_kps(points, 136)}], 136)], OPTS)
    assert a.source_layout == "halpe26" and b.source_layout == "halpe136"
    np.testing.assert_array_equal(a.records[0].keypoints2d, b.records[0].keypoints2d)
    np.testing.assert_allclose(a.records[0].keypoints2d[0, 10], [50, 2])
    with pytest.raises(PoseCliError, match="expected 26"):
        read_halpe([_coco_file(tmp_path / "bad.json", [{"keypoints": _coco_kps(points, 17)}])], OPTS)


def test_crowdpose_and_aic_neck_becomes_thorax(tmp_path):
    # CrowdPose: 12 head, 13 neck; AIC: 12 head top, 13 neck
    crowd = read_crowdpose([_coco_file(tmp_path / "c.json", [{"keypoints": _coco_kps(
        {12: (50, 0, 2), 13: (50, 20, 2)}, 14)}], 14)], OPTS)
    aic = read_aic([_coco_file(tmp_path / "a.json", [{"keypoints": _coco_kps(
        {12: (50, 0, 2), 13: (50, 20, 2)}, 14)}], 14)], OPTS)
    for result in (crowd, aic):
        kp, conf = result.records[0].keypoints2d[0], result.records[0].confidence[0]
        np.testing.assert_allclose(kp[[8, 9, 10]], [[50, 20], [50, 10], [50, 0]])
        assert conf[[8, 9, 10]].tolist() == [1, 1, 1] and conf[0] == 0


def test_posetrack_groups_tracks_and_splits_gaps(tmp_path):
    images = [{"id": 10 + f, "file_name": f"images/val/000042_mpii/{f:06d}.jpg", "width": 1920, "height": 1080}
              for f in (0, 1, 2, 4)]
    anns = []
    for f in (0, 1, 2, 4):
        anns.append({"id": 100 + f, "image_id": 10 + f, "track_id": 3, "category_id": 1,
                     "keypoints": _coco_kps({11: (10 + f, 5, 1), 12: (20 + f, 5, 1)})})
    anns.append({"id": 200, "image_id": 11, "track_id": 7, "category_id": 1, "keypoints": _coco_kps({})})
    path = _write_json(tmp_path / "pt.json", {"images": images[::-1], "annotations": anns[::-1],
                                              "categories": [{"id": 1, "name": "person"}]})
    result = read_posetrack18([path], OPTS)
    assert [len(r) for r in result.records] == [3, 1]
    first = result.records[0]
    assert first.subject == "000042_mpii" and first.action == "track_3" and first.fps == 0.0
    np.testing.assert_allclose(first.keypoints2d[:, 0, 0], [15, 16, 17])     # ordered by frame
    assert first.frame_names[0] == "images/val/000042_mpii/000000.jpg"
    assert dict(result.dropped) == {"no labelled keypoints": 1}


def _mpii_pose(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(10, 500, (16, 2)).round(2)


def _mpii_csv(path: Path, poses: list[np.ndarray], names: list[str]) -> Path:
    header = ["ID", "NAME"] + [f"{j}_{a}" for j in CSV_JOINTS for a in "XY"] + ["Scale", "Activity", "Category"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, (pose, name) in enumerate(zip(poses, names)):
            w.writerow([i + 1, name, *[f"{v:g}" for v in pose.ravel()], 2.0, "curling", "sports"])
    return path


def test_mpii_csv_h5_npy_json_agree(tmp_path):
    pose = _mpii_pose(0)
    pose_missing = pose.copy()
    pose_missing[0] = -1                                   # r_ankle missing in the CSV
    csv_path = _mpii_csv(tmp_path / "m.csv", [pose, pose_missing], ["x1.jpg", "x2.jpg"])
    h5_pose = pose_missing.copy()
    h5_pose[0] = 0                                         # the .h5 writes missing joints as (0, 0)
    with h5py.File(tmp_path / "valid.h5", "w") as f:
        f["part"] = np.stack([pose, h5_pose])
        f["visible"] = np.array([[0] * 16, [1] * 16], float)   # occluded joints still count
        f["imgname"] = np.array([b"x1.jpg", b"x2.jpg"])
    h36m_slots = np.zeros((1, 17, 2), np.float32)
    h36m_slots[0, NPY_TO_MPII] = pose
    h36m_slots[0, 9] = (pose[8] + pose[9]) / 2
    np.save(tmp_path / "poses_h36m.npy", h36m_slots.reshape(1, 34))
    (tmp_path / "poses_image_names.txt").write_text("x1.jpg\n")
    _write_json(tmp_path / "m.json", [{"image": "x1.jpg", "joints": pose.tolist(), "joints_vis": [1] * 16,
                                       "center": [0, 0], "scale": 1.0}])
    results = {kind: read_mpii([tmp_path / name], OPTS) for kind, name in
               [("csv", "m.csv"), ("h5", "valid.h5"), ("npy", "poses_h36m.npy"), ("json", "m.json")]}
    ref = results["csv"].records[0]
    for kind, result in results.items():
        np.testing.assert_allclose(result.records[0].keypoints2d, ref.keypoints2d, atol=1e-4, err_msg=kind)
        assert result.records[0].confidence.min() == 1 and result.records[0].subject == "x1.jpg"
    np.testing.assert_allclose(ref.keypoints2d[0, 8], pose[7], atol=1e-4)   # thorax
    np.testing.assert_allclose(ref.keypoints2d[0, 9], pose[8], atol=1e-4)   # neck = upper neck
    np.testing.assert_allclose(ref.keypoints2d[0, 10], pose[9], atol=1e-4)  # head = head top
    assert ref.action == "curling"
    for kind in ("csv", "h5"):
        second = results[kind].records[1]
        assert second.confidence[0, 3] == 0 and second.confidence[0].sum() == 16, kind
    assert csv_path.exists()


def test_exclude_from_text_and_mpii_file(tmp_path):
    poses = [_mpii_pose(i) for i in range(4)]
    csv_path = _mpii_csv(tmp_path / "m.csv", poses, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    listing = tmp_path / "val.txt"
    listing.write_text("# val images\nb.jpg\n\nd.jpg\nzzz.jpg\n")
    assert load_exclude_names(listing) == {"b.jpg", "d.jpg", "zzz.jpg"}
    result = read_mpii([csv_path], OPTS)
    assert apply_exclude(result, load_exclude_names(listing), listing) == 2
    assert [r.subject for r in result.records] == ["a.jpg", "c.jpg"]
    assert dict(result.dropped) == {"excluded: listed in val.txt": 2}
    other = _mpii_csv(tmp_path / "other.csv", poses[:1], ["c.jpg"])
    assert load_exclude_names(other) == {"c.jpg"}


# ---------------------------------------------------------------- real data (skips when absent)

def _labelled_non_crowd(path: Path) -> tuple[int, int, int]:
    data = json.loads(path.read_text())
    crowd = sum(1 for a in data["annotations"] if a.get("iscrowd"))
    labelled = sum(1 for a in data["annotations"]
                   if not a.get("iscrowd") and any(v > 0 for v in a["keypoints"][2::3]))
    return labelled, crowd, len(data["annotations"]) - labelled - crowd


def _prepare(fmt: str, inputs: list[Path], out: Path, **options) -> tuple:
    summary = prepare(fmt, inputs, out, PrepareOptions(**options), force=False, command=f"test {fmt}")
    return summary, cache_info(out)


@pytest.mark.parametrize("relative", ["coco/person_keypoints_val2017_subset538img.json",
                                      "coco/coco_mini_person_keypoints_train2017.json"])
def test_real_coco_counts(relative, tmp_path):
    path = shared_file(relative)
    labelled, crowd, empty = _labelled_non_crowd(path)
    summary, info = _prepare("coco", [path], tmp_path / "c.h5")
    assert summary.sequences == summary.frames == labelled
    assert summary.dropped == {"crowd region": crowd, "no labelled keypoints": empty}
    assert info["counts"]["frames"] == labelled and info["provenance"]["sources"][0]["name"] == path.name
    if "val2017" in relative:
        assert (labelled, crowd, empty) == (1354, 49, 810)


def test_real_mpii_csv_missing_joints_and_val_overlap(tmp_path):
    csv_path, valid = shared_file("mpii/mpii_human_pose.csv"), shared_file("mpii/valid.h5")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    expected_missing = np.array([sum(1 for r in rows if r[f"{j}_X"] == "-1" and r[f"{j}_Y"] == "-1")
                                 for j in CSV_JOINTS])
    result = read_mpii([csv_path], OPTS)
    assert len(result.records) == len(rows) == 17372
    conf = np.concatenate([r.confidence for r in result.records])
    mpii_to_h36m = [6, 2, 1, 0, 3, 4, 5, None, 7, 8, 9, 13, 14, 15, 12, 11, 10]
    for h36m, mpii_index in enumerate(mpii_to_h36m):
        if mpii_index is not None:
            assert (conf[:, h36m] == 0).sum() == expected_missing[mpii_index], CSV_JOINTS[mpii_index]

    with h5py.File(valid, "r") as f:
        val_names = {n.decode() for n in f["imgname"][()]}
    overlap = len({r["NAME"] for r in rows} & val_names)
    assert overlap == 2723
    summary, info = _prepare("mpii", [csv_path], tmp_path / "train.h5", exclude=valid, split="train")
    assert summary.frames == len(rows) - overlap
    assert summary.dropped == {"excluded: listed in valid.h5": overlap}
    assert info["split"] == "train" and info["counts"]["sequences"] == len(rows) - overlap


def test_real_mpii_h5_and_npy(tmp_path):
    valid = shared_file("mpii/valid.h5")
    npy = shared_file("mpii/mpii_poses_h36m17order.npy")
    with h5py.File(valid, "r") as f:
        part = f["part"][()]
    summary, info = _prepare("mpii", [valid], tmp_path / "val.h5", split="val")
    assert summary.frames == 2958
    wrist_missing = int(((part[:, 15, 0] == 0) & (part[:, 15, 1] == 0)).sum())
    assert info["missing_rate"]["l_wrist"] == pytest.approx(wrist_missing / 2958)

    result = read_mpii([npy], OPTS)
    assert len(result.records) == 19919 and all(r.confidence.min() == 1 for r in result.records[:50])
    csv_first = read_mpii([shared_file("mpii/mpii_human_pose.csv")], OPTS).records[0]
    assert result.records[0].subject == csv_first.subject == "015601864.jpg"
    np.testing.assert_allclose(result.records[0].keypoints2d, csv_first.keypoints2d, atol=1e-3)


@pytest.mark.parametrize("fmt, relative, persons, layout", [
    ("coco", "mmpose_fixtures/coco/test_coco.json", 12, "coco17"),
    ("crowdpose", "mmpose_fixtures/crowdpose/test_crowdpose.json", 4, "crowdpose14"),
    ("aic", "mmpose_fixtures/aic/test_aic.json", 9, "aic14"),
    ("halpe", "mmpose_fixtures/halpe/test_halpe.json", 12, "halpe136"),
    ("posetrack18", "mmpose_fixtures/posetrack18/annotations/test_posetrack18_val.json", 14, "posetrack18"),
    ("mpii", "mmpose_fixtures/mpii/test_mpii.json", 5, "mpii16"),
])
def test_real_mmpose_fixtures(fmt, relative, persons, layout, tmp_path):
    path = shared_file(relative)
    summary, info = _prepare(fmt, [path], tmp_path / f"{fmt}.h5")
    assert summary.frames == persons and info["source_layout"] == layout
    assert info["dataset"] == fmt and info["counts"]["frames"] == persons
    lo, hi = info["ranges"]["keypoints2d"]["x"]
    assert 0 <= lo < hi <= 1920


def test_real_posetrack_folder_matches_combined_file(tmp_path):
    folder = shared_file("mmpose_fixtures/posetrack18/annotations/val")
    combined = shared_file("mmpose_fixtures/posetrack18/annotations/test_posetrack18_val.json")
    a, b = read_posetrack18([folder], OPTS), read_posetrack18([combined], OPTS)
    key = lambda r: (r.subject, r.action)
    pairs = zip(sorted(a.records, key=key), sorted(b.records, key=key))
    for ra, rb in pairs:
        assert key(ra) == key(rb)
        np.testing.assert_array_equal(ra.keypoints2d, rb.keypoints2d)
    assert len(a.sources) == 3


def _coco_npz(path: Path) -> Path:
    """Three persons: two of train2017 (one without labels), one of val2017."""
    kp = np.zeros((3, 17, 3), np.float32)
    kp[0, :, :2] = np.arange(34, dtype=np.float32).reshape(17, 2) + 10
    kp[0, :, 2] = 2
    kp[2, 5:7] = [[100, 50, 2], [140, 52, 1]]
    np.savez(path, split=np.array([0, 0, 1], np.int8), image_id=np.array([9, 9, 397133]),
             image_wh=np.array([[640, 480], [640, 480], [600, 400]], np.int16), keypoints=kp)
    return path


def test_coco_npz_layout_keeps_splits_apart(tmp_path):
    path = _coco_npz(tmp_path / "coco.npz")
    train = read_coco([path], PrepareOptions(split="train"))
    assert [r.subject for r in train.records] == ["000000000009.jpg"]
    assert train.dropped["no labelled keypoints"] == 1
    rec = train.records[0]
    assert rec.image_size == (640.0, 480.0)
    np.testing.assert_allclose(rec.keypoints2d[0, 11], [20, 21])     # COCO l_shoulder (5) -> H36M 11
    np.testing.assert_allclose(rec.keypoints2d[0, 0], [(32 + 34) / 2, (33 + 35) / 2])   # pelvis = mid-hips
    val = read_coco([path], PrepareOptions(split="val"))
    assert [r.subject for r in val.records] == ["000000397133.jpg"]
    np.testing.assert_allclose(val.records[0].keypoints2d[0, 8], [120, 51])        # thorax = mid-shoulders
    assert len(read_coco([path], PrepareOptions(split="all")).records) == 2


def test_coco_npz_bad_files_are_named(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, split=np.zeros(2, np.int8), keypoints=np.zeros((2, 17, 3)))
    with pytest.raises(PoseCliError, match="missing image_id, image_wh") as err:
        read_coco([bad], PrepareOptions(split="train"))
    assert err.value.path == bad
    shapes = tmp_path / "shapes.npz"
    np.savez(shapes, split=np.zeros(2, np.int8), image_id=np.zeros(2), image_wh=np.zeros((2, 2)),
             keypoints=np.zeros((2, 16, 3)))
    with pytest.raises(PoseCliError, match="arrays disagree"):
        read_coco([shapes], PrepareOptions(split="train"))
    with pytest.raises(PoseCliError, match="split must be one of"):
        read_coco([_coco_npz(tmp_path / "c.npz")], PrepareOptions(split="dev"))


def test_coco_full_npz_counts():
    path = shared_file("coco/coco2017_full/coco2017_person_keypoints_px.npz")
    val = read_coco([path], PrepareOptions(split="val"))
    assert len(val.records) == 6352
