"""`posecli prepare` / `posecli info` through the real CLI: happy paths, then bad input.

Every bad input must exit with code 2, print one line naming the offending file, and leave no
output (nor temp file) behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from posecli.cli import main
from posecli.data.info import cache_info


def _kps(points: dict[int, tuple[float, float, float]], k: int = 17) -> list:
    out = [0] * (3 * k)
    for i, (x, y, v) in points.items():
        out[3 * i:3 * i + 3] = [x, y, v]
    return out


GOOD_KPS = _kps({5: (40, 30, 2), 6: (60, 30, 2), 11: (42, 70, 2), 12: (58, 70, 2), 0: (50, 10, 2)})


def _coco(path: Path, annotations: list[dict] | None = None) -> Path:
    anns = annotations if annotations is not None else [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": GOOD_KPS},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "keypoints": _kps({})},
    ]
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 90}],
                                "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return path


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# ---------------------------------------------------------------- happy paths

def test_prepare_info_and_plot(tmp_path, capsys):
    src = _coco(tmp_path / "ann.json")
    out = tmp_path / "c.h5"
    assert run(["prepare", "coco", str(src), "-o", str(out), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "crowd region" in text and "sequences" in text
    info = cache_info(out)
    assert info["counts"] == {"sequences": 1, "frames": 1, "subjects": 1, "has3d": False}
    assert info["split"] == "val" and info["dropped"] == {"crowd region": 1}
    assert info["provenance"]["command"] == f"posecli prepare coco {src} -o {out} --split val"
    assert info["ranges"]["keypoints2d"] == {"x": [40.0, 60.0], "y": [10.0, 70.0]}
    assert info["missing_rate"]["pelvis"] == 0.0 and info["missing_rate"]["r_knee"] == 1.0
    assert info["sequence_length"] == {"min": 1, "max": 1, "mean": 1.0, "median": 1.0}
    png = tmp_path / "poses.png"
    assert run(["info", str(out), "--plot", str(png)]) == 0
    assert "keypoints2d" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == png.stat().st_mode & 0o777 == 0o666 & ~umask   # not mkstemp's 0600
    assert run(["prepare", "coco", str(src), "-o", str(out), "--force"]) == 0
    assert cache_info(out)["split"] == "all"


def test_default_output_goes_to_caches(tmp_path, monkeypatch):
    src = _coco(tmp_path / "ann.json")
    monkeypatch.chdir(tmp_path)
    assert run(["prepare", "coco", str(src), "--split", "train"]) == 0
    assert cache_info(tmp_path / "caches" / "coco-train.h5")["counts"]["frames"] == 1


def test_named_output_creates_its_folder(tmp_path, monkeypatch):
    """`-o caches/x.h5` in a fresh folder works as the default output does (the README's first command)."""
    src = _coco(tmp_path / "ann.json")
    monkeypatch.chdir(tmp_path)
    assert run(["prepare", "coco", str(src), "-o", "caches/deep/coco-train.h5", "--split", "train"]) == 0
    assert cache_info(tmp_path / "caches" / "deep" / "coco-train.h5")["counts"]["frames"] == 1


# ---------------------------------------------------------------- bad input

def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _truncated_h5(d: Path) -> Path:
    good = d / "full.h5"
    with h5py.File(good, "w") as f:
        f["part"] = np.ones((500, 16, 2))
        f["imgname"] = np.array([b"a.jpg"] * 500)
    data = good.read_bytes()
    good.unlink()
    return _write(d / "valid.h5", data[: len(data) // 2])


def _npy(d: Path, array: np.ndarray, names: int | None = None, allow_pickle: bool = False) -> Path:
    path = d / "p.npy"
    np.save(path, array, allow_pickle=allow_pickle)
    if names is not None:
        (d / "p_image_names.txt").write_text("".join(f"{i}.jpg\n" for i in range(names)))
    return path


def _csv(d: Path, body: str, header: str | None = None) -> Path:
    from posecli.data.readers.mpii import CSV_JOINTS

    header = header or ",".join(["ID", "NAME"] + [f"{j}_{a}" for j in CSV_JOINTS for a in "XY"] + ["Scale"])
    return _write(d / "m.csv", header + "\n" + body)


ROW = "1,a.jpg," + ",".join(["5"] * 32) + ",1.0\n"

# (case id, format, builder(tmp dir) -> input path, expected message fragment)
BAD_INPUTS = [
    ("missing-input", "coco", lambda d: d / "nope.json", "input not found"),
    ("truncated-json", "coco", lambda d: _write(d / "t.json", _coco(d / "x.json").read_text()[:-40]),
     "truncated JSON"),
    ("invalid-json", "coco", lambda d: _write(d / "bad.json", "{'images': oops}"), "invalid JSON"),
    ("empty-file", "coco", lambda d: _write(d / "empty.json", ""), "file is empty"),
    ("json-scalar", "coco", lambda d: _write(d / "n.json", "42"), "expected a COCO annotation"),
    ("no-annotations", "coco", lambda d: _write(d / "na.json", '{"images": []}'), "no 'annotations' list"),
    ("wrong-keypoint-count", "coco", lambda d: _coco(d / "k.json", [
        {"id": 9, "image_id": 1, "category_id": 1, "keypoints": _kps({0: (1, 1, 2)}, 14)}]), "14 keypoints"),
    ("nan-keypoint", "coco", lambda d: _write(d / "nan.json", _coco(d / "x.json").read_text().replace(
        "[50, 10, 2", "[NaN, 10, 2")), "NaN or inf"),
    ("non-numeric", "coco", lambda d: _write(d / "s.json", _coco(d / "x.json").read_text().replace(
        "[50, 10, 2", '["a", 10, 2')), "non-numeric"),
    ("all-filtered", "coco", lambda d: _coco(d / "crowd.json", [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "keypoints": GOOD_KPS}]),
     "no persons left after filtering (1 crowd region)"),
    ("box-results", "coco", lambda d: _write(d / "det.json", '[{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 1}]'),
     "no 'keypoints'"),
    ("truncated-h5", "mpii", _truncated_h5, "not a readable HDF5 file"),
    ("h5-without-part", "mpii", lambda d: _h5_without_part(d), "no 'part' dataset"),
    ("truncated-npy", "mpii", lambda d: _write(d / "t.npy", _npy(d, np.ones((50, 34))).read_bytes()[:200]),
     "not a readable .npy file"),
    ("npy-without-names", "mpii", lambda d: _npy(d, np.ones((3, 34), np.float32)), "no image names file"),
    ("npy-wrong-shape", "mpii", lambda d: _npy(d, np.ones((3, 16, 2), np.float32), names=3), "expected (N, 34)"),
    ("npy-pickled", "mpii", lambda d: _npy(d, np.array([{"a": 1}], dtype=object), names=1, allow_pickle=True),
     "--allow-pickle"),
    ("csv-truncated-row", "mpii", lambda d: _csv(d, ROW + ROW[:30]), "line 3 has"),
    ("csv-missing-column", "mpii", lambda d: _csv(d, ROW, header="ID,NAME,foo"), "missing column"),
    ("mpii-unknown-suffix", "mpii", lambda d: _write(d / "m.mat", b"\x00"), "unknown MPII file type"),
]


def _h5_without_part(d: Path) -> Path:
    with h5py.File(d / "np.h5", "w") as f:
        f["imgname"] = np.array([b"a.jpg"])
    return d / "np.h5"


def _assert_user_error(code: int, capsys, fragment: str, named: str, out_dir: Path, before: set[str]) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err, err
    assert fragment in err, err
    assert named in err, err
    assert set(os.listdir(out_dir)) == before, "output or temp file left behind"


@pytest.mark.parametrize("case, fmt, build, fragment", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(case, fmt, build, fragment, tmp_path, capsys):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    path = build(src_dir)
    code = run(["prepare", fmt, str(path), "-o", str(out_dir / "x.h5")])
    _assert_user_error(code, capsys, fragment, path.name, out_dir, set())


def test_unknown_format(tmp_path, capsys):
    src = _coco(tmp_path / "ann.json")
    code = run(["prepare", "cocoa", str(src), "-o", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown format 'cocoa'" in err and "mpii" in err
    assert not (tmp_path / "x.h5").exists()


def test_output_exists_without_force(tmp_path, capsys):
    src = _coco(tmp_path / "ann.json")
    out = _write(tmp_path / "old.h5", b"keep me")
    code = run(["prepare", "coco", str(src), "-o", str(out)])
    _assert_user_error(code, capsys, "--force", "old.h5", tmp_path, {"ann.json", "old.h5"})
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("target, fragment", [
    ("ann.json/x.h5", "is a file where a folder belongs"),
    ("ann.json", "output must be an .h5 file"),
    ("ann.h5", "output would overwrite an input"),
    (".", "output is a folder"),
])
def test_bad_output_path(target, fragment, tmp_path, capsys):
    src = _coco(tmp_path / "ann.json")
    h5_input = _write(tmp_path / "ann.h5", b"")   # an input that has an .h5 name
    inputs = [str(h5_input)] if target == "ann.h5" else [str(src)]
    before = set(os.listdir(tmp_path))
    code = run(["prepare", "mpii" if target == "ann.h5" else "coco", *inputs, "-o", str(tmp_path / target)])
    named = {"ann.json/x.h5": "ann.json", ".": tmp_path.name}.get(target, target)
    _assert_user_error(code, capsys, fragment, named, tmp_path, before)


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    src = _coco(tmp_path / "ann.json")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:                         # root ignores permissions: simulate the check
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    try:
        code = run(["prepare", "coco", str(src), "-o", str(locked / "x.h5")])
        _assert_user_error(code, capsys, "not writable", "locked", locked, set())
    finally:
        locked.chmod(0o700)


def test_missing_exclude_list(tmp_path, capsys):
    src = _coco(tmp_path / "ann.json")
    code = run(["prepare", "coco", str(src), "-o", str(tmp_path / "x.h5"), "--exclude", str(tmp_path / "val.txt")])
    _assert_user_error(code, capsys, "exclude list not found", "val.txt", tmp_path, {"ann.json"})


def test_info_bad_inputs(tmp_path, capsys):
    not_h5 = _write(tmp_path / "c.h5", b"not hdf5 at all")
    assert run(["info", str(not_h5)]) == 2
    assert "c.h5" in capsys.readouterr().err
    assert run(["info", str(tmp_path / "none.h5")]) == 2
    assert "cache file not found" in capsys.readouterr().err
    src = _coco(tmp_path / "ann.json")
    good = tmp_path / "good.h5"
    assert run(["prepare", "coco", str(src), "-o", str(good)]) == 0
    capsys.readouterr()
    code = run(["info", str(good), "--plot", str(tmp_path / "nodir" / "p.png")])
    _assert_user_error(code, capsys, "plot folder does not exist", "nodir", tmp_path, {"ann.json", "c.h5", "good.h5"})


def test_bone_lengths_from_a_cache_without_3d(tmp_path, capsys):
    """--bone-lengths needs a 3D cache: a 2D one is refused before any take is read."""
    from tests.engine_data import make_cache

    flat = make_cache(tmp_path / "photos.h5", with3d=False)
    take = _write(tmp_path / "take.bvh", b"HIERARCHY\n")
    code = run(["prepare", "mocap", str(take), "-o", str(tmp_path / "x.h5"), "--bone-lengths", str(flat)])
    _assert_user_error(code, capsys, "has no 3D keypoints", "photos.h5", tmp_path, {"photos.h5", "take.bvh"})
