"""Protocols, reports and the `posecli eval` command on tiny caches written in tmp_path."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from posecli.cli.eval import register
from posecli.data.cache import open_cache, write_cache
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.engine.checkpoint import save_checkpoint
from posecli.errors import PoseCliError
from posecli.eval.protocols import evaluate_checkpoint, evaluate_predictions, h36m_action, select_sequences
from posecli.families.lifter.predict import predict_cache
from posecli.eval.report import load_report, write_report
from posecli.models import build_model

K = 16 / 17          # a shift of every joint but the root: the root's error is 0
# (subject, action, camera, frames, shift of the non-root joints in mm)
SEQS = [("S9", "Directions 1", "54138969", 10, 10.0), ("S9", "Directions", "55011271", 30, 20.0),
        ("S11", "Walking 1", "54138969", 20, 160.0), ("S1", "Walking", "54138969", 5, 1000.0)]


def _gt(t: int, rng: np.random.Generator) -> np.ndarray:
    pose = rng.normal(scale=0.25, size=(1, 17, 3)) + np.array([0.0, 0.0, 5.0])
    return (pose + rng.normal(scale=0.01, size=(t, 17, 3))).astype(np.float32)


def _cache(tmp_path, dataset: str = "h36m"):
    rng = np.random.default_rng(0)
    records, preds = [], []
    for subject, action, camera, t, shift in SEQS:
        kp3 = _gt(t, rng)
        kp2 = kp3[..., :2] / kp3[..., 2:] * 1000 + 500
        records.append(SequenceRecord(kp2.astype(np.float32), np.ones((t, 17), np.float32), kp3,
                                      subject=subject, action=action, camera=camera, fps=50.0))
        pred = kp3.copy()
        pred[:, 1:] += np.array([0.6, 0.0, 0.8], np.float32) * shift / 1000.0   # |v| = shift mm
        preds.append(pred - pred[:, :1])
    result = ReaderResult(records, dataset=dataset, source_layout="h36m17",
                          joint_status=np.zeros(17, np.uint8), sources=[])
    path = write_cache(tmp_path / f"{dataset}.h5", result, split="test")
    npz = tmp_path / "preds.npz"
    np.savez(npz, keypoints3d=np.concatenate(preds), skeleton=np.str_("h36m17"), fps=np.float32(50))
    return path, npz


def test_h36m_action_names():
    assert h36m_action("Directions 1") == "Directions"
    assert h36m_action("Directions_1") == "Directions"
    assert h36m_action("TakingPhoto 1") == "Photo"
    assert h36m_action("WalkTogether") == "WalkTogether"


def test_per_action_averaging_matches_hand_computation(tmp_path):
    cache, npz = _cache(tmp_path)
    rep = evaluate_predictions(npz, cache).report
    assert rep["data"]["subjects"] == ["S11", "S9"] and rep["data"]["frames"] == 60
    actions = {r["name"]: r for r in rep["tables"]["action"]}
    assert set(actions) == {"Directions", "Walking"}
    assert actions["Directions"]["p1"] == pytest.approx((10 * 10 + 30 * 20) / 40 * K, abs=1e-3)
    assert actions["Walking"]["p1"] == pytest.approx(160 * K, abs=1e-3)
    assert rep["action_average"]["p1"] == pytest.approx((17.5 + 160) / 2 * K, abs=1e-3)
    assert rep["overall"]["p1"]["value"] == pytest.approx((100 + 600 + 3200) / 60 * K, abs=1e-3)
    assert rep["overall"]["p1"]["count"] == 60 * 17
    assert rep["overall"]["vel"]["value"] == pytest.approx(0.0, abs=1e-3)
    assert rep["overall"]["vel"]["count"] == (9 + 29 + 19) * 17
    # PCK@150: every joint of Directions, only the root of Walking
    assert rep["overall"]["pck"]["value"] == pytest.approx(100 * (40 * 17 + 20) / (60 * 17))
    subjects = {r["name"]: r for r in rep["tables"]["subject"]}
    assert subjects["S9"]["p1"] == pytest.approx(17.5 * K, abs=1e-3)
    joints = {r["name"]: r for r in rep["tables"]["joint"]}
    assert joints["pelvis"]["p1"] == pytest.approx(0.0, abs=1e-6)
    assert joints["r_knee"]["p1"] == pytest.approx((100 + 600 + 3200) / 60, abs=1e-3)
    assert rep["worst_sequences"][0]["action"] == "Walking 1"


def test_explicit_subjects_and_non_h36m_cache(tmp_path):
    cache, npz = _cache(tmp_path, dataset="mocap")
    rep = evaluate_predictions(npz, cache, protocols=["p1"]).report
    assert rep["data"]["frames"] == 65 and rep["action_average"] is None
    assert {r["name"] for r in rep["tables"]["action"]} == {"Directions", "Directions 1", "Walking",
                                                           "Walking 1"}
    with open_cache(cache) as c:
        assert select_sequences(c, ["S1"]) == [3]
        with pytest.raises(PoseCliError, match="S7"):
            select_sequences(c, ["S7"])


def test_predictions_npz_layout_errors(tmp_path):
    cache, _ = _cache(tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, keypoints3d=np.zeros((64, 17, 3), np.float32))
    with pytest.raises(PoseCliError, match=r"bad\.npz.*\(64, 17, 3\).*\(65, 17, 3\)"):
        evaluate_predictions(bad, cache)
    np.savez(bad, poses=np.zeros((65, 17, 3), np.float32))
    with pytest.raises(PoseCliError, match="no 'keypoints3d'"):
        evaluate_predictions(bad, cache)
    np.savez(bad, keypoints3d=np.zeros((65, 17, 3), np.float32), skeleton=np.str_("coco17"))
    with pytest.raises(PoseCliError, match="coco17"):
        evaluate_predictions(bad, cache)
    # single-person infer output [N, 1, 17, 3] with NaN gaps: accepted, gaps counted as missing
    kp = np.zeros((65, 1, 17, 3), np.float32)
    kp[0] = np.nan                                                # a whole frame of S9
    kp[5, 0, 3] = np.nan                                          # one joint
    np.savez(bad, keypoints3d=kp)
    rep = evaluate_predictions(bad, cache, protocols=["p1"]).report
    assert rep["predictions_missing"] == 18
    assert rep["overall"]["p1"]["count"] == 60 * 17 - 18


def test_report_files_and_atomic_replace(tmp_path):
    cache, npz = _cache(tmp_path)
    result = evaluate_predictions(npz, cache, protocols=["p1", "p2", "pck"])
    out = write_report(result, tmp_path / "reports" / "run")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["per_action.csv", "per_action.png", "per_camera.csv", "per_joint.csv", "per_joint.png",
                     "per_subject.csv", "report.json", "report.md", "worst_sequences.png"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["overall"]["p1"]["value"] == pytest.approx(3900 / 60 * K, abs=1e-3)
    rows = list(csv.DictReader(open(out / "per_action.csv")))
    assert [r["name"] for r in rows] == ["Directions", "Walking"] and rows[1]["frames"] == "20"
    assert float(rows[0]["p1"]) == pytest.approx(17.5 * K, abs=1e-3)
    assert "| MPJPE (mm) |" in (out / "report.md").read_text()
    write_report(result, out)                                     # replacing a report is fine
    assert sorted(p.name for p in tmp_path.joinpath("reports").iterdir()) == ["run"]
    (tmp_path / "notareport").mkdir()
    with pytest.raises(PoseCliError, match="not a posecli report"):
        write_report(result, tmp_path / "notareport")


def test_checkpoint_eval_equals_its_predictions(tmp_path):
    cache, _ = _cache(tmp_path)
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2}}
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    ckpt = save_checkpoint(tmp_path / "m.pt", model, cfg)
    ticks = []
    rep = evaluate_checkpoint(ckpt, cache, flip=True, progress=lambda d, t: ticks.append((d, t))).report
    assert ticks[-1] == (60, 60) and rep["source"]["flip"] is True
    with open_cache(cache) as c:
        pred = predict_cache(model, c, [0, 1, 2], flip=True)
    assert np.isnan(pred[60:]).all()                              # S1 is not lifted
    npz = tmp_path / "model_preds.npz"
    np.savez(npz, keypoints3d=pred)
    ref = evaluate_predictions(npz, cache).report
    for key in ("p1", "p2", "n", "vel", "pck", "auc"):
        assert rep["overall"][key]["value"] == pytest.approx(ref["overall"][key]["value"], abs=1e-4)


def test_cli_predictions_and_compare(tmp_path):
    cache, npz = _cache(tmp_path)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)                             # keep "eval" a named subcommand
    runner = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    res = runner.invoke(app, ["eval", "--predictions", str(npz), "--data", str(cache), "--out", str(a),
                              "--protocols", "p1,pck"])
    assert res.exit_code == 0, res.output
    assert "MPJPE" in res.output and (a / "report.json").is_file()
    res = runner.invoke(app, ["eval", "--predictions", str(npz), "--data", str(cache), "--out", str(b),
                              "--subjects", "S9"])
    assert res.exit_code == 0, res.output
    assert load_report(b)["data"]["subjects"] == ["S9"]
    res = runner.invoke(app, ["eval", "--compare", str(a / "report.json"), str(b / "report.json")])
    assert res.exit_code == 0, res.output
    assert "Walking" in res.output and "B-A" in res.output


def test_cli_checkpoint_eval_scores_every_kth_frame(tmp_path):
    """--every reaches a checkpoint's evaluation, not only a predictions file's (it was dropped)."""
    cache, _ = _cache(tmp_path)
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2}}
    ckpt = save_checkpoint(tmp_path / "m.pt", build_model(cfg["model"]), cfg)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["eval", "--checkpoint", str(ckpt), "--data", str(cache), "--protocols", "p1",
                                   "--every", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    data = load_report(tmp_path / "r")["data"]
    assert data["every"] == 2 and data["frames"] == 5 + 15 + 10          # S9/S11 sequences of 10, 30, 20


def test_cli_user_error_is_one_red_line(tmp_path):
    cache, _ = _cache(tmp_path)
    bad = tmp_path / "short.npz"
    np.savez(bad, keypoints3d=np.zeros((3, 17, 3), np.float32))
    proc = subprocess.run([sys.executable, "-m", "posecli", "eval", "--predictions", str(bad), "--data",
                           str(cache), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "short.npz" in proc.stderr and "(3, 17, 3)" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_huge_predictions_score_their_exact_huge_error(tmp_path):
    """Predictions 1e30 m from the root on every other joint used to score 0 mm and 100 % PCK."""
    cache, _ = _cache(tmp_path)
    with open_cache(cache) as c:
        gt = np.asarray(c.keypoints3d, np.float64)
    pred = gt.copy()
    pred[:, 1:, 2] += 1e30
    npz = tmp_path / "huge.npz"
    np.savez(npz, keypoints3d=pred)
    rep = evaluate_predictions(npz, cache, protocols=["p1", "pck", "auc"]).report
    assert rep["overall"]["p1"]["value"] == pytest.approx(1e33 * 16 / 17, rel=1e-12)
    assert rep["overall"]["pck"]["value"] == pytest.approx(100 / 17)
    assert rep["overall"]["auc"]["value"] == pytest.approx(100 / 17)


def test_an_evaluation_that_scores_nothing_fails(tmp_path):
    cache, _ = _cache(tmp_path)
    npz = tmp_path / "nan.npz"
    np.savez(npz, keypoints3d=np.full((65, 17, 3), np.nan, np.float32))
    with pytest.raises(PoseCliError, match=r"nan\.npz: nothing was scored for MPJPE.*NaN"):
        evaluate_predictions(npz, cache, protocols=["p1"])
    # a checkpoint whose weights are NaN predicts NaN everywhere: exit 2, one line, no report
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2}}
    model = build_model(cfg["model"])
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    ckpt = save_checkpoint(tmp_path / "nan.pt", model, cfg)
    proc = subprocess.run([sys.executable, "-m", "posecli", "eval", "--checkpoint", str(ckpt), "--data",
                           str(cache), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "nan.pt" in proc.stderr and "nothing was scored" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "r").exists()


def test_streamed_scoring_equals_whole_array_metrics(tmp_path):
    """Scoring sequence by sequence gives the numbers the metric functions give on the whole
    selection at once (the pre-streaming computation), overall and per group."""
    from posecli import metrics as M

    cache, _ = _cache(tmp_path, dataset="mocap")
    rng = np.random.default_rng(7)
    with open_cache(cache) as c:
        gt = np.asarray(c.keypoints3d, np.float64)
        starts, lengths = c.seq_start.copy(), c.seq_length.copy()
        subjects = list(c.subject)
    pred = gt + rng.normal(scale=0.05, size=gt.shape)
    pred[3, 4] = np.nan                                               # one missing joint
    npz = tmp_path / "noisy.npz"
    np.savez(npz, keypoints3d=pred)
    rep = evaluate_predictions(npz, cache).report
    valid = np.isfinite(pred).all(axis=-1)
    p_mm, g_mm = np.nan_to_num(pred) * 1000.0, gt * 1000.0
    p1 = M.mpjpe_errors(p_mm, g_mm)
    seq_first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    reference = {"p1": M.masked_mean(p1, valid), "p2": M.p_mpjpe(p_mm, g_mm, valid),
                 "n": M.n_mpjpe(p_mm, g_mm, valid), "vel": M.mpjve(p_mm, g_mm, valid, seq_first),
                 "pck": M.pck(p1, valid), "auc": M.auc(p1, valid)}
    for key, ref in reference.items():
        assert rep["overall"][key]["count"] == ref.count
        assert rep["overall"][key]["value"] == pytest.approx(ref.value, rel=1e-12)
    for row in rep["tables"]["subject"]:
        rows = np.concatenate([np.arange(starts[s], starts[s] + lengths[s])
                               for s in range(len(subjects)) if subjects[s] == row["name"]])
        assert row["p1"] == pytest.approx(M.masked_mean(p1[rows], valid[rows]).value, rel=1e-12)
    joints = {r["name"]: r for r in rep["tables"]["joint"]}
    assert joints["r_knee"]["p2"] == pytest.approx(
        M.masked_mean(M.p_mpjpe_errors(p_mm, g_mm, valid)[:, 2], valid[:, 2]).value, rel=1e-12)
    assert rep["joints_missing"] == rep["predictions_missing"] == 1


def test_checkpoint_eval_records_the_upright_setting(tmp_path):
    """Upright windows are on by default and the report says when they were not; off, eval equals
    predict_cache with them off."""
    from posecli.eval.report import markdown

    cache, _ = _cache(tmp_path)
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2}}
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    ckpt = save_checkpoint(tmp_path / "m.pt", model, cfg)
    on, off = evaluate_checkpoint(ckpt, cache).report, evaluate_checkpoint(ckpt, cache, upright=False).report
    assert on["source"]["upright"] is True and off["source"]["upright"] is False
    assert "(upright windows off)" in markdown(off) and "upright windows off" not in markdown(on)
    with open_cache(cache) as c:
        pred = predict_cache(model, c, [0, 1, 2], upright=False)
    npz = tmp_path / "off_preds.npz"
    np.savez(npz, keypoints3d=pred)
    assert off["overall"]["p1"]["value"] == pytest.approx(evaluate_predictions(npz, cache).report["overall"]["p1"]["value"], abs=1e-4)
