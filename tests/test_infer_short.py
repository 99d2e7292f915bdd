"""`posecli infer` on a single photo and on clips shorter than the flicker filter's minimum track
length: the person is kept (a track is flicker only in comparison with the clip's length)."""

from __future__ import annotations

import json

import numpy as np
import pytest

av = pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from infer_support import COCO_STANDING, ScriptedDetector, make_video, tiny_model

from posecli.cli import main
from posecli.infer.pipeline import InferOptions, run_inference
from posecli.infer.track import min_track_length, track_detections


def test_min_track_length_is_bounded_by_half_the_clip():
    assert [min_track_length(n, 5) for n in (1, 2, 3, 4, 9, 10, 300)] == [1, 1, 2, 2, 5, 5, 5]
    assert min_track_length(0, 5) == 1 and min_track_length(100, 0) == 1


@pytest.mark.parametrize("frames", [1, 3])
def test_short_clip_gives_a_pose(frames, tmp_path):
    clip = make_video(tmp_path / f"clip{frames}.mp4", frames=frames)
    result = run_inference(clip, tmp_path / "out", InferOptions(smooth=0.0), model=tiny_model(),
                           detector=ScriptedDetector())
    poses = result.poses
    assert poses.num_frames == frames and poses.num_tracks == 1 and poses.valid.all()
    assert np.allclose(poses.keypoints2d[:, 0, 0, 0], 80.0 + np.arange(frames))   # pelvis x, exact
    assert np.isfinite(poses.keypoints3d).all() and np.allclose(poses.keypoints3d[:, 0, 0], 0.0)
    assert (tmp_path / "out" / "poses.npz").is_file() and (tmp_path / "out" / "track_00.csv").is_file()


def test_flicker_is_still_dropped_in_a_short_clip():
    """In a 3-frame clip a detection seen once (one frame of three) is still flicker."""
    from infer_support import coco_person

    from posecli.infer.detector import detection_from_layout

    conf = np.full(17, 0.9, np.float32)
    frames = [[detection_from_layout(coco_person(f), conf, "coco17")]
              + ([detection_from_layout(coco_person(f, 300.0), conf, "coco17")] if f == 1 else [])
              for f in range(3)]
    tracks = track_detections(frames, min_frames=5)
    assert tracks.num_tracks == 1 and tracks.confidence[:, 0].all()


def test_photo_with_own_keypoints_via_cli(tmp_path, capsys):
    """A JPEG photo (one frame) and one COCO detection through the real CLI."""
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(photo)
    kp = np.concatenate([COCO_STANDING, np.full((17, 1), 0.9, np.float32)], axis=1)
    (tmp_path / "kp.json").write_text(json.dumps([{"image_id": 0, "keypoints": kp.ravel().tolist()}]))
    with pytest.raises(SystemExit) as done:
        main(["infer", str(photo), "--out", str(tmp_path / "run"), "--keypoints", str(tmp_path / "kp.json")])
    assert done.value.code == 0, capsys.readouterr().err
    saved = np.load(tmp_path / "run" / "poses.npz")
    assert saved["keypoints3d"].shape[:2] == (1, 1) and saved["valid"].all()
    assert np.isfinite(saved["keypoints3d"]).all()


def test_summary_counts_are_english():
    from posecli.cli.infer import counted

    assert [counted(1, "track"), counted(2, "track"), counted(0, "frame")] == ["1 track", "2 tracks", "0 frames"]
