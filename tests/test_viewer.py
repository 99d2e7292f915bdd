"""viewer.html: self-contained (no network), and it draws in a real headless Chromium when present."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from posecli.infer.outputs import PoseSequence
from posecli.infer.viewer import MARKER, render_viewer, write_viewer

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync"]


def _poses(frames: int = 12, missing: int | None = 4) -> PoseSequence:
    rng = np.random.default_rng(0)
    pose = rng.normal(0.0, 0.3, size=(17, 3)).astype(np.float32)
    pose -= pose[0]
    kp3 = np.repeat(pose[None, None], frames, axis=0)
    valid = np.ones((frames, 1), bool)
    if missing is not None:                                       # a frame without the person
        valid[missing] = False
        kp3[missing] = np.nan
    return PoseSequence(np.zeros((frames, 1, 17, 2), np.float32), valid[..., None] * np.ones(17, np.float32),
                        np.array([0]), kp3, valid, np.zeros_like(valid), 25.0, (640, 480))


def test_viewer_is_self_contained_and_embeds_the_poses():
    html = render_viewer(_poses(), title="clip</script>.mp4")
    assert MARKER not in html and "</script>.mp4" not in html      # the title cannot close the script
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)   # no CDN, no network
    data = json.loads(re.search(r"const DATA = (.*);\n", html).group(1).replace("<\\/", "</"))
    assert data["num_frames"] == 12 and data["fps"] == 25.0 and len(data["bones"]) == 16
    assert data["tracks"][0]["poses"][4] is None and len(data["tracks"][0]["poses"][0]) == 17


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_viewer_draws_in_headless_chromium(tmp_path):
    page = tmp_path / "viewer.html"
    write_viewer(page, _poses(), title="test")
    run = _chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom",
                     page.as_uri()], tmp_path)
    status = re.search(r'<div id="status">([^<]*)</div>', run.stdout)
    assert status, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [] and status.group(1).startswith("ok frames=12 tracks=1 start=0 pixels=")
    pixels = [int(n) for n in status.group(1).split("pixels=")[1].split(",")]
    assert len(pixels) == 3 and min(pixels) > 200                 # first, middle, last frame drawn

    # The page plays on its own timer and the screenshot lands on any frame: none may be empty.
    write_viewer(page, _poses(missing=None), title="test")
    shot = tmp_path / "shot.png"
    _chromium(["--window-size=800,600", "--virtual-time-budget=3000", f"--screenshot={shot}", page.as_uri()],
              tmp_path)
    import matplotlib.image

    img = (matplotlib.image.imread(shot)[..., :3] * 255).astype(np.uint8)
    assert img.shape[:2] == (600, 800)
    bright = img.max(axis=-1) > 150                               # bones and joints on the dark page
    assert bright[60:560].sum() > 200 and img.std() > 5


def _late_poses() -> PoseSequence:
    """One person seen only from frame 5 of 10 on."""
    poses = _poses(10)
    poses.valid[:5] = False
    poses.keypoints3d[:5] = np.nan
    return poses


def test_viewer_data_names_the_video_relatively(tmp_path):
    from posecli.infer.viewer import relative_video, viewer_data

    out = tmp_path / "runs" / "infer" / "clip"
    assert relative_video(tmp_path / "videos" / "clip.mp4", out) == "../../../videos/clip.mp4"
    data = viewer_data(_late_poses(), "clip.mp4", video="render.mp4")
    assert data["video"] == "render.mp4" and data["tracks"][0]["poses"][4] is None
    assert viewer_data(_late_poses(), "clip.mp4")["video"] is None


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_viewer_opens_on_the_first_pose_and_shows_the_video(tmp_path):
    """A track that starts at frame 5: the page opens there (not on an empty grid), hides its
    self-check line, and plays the video beside the 3D view.

    The opening frame is read from the self-check line, not from the label: the video plays on a
    real media clock that --virtual-time-budget does not hold back, so by the time the DOM is dumped
    the label may already show a later frame (or a looped, empty one)."""
    from infer_support import make_video

    make_video(tmp_path / "clip.mp4", frames=10, fps=25.0)
    page = tmp_path / "viewer.html"
    write_viewer(page, _late_poses(), title="late", video="clip.mp4")
    run = _chromium(["--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=200",
                     "--dump-dom", page.as_uri()], tmp_path)
    status = re.search(r'<div id="status">([^<]*)</div>', run.stdout)
    assert status, run.stderr[-2000:]
    assert status.group(1).startswith("ok frames=10 tracks=1 start=5 pixels="), status.group(1)
    label = re.search(r'<span id="label">frame (\d+) / 9, (\d) (person|people)</span>', run.stdout)
    assert label, run.stdout[-2000:]
    assert label.group(2) == ("1" if int(label.group(1)) >= 5 else "0")      # drawn for the frame shown
    video = re.search(r'<video id="video"[^>]*>', run.stdout)
    assert video and 'src="clip.mp4"' in video.group(0), run.stdout[-2000:]
    assert "#status { display: none; }" in page.read_text()
