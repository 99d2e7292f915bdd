"""CLI conventions users of other pose tools expect: -h everywhere, shell completion, plain help
(square brackets kept, no value placeholder on flags), defaults shown, --json/--quiet, and training
progress as plain lines when stdout is a log file."""

from __future__ import annotations

import json
import re
import pytest
from engine_data import make_cache

from posecli.cli import main
from posecli.engine.runlog import PlainProgress, format_seconds
from posecli.engine.schedule import rescale_schedule, warmup_cosine

COMMANDS = [[], ["prepare"], ["info"], ["pretrain"], ["finetune"], ["eval"], ["infer"], ["export"],
            ["export", "onnx"], ["export", "bundle"]]


def _help(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*args, "-h"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "posecli")
def test_short_help_everywhere_and_no_bool_placeholder(args, capsys):
    text = _help(args, capsys)
    assert "Usage: posecli" in text and "-h, --help" in text
    assert "<bool>" not in text


def test_help_keeps_square_brackets_and_shows_defaults(capsys):
    assert "[batch, window, 17, 3]" in _help(["export", "onnx"], capsys)
    infer = " ".join(_help(["infer"], capsys).split())
    assert "[default: (runs/infer/<video stem>)]" in infer
    assert re.search(r"--render\s+Also write", infer)                   # a flag takes no value


def test_shell_completion_is_offered(capsys):
    root = _help([], capsys)
    assert "--install-completion" in root and "--show-completion" in root
    with pytest.raises(SystemExit) as done:
        main(["--show-completion", "bash"])
    script = capsys.readouterr().out
    assert done.value.code == 0 and "complete " in script and "_POSECLI_COMPLETE" in script


def test_error_messages_keep_square_brackets(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["prepare", "coco", str(tmp_path / "[x].json")])
    assert done.value.code == 2
    assert "[x].json" in capsys.readouterr().err


def test_rescaled_schedule_reaches_peak_and_decays():
    preset = {"steps": 3000, "warmup_steps": 200, "milestones": [2000, 2500]}
    short = rescale_schedule(preset, 100)
    assert short["steps"] == 100 and short["warmup_steps"] == 10 and short["milestones"] == [67, 83]
    rates = [warmup_cosine(s, short["steps"], short["warmup_steps"], 0.01) for s in range(100)]
    assert max(rates) == 1.0 and rates.index(1.0) == 9 and rates[-1] < 0.02
    assert rescale_schedule(preset, 6000)["warmup_steps"] == 200          # long runs keep the preset's
    assert rescale_schedule(preset, 100, keep={"warmup_steps"})["warmup_steps"] == 200


def test_plain_progress_lines_with_eta():
    from rich.console import Console

    console = Console(file=__import__("io").StringIO(), force_terminal=False, width=200)
    bar = PlainProgress(console)
    task = bar.add_task("train", total=100, completed=0, loss=0.0, lr=0.0, fps=0.0)
    bar.update(task, completed=5)                                         # not a logged step: silent
    bar.update(task, completed=50, loss=1.23456, lr=5e-4, fps=1234.0)
    out = console.file.getvalue()
    assert re.fullmatch(r"train step 50/100  loss 1\.2346  lr 5\.00e-04  1,234 frames/s  ETA 0:00:\d\d\n", out)
    assert format_seconds(3725.4) == "1:02:05"


def _pretrain(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["pretrain", *args])
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def test_pretrain_to_a_log_file_prints_plain_lines_and_json(tmp_path, capsys):
    """stdout is not a terminal (a log file, a batch job): one plain line per log interval; --json
    alone on stdout is one parseable object; -q prints nothing; --steps rescales the warm-up."""
    import yaml

    cache = make_cache(tmp_path / "train.h5", sequences=2, length=40)
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({
        "extends": "base", "model": {"window": 9}, "objective": {"mpjpe": 1.0},
        "data": {"sources": [{"path": str(cache)}], "val": None},
        "train": {"steps": 1000, "batch_size": 4, "warmup_steps": 500, "log_every": 2, "tensorboard": False}}))
    base = ["--preset", str(preset), "--steps", "4", "--device", "cpu"]
    code, out, err = _pretrain([*base, "--run-dir", str(tmp_path / "a")], capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("train step")]
    assert [line.split()[2] for line in lines] == ["2/4", "4/4"], out
    assert "training summary" in out
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["train"]["steps"] == 4 and saved["train"]["warmup_steps"] == 1
    code, out, err = _pretrain([*base, "--run-dir", str(tmp_path / "b"), "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["steps"] == 4 and summary["last_checkpoint"] == str(tmp_path / "b" / "last.ckpt")
    assert summary["final_loss"] > 0 and summary["frames_per_s"] > 0
    code, out, err = _pretrain([*base, "--run-dir", str(tmp_path / "c"), "-q"], capsys)
    assert code == 0 and out == "" and (tmp_path / "c" / "last.ckpt").is_file()
