"""Phone clips (display-matrix rotation), truncated videos and keypoint files that do not match
their video: decoded frames are upright, a truncated file warns, a mismatched file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from infer_support import COCO_STANDING, make_video, tiny_model

from posecli.cli import main
from posecli.errors import PoseCliError, PoseCliWarning
from posecli.infer.detector import Detection
from posecli.infer.keypoints_io import read_keypoints
from posecli.infer.pipeline import InferOptions, run_inference
from posecli.infer.video import count_frames, iter_frames, probe_video

UPRIGHT_W, UPRIGHT_H = 96, 160          # the portrait scene as the phone's user saw it
HEAD, FEET = (48, 30), (48, 130)        # (x, y) of a red head blob and a blue feet blob, upright


def _scene() -> np.ndarray:
    img = np.full((UPRIGHT_H, UPRIGHT_W, 3), 40, np.uint8)
    for (x, y), colour in ((HEAD, (230, 20, 20)), (FEET, (20, 20, 230))):
        img[y - 8:y + 8, x - 8:x + 8] = colour
    return img


def phone_clip(path: Path, frames: int = 12) -> Path:
    """What a phone held upright writes: landscape sensor frames (the scene turned a quarter turn
    clockwise) plus a display matrix saying 'rotate 90 degrees counter-clockwise to show'."""
    stored = np.ascontiguousarray(np.rot90(_scene(), -1))          # 160 wide x 96 high
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _blob(frame: np.ndarray, channel: int) -> np.ndarray:
    """Centre (x, y) of the pixels where `channel` dominates."""
    mask = (frame[..., channel] > 150) & (np.delete(frame, channel, axis=-1) < 100).all(axis=-1)
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()], np.float32)


class BlobDetector:
    """Finds the head (red) and feet (blue) in the frame it is given and puts a person between."""

    def __init__(self):
        self.shapes = []

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        from posecli.infer.detector import detection_from_layout

        self.shapes.append(frame.shape)
        head, feet = _blob(frame, 0), _blob(frame, 2)
        # Map the standing COCO figure (nose y=20 .. ankles y=110) onto head..feet.
        t = (COCO_STANDING[:, 1:2] - 20.0) / 90.0
        across = (COCO_STANDING[:, 0:1] - 80.0) / 90.0
        axis = feet - head
        normal = np.array([-axis[1], axis[0]], np.float32)
        kp = head + t * axis + across * normal
        return [detection_from_layout(kp.astype(np.float32), np.full(17, 0.9, np.float32), "coco17")]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def phone(tmp_path_factory) -> Path:
    return phone_clip(tmp_path_factory.mktemp("phone") / "portrait.mp4")


def test_phone_clip_decodes_upright(phone):
    info = probe_video(phone)
    assert (info.width, info.height, info.rotation) == (UPRIGHT_W, UPRIGHT_H, 90)
    frames = list(iter_frames(phone))
    assert len(frames) == 12 and frames[0].shape == (UPRIGHT_H, UPRIGHT_W, 3)
    np.testing.assert_allclose(_blob(frames[0], 0), HEAD, atol=1.0)    # head on top
    np.testing.assert_allclose(_blob(frames[0], 2), FEET, atol=1.0)
    small = next(iter(iter_frames(phone, max_side=80)))                 # scaled, still upright
    assert small.shape == (80, 48, 3)


def test_phone_clip_gives_an_upright_skeleton(phone, tmp_path):
    detector = BlobDetector()
    result = run_inference(phone, tmp_path / "out", InferOptions(smooth=0.0, viewer=False),
                           model=tiny_model(), detector=detector)
    assert set(detector.shapes) == {(UPRIGHT_H, UPRIGHT_W, 3)}
    poses = result.poses
    assert tuple(poses.image_size) == (UPRIGHT_W, UPRIGHT_H)
    kp = poses.keypoints2d[:, 0]                                        # H36M-17, upright pixels
    head, feet = kp[:, 10], kp[:, [3, 6]].mean(axis=1)                  # head top, mean ankle
    np.testing.assert_allclose(head[:, 0], feet[:, 0], atol=2.0)        # one above the other
    assert (feet[:, 1] - head[:, 1] > 80).all()                         # head above the feet
    assert kp[..., 0].max() < UPRIGHT_W and kp[..., 1].max() < UPRIGHT_H


def noisy_clip(path: Path, frames: int = 30) -> Path:
    """Random frames (every frame costs real bytes) with the index at the front (faststart), as
    phones and web downloads have it: cutting the file keeps the declared frame count."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_truncated_video_warns_with_both_counts(tmp_path):
    full = noisy_clip(tmp_path / "full.mp4")
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert count_frames(cut) == 30                                      # the container still says 30
    with pytest.warns(PoseCliWarning, match=r"cut\.mp4: decoded (\d+) of the 30 frames") as caught:
        frames = list(iter_frames(cut))
    assert 0 < len(frames) < 30 and f"decoded {len(frames)} of the 30" in str(caught[0].message)
    with pytest.warns(PoseCliWarning) as none:
        list(iter_frames(full))
        import warnings
        warnings.warn("sentinel", PoseCliWarning)
    assert [str(w.message) for w in none] == ["sentinel"]               # a whole file: no warning


def _coco_results(frames: int) -> list[dict]:
    kp = np.concatenate([COCO_STANDING, np.full((17, 1), 0.9, np.float32)], axis=1)
    return [{"image_id": f, "keypoints": kp.ravel().tolist()} for f in range(frames)]


def test_keypoints_longer_than_the_video_are_refused(tmp_path, capsys):
    video = make_video(tmp_path / "five.mp4", frames=5)
    kp = tmp_path / "kp.json"
    kp.write_text(json.dumps(_coco_results(2000)))
    with pytest.raises(SystemExit) as info:
        main(["infer", str(video), "--out", str(tmp_path / "out"), "--keypoints", str(kp)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {kp}: keypoints cover 2,000 frames but the video has 5: not this video's "
                      "keypoints? (trim the file to the video)"]
    assert not (tmp_path / "out").exists()


def test_keypoints_frame_bounds_before_allocating(tmp_path):
    kp = tmp_path / "far.json"
    results = _coco_results(1)
    results[0]["image_id"] = 300_000_000
    kp.write_text(json.dumps(results))
    with pytest.raises(PoseCliError, match="far.json: keypoints cover 300,000,001 frames but the video has 5"):
        read_keypoints(kp, video_frames=5)
    results[0]["image_id"] = 3e12
    kp.write_text(json.dumps(results))
    with pytest.raises(PoseCliError, match="over the limit of 10,000,000"):
        read_keypoints(kp)
    short = tmp_path / "short.json"
    short.write_text(json.dumps(_coco_results(3)))
    frames = read_keypoints(short, video_frames=5)                      # the rest: nobody detected
    assert [len(f) for f in frames] == [1, 1, 1, 0, 0]
