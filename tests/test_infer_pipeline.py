"""`posecli infer` end to end on small synthetic clips (fake detector, tiny random lifter), its
bad-input errors through the real CLI entry point, rendering, and MediaPipe on the example clip."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from infer_support import COCO_STANDING, ScriptedDetector, make_video, tiny_model

from posecli.cli import main
from posecli.engine.checkpoint import save_checkpoint
from posecli.errors import PoseCliError
from posecli.infer.pipeline import InferOptions, run_inference
from posecli.infer.video import iter_frames, probe_video
from posecli.skeleton import H36M_JOINTS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sports2d_demo_4s.mp4"



@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=30)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = tiny_model()
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model, cfg)


def test_outputs_gaps_and_formats(clip, tmp_path):
    # Frames 5-7 missing (bridged), 12-24 missing (13 > max_gap 10: left missing).
    missing = {5, 6, 7, *range(12, 25)}
    detector = ScriptedDetector(missing=missing)
    run_inference(clip, tmp_path / "out", InferOptions(max_gap=10), model=tiny_model(), detector=detector)
    assert detector.calls == 30 and not detector.closed          # a caller's detector stays open
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "poses.json", "poses.npz", "track_00.csv", "viewer.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]        # no temp folder left behind

    npz = np.load(tmp_path / "out" / "poses.npz")
    assert npz["keypoints2d"].shape == (30, 1, 17, 2) and npz["keypoints3d"].shape == (30, 1, 17, 3)
    assert float(npz["fps"]) == 24.0 and str(npz["skeleton"]) == "h36m17"
    assert npz["frame_index"].tolist() == list(range(30)) and npz["track_ids"].tolist() == [0]
    valid = npz["valid"][:, 0]
    assert valid.tolist() == [f not in range(12, 25) for f in range(30)]
    assert npz["interpolated"][:, 0].tolist() == [f in (5, 6, 7) for f in range(30)]
    assert np.isnan(npz["keypoints3d"][12:25]).all() and (npz["confidence"][12:25] == 0).all()
    assert np.isfinite(npz["keypoints3d"][valid]).all()
    assert np.abs(npz["keypoints3d"][valid][:, :, 0]).max() == 0.0   # root-relative
    # The pelvis (mid-hips) moves 24 px/s; One-Euro at strength 1 lags it by at most speed * tau,
    # tau = 1 / (2 pi fc) with fc = 1.5 Hz + 1.5 * speed / person size (24 / 90 px) -> 2.0 px.
    lag = 80.0 + np.arange(12) - npz["keypoints2d"][:12, 0, 0, 0]
    assert lag[0] == 0.0 and (lag[1:] > 0).all() and lag.max() < 2.0

    data = json.loads((tmp_path / "out" / "poses.json").read_text())
    assert data["skeleton"] == "h36m17" and data["num_frames"] == 30 and len(data["tracks"]) == 1
    assert data["tracks"][0]["frames"] == np.flatnonzero(valid).tolist()
    with open(tmp_path / "out" / "track_00.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 17 * int(valid.sum()) and rows[0]["joint"] == H36M_JOINTS[0]
    assert list(rows[0]) == ["frame", "joint", "x", "y", "conf", "X", "Y", "Z"]


def test_no_smoothing_keeps_detections_exact_and_two_people(clip, tmp_path):
    result = run_inference(clip, tmp_path / "o", InferOptions(smooth=0.0, viewer=False), model=tiny_model(),
                           detector=ScriptedDetector(people=2))
    poses = result.poses
    assert poses.num_tracks == 2 and poses.valid.all() and result.detections == 60
    assert np.allclose(poses.keypoints2d[:, 0, 0, 0], 80.0 + np.arange(30))
    assert np.allclose(poses.keypoints2d[:, 1, 0, 0], 140.0 + np.arange(30))
    one = run_inference(clip, tmp_path / "p", InferOptions(max_people=1, viewer=False), model=tiny_model(),
                        detector=ScriptedDetector(people=2))
    assert one.poses.num_tracks == 1


def test_user_keypoints_and_checkpoint_via_cli(clip, checkpoint, tmp_path, capsys):
    kp = np.concatenate([COCO_STANDING, np.full((17, 1), 0.9, np.float32)], axis=1)
    results = [{"image_id": f, "keypoints": (kp + [f, 0, 0]).ravel().tolist()} for f in range(30)]
    (tmp_path / "kp.json").write_text(json.dumps(results))
    with pytest.raises(SystemExit) as info:
        main(["infer", str(clip), "--out", str(tmp_path / "run"), "--checkpoint", str(checkpoint),
              "--keypoints", str(tmp_path / "kp.json"), "--no-viewer", "--render"])
    assert info.value.code == 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "poses.json", "poses.npz", "render.mp4", "track_00.csv"]  # --render needs cv2 (video extra)
    assert "30 frames, 30 detections, 1 track, " in capsys.readouterr().err
    assert (tmp_path / "run" / "render.mp4").stat().st_size > 0


def _zero_frame_video(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        stream = c.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    return path


def _zeroed_payload(src: Path, path: Path) -> Path:
    data = bytearray(src.read_bytes())
    i = data.find(b"mdat")
    size = struct.unpack(">I", data[i - 4:i])[0]
    data[i + 4:i - 4 + size] = bytes(size - 8)          # every frame's bytes gone, headers intact
    path.write_bytes(bytes(data))
    return path


def _unknown_codec(src: Path, path: Path) -> Path:
    data = bytearray(src.read_bytes())
    for tag in (b"avc1", b"avcC"):
        i = data.find(tag)
        data[i:i + 4] = b"zzzz"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case, message", [
    ("text", "not a readable video"),
    ("zero", "no video stream"),
    ("zeroed", "cannot decode video after 0 frames"),
    ("codec", "not a readable video"),
    ("layout", "42 keypoint values per person"),
    ("family", "infer needs a 2D-to-3D 'lifter'"),
    ("missing", "video file not found"),
])
def test_bad_inputs_exit_2_and_write_nothing(case, message, clip, checkpoint, tmp_path, capsys):
    video, extra = clip, []
    if case == "text":
        video = tmp_path / "notes.mp4"
        video.write_text("this is not a video\n")
    elif case == "zero":
        video = _zero_frame_video(tmp_path / "empty.mp4")
    elif case == "zeroed":
        video = _zeroed_payload(clip, tmp_path / "zeroed.mp4")
    elif case == "codec":
        video = _unknown_codec(clip, tmp_path / "codec.mp4")
    elif case == "missing":
        video = tmp_path / "nope.mp4"
    elif case == "layout":
        (tmp_path / "kp.json").write_text(json.dumps([{"image_id": 0, "keypoints": [1.0] * 42}]))
        extra = ["--keypoints", str(tmp_path / "kp.json")]
    elif case == "family":
        model = tiny_model()
        model.family = "image"
        cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}}
        checkpoint = save_checkpoint(tmp_path / "image.pt", model, cfg)
        extra = ["--model", "lifter"]
    before = set(tmp_path.iterdir())
    with pytest.raises(SystemExit) as info:
        main(["infer", str(video), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint), *extra])
    err = capsys.readouterr().err
    assert info.value.code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert set(tmp_path.iterdir()) == before                        # nothing written, no temp folder


def test_error_during_lifting_leaves_no_output(clip, tmp_path):
    class Broken(torch.nn.Module):
        window, receptive_field, family = 9, 9, "lifter"

        def forward(self, x):
            raise PoseCliError("lifter failed")

    with pytest.raises(PoseCliError):
        run_inference(clip, tmp_path / "out", model=Broken(), detector=ScriptedDetector())
    assert list(tmp_path.iterdir()) == []


def test_render_draws_skeleton_beside_3d_panel(clip, tmp_path):
    pytest.importorskip("cv2")
    run_inference(clip, tmp_path / "r", InferOptions(render=True, viewer=False, smooth=0.0),
                  model=tiny_model(), detector=ScriptedDetector(missing={3}))
    info = probe_video(tmp_path / "r" / "render.mp4")
    assert (info.width, info.height, info.fps, info.codec) == (160 + 120, 120, 24.0, "h264")
    frames = list(iter_frames(tmp_path / "r" / "render.mp4"))
    assert len(frames) == 30
    source = list(iter_frames(clip))
    # Frame 0: the left thigh (l_hip (88,70) -> l_knee (89,90)) is drawn in blue over the video.
    pixel = frames[0][80, 88].astype(int)
    assert pixel[2] > pixel[0] + 60 and np.abs(source[0][80, 88].astype(int) - pixel).max() > 60
    panel = frames[0][:, 160:]
    assert (panel.max(axis=-1) > 150).sum() > 20                    # the 3D skeleton is visible


def test_blazepose_on_example_clip(tmp_path):
    pytest.importorskip("mediapipe.python.solutions.pose", reason="needs mediapipe <= 0.10.21 (its legacy API)")
    from posecli.infer.detector import BlazePoseDetector

    frames = list(iter_frames(EXAMPLE, max_frames=6))
    assert frames[0].shape == (540, 960, 3)
    with BlazePoseDetector() as detector:
        people = [detector(f) for f in frames]
    assert [len(p) for p in people[2:]] == [1, 1, 1, 1]          # found from the 3rd frame on
    det = people[-1][0]
    # The jumping-jack person on the roof, left of centre, in the upper half of the frame.
    pelvis, head = det.keypoints[0], det.keypoints[10]
    assert 250 < pelvis[0] < 450 and 100 < pelvis[1] < 250 and pelvis[1] - head[1] > 50
    assert det.confidence[[0, 1, 4, 11, 14]].min() > 0.5


class _WorldDetector(ScriptedDetector):
    """The scripted person plus made-up world landmarks (the lifter must never look at them)."""

    def __init__(self, world: float):
        super().__init__()
        self.world = world

    def __call__(self, frame_rgb: np.ndarray):
        people = super().__call__(frame_rgb)
        for d in people:
            d.world3d = np.full((17, 3), self.world, np.float32)
        return people


def test_detector_world_landmarks_are_saved_but_never_lifted(clip, tmp_path):
    options = InferOptions(viewer=False)
    runs = [run_inference(clip, tmp_path / f"w{w}", options, model=tiny_model(), detector=_WorldDetector(w))
            for w in (0.5, -3.0)]
    assert np.array_equal(runs[0].poses.keypoints3d, runs[1].poses.keypoints3d, equal_nan=True)
    npz = np.load(tmp_path / "w0.5" / "poses.npz")
    assert npz["detector_world3d"].shape == (30, 1, 17, 3) and np.all(npz["detector_world3d"] == 0.5)
    plain = run_inference(clip, tmp_path / "plain", options, model=tiny_model(), detector=ScriptedDetector())
    assert "detector_world3d" not in np.load(tmp_path / "plain" / "poses.npz").files
    assert np.array_equal(plain.poses.keypoints3d, runs[0].poses.keypoints3d, equal_nan=True)


def test_an_earlier_run_is_never_replaced_silently(clip, tmp_path):
    from posecli.infer.pipeline import next_free_folder

    out = tmp_path / "runs" / "clip"
    assert next_free_folder(out) == out
    run_inference(clip, out, InferOptions(viewer=False), model=tiny_model(), detector=ScriptedDetector())
    before = (out / "poses.npz").read_bytes()
    with pytest.raises(PoseCliError, match="already holds an earlier run"):
        run_inference(clip, out, InferOptions(viewer=False), model=tiny_model(), detector=ScriptedDetector(people=2))
    assert (out / "poses.npz").read_bytes() == before
    assert next_free_folder(out) == tmp_path / "runs" / "clip-2"
    again = run_inference(clip, out, InferOptions(viewer=False, overwrite=True), model=tiny_model(),
                          detector=ScriptedDetector(people=2))
    assert again.poses.num_tracks == 2 and np.load(out / "poses.npz")["keypoints3d"].shape[1] == 2


def test_photos_folder_and_glob_give_one_result_per_image(tmp_path):
    cv2 = pytest.importorskip("cv2")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.png", "a.jpg", "c.png"):
        cv2.imwrite(str(photos / name), np.full((120, 160, 3), 90, np.uint8))
    (photos / "notes.txt").write_text("not an image")
    detector = ScriptedDetector(missing={1}, people=2)      # the second image (b.png) has nobody
    result = run_inference(photos, tmp_path / "out", InferOptions(), model=tiny_model(), detector=detector)
    poses = result.poses
    assert detector.calls == 3 and poses.num_frames == 3 and poses.num_tracks == 2
    assert poses.valid.tolist() == [[True, True], [False, False], [True, True]]
    assert not poses.interpolated.any() and result.detections == 4
    # Each image is lifted alone (T = 1): the third image's people equal a one-frame lift.
    from posecli.families.lifter.predict import lift_sequence

    k2, c2 = poses.keypoints2d[2, 1], poses.confidence[2, 1]
    alone = lift_sequence(tiny_model(), np.nan_to_num(k2)[None], c2[None])[0]
    assert np.allclose(poses.keypoints3d[2, 1], alone - alone[:1], atol=1e-6)
    assert (tmp_path / "out" / "images.txt").read_text().split() == [
        str(photos / n) for n in ("a.jpg", "b.png", "c.png")]
    assert (tmp_path / "out" / "viewer.html").exists()
    by_glob = run_inference(str(photos / "*.png"), tmp_path / "glob", InferOptions(viewer=False),
                            model=tiny_model(), detector=ScriptedDetector(people=1))
    assert by_glob.poses.num_frames == 2 and by_glob.poses.valid.all()
    with pytest.raises(PoseCliError, match="no images"):
        run_inference(str(photos / "*.gif"), tmp_path / "none", model=tiny_model(), detector=ScriptedDetector())
