"""README walkthrough: every `posecli` command in README.md's ```bash blocks runs, as written, in a
fresh folder on the shared data, so the README cannot drift from the CLI.

Only the dataset file names are mapped (to the shared data, the CMU file to a small excerpt of it,
`my_video.mp4` to a cut of the example clip), and training gets the README's quick-try overrides
(`--steps 2`, a small batch); everything else is the README's text. Skips cleanly without the
shared data."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from posecli.cli import main
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED_NAMES = {   # file name in the README -> file in the shared data
    "person_keypoints_val2017.json": "coco/person_keypoints_val2017_subset538img.json",
    "mpii_poses_h36m17order.npy": "mpii/mpii_poses_h36m17order.npy",
    "valid.h5": "mpii/valid.h5",
}
CMU = "cmu_li2018_positions38_120fps.npz"
QUICK_TRAINING = ["--steps", "2", "--set", "train.batch_size=8", "--set", "data.val_sequences=1"]


def readme_commands(text: str) -> list[list[str]]:
    """The posecli commands of the ```bash blocks, comments stripped, in order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "posecli":
                commands.append(words[1:])
    return commands


def test_readme_commands_are_found():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    names = [c[0] for c in commands]
    assert names.count("prepare") == 5 and {"pretrain", "finetune", "eval", "infer", "export"} <= set(names)


def _small_cmu(source: Path, out: Path) -> Path:
    """Two train, one validation and two test takes of the CMU file, 240 frames (2 s) each: same
    layout, same name."""
    from posecli.data.splits import CMU_LI2018_VAL_TAKES

    with np.load(source, allow_pickle=False) as z:
        train = [k for k in z.files if k.startswith("train__")]
        keys = ([k for k in train if k.split("__")[2] not in CMU_LI2018_VAL_TAKES][:2]
                + [k for k in train if k.split("__")[2] in CMU_LI2018_VAL_TAKES][:1]
                + [k for k in z.files if k.startswith("test__")][:2])
        np.savez(out, **{k: z[k][:240] for k in keys})
    return out


def _short_clip(out: Path, frames: int = 12) -> Path:
    from posecli.infer.video import H264Writer, iter_frames

    with H264Writer(out, 25.0) as writer:
        for frame in iter_frames(ROOT / "examples" / "sports2d_demo_4s.mp4", max_frames=frames):
            writer.write(frame)
    return out


def _runnable(words: list[str]) -> str | None:
    """Why a command cannot run here (an optional extra is missing), or None."""
    import importlib.util

    if words[0] == "infer" and importlib.util.find_spec("ai_edge_litert") is None:
        return "ai-edge-litert (video extra)"
    if words[:2] == ["export", "onnx"] and (importlib.util.find_spec("onnx") is None
                                            or importlib.util.find_spec("onnxscript") is None):
        return "onnx (onnx extra)"
    return None


def test_readme_walkthrough(tmp_path, monkeypatch, capsys):
    pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
    mapping = {name: str(shared_file(rel)) for name, rel in SHARED_NAMES.items()}
    mapping[CMU] = str(_small_cmu(shared_file(f"mocap/cmu_expmap_li2018/{CMU}"), tmp_path / CMU))
    mapping["my_video.mp4"] = str(_short_clip(tmp_path / "my_video.mp4"))
    work = tmp_path / "walkthrough"
    work.mkdir()
    monkeypatch.chdir(work)
    skipped = []
    for words in readme_commands(README.read_text(encoding="utf-8")):
        args = [mapping.get(w, w) for w in words]
        if args[0] in ("pretrain", "finetune"):
            args += QUICK_TRAINING
        why = _runnable(args)
        if why:
            skipped.append(f"{' '.join(words)}: needs {why}")
            continue
        with pytest.raises(SystemExit) as done:
            main(args)
        out = capsys.readouterr()
        assert done.value.code == 0, f"README command failed: posecli {' '.join(words)}\n{out.err[-3000:]}"
    # what the README says each step writes
    for path in ("caches/coco-train.h5", "caches/mpii-train.h5", "caches/mocap-train.h5", "caches/mocap-val.h5",
                 "caches/mocap-test.h5",
                 "caches/mocap-train-poses.png", "runs/pretrain-2d/last.ckpt", "runs/finetune-cmu/last.ckpt",
                 "runs/scratch-cmu/last.ckpt", "reports/ft/report.json", "reports/scratch/report.json"):
        assert (work / path).is_file(), path
    if not skipped:
        assert (work / "runs/infer/my_video/poses.npz").is_file() and (work / "lifter.onnx").is_file()


def table_cells(row: str) -> list[str]:
    """The cells of one markdown table row; a `|` inside backticks or escaped as \\| stays in its cell."""
    row = row.strip().removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells, cell, in_code, previous = [], "", False, ""
    for char in row:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code and previous != "\\":
            cells.append(cell)
            cell = ""
        else:
            cell += char
        previous = char
    return cells + [cell]


def test_markdown_tables_have_a_cell_per_header_column():
    """A separator row shorter or longer than its header breaks the table in every renderer."""
    assert len(table_cells("| a | `x | y` | b \\| c |")) == 3
    bad = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        for number, (header, separator) in enumerate(zip(lines, lines[1:]), start=2):
            if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", separator.strip()):
                if len(table_cells(header)) != len(table_cells(separator)):
                    bad.append(f"{path.name}:{number}")
    assert not bad, f"table separator and header disagree in column count: {', '.join(bad)}"
