"""The image family behind the five commands: cache schema v2, presets, step schedule, SN-MPJPE,
train -> eval on synthetic photos (no shared data), and the real fixtures through the CLI."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import shared_file

from posecli.cli import main
from posecli.config import load_config
from posecli.data.cache import SCHEMA_VERSION, open_cache, write_cache
from posecli.data.crops import read_image
from posecli.data.image_cache import crops_for_records
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.engine.schedule import warmup_step
from posecli.engine.trainer import train
from posecli.errors import PoseCliError
from posecli import metrics as M
from posecli.eval.protocols import evaluate_checkpoint
from posecli.engine.checkpoint import load_model
from posecli.families.image.predict import predict_crops, to_metres
from posecli.skeleton import NUM_JOINTS, JointStatus

cv2 = pytest.importorskip("cv2", reason='needs the image extra: pip install "posecli[image]"')

TINY = ["model.backbone=resnet18", "model.width=8", "model.deconv_channels=16", "model.input_size=64",
        "data.num_workers=0", "train.log_every=1", "train.val_every=2", "train.tensorboard=false",
        "train.batch_size=4", "train.milestones=[1]"]




def _photos(folder: Path, count: int, with3d: bool) -> ReaderResult:
    """`count` synthetic 160x120 photos of a stick figure, with their records."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    records = []
    for i in range(count):
        kp = (np.array([80.0, 60.0]) + rng.uniform(-30, 30, (NUM_JOINTS, 2))).astype(np.float32)
        image = np.full((120, 160, 3), 40, np.uint8)
        for x, y in kp.round().astype(int):
            cv2.circle(image, (int(x), int(y)), 3, (255, 200, 0), -1)
        cv2.imwrite(str(folder / f"p{i}.png"), image[..., ::-1])
        kp3 = (rng.normal(size=(1, NUM_JOINTS, 3)) * 0.3 + [0, 0, 4]).astype(np.float32) if with3d else None
        records.append(SequenceRecord(keypoints2d=kp[None], confidence=np.ones((1, NUM_JOINTS), np.float32),
                                      keypoints3d=kp3, subject=f"p{i}", frame_names=[f"p{i}.png"]))
    status = np.full(NUM_JOINTS, JointStatus.OBSERVED, np.uint8)
    return ReaderResult(records, "studio" if with3d else "photos", "h36m17", status, [])


def _cache(tmp_path: Path, name: str, with3d: bool, count: int = 6) -> Path:
    result = _photos(tmp_path / f"{name}-images", count, with3d)
    crops = crops_for_records(result.records, tmp_path / f"{name}-images", crop_size=64)
    return write_cache(tmp_path / f"{name}.h5", result, split="all", image_crops=crops)


def test_schema_v2_with_crops_and_v1_still_readable(tmp_path):
    path = _cache(tmp_path, "a", with3d=False, count=3)
    with open_cache(path) as cache:
        assert SCHEMA_VERSION == 2 and cache.attrs["schema_version"] == 2 and cache.has_images
    with h5py.File(path, "a") as f:
        assert f["image/crops"].shape == (3, 64, 64, 3) and f["image/affine"].shape == (3, 2, 3)
        del f["image"]
        f.attrs["schema_version"] = 1
    with open_cache(path) as cache:
        assert not cache.has_images and cache.num_frames == 3
    result = _photos(tmp_path / "b", 2, with3d=False)
    with pytest.raises(PoseCliError, match="1 image crops for 2 frames"):
        write_cache(tmp_path / "b.h5", result, split="all", image_crops=([np.zeros((64, 64, 3), np.uint8)],
                                                                          np.zeros((1, 2, 3))))
    assert not (tmp_path / "b.h5").exists()


