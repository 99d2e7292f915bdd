"""The shared output-path check: every command refuses a bad output before doing any work."""

from __future__ import annotations

import pytest

from posecli.cli import main
from posecli.errors import PoseCliError
from posecli.output_path import check_output_file, check_output_folder


def test_file_and_folder_checks(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    assert check_output_file(tmp_path / "new" / "deeper" / "x.h5") == tmp_path / "new" / "deeper" / "x.h5"
    assert check_output_folder(tmp_path / "adir") == tmp_path / "adir"
    with pytest.raises(PoseCliError, match="adir: output is a folder where a file belongs"):
        check_output_file(tmp_path / "adir")
    with pytest.raises(PoseCliError, match="afile: output is a file where a folder belongs"):
        check_output_folder(tmp_path / "afile")
    with pytest.raises(PoseCliError, match="afile' is a file where a folder belongs"):
        check_output_file(tmp_path / "afile" / "x.onnx")
    with pytest.raises(PoseCliError, match="afile' is a file where a folder belongs"):
        check_output_folder(tmp_path / "afile" / "sub" / "run")
    with pytest.raises(PoseCliError, match="output folder does not exist"):
        check_output_file(tmp_path / "missing" / "x.onnx", create_parents=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]      # no probe file left


def test_unwritable_place_is_refused():
    with pytest.raises(PoseCliError, match="not writable"):
        check_output_folder("/proc/posecli-run")


@pytest.mark.parametrize("argv", [
    ["eval", "--checkpoint", "missing.ckpt", "--data", "missing.h5", "--out", "{blocked}/report"],
    ["eval", "--predictions", "missing.npz", "--data", "missing.h5", "--out", "{file}"],
    ["infer", "missing.mp4", "--out", "{file}"],
    ["export", "onnx", "--checkpoint", "missing.ckpt", "--output", "{dir}"],
    ["export", "bundle", "--checkpoint", "missing.ckpt", "--output", "{file}"],
    ["finetune", "cmu", "--data", "missing.h5", "--run-dir", "{blocked}/run"],
    ["pretrain", "--data", "missing.h5", "--run-dir", "{file}"],
    ["info", "missing.h5", "--plot", "{dir}"],
])
def test_every_command_checks_its_output_before_any_work(argv, tmp_path, capsys):
    """The inputs do not exist either: the error is about the output, so it was checked first."""
    (tmp_path / "file").write_text("keep")
    (tmp_path / "dir").mkdir()
    paths = {"file": tmp_path / "file", "dir": tmp_path / "dir", "blocked": tmp_path / "file"}
    args = [a.format(**paths) for a in argv]
    with pytest.raises(SystemExit) as done:
        main(args)
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "missing" not in err, err
    assert "where a" in err or "not a" in err or "folder" in err
    assert (tmp_path / "file").read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]
