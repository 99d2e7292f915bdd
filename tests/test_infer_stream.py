"""Camera and stream input (posecli.infer.stream), exercised with files opened as file:// URLs:
the same PyAV code path a camera or an rtsp:// source takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from infer_support import ScriptedDetector, make_video, tiny_model

import posecli.infer.stream as stream
from posecli.errors import PoseCliError, PoseCliWarning
from posecli.infer.pipeline import InferOptions, run_inference
from posecli.infer.video import read_frames


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    return "file://" + str(make_video(tmp_path_factory.mktemp("video") / "camera.mp4", frames=30).resolve())


def test_sources_that_are_streams():
    assert stream.is_stream("rtsp://cam.local:554/live") and stream.is_stream("/dev/video0")
    assert not stream.is_stream("clip.mp4") and not stream.is_stream("photos/*.jpg")
    assert stream.stream_name("rtsp://cam.local:554/live/main?user=x") == "main"
    assert stream.stream_name("/dev/video0") == "video0" and stream.stream_name("udp://:5000") == "_5000"


def test_max_frames_stops_the_recording_and_the_rest_is_processed(url, tmp_path):
    out = tmp_path / "out"
    result = run_inference(url, out, InferOptions(viewer=False, max_frames=12), model=tiny_model(),
                           detector=ScriptedDetector())
    assert result.poses.num_frames == 12 and result.poses.valid.all()
    recorded = read_frames(out / stream.RECORDING)
    assert len(recorded) == 12
    # Copied, not re-encoded: the recording decodes to exactly the source's first 12 frames.
    assert all(np.array_equal(a, b) for a, b in zip(recorded, read_frames(url.removeprefix("file://"))[:12]))
    assert (out / "poses.npz").exists() and out / stream.RECORDING in result.files


def test_ctrl_c_ends_the_recording_cleanly_with_outputs_written(url, tmp_path, monkeypatch):
    def interrupted(container, source):
        for n, packet in enumerate(container.demux(source)):
            if n == 9:
                raise KeyboardInterrupt
            yield packet

    monkeypatch.setattr(stream, "_packets", interrupted)
    out = tmp_path / "out"
    with pytest.warns(PoseCliWarning, match="stopped by Ctrl-C after 9 frames"):
        result = run_inference(url, out, InferOptions(viewer=False), model=tiny_model(), detector=ScriptedDetector())
    assert result.poses.num_frames == 9 and len(read_frames(out / stream.RECORDING)) == 9
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temp file left


def test_bad_sources_are_one_line_errors(url, tmp_path):
    with pytest.raises(PoseCliError, match="^file:///nonexistent/cam.mp4: cannot open the camera or stream"):
        stream.record_stream("file:///nonexistent/cam.mp4", tmp_path / "a.mkv")
    assert not (tmp_path / "a.mkv").exists()
    with pytest.raises(PoseCliError, match="--max-frames is for a camera or stream"):
        run_inference(url.removeprefix("file://"), tmp_path / "b", InferOptions(max_frames=5), model=tiny_model(),
                      detector=ScriptedDetector())
    with pytest.raises(PoseCliError, match="--max-frames"):
        run_inference(url, tmp_path / "c", InferOptions(max_frames=0), model=tiny_model(), detector=ScriptedDetector())
