"""The `custom` reader: JSON and CSV forms, conversion to H36M-17, and every validation error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posecli.data.readers import get_reader
from posecli.data.readers.custom import read_custom
from posecli.data.records import PrepareOptions
from posecli.errors import PoseCliError
from posecli.skeleton import COCO17, LSP14, JointStatus


def coco_frames(t: int) -> list:
    """T frames of COCO-17 keypoints: joint j of frame f at (10 j + f, 5 j)."""
    return [[[10.0 * j + f, 5.0 * j] for j in range(17)] for f in range(t)]


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def base_doc(**sequence) -> dict:
    seq = {"subject": "S1", "action": "walk", "camera": "c0", "keypoints2d": coco_frames(3)}
    seq.update(sequence)
    return {"layout": "coco17", "fps": 30, "image_size": [640, 480], "intrinsics": [500, 500, 320, 240],
            "sequences": [seq]}


def test_json_reads_and_converts(tmp_path: Path) -> None:
    conf = np.ones((3, 17))
    conf[1, 11] = 0.25                                  # frame 1 left hip weak -> pelvis 0.25
    kp3d = np.zeros((3, 17, 3))
    kp3d[..., 2] = 4.0
    kp3d[:, 11, 0], kp3d[:, 12, 0] = 0.1, -0.1
    doc = base_doc(confidence=conf.tolist(), keypoints3d=kp3d.tolist(), frame_names=["a", "b", "c"])
    result = read_custom([write_json(tmp_path / "walk.json", doc)], PrepareOptions())
    assert result.dataset == "custom" and result.source_layout == "coco17"
    np.testing.assert_array_equal(result.joint_status, COCO17.status)
    (rec,) = result.records
    assert len(rec) == 3 and rec.fps == 30.0 and rec.image_size == (640.0, 480.0)
    assert (rec.subject, rec.action, rec.camera, rec.frame_names) == ("S1", "walk", "c0", ["a", "b", "c"])
    np.testing.assert_allclose(rec.intrinsics, [500, 500, 320, 240])
    np.testing.assert_allclose(rec.keypoints2d[2, 0], (117.0, 57.5))     # pelvis = mid(hips 11, 12)
    np.testing.assert_allclose(rec.keypoints2d[2, 1], (122.0, 60.0))     # r_hip = COCO 12
    np.testing.assert_allclose(rec.keypoints2d[0, 10], (15.0, 7.5))      # head = mid-eyes
    assert rec.confidence[1, 0] == 0.25 and rec.confidence[0, 0] == 1.0
    np.testing.assert_allclose(rec.keypoints3d[:, 0], [[0.0, 0.0, 4.0]] * 3)
    np.testing.assert_allclose(rec.keypoints3d[:, 4], [[0.1, 0.0, 4.0]] * 3)
    assert rec.keypoints2d.dtype == np.float32 and rec.keypoints3d.shape == (3, 17, 3)


def test_registry_points_at_read_custom() -> None:
    assert get_reader("custom") is read_custom


def test_per_sequence_overrides_and_dataset(tmp_path: Path) -> None:
    doc = base_doc(fps=0, image_size=[100, 50])
    doc["dataset"] = "lab"
    doc.pop("intrinsics")
    rec = read_custom([write_json(tmp_path / "a.json", doc)], PrepareOptions()).records[0]
    assert rec.fps == 0.0 and rec.image_size == (100.0, 50.0) and rec.intrinsics is None
    assert read_custom([tmp_path / "a.json"], PrepareOptions()).dataset == "lab"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["sequences"][0].update(keypoints2d=[[[1, 2]] * 18] * 3),
         r"sequences\[0\]\.keypoints2d has 18 joints per frame, layout coco17 has 17"),
        (lambda d: d["sequences"][0]["keypoints2d"][1].pop(),
         r"sequences\[0\]\.keypoints2d is ragged or not numeric \(first bad entry: sequences\[0\]\.keypoints2d\[1\]\)"),
        (lambda d: d["sequences"][0]["keypoints2d"][2][4].__setitem__(0, None),
         r"sequences\[0\]\.keypoints2d\[2, 4, 0\] is NaN, null or infinite"),
        (lambda d: d["sequences"][0]["keypoints2d"][0][3].__setitem__(1, float("nan")),
         r"keypoints2d\[0, 3, 1\] is NaN"),
        (lambda d: d.update(layout="coco18"), r"unknown keypoint layout 'coco18'"),
        (lambda d: d.pop("layout"), r"missing 'layout'"),
        (lambda d: d.update(sequences=[]), r"'sequences' must be a non-empty list"),
        (lambda d: d.update(keypoint2d=1), r"unknown key\(s\) \['keypoint2d'\]"),
        (lambda d: d["sequences"][0].update(confidence=[[1.0] * 17] * 2),
         r"sequences\[0\]\.confidence should be 3 x 17 numbers, got shape \[2, 17\]"),
        (lambda d: d["sequences"][0].update(confidence=[[1.5] * 17] * 3), r"must lie in \[0, 1\]"),
        (lambda d: d["sequences"][0].update(keypoints3d=[[[0, 0, 4000]] * 17] * 3), r"metres"),
        (lambda d: d["sequences"][0].update(keypoints2d=[[[1, 2, 3]] * 17] * 3),
         r"should be N x N x 2 numbers, got shape \[3, 17, 3\]"),
        (lambda d: d.update(intrinsics=[500, 320, 240]), r"intrinsics should be 4 numbers"),
        (lambda d: d.update(fps=-1), r"fps must be a number >= 0"),
        (lambda d: d["sequences"][0].update(frame_names=["a"]), r"frame_names must be a list of 3"),
    ],
)
def test_json_errors_name_file_and_problem(tmp_path: Path, change, message: str) -> None:
    doc = base_doc()
    change(doc)
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(PoseCliError, match=message) as err:
        read_custom([path], PrepareOptions())
    assert str(err.value).startswith(str(path))


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(base_doc())[:200])
    with pytest.raises(PoseCliError, match=r"cut\.json: not valid JSON \(truncated\?\).*line 1 column 201"):
        read_custom([path], PrepareOptions())


def csv_text(rows: list[list], layout=COCO17, meta: str = "# layout: coco17\n# fps: 25\n# image_size: 640x480\n",
             conf: bool = True) -> str:
    header = ["sequence", "frame", "subject"]
    for name in layout.joints:
        header += [f"x_{name}", f"y_{name}"] + ([f"c_{name}"] if conf else [])
    return meta + ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def csv_row(seq: str, frame: int, subject: str = "S1", k: int = 17, c: float = 1.0) -> list:
    row = [seq, frame, subject]
    for j in range(k):
        row += [10 * j + frame, 5 * j, c]
    return row


def test_csv_reads_sequences_and_fills_gaps(tmp_path: Path) -> None:
    rows = [csv_row("b", 0, "S2"), csv_row("a", 2), csv_row("a", 0), csv_row("a", 3)]   # a: frame 1 missing
    path = tmp_path / "track.csv"
    path.write_text(csv_text(rows))
    result = read_custom([path], PrepareOptions())
    assert [(r.action, r.subject, len(r)) for r in result.records] == [("b", "S2", 1), ("a", "S1", 4)]
    a = result.records[1]
    assert a.fps == 25.0 and a.image_size == (640.0, 480.0) and a.frame_names == ["0", "1", "2", "3"]
    np.testing.assert_allclose(a.keypoints2d[3, 0], (118.0, 57.5))     # mid-hips of frame 3
    assert a.confidence[1].max() == 0.0 and a.confidence[[0, 2, 3]].min() == 1.0
    assert result.notes == ["track.csv: 1 missing frame(s) inside sequences filled with confidence 0"]


def test_csv_infers_layout_without_confidence(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text(csv_text([[v for i, v in enumerate(csv_row("s", 0)) if i < 3 or (i - 3) % 3 != 2]],
                             meta="", conf=False))
    result = read_custom([path], PrepareOptions())
    assert result.source_layout == "coco17" and result.records[0].confidence.min() == 1.0
    assert result.records[0].fps == 0.0


def test_csv_ambiguous_layout_needs_header_line(tmp_path: Path) -> None:
    path = tmp_path / "lsp.csv"
    path.write_text(csv_text([csv_row("s", 0, k=14)], layout=LSP14, meta=""))
    with pytest.raises(PoseCliError, match=r"several layouts match \(aic14, lsp14\)"):
        read_custom([path], PrepareOptions())
    path.write_text(csv_text([csv_row("s", 0, k=14)], layout=LSP14, meta="# layout: lsp\n"))
    result = read_custom([path], PrepareOptions())
    assert result.source_layout == "lsp14"
    assert result.joint_status[9] == JointStatus.DERIVED                   # neck/nose halfway to head top


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace("x_nose", "x_noze"), r"unknown column\(s\) \['x_noze'\]"),
        (lambda t: t.rsplit(",", 5)[0] + "\n", r"line 6 has 49 cells, the header has 54 \(truncated\?\)"),
        (lambda t: t.replace(",10,5,1.0,", ",nan,5,1.0,", 1), r"line 5 column x_l_eye is NaN or infinite"),
        (lambda t: t.replace(",10,5,1.0,", ",abc,5,1.0,", 1), r"line 5 column x_l_eye: 'abc' is not a number"),
        (lambda t: t.replace("# layout: coco17", "# layout: coco99"), r"unknown keypoint layout 'coco99'"),
        (lambda t: t.replace("a,1,", "a,0,"), r"line 6: frame 0 of sequence 'a' appears twice"),
        (lambda t: t.replace("a,1,S1", "a,1,S9"), r"line 6: subject changes within sequence 'a'"),
        (lambda t: t.replace("a,1,", "a,-1,"), r"line 6: frame must be a whole number"),
        (lambda t: t.replace("# fps: 25", "# fsp: 25"), r"line 2: expected '# key: value'"),
        (lambda t: t.replace(",1.0\n", ",2.0\n", 1), r"must lie in \[0, 1\]"),
    ],
)
def test_csv_errors(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(mutate(csv_text([csv_row("a", 0), csv_row("a", 1)])))
    with pytest.raises(PoseCliError, match=message) as err:
        read_custom([path], PrepareOptions())
    assert str(err.value).startswith(str(path))


def test_csv_wrong_joint_count(tmp_path: Path) -> None:
    text = csv_text([csv_row("a", 0)])
    cut = text.replace(",x_r_ankle,y_r_ankle,c_r_ankle", "")
    path = tmp_path / "k16.csv"
    path.write_text("\n".join(line if line.startswith(("#", "seq")) else line.rsplit(",", 3)[0]
                              for line in cut.splitlines()) + "\n")
    with pytest.raises(PoseCliError, match=r"missing column\(s\) \['x_r_ankle', 'y_r_ankle'\]"):
        read_custom([path], PrepareOptions())


def test_folder_split_subject_filters_and_mixed_layouts(tmp_path: Path) -> None:
    doc = base_doc(split="train")
    doc["sequences"].append({"subject": "S2", "split": "test", "keypoints2d": coco_frames(2)})
    write_json(tmp_path / "one.json", doc)
    result = read_custom([tmp_path], PrepareOptions(split="test"))
    assert [r.subject for r in result.records] == ["S2"] and result.dropped["other split (sequences)"] == 1
    result = read_custom([tmp_path], PrepareOptions(subjects=["S1"]))
    assert [r.subject for r in result.records] == ["S1"]
    with pytest.raises(PoseCliError, match=r"no sequences left"):
        read_custom([tmp_path], PrepareOptions(subjects=["S7"]))
    write_json(tmp_path / "nosplit.json", base_doc())
    with pytest.raises(PoseCliError, match=r"add one or use --split all"):
        read_custom([tmp_path / "nosplit.json"], PrepareOptions(split="train"))
    (tmp_path / "two.csv").write_text(csv_text([csv_row("s", 0, k=14)], layout=LSP14, meta="# layout: lsp14\n"))
    with pytest.raises(PoseCliError, match=r"two\.csv: layout lsp14 differs from coco17"):
        read_custom([tmp_path], PrepareOptions())


def test_input_errors(tmp_path: Path) -> None:
    with pytest.raises(PoseCliError, match="file not found"):
        read_custom([tmp_path / "none.json"], PrepareOptions())
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(PoseCliError, match=r"must end in \.json or \.csv"):
        read_custom([tmp_path / "x.txt"], PrepareOptions())
    with pytest.raises(PoseCliError, match="folder has no .json or .csv files"):
        read_custom([tmp_path], PrepareOptions())
