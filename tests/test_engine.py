"""The training loop: overfitting, exact kill/resume, DDP equivalence, fine-tuning init, CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from engine_data import make_cache

from posecli.models import build_model
from posecli.cli import main as cli_main
from posecli.config import load_config
from posecli.engine.checkpoint import load_checkpoint, load_model
from posecli.engine.trainer import train
from posecli.errors import PoseCliError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")



def tiny(cache: Path, *sets: str) -> dict:
    """An xs stformer on a synthetic cache, logging every step, no checkpoints in between."""
    return load_config("base", [f"data.sources={cache}", "model.size=xs", "model.window=9", "model.dropout=0",
                                "objective.mpjpe=1", "train.batch_size=8", "train.warmup_steps=2",
                                "train.lr=2e-3", "train.log_every=1", "train.ckpt_every=1000",
                                "train.tensorboard=false", *sets])


def read_log(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_overfits_a_batch_below_one_millimetre(tmp_path):
    cache = make_cache(tmp_path / "c.h5", sequences=2, length=1, seed=3)   # one batch: 2 fixed poses
    cfg = tiny(cache, f"data.val={cache}", "model.window=1", "model.dim=32", "model.depth=2", "model.heads=2",
               "data.augment.flip=0", "train.steps=600", "train.warmup_steps=20", "train.log_every=50",
               "train.val_every=600", "train.lr=3e-3", "train.grad_clip=0", "train.weight_decay=0")
    result = train(cfg, tmp_path / "run", device="cpu", progress=False)
    assert result.step == 600 and result.val_metric == "val_mpjpe_mm"
    assert result.best_val < 1.0                                # millimetres, whole sequences
    assert float(read_log(tmp_path / "run")[-1]["mpjpe_mm"]) < 1.0
    assert result.best_checkpoint == tmp_path / "run" / "best.ckpt"
    assert load_config(tmp_path / "run" / "config.yaml") == cfg


def test_resume_after_kill_gives_identical_weights(tmp_path):
    cache = make_cache(tmp_path / "c.h5", sequences=3, length=30)
    cfg = tiny(cache, "model.dropout=0.2", "objective.masked=0.5", "data.epoch_length=32",
               "data.augment.noise=1", "data.augment.flip=0.5", "train.accumulate=2", "train.steps=7")
    full = train(cfg, tmp_path / "full", device="cpu", progress=False)
    train(cfg, tmp_path / "split", device="cpu", progress=False, stop_after=3)   # "killed" at step 3
    resumed = train(cfg, tmp_path / "split", resume=True, device="cpu", progress=False)
    assert full.step == resumed.step == 7
    a, b = load_checkpoint(full.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for sa, sb in zip(a["state"]["optimizer"]["state"].values(), b["state"]["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    assert a["state"]["consumed"] == b["state"]["consumed"] == 14           # 7 steps x 2 micro-batches
    assert [r["loss"] for r in read_log(tmp_path / "full")] == [r["loss"] for r in read_log(tmp_path / "split")]
    with pytest.raises(Exception, match="already has last.ckpt"):
        train(cfg, tmp_path / "full", device="cpu", progress=False)


def test_resume_fills_model_keys_added_since_the_run_started(tmp_path):
    """A run started before a model option existed resumes: the option's default is what it was
    built with. A real change of that option still refuses."""
    cache = make_cache(tmp_path / "c.h5", sequences=2, length=20)
    cfg = tiny(cache, "train.steps=4")
    train(cfg, tmp_path / "run", device="cpu", progress=False, stop_after=2)
    last = tmp_path / "run" / "last.ckpt"
    ckpt = load_checkpoint(last)
    del ckpt["config"]["model"]["upright_deg"]                  # as written before the option existed
    torch.save(ckpt, last)
    assert train(cfg, tmp_path / "run", resume=True, device="cpu", progress=False).step == 4
    with pytest.raises(PoseCliError, match="different model: section"):
        train(tiny(cache, "train.steps=4", "model.upright_deg=0"), tmp_path / "run", resume=True, device="cpu",
              progress=False)


def test_ddp_two_processes_match_one_process(tmp_path):
    cache = make_cache(tmp_path / "c.h5", sequences=3, length=30)
    sets = ["data.epoch_length=64", "train.steps=4", "data.augment.flip=0.5"]
    single = train(tiny(cache, *sets), tmp_path / "one", device="cpu", progress=False)
    preset = tmp_path / "ddp.yaml"
    preset.write_text(yaml.safe_dump({k: v for k, v in tiny(cache, *sets, "train.batch_size=4").items()}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "posecli", "pretrain", "--preset", str(preset), "--run-dir", str(tmp_path / "two"),
           "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert [r["step"] for r in two] == ["1", "2", "3", "4"]
    for r1, r2 in zip(one, two):
        assert float(r1["loss"]) == pytest.approx(float(r2["loss"]), abs=1e-5)
    assert load_checkpoint(tmp_path / "two" / "last.ckpt")["state"]["world_size"] == 2
    # Compare what the models compute, not raw weights: parameters whose true gradient is exactly 0
    # (the pose3d bias cancels in root-relative output) get Adam steps from float rounding noise.
    (m1, _), (m2, _) = load_model(single.last_checkpoint), load_model(tmp_path / "two" / "last.ckpt")
    x = torch.randn(4, 9, 17, 3, generator=torch.Generator().manual_seed(0))
    x[..., 2] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(m1(x)["pose3d"], m2(x)["pose3d"], atol=1e-5, rtol=0)


def test_finetune_cli_reports_init(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = make_cache(tmp_path / "c.h5", sequences=2, length=20)
    pre = train(tiny(cache, "model.window=1", "train.steps=2"), tmp_path / "pre", device="cpu", progress=False)
    preset = tmp_path / "ft.yaml"
    preset.write_text(yaml.safe_dump({"extends": "finetune-cmu", "model": {"size": "xs", "window": 9},
                                      "train": {"batch_size": 4, "log_every": 1, "tensorboard": False}}))
    argv = ["finetune", "cmu", "--preset", str(preset), "--from", str(pre.last_checkpoint), "--data", str(cache),
            "--val", str(cache), "--steps", "2", "--device", "cpu", "--run-dir", str(tmp_path / "ft")]
    with pytest.raises(SystemExit) as done:
        cli_main(argv)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "tensors loaded" in out and "frame_pos" in out
    ckpt = load_checkpoint(tmp_path / "ft" / "last.ckpt")
    assert ckpt["config"]["train"]["init_from"] == str(pre.last_checkpoint)
    assert ckpt["state"]["step"] == 2
    result = train(load_config(preset, [f"data.sources={cache}", "data.val=null", "train.steps=1"]), tmp_path / "ft2",
                   init_from=pre.last_checkpoint, device="cpu", progress=False)
    assert result.init_report.skipped == ["frame_pos"] and len(result.init_report.loaded) > 20
    with pytest.raises(SystemExit) as failed:                   # user error: one red line, exit 2
        cli_main(["pretrain", "--preset", str(preset), "--run-dir", str(tmp_path / "none"), "--resume"])
    assert failed.value.code == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["stformer", "tcn"])
def test_2d_validation_error_is_in_pixels(tmp_path, name):
    """The 2D-only validation figure scales exactly with the image: zooming the photos 2x doubles
    the pixel error, shifting them changes nothing (the model sees identical normalised input)."""
    from posecli.data.cache import open_cache, write_cache
    from posecli.data.records import ReaderResult, SequenceRecord
    from posecli.families.lifter.validate import reconstruction_px
    from posecli.skeleton import COCO17

    rng = np.random.default_rng(3)
    base = rng.uniform(100, 300, (40, 17, 2)).astype(np.float32)
    conf = np.ones((40, 17), np.float32)
    conf[5, 3] = 0.0
    torch.manual_seed(0)
    model = build_model({"name": name, "size": "xs", "window": 27, "channels": 16} if name == "tcn"
                        else {"name": name, "size": "xs", "window": 9}).eval()
    errors = []
    for i, (zoom, shift) in enumerate(((1.0, 0.0), (2.0, 0.0), (1.0, 500.0))):
        rec = SequenceRecord(keypoints2d=base * zoom + shift, confidence=conf)
        path = write_cache(tmp_path / f"c{i}.h5", ReaderResult([rec], "photos", "coco17", COCO17.status, []),
                           split="val")
        errors.append(reconstruction_px(model, open_cache(path), [0], torch.device("cpu")))
    assert errors[0] > 0
    assert errors[1] == pytest.approx(2 * errors[0], rel=1e-5)
    assert errors[2] == pytest.approx(errors[0], rel=1e-5)


def test_runs_that_would_learn_nothing_are_refused_and_leave_no_folder(tmp_path):
    flat = make_cache(tmp_path / "flat.h5", sequences=2, length=20, with3d=False)
    with pytest.raises(PoseCliError, match=r"objective terms .*mpjpe.* need 3D ground truth.*2D-only"):
        train(tiny(flat, "train.steps=2"), tmp_path / "run", device="cpu", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(PoseCliError, match=r"--set: key 'train.steps' must be an integer >= 1"):
        tiny(flat, "train.steps=0")
    for key, value in (("log_every", "0"), ("ckpt_every", "-5"), ("val_every", ".nan"), ("batch_size", "0"),
                       ("lr", "0"), ("lr", ".nan"), ("accumulate", "0")):
        with pytest.raises(PoseCliError, match=rf"key 'train.{key}' must be"):
            tiny(flat, f"train.{key}={value}")
