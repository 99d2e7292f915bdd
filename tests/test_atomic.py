"""atomic_output / atomic_folder: a failed write leaves the old output (or nothing), never a mix."""

import pytest

from posecli.atomic import atomic_folder, atomic_output
from posecli.errors import PoseCliError


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_folder_replaces_whole_folder(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.csv").write_text("old")
    with atomic_folder(out) as tmp:
        (tmp / "new.csv").write_text("new")
        assert _names(out) == ["old.csv"]                  # untouched until the block succeeds
    assert _names(out) == ["new.csv"]
    assert _names(tmp_path) == ["report"]                  # no temp or moved-aside folder left


def test_atomic_folder_merge_keeps_other_files(tmp_path):
    out = tmp_path / "infer"
    out.mkdir()
    (out / "a.npz").write_text("a")
    (out / "b.npz").write_text("old b")
    with atomic_folder(out, merge=True) as tmp:
        (tmp / "b.npz").write_text("new b")
    assert _names(out) == ["a.npz", "b.npz"] and (out / "b.npz").read_text() == "new b"


def test_atomic_folder_error_leaves_old_output(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.csv").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "half.csv").write_text("half")
        raise RuntimeError("killed")
    assert _names(out) == ["old.csv"] and _names(tmp_path) == ["report"]


def test_atomic_folder_refuses_a_file(tmp_path):
    out = tmp_path / "report"
    out.write_text("not a folder")
    with pytest.raises(PoseCliError, match="not a folder"), atomic_folder(out):
        pass
    assert out.read_text() == "not a folder"


def test_atomic_output_error_leaves_old_file(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "old" and _names(tmp_path) == ["x.json"]