def test_image_presets_use_the_image_schema():
    cfg = load_config("pretrain-image-2d")
    assert cfg["model"]["name"] == "image" and cfg["model"]["window"] == 1
    assert cfg["objective"] == {"heatmap": 1.0, "coord": 0.0, "depth": 0.0, "varloss": 0.0,
                                "decode": "argmax", "beta": 1.0}
    assert cfg["train"]["schedule"] == "step" and cfg["train"]["milestones"] == [63000, 84000]
    assert cfg["train"]["steps"] == 98000 and cfg["train"]["lr"] == 1e-3 and cfg["train"]["batch_size"] == 32
    stage3 = load_config("finetune-image-h36m-varloss")
    assert stage3["objective"]["varloss"] == 0.01 and stage3["objective"]["depth"] == 0.1
    assert stage3["train"]["lr"] == 1e-4 and stage3["train"]["steps"] == 7000
    assert load_config("scratch-image-h36m")["train"]["init_from"] is None
    with pytest.raises(PoseCliError, match="unknown key 'objective.masked'"):
        load_config("pretrain-image-2d", ["objective.masked=1"])
    with pytest.raises(PoseCliError, match="pretrain-2d.yaml: unknown key 'data.augment.noise'"):
        load_config("pretrain-2d", ["model.name=image"])          # lifter presets stay lifter-only
    assert load_config("pretrain-2d")["train"]["schedule"] == "cosine"     # lifter defaults unchanged


