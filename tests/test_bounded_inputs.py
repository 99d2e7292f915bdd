"""Bounded, damage-proof readers: sizes a file declares are checked before allocating, damaged
archives and odd values become one PoseCliError naming the file, and outputs are created
exclusively with dead writers' temp files cleaned up."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posecli.atomic import atomic_output, remove_stale_temps
from posecli.data.readers._files import load_json, load_npy, load_npz, read_text
from posecli.data.readers.bvh import read_bvh
from posecli.data.readers.mocap import read_mocap
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from posecli.infer.export import check_bundle_name
from posecli.families.lifter.predict import window_plan
from posecli.skeleton import get_layout


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def lying_npy(shape: tuple[int, ...]) -> bytes:
    """A valid .npy header declaring `shape` float32, followed by only 16 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(16)


def test_npy_header_declaring_2_36_frames_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(lying_npy((2 ** 36, 17, 2)))
    assert path.stat().st_size < 1024
    with pytest.raises(PoseCliError, match=r"huge\.npy: array \[68719476736, 17, 2\] of float32 declares "
                                           r"9,345,849 MB, over the 1,074 MB limit"):
        load_npy(path)
    path.write_bytes(lying_npy((1000, 17, 2)))
    with pytest.raises(PoseCliError, match="truncated: header declares 136,000 bytes, file holds 16"):
        load_npy(path)


def test_npz_bomb_and_lying_headers_are_refused(tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("keypoints2d.npy", "w", force_zip64=True) as f:
            f.write(npy_bytes(np.zeros((0,)))[:0])
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                     "shape": (150_000_000,)})
            zeros = bytes(1 << 24)
            for _ in range(72):                                  # 1.2 GB of zeros, ~1.2 MB deflated
                f.write(zeros)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(PoseCliError, match=r"bomb\.npz: npz contents declares 1,208 MB, over the 1,074 MB"):
        load_npz(bomb)
    liar = tmp_path / "liar.npz"
    with zipfile.ZipFile(liar, "w") as z:
        z.writestr("keypoints2d.npy", lying_npy((2 ** 36,)))
    with pytest.raises(PoseCliError, match=r"liar\.npz: npz entry 'keypoints2d': array \[68719476736\]"):
        load_npz(liar)
    short = tmp_path / "short.npz"
    with zipfile.ZipFile(short, "w") as z:
        z.writestr("keypoints2d.npy", lying_npy((100,)))
    with pytest.raises(PoseCliError, match="header declares 400 bytes but the entry holds 144"):
        load_npz(short)


def test_truncated_and_crc_damaged_npz(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, keypoints2d=np.random.default_rng(0).normal(size=(50, 17, 2)))
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseCliError, match=r"cut\.npz: not a readable \.npz file \(truncated or not a zip"):
        load_npz(cut)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF                                 # inside the deflated member
    bad = tmp_path / "crc.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(PoseCliError, match=r"crc\.npz: npz entry 'keypoints2d': damaged or truncated"):
        load_npz(bad)
    np.testing.assert_array_equal(load_npz(good)["keypoints2d"], np.load(good)["keypoints2d"])


def test_object_arrays_need_allow_pickle(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, positions_3d=np.array({"S1": 1}, dtype=object))
    with pytest.raises(PoseCliError, match="holds Python objects; pass --allow-pickle"):
        load_npz(path)
    assert load_npz(path, allow_pickle=True)["positions_3d"].item() == {"S1": 1}


def test_text_limits_gzip_line_and_json_depth(tmp_path):
    line = tmp_path / "one_line.txt.gz"
    with gzip.open(line, "wb", compresslevel=1) as f:
        chunk = b"1," * (1 << 19)
        for _ in range(4):                                          # one 4 MB line
            f.write(chunk)
    with pytest.raises(PoseCliError, match=r"one_line\.txt\.gz: line 1 is over 1\.04858 MB long"):
        read_text(line)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PoseCliError, match=r"deep\.json: JSON nested too deeply"):
        load_json(deep)
    cut = tmp_path / "cut.txt.gz"
    packed = gzip.compress("\n".join(map(str, np.random.default_rng(0).normal(size=5000))).encode())
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(PoseCliError, match=r"cut\.txt\.gz: truncated or damaged gzip"):
        read_text(cut)


def test_limit_follows_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(1000))
    monkeypatch.setenv("POSECLI_MAX_INPUT_BYTES", "4000")
    with pytest.raises(PoseCliError, match="declares 0 MB, over the 0 MB limit"):
        load_npy(path)
    monkeypatch.setenv("POSECLI_MAX_INPUT_BYTES", "8000")
    assert load_npy(path).shape == (1000,)


def test_csv_frame_number_far_away_is_refused(tmp_path):
    from posecli.data.readers.custom_csv import read_csv_file

    joints = get_layout("coco17").joints
    header = "sequence,frame," + ",".join(f"x_{j},y_{j}" for j in joints)
    row = ",".join(["1.0"] * 34)
    path = tmp_path / "far.csv"
    path.write_text(f"# layout: coco17\n{header}\na,0,{row}\na,1000000000000,{row}\n")
    assert path.stat().st_size < 1000
    with pytest.raises(PoseCliError, match=r"far\.csv: sequence 'a' has 2 rows but its frame numbers span "
                                           r"0\.\.1,000,000,000,000"):
        read_csv_file(path)


BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Head
  {
    OFFSET 0 170 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0083333
0 90 0 0 0 0 0 0 0
0 90 0 0 0 0 0 0 0
0 90 0 0 0 0 0 0 0
"""


@pytest.mark.parametrize("change, message", [
    (("Frame Time: 0.0083333", "Frame Time: inf"), "frame time must be a finite number of seconds"),
    (("0 90 0 0 0 0 0 0 0\n0 90 0 0 0 0 0 0 0\n", "0 90 0 0 0 0 0 0 0 0 90 0\n0 90 0 0 0 0\n"),
     "declares 3 frames x 9 channels but frame 0 has 12 values"),
    (("0 90 0 0 0 0 0 0 0\n0 90", "0 90 0 0 nan 0 0 0 0\n0 90"), "BVH frame 0 has NaN or inf"),
    (("Frames: 3", "Frames: 4"), "declares 4 frames x 9 channels but holds 3 motion rows"),
])
def test_bvh_damage(tmp_path, change, message):
    path = tmp_path / "bad.bvh"
    path.write_text(BVH.replace(*change))
    with pytest.raises(PoseCliError, match=rf"bad\.bvh: .*{message}"):
        read_bvh(path)


def test_mocap_units_fps_and_nan(tmp_path):
    from fuzz_support import bvh_text

    bvh = tmp_path / "take.bvh"
    bvh.write_text(bvh_text(np.random.default_rng(0)))
    with pytest.raises(PoseCliError, match=r"take\.bvh: --units 1e-300 makes the subject 1\.\d+e-298 m tall "
                                           r"\(outside 0\.1\.\.10 m\); the file looks like cm"):
        read_mocap([bvh], PrepareOptions(units=1e-300))
    with pytest.raises(PoseCliError, match=r"--fps must be a number in \(0, 1000\] Hz, got 1000000000"):
        read_mocap([bvh], PrepareOptions(fps=1e9))
    with pytest.raises(PoseCliError, match="--units must be a positive number"):
        read_mocap([bvh], PrepareOptions(units=float("nan")))
    assert len(read_mocap([bvh], PrepareOptions(units=0.01, cameras=1)).records) == 1
    npz = tmp_path / "cmu.npz"
    arr = np.zeros((4, 38, 3))
    arr[2, 5, 1] = np.nan
    np.savez(npz, train__walk__01_01=arr)
    with pytest.raises(PoseCliError, match=r"cmu\.npz: 'train__walk__01_01' frame 2 has NaN or inf"):
        read_mocap([npz], PrepareOptions())


def test_stride_never_exceeds_what_the_sequence_needs():
    conv = window_plan(40, 27, 27, stride=100_000)
    assert (conv.out_len, conv.in_len, conv.starts) == (40, 66, [0])
    tf = window_plan(100, 8, 1, stride=50)
    assert tf.starts == list(range(0, 93, 8)) + [92]               # every frame gets an output


def test_exclusive_create_refuses_an_output_that_appeared(tmp_path):
    out = tmp_path / "cache.h5"
    with pytest.raises(PoseCliError, match=r"cache\.h5: output exists \(use --force"):
        with atomic_output(out, overwrite=False) as tmp:
            tmp.write_text("second run")
            out.write_text("first run")                            # the other run finished first
    assert out.read_text() == "first run" and sorted(p.name for p in tmp_path.iterdir()) == ["cache.h5"]
    with atomic_output(out) as tmp:
        tmp.write_text("forced")
    assert out.read_text() == "forced"


def test_two_prepare_runs_cannot_both_succeed(tmp_path):
    """Many prepares race for one output without --force: exactly one writes it."""
    src = tmp_path / "a.json"
    src.write_text(json.dumps({"layout": "coco17", "sequences": [
        {"keypoints2d": np.ones((3, 17, 2)).tolist()}]}))
    out = tmp_path / "out.h5"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = ("import sys; from posecli.cli import main; "
            f"main(['prepare', 'custom', {str(src)!r}, '-o', {str(out)!r}])")
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(r.wait(timeout=120), r.stderr.read()) for r in runs]
    assert sorted(rc for rc, _ in results) == [0, 2, 2, 2]
    assert all("output exists" in err for rc, err in results if rc == 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "out.h5"]


def test_temp_files_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    out = tmp_path / "model.pt"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    dead = int(child.stdout)                                        # a pid that has exited
    from posecli.atomic import _host
    stale = tmp_path / f".model.pt.{_host()}-{dead}.abc123.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    stale_dir = tmp_path / f".model.pt.tmp-{_host()}-{dead}.xyz"
    stale_dir.mkdir()
    live = tmp_path / f".model.pt.{_host()}-{os.getpid()}.live.tmp.pt"   # a running writer's
    live.write_bytes(b"in progress")
    other = tmp_path / ".other.pt.host-1.tmp.pt"
    other.write_bytes(b"not ours")
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name])
    assert remove_stale_temps(out) == []


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "..", "x" * 101])
def test_bundle_names_stay_inside_the_output_folder(name):
    with pytest.raises(PoseCliError, match="--name must be a plain name"):
        check_bundle_name(name)


def test_bundle_name_via_cli(tmp_path, capsys):
    from posecli.cli import main

    with pytest.raises(SystemExit) as info:
        main(["export", "bundle", "--checkpoint", str(tmp_path / "c.pt"), "--name", "../x",
              "--output", str(tmp_path / "out")])
    assert info.value.code == 2 and "--name must be a plain name" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "out").exists()
