"""Camera devices and stream URLs as `posecli infer` input: recorded first, then processed as a file.

A live source cannot be read twice, but the pipeline reads its video more than once (detection,
then render.mp4 and the image-family crops) and the viewer plays it beside the 3D view. So the
source's packets are copied without re-encoding (no quality loss, almost no CPU) into
`stream.mkv` in the output folder until `--max-frames` packets arrived, the stream ended, or the
user pressed Ctrl-C; the recording is complete and playable in every one of those cases (written
to a temp file and renamed), and the rest of infer then runs on it like on any video file.

Matroska is used because it takes every codec a camera or stream sends (H.264, MJPEG, raw video).
A source is a URL (anything with "://": rtsp, rtmp, http, udp, srt, ...) or a device path; Linux
cameras (/dev/video*) open with FFmpeg's v4l2 input. The same code opens a plain file, which is
how the tests exercise it.
"""

from __future__ import annotations

from pathlib import Path

from posecli.atomic import atomic_output
from posecli.errors import PoseCliError, warn
from posecli.infer.video import _av, _reason

RECORDING = "stream.mkv"   # the recorded source, in the output folder


def is_stream(source: str | Path) -> bool:
    """A URL (scheme://...) or a camera device (/dev/video*), not a file or folder of images."""
    text = str(source)
    return "://" in text or text.startswith("/dev/video")


def stream_name(source: str) -> str:
    """A folder name for the default output: the URL's last path part or the device name."""
    tail = source.split("://", 1)[-1].rstrip("/").split("?")[0]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in tail.rsplit("/", 1)[-1])
    return name or "stream"


def _open(source: str):
    av = _av()
    options = {"format": "v4l2"} if source.startswith("/dev/video") else {}
    try:
        return av.open(source, mode="r", timeout=10.0, **options)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PoseCliError(f"{source}: cannot open the camera or stream ({_reason(exc)})") from None


def _packets(container, stream):
    """The source's video packets (a function of its own so tests can interrupt it)."""
    return container.demux(stream)


def record_stream(source: str | Path, path: Path, max_frames: int | None = None) -> int:
    """Copy the source's first video stream into `path` (Matroska, no re-encoding) until
    `max_frames` packets, the end of the stream, or Ctrl-C; returns the frames recorded."""
    av = _av()
    # The source is named inside messages: a URL given as an error's path would lose a slash.
    source = str(source)
    if max_frames is not None and max_frames < 1:
        raise PoseCliError(f"--max-frames must be >= 1, got {max_frames}")
    recorded = 0
    with _open(source) as container:
        if not container.streams.video:
            raise PoseCliError(f"{source}: the camera or stream sends no video")
        stream = container.streams.video[0]
        with atomic_output(path) as tmp:
            with av.open(str(tmp), mode="w", format="matroska") as out:
                copy = (out.add_stream_from_template(stream) if hasattr(out, "add_stream_from_template")
                        else out.add_stream(template=stream))      # PyAV < 14
                try:
                    for packet in _packets(container, stream):
                        if packet.dts is None or not packet.size:
                            continue                  # flush packets carry no picture
                        if recorded == 0 and not packet.is_keyframe:
                            continue                  # joined mid-stream: wait for a whole picture
                        packet.stream = copy
                        out.mux(packet)
                        recorded += 1
                        if max_frames is not None and recorded >= max_frames:
                            break
                except KeyboardInterrupt:
                    warn(f"{source}: stopped by Ctrl-C after {recorded} frames; processing those")
                except av.FFmpegError as exc:
                    if recorded == 0:
                        raise PoseCliError(f"{source}: cannot read the camera or stream ({_reason(exc)})") from None
                    warn(f"{source}: the stream broke off after {recorded} frames ({_reason(exc)}); "
                         "processing those")
            if recorded == 0:
                raise PoseCliError(f"{source}: the camera or stream sent no frames")
    return recorded
