"""HDF5 cache schema v1: round trip, atomic writes, validation, stale schema."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from posecli.data.cache import SCHEMA_VERSION, open_cache, write_cache
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import COCO17, H36M17


def _records(lengths=(3, 40), with3d=True, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, t in enumerate(lengths):
        out.append(SequenceRecord(
            keypoints2d=rng.uniform(0, 1000, (t, 17, 2)).astype(np.float32),
            confidence=rng.uniform(0, 1, (t, 17)).astype(np.float32),
            keypoints3d=rng.normal(0, 1, (t, 17, 3)).astype(np.float32) if with3d else None,
            subject=f"S{i}", action="walk", camera="c0",
            intrinsics=np.array([1145, 1145, 500, 500], np.float32), image_size=(1000.0, 1000.0), fps=50.0,
        ))
    return out


def _result(records, source=None, layout=H36M17):
    return ReaderResult(records=records, dataset="synthetic", source_layout=layout.name,
                        joint_status=layout.status, sources=[] if source is None else [source])


def test_round_trip_keeps_every_value(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("hello")
    recs = _records()
    path = write_cache(tmp_path / "c.h5", _result(recs, src, COCO17), split="train", command="posecli prepare x")
    cache = open_cache(path)
    assert cache.num_sequences == 2 and cache.num_frames == 43 and cache.has3d
    for i, rec in enumerate(recs):
        back = cache.sequence(i)
        np.testing.assert_array_equal(back.keypoints2d, rec.keypoints2d)
        np.testing.assert_array_equal(back.keypoints3d, rec.keypoints3d)
        np.testing.assert_array_equal(back.confidence, rec.confidence)
        assert back.subject == rec.subject and back.fps == 50.0 and back.image_size == (1000.0, 1000.0)
    assert cache.attrs["schema_version"] == SCHEMA_VERSION
    assert cache.attrs["command"] == "posecli prepare x"
    assert '"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"' in cache.attrs["sources"]
    np.testing.assert_array_equal(cache.joint_status, COCO17.status)


def test_window_is_edge_padded(tmp_path):
    recs = _records((5,))
    cache = open_cache(write_cache(tmp_path / "c.h5", _result(recs), split="train"))
    w = cache.window(0, -2, 9)["keypoints2d"]
    expected = recs[0].keypoints2d[[0, 0, 0, 1, 2, 3, 4, 4, 4]]
    np.testing.assert_array_equal(w, expected)


def test_lazy_mode_reads_the_same(tmp_path):
    recs = _records()
    path = write_cache(tmp_path / "c.h5", _result(recs), split="train")
    with open_cache(path, in_memory=False) as lazy:
        np.testing.assert_array_equal(lazy.window(1, 10, 5)["keypoints3d"], recs[1].keypoints3d[10:15])


def test_existing_output_needs_force_and_is_untouched(tmp_path):
    path = tmp_path / "c.h5"
    path.write_bytes(b"precious")
    with pytest.raises(PoseCliError, match="--force"):
        write_cache(path, _result(_records()), split="train")
    assert path.read_bytes() == b"precious"
    write_cache(path, _result(_records()), split="train", force=True)
    assert open_cache(path).num_frames == 43


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.keypoints2d.__setitem__((0, 0, 0), np.nan), "NaN"),
    (lambda r: setattr(r, "confidence", r.confidence[:, :16]), "expected keypoints2d"),
    (lambda r: setattr(r, "keypoints3d", r.keypoints3d[..., :2]), "keypoints3d has shape"),
])
def test_bad_records_leave_no_file(tmp_path, mutate, message):
    recs = _records()
    mutate(recs[1])
    with pytest.raises(PoseCliError, match=message):
        write_cache(tmp_path / "c.h5", _result(recs), split="train")
    assert list(tmp_path.iterdir()) == []


def test_empty_and_mixed_3d_are_refused(tmp_path):
    with pytest.raises(PoseCliError, match="nothing to write"):
        write_cache(tmp_path / "c.h5", _result([]), split="train")
    mixed = _records((3,)) + _records((4,), with3d=False)
    with pytest.raises(PoseCliError, match="some sequences have 3D"):
        write_cache(tmp_path / "c.h5", _result(mixed), split="train")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(PoseCliError, match="does not exist"):
        write_cache(tmp_path / "nope" / "c.h5", _result(_records()), split="train")


def test_stale_schema_says_what_to_rerun(tmp_path):
    path = write_cache(tmp_path / "c.h5", _result(_records()), split="train", command="posecli prepare coco a.json")
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 0
    with pytest.raises(PoseCliError, match="rerun the command.*posecli prepare coco a.json"):
        open_cache(path)


def test_not_a_cache(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n truncated")
    with pytest.raises(PoseCliError, match="bad.h5: not a readable HDF5"):
        open_cache(bad)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(PoseCliError, match="not a posecli cache"):
        open_cache(tmp_path / "other.h5")
    with pytest.raises(PoseCliError, match="not found"):
        open_cache(tmp_path / "missing.h5")


def _damaged(tmp_path, edit) -> "Path":
    path = write_cache(tmp_path / "d.h5", _result(_records((3, 5))), split="test")
    with h5py.File(path, "a") as f:
        edit(f)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.__delitem__("camera"), r"the 'camera' dataset is missing"),
    (lambda f: f.attrs.__delitem__("joint_status"), r"the 'joint_status' attribute is missing"),
    (lambda f: f.attrs.__setitem__("schema_version", "two"), r"schema_version must be an integer, got 'two'"),
    (lambda f: (f.__delitem__("fps"), f.create_group("fps")), r"'fps' is a group where a dataset belongs"),
    (lambda f: (f.__delitem__("confidence"), f.create_dataset("confidence", data=np.ones((8, 16)))),
     r"'confidence' has 16 joints, expected 17"),
    (lambda f: (f.__delitem__("subject"), f.create_dataset("subject", data=[b"S0"])),
     r"'subject' has 1 rows but there are 2 sequences"),
    (lambda f: (f.__delitem__("seq_length"), f.create_dataset("seq_length", data=[3, -5])),
     r"seq_length\[1\] is -5"),
    (lambda f: (f.__delitem__("seq_start"), f.create_dataset("seq_start", data=[0, 10 ** 12])),
     r"sequence 1 \(seq_start 1000000000000, seq_length 5\) ends past the 8 frames"),
    (lambda f: (f.__delitem__("keypoints3d"), f.create_dataset("keypoints3d", shape=(2 ** 36, 17, 3),
                                                                dtype=np.float32, chunks=(512, 17, 3))),
     r"'keypoints3d' declares shape \(68719476736, 17, 3\) but the file stores only 0 bytes"),
    (lambda f: f["keypoints2d"].__setitem__((6, 2, 0), np.nan), r"'keypoints2d' has NaN or inf values \(frame 6\)"),
])
def test_every_reader_refuses_a_damaged_cache_with_one_line(tmp_path, edit, message, capsys):
    from posecli.cli import main

    path = _damaged(tmp_path, edit)
    for in_memory in (True, False):
        with pytest.raises(PoseCliError, match=rf"d\.h5: (damaged cache: )?{message}"):
            open_cache(path, in_memory=in_memory)
    with pytest.raises(SystemExit) as done:                  # `info` used to exit 0 or trace back
        main(["info", str(path)])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "d.h5" in err and "Traceback" not in err
