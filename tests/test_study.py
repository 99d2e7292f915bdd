"""The evidence study: data.fraction take selection, eval input noise, and benchmarks/study.py --quick."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_data import make_cache, random_walk_sequence

from posecli.data.cache import open_cache, write_cache
from posecli.data.cameras import H36M_LIKE_INTRINSICS, project
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.data.windows import WindowDataset, select_takes, take_names
from posecli.errors import PoseCliError
from posecli.families.lifter.predict import noisy_input
from posecli.skeleton import NUM_JOINTS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))   # the study/ harness lives beside benchmarks/study.py


def takes_cache(path: Path, takes: int = 72, cameras: int = 4, length: int = 3) -> Path:
    """A mocap-like cache: `takes` takes, each seen by `cameras` virtual cameras (one sequence each)."""
    rng = np.random.default_rng(0)
    records = []
    for t in range(takes):
        pose = random_walk_sequence(rng, length)
        for c in range(cameras):
            records.append(SequenceRecord(
                keypoints2d=project(pose, H36M_LIKE_INTRINSICS).astype(np.float32),
                confidence=np.ones((length, NUM_JOINTS), np.float32), keypoints3d=pose,
                subject=f"take{t:02d}", action=f"act{t % 5}", camera=f"vcam{c}",
                intrinsics=H36M_LIKE_INTRINSICS.copy(), image_size=(1000.0, 1000.0), fps=50.0))
    result = ReaderResult(records=records, dataset="synthetic", source_layout="h36m17",
                          joint_status=np.zeros(NUM_JOINTS, np.uint8), sources=[])
    return write_cache(path, result, split="train")


def test_fraction_keeps_whole_takes_rounded_up(tmp_path):
    path = takes_cache(tmp_path / "m.h5")
    with open_cache(path) as cache:
        one, ten, all_ = (select_takes(cache, f, seed=0) for f in (0.01, 0.1, 1.0))
        # ceil(0.72) = 1 take, ceil(7.2) = 8 takes, all 72; every take keeps its 4 camera views
        assert len(take_names(cache, one)) == 1 and len(one) == 4
        assert len(take_names(cache, ten)) == 8 and len(ten) == 32
        assert len(all_) == 288 and all_.tolist() == list(range(288))
        # the first takes of default_rng(0).permutation(72): exact and deterministic
        assert take_names(cache, ten) == ["take05/act0", "take16/act1", "take20/act0", "take30/act0",
                                          "take35/act0", "take53/act3", "take57/act2", "take70/act0"]
        assert take_names(cache, one) == ["take35/act0"]
        assert one.tolist() == [140, 141, 142, 143]
        assert set(one) <= set(ten)                                   # nested for one seed
        assert np.array_equal(select_takes(cache, 0.1, seed=0), ten)
        assert take_names(cache, select_takes(cache, 0.1, seed=1)) != take_names(cache, ten)
        assert len(take_names(cache, select_takes(cache, 0.5, seed=3))) == 36
        with pytest.raises(PoseCliError, match="data.fraction"):
            select_takes(cache, 0.0, seed=0)
    ds = WindowDataset([{"path": str(path)}], 3, {}, split_seed=0, fraction=0.1, fraction_seed=0)
    assert len(ds) == 32 * 3 and ds.kept_takes == [take_names(open_cache(path), ten)]
    picked = {ds.locate(i)[1] for i in range(400)}
    assert picked == set(ten.tolist())                                # only the kept sequences, all of them
    assert WindowDataset([{"path": str(path)}], 3, {}, split_seed=0).locate(7)[:3] == \
        WindowDataset([{"path": str(path)}], 3, {}, split_seed=0, fraction=1.0, fraction_seed=5).locate(7)[:3]


def test_input_noise_is_detector_like_and_seeded(tmp_path):
    rng = np.random.default_rng(1)
    kp = project(random_walk_sequence(rng, 200), H36M_LIKE_INTRINSICS).astype(np.float32)
    conf = np.ones((200, NUM_JOINTS), np.float32)
    same = noisy_input(kp, conf, 0.0, np.random.default_rng(0))
    assert same[0] is kp and same[1] is conf
    a = noisy_input(kp, conf, 1.0, np.random.default_rng(0))
    b = noisy_input(kp, conf, 1.0, np.random.default_rng(0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    twice = noisy_input(kp, conf, 2.0, np.random.default_rng(0))
    kept = (a[1] > 0) & (twice[1] > 0)
    err1 = np.median(np.linalg.norm(a[0] - kp, axis=-1)[kept])
    err2 = np.median(np.linalg.norm(twice[0] - kp, axis=-1)[kept])
    size = np.median((kp.max(axis=1) - kp.min(axis=1)).max(axis=-1))
    assert 0.005 * size < err1 < 0.05 * size                           # ~1.5 % of person size
    assert 1.6 < err2 / err1 < 2.4                                     # level scales the jitter
    assert 0.02 < (a[1] == 0).mean() < 0.09                            # ~5 % dropped joints
    assert 0.06 < (twice[1] == 0).mean() < 0.15
    with pytest.raises(PoseCliError, match=">= 0"):
        noisy_input(kp, conf, -1.0, np.random.default_rng(0))


def test_eval_input_noise_changes_error_reproducibly(tmp_path):
    from posecli.config import load_config
    from posecli.engine.trainer import train
    from posecli.eval.protocols import evaluate_checkpoint

    cache = make_cache(tmp_path / "c.h5", sequences=2, length=30)
    cfg = load_config("base", [f"data.sources={cache}", "model.window=9", "model.dim=16", "model.depth=1",
                               "model.heads=2", "objective.mpjpe=1", "train.steps=2", "train.batch_size=4",
                               "train.tensorboard=false"])
    ckpt = train(cfg, tmp_path / "run", device="cpu", progress=False).last_checkpoint
    clean = evaluate_checkpoint(ckpt, cache, protocols=["p1"]).report
    noisy = evaluate_checkpoint(ckpt, cache, protocols=["p1"], input_noise=3.0).report
    again = evaluate_checkpoint(ckpt, cache, protocols=["p1"], input_noise=3.0).report
    assert noisy["overall"]["p1"]["value"] == again["overall"]["p1"]["value"]
    assert noisy["overall"]["p1"]["value"] != clean["overall"]["p1"]["value"]
    assert noisy["source"]["input_noise"] == 3.0 and clean["source"]["input_noise"] == 0.0
    assert noisy["overall"]["p1"]["count"] == clean["overall"]["p1"]["count"] == 60 * 17    # every frame and joint still scored

    from posecli.cli import main as cli_main

    with pytest.raises(SystemExit) as done:
        cli_main(["eval", "--checkpoint", str(ckpt), "--data", str(cache), "--protocols", "p1", "--input-noise", "3",
                  "--device", "cpu", "--out", str(tmp_path / "report")])
    assert done.value.code == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["overall"]["p1"]["value"] == pytest.approx(noisy["overall"]["p1"]["value"], abs=1e-9)
    np.savez(tmp_path / "pred.npz", keypoints3d=np.zeros((60, NUM_JOINTS, 3), np.float32))
    with pytest.raises(SystemExit) as exit_info:          # noise needs a model's 2D input
        cli_main(["eval", "--predictions", str(tmp_path / "pred.npz"), "--data", str(cache), "--input-noise", "1"])
    assert exit_info.value.code == 2


def _study_module():
    spec = importlib.util.spec_from_file_location("study_script", ROOT / "benchmarks" / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_quick_end_to_end_and_resumable(tmp_path, capsys):
    caches = tmp_path / "caches"
    caches.mkdir()
    make_cache(caches / "mocap-train.h5", sequences=20, length=20, seed=1)
    make_cache(caches / "mocap-test.h5", sequences=3, length=30, seed=2)
    make_cache(caches / "coco-train.h5", sequences=20, length=1, with3d=False, seed=3)
    make_cache(caches / "mpii-train.h5", sequences=20, length=1, with3d=False, seed=4)
    study = _study_module()
    args = ["--quick", "--caches", str(caches), "--out", str(tmp_path / "study"), "--docs", str(tmp_path / "docs")]
    assert study.main(args) == 0
    out = capsys.readouterr().out
    assert "20 runs planned (5 pretraining, 15 fine-tuning), 0 already finished" in out

    docs = tmp_path / "docs"
    text = (docs / "results.md").read_text()
    for png in ("results_budget.png", "results_compute.png"):
        assert (docs / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in text
    for heading in ("## Error at each 3D budget", "## Compute", "## Ablation: pretraining objectives",
                    "## 2D pretraining data", "## Architectures", "## Robustness", "## Where pretraining did not help",
                    "## CPU time", "## Commands"):
        assert heading in text
    assert "Not run yet" not in text
    run = tmp_path / "study" / "ft-stformer-main-1pct-s1"
    state = json.loads((run / "study.json").read_text())
    assert state["trained"] and state["step"] == 4 and state["takes_total"] == 20
    assert len(state["takes_kept"]) == 1                              # 1 % of 20 takes, rounded up
    assert "posecli finetune cmu --preset finetune-cmu" in state["command"]
    assert "--set data.fraction=0.01" in state["command"] and "--set data.fraction_seed=1" in state["command"]
    clean, noisy = (json.loads((run / f"eval-noise{n}.json").read_text()) for n in ("0", "1"))
    assert clean["frames"] == 90 and math.isfinite(clean["p1"]) and clean["p2"] <= clean["p1"]
    assert "--input-noise 1" in noisy["command"] and noisy["p1"] != clean["p1"]
    assert f"| 1 % | 1 of 20 | {_fmt_pm(tmp_path, 'main', '1pct')}" in text  # the table shows the measured values
    assert state["command"] in text and clean["command"] in text
    tcn = json.loads((tmp_path / "study" / "ft-tcn-main-10pct-s0" / "study.json").read_text())
    assert "--set train.batch_size=72" in tcn["command"]               # 8 windows x 9 frames: same 3D frames per step

    # rerun: everything is finished, nothing trains again, the report is rewritten from the files
    before = (run / "last.ckpt").stat().st_mtime_ns
    assert study.main(args) == 0
    assert "20 already finished" in capsys.readouterr().out
    assert (run / "last.ckpt").stat().st_mtime_ns == before
    assert study.main([*args, "--only", "nope"]) == 2                 # a user error: one red line, exit 2

    # an existing pretrained checkpoint for the main arm; only the budgets group; two worker processes
    ckpt = tmp_path / "study" / "pretrain-stformer-both" / "last.ckpt"
    other = ["--quick", "--caches", str(caches), "--out", str(tmp_path / "s2"), "--docs", str(tmp_path / "d2"),
             "--pretrained", str(ckpt), "--only", "budgets", "--seeds", "1", "--workers", "2"]
    capsys.readouterr()
    assert study.main(other) == 0
    out = capsys.readouterr().out
    assert "6 runs planned (0 pretraining, 6 fine-tuning)" in out and "[6/6] done" in out
    state = json.loads((tmp_path / "s2" / "ft-stformer-main-10pct-s0" / "study.json").read_text())
    assert f"--from {ckpt}" in state["command"]
    text = (tmp_path / "d2" / "results.md").read_text()
    assert "## Not run yet" in text and "`ft-stformer-masked-10pct-s0`" in text   # other groups listed
    assert not (tmp_path / "s2" / "pretrain-stformer-both").exists()


def _fmt_pm(tmp_path: Path, init: str, budget: str) -> str:
    """mean ± sd of P1 over the two quick seeds, formatted as the table does."""
    values = [json.loads((tmp_path / "study" / f"ft-stformer-{init}-{budget}-s{s}" / "eval-noise0.json")
                         .read_text())["p1"] for s in (0, 1)]
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def test_results_explain_noisy_input_scoring_better_than_clean():
    from study.grid import RunSpec, StudyOptions
    from study.results import RunResult, Study, _noise_note

    def run(name: str, clean: float, noisy: float) -> RunResult:
        spec = RunSpec(name, "finetune", "finetune-cmu", (), (), None, 1, evals=(0.0, 1.0))
        return RunResult(spec, {}, {0.0: {"p1": clean}, 1.0: {"p1": noisy}}, np.zeros((0, 3)))

    study = Study(StudyOptions(noise_level=1.0), {})
    study.runs = {"a": run("a", 80.0, 70.0), "b": run("b", 80.0, 90.0)}
    note = " ".join(_noise_note(study))
    assert "In 1 of 2 runs the noisy input gave a *lower* error" in note
    study.runs = {"b": run("b", 80.0, 90.0)}
    assert _noise_note(study) == []