def test_step_schedule():
    assert [warmup_step(s, 0, [3, 5], 0.1) for s in (0, 2, 3, 4, 5, 9)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert warmup_step(0, 4, [3], 0.1) == 0.25


def test_scale_normalised_mpjpe_exact():
    gt = np.zeros((1, NUM_JOINTS, 3))
    gt[0, :, 0] = np.arange(NUM_JOINTS)             # H36M bone lengths sum to 32 on this line
    pred = gt.copy()
    pred[0, 16, 0] = 17.0                            # forearm 2 long: bone sum 33, scale 32/33
    assert M.sn_mpjpe(pred, gt).value == pytest.approx(8 / 33)
    assert M.sn_mpjpe(2.5 * gt + 7.0, gt).value == pytest.approx(0.0, abs=1e-12)
    assert M.mpjpe(2.5 * gt + 7.0, gt).value > 1.0
    assert M.bbox_size(gt).shape == (1,)


def test_metric_size_of_image_poses():
    pose = np.zeros((NUM_JOINTS, 3))
    pose[:, 1] = np.arange(NUM_JOINTS)
    from posecli.families.image.predict import REFERENCE_BONES_M, bone_length_sum
    assert bone_length_sum(to_metres(pose)) == pytest.approx(REFERENCE_BONES_M.sum())


def test_pretrain_finetune_eval_on_synthetic_photos(tmp_path):
    photos, studio = _cache(tmp_path, "photos", with3d=False), _cache(tmp_path, "studio", with3d=True)
    cfg = load_config("pretrain-image-2d", TINY + [f"data.sources=[{photos}]", f"data.val={photos}",
                                                   "train.steps=2"])
    pre = train(cfg, tmp_path / "pre", progress=False)
    assert pre.step == 2 and pre.val_metric == "val_pck02" and 0.0 <= pre.best_val <= 100.0
    history = [r for r in pre.history if "lr" in r]
    assert [r["lr"] for r in history] == pytest.approx([1e-3, 1e-4])          # milestone at step 1
    cfg = load_config("finetune-image-h36m-varloss", TINY + [f"data.sources=[{studio}, {photos}]",
                                                             f"data.val={studio}", "train.steps=2"])
    ft = train(cfg, tmp_path / "ft", init_from=pre.last_checkpoint, progress=False)
    report_init = ft.init_report
    assert len(report_init.loaded) > 100 and not report_init.new and not report_init.skipped
    assert ft.val_metric == "val_snmpjpe_mm"
    assert {"heatmap", "depth", "varloss"} <= set(ft.history[0])

    report = evaluate_checkpoint(ft.last_checkpoint, studio, subjects=None, flip=True, every=2).report
    assert report["protocols"] == ["snm", "p1", "p2", "n", "pck", "pck2d", "pckh"]
    assert report["data"]["frames"] == 6 and report["overall"]["snm"]["count"] == 6 * NUM_JOINTS
    assert report["data"]["every"] == 2 and np.isfinite(report["overall"]["snm"]["value"])
    report2d = evaluate_checkpoint(pre.last_checkpoint, photos).report
    assert report2d["protocols"] == ["pck2d", "pckh"] and report2d["overall"]["pck2d"]["count"] == 6 * NUM_JOINTS
    with pytest.raises(PoseCliError, match="no 3D ground truth"):
        evaluate_checkpoint(pre.last_checkpoint, photos, protocols=["p1"])


def test_prediction_maps_back_through_the_affine_and_flip_mirrors(tmp_path):
    from posecli.models import build_model

    torch.manual_seed(0)
    model = build_model({"name": "image", "backbone": "resnet18", "width": 8, "deconv_channels": 16,
                         "input_size": 64}).eval()
    crop = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    shift = np.array([[1.0, 0, 100.0], [0, 1.0, 50.0]])                    # crop -> image: +100, +50
    a = predict_crops(model, [crop], np.eye(2, 3)[None], flip=False)
    b = predict_crops(model, [crop], shift[None], flip=False)
    assert np.allclose(b["keypoints2d"] - a["keypoints2d"], [100.0, 50.0], atol=1e-4)
    mirrored = predict_crops(model, [crop[:, ::-1].copy()], np.eye(2, 3)[None], flip=True)
    direct = predict_crops(model, [crop], np.eye(2, 3)[None], flip=True)
    from posecli.skeleton import H36M_FLIP_PERM
    expect = direct["keypoints2d"][0][H36M_FLIP_PERM].copy()
    expect[:, 0] = 63 - expect[:, 0]
    assert np.allclose(mirrored["keypoints2d"][0], expect, atol=1e-3)


def test_fixtures_through_the_cli(tmp_path, monkeypatch):
    """Real photos: mmpose's MPII and Human3.6M fixtures -> prepare --images -> pretrain ->
    finetune --from -> eval --every --flip, all through `posecli`."""
    mpii = shared_file("mmpose_fixtures/mpii/test_mpii.json")
    h36m = shared_file("mmpose_fixtures/h36m/test_h36m_body3d.npz")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> None:
        try:
            main(list(args))
        except SystemExit as exc:
            assert exc.code in (0, None), args
    for args in (["mpii", str(mpii), "--images", str(mpii.parent), "-o", "mpii.h5", "--crop-size", "64",
                  "--crop-encoding", "jpeg"],
                 ["h36m", str(h36m), "--images", str(h36m.parent), "-o", "h36m.h5", "--crop-size", "64"]):
        run("prepare", *args)
    sets = [x for s in TINY for x in ("--set", s)]
    for args in (["pretrain", "--preset", "pretrain-image-2d", "--data", "mpii.h5", "--val", "mpii.h5",
                  "--steps", "2", "--run-dir", "pre"],
                 ["finetune", "h36m", "--preset", "finetune-image-h36m", "--from", "pre/last.ckpt",
                  "--data", "h36m.h5", "--data", "mpii.h5", "--val", "h36m.h5", "--steps", "2", "--run-dir", "ft"],
                 ["eval", "-c", "ft/last.ckpt", "-d", "h36m.h5", "--subjects", "S1,S5,S7,S8", "--flip",
                  "--every", "10", "-o", "report"]):
        run(*args, *(sets if args[0] != "eval" else []))
    model, meta = load_model("ft/last.ckpt", family="image")
    assert meta["family"] == "image" and model.input_size == 64
    import json
    report = json.loads(Path("report/report.json").read_text())
    assert report["data"]["frames"] == 4 and report["overall"]["snm"]["count"] == 4 * NUM_JOINTS
    assert read_image(mpii.parent / "004645041.jpg").ndim == 3
