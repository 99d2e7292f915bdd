"""Video decode and H.264 encode with PyAV.

Every decode failure (not a container, no video stream, a codec FFmpeg cannot decode) becomes one
PoseCliError naming the file, so `posecli infer` never shows an FFmpeg traceback. Frames come out
the way a player shows them: the display-matrix rotation phones write (a portrait clip is stored
as landscape frames plus "rotate 90") is applied, so detections and skeletons are upright. A
container that declares more frames than can be decoded (a truncated download) gets a warning
naming both counts instead of silently yielding half the video. The writer
encodes into a temporary file beside the target and renames it only when the stream is closed
cleanly, so a crash never leaves a truncated MP4.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from posecli.atomic import umask_permissions
from posecli.errors import PoseCliError, warn


def _av():
    """Import PyAV lazily: only video commands need it."""
    try:
        import av
    except ImportError:
        raise PoseCliError('PyAV is not installed: pip install "posecli[video]"') from None
    return av


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno noise (e.g. 'Invalid data found when processing input')."""
    return str(getattr(exc, "strerror", None) or exc)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    frames: int          # container's estimate; 0 when the container does not say
    codec: str
    rotation: int = 0    # counter-clockwise degrees (0/90/180/270) applied to every decoded frame;
                         # width and height above are of the upright (rotated) frames


def frame_rotation(frame) -> int:
    """The display-matrix rotation of a decoded frame, snapped to 0/90/180/270 counter-clockwise
    degrees (phones write exact multiples of 90; PyAV reads the DISPLAYMATRIX side data)."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    return int(round(degrees / 90.0)) % 4 * 90


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame [H, W, 3] the way the display matrix says (np.rot90 is counter-clockwise)."""
    k = rotation // 90 % 4
    return rgb if k == 0 else np.ascontiguousarray(np.rot90(rgb, k))


def probe_video(path: str | Path) -> VideoInfo:
    """Open the container and describe its first video stream (raises PoseCliError if unusable)."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise PoseCliError("video file not found", path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise PoseCliError("file has no video stream", path)
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if ctx is None or not ctx.width or not ctx.height:
                raise PoseCliError("video stream has no decodable picture size (damaged or truncated file)", path)
            rate = stream.average_rate or stream.guessed_rate or 0
            rotation = _first_frame_rotation(container, stream)
            width, height = int(ctx.width), int(ctx.height)
            if rotation in (90, 270):
                width, height = height, width
            return VideoInfo(path, width, height, float(rate), int(stream.frames or 0), str(ctx.name), rotation)
    except PoseCliError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise PoseCliError(f"not a readable video ({_reason(exc)})", path) from None


def _first_frame_rotation(container, stream) -> int:
    """Rotation of the first decodable frame (the display matrix is per stream, PyAV shows it per
    frame); 0 when nothing decodes (iter_frames then reports the decode error itself)."""
    try:
        for frame in container.decode(stream):
            return frame_rotation(frame)
    except (_av().FFmpegError, ValueError):   # iter_frames reports it with its frame count
        return 0
    return 0


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the longer side is at most max_side, both even; never enlarged."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2)


def iter_frames(path: str | Path, *, max_frames: int | None = None,
                max_side: int | None = None) -> Iterator[np.ndarray]:
    """Yield upright RGB uint8 frames [H, W, 3] of the first video stream, in display order.

    With `max_side`, frames are scaled down in the same swscale pass that converts them to RGB,
    which costs less than converting at full size (the detector works at 256 px anyway). Reading
    to the end, fewer frames than the container declares gives a warning (truncated file)."""
    av = _av()
    path = Path(path)
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise PoseCliError("file has no video stream", path)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared = int(stream.frames or 0)
            for frame in container.decode(stream):
                w, h = scaled_size(frame.width, frame.height, max_side)
                rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                yield upright(rgb, frame_rotation(frame))
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
    except PoseCliError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise PoseCliError(f"cannot decode video after {count} frames ({_reason(exc)})", path) from None
    check_decoded(path, count, declared)


def check_decoded(path: Path, decoded: int, declared: int) -> None:
    """Warn when a video ends before the frame count its container declares (truncated or
    damaged file): results then cover only the decoded part."""
    if declared > 0 and decoded < declared:
        warn(f"decoded {decoded} of the {declared} frames the container declares (file truncated or "
             f"damaged?); results cover the first {decoded} frames only", path)


def count_frames(path: str | Path) -> int:
    """Frames of the first video stream: the container's count, else its packets counted without
    decoding (fast), so a keypoints file can be checked against the video it belongs to."""
    av = _av()
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise PoseCliError(f"not a readable video ({_reason(exc)})", path) from None


def prefetch(frames: Iterator[np.ndarray], depth: int = 8) -> Iterator[tuple[np.ndarray, float]]:
    """Run a frame iterator in a background thread (FFmpeg releases the GIL while decoding, so it
    overlaps with detection); yields (frame, seconds spent producing it) and re-raises its errors."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                frame = next(frames, None)
                q.put(("frame", frame, time.perf_counter() - t0) if frame is not None else ("end", None, 0.0))
                if frame is None:
                    return
        except BaseException as exc:  # handed to the consumer thread
            q.put(("error", exc, 0.0))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            kind, item, seconds = q.get()
            if kind == "error":
                raise item
            if kind == "end":
                return
            yield item, seconds
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def read_frames(path: str | Path, *, max_frames: int | None = None) -> list[np.ndarray]:
    return list(iter_frames(path, max_frames=max_frames))


class H264Writer:
    """Write RGB frames to an H.264 MP4 atomically (temp file in the target folder, then rename).

    Frame sizes are rounded down to even numbers (yuv420p needs them); `crf` trades size for quality.
    """

    def __init__(self, path: str | Path, fps: float, *, crf: int = 23, preset: str = "veryfast"):
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self._container = None
        self._stream = None
        self._tmp: Path | None = None
        self.frames = 0

    def __enter__(self) -> "H264Writer":
        av = _av()
        fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix=".tmp-", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._container = av.open(tmp, mode="w", format="mp4")
        return self

    def _open_stream(self, width: int, height: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps > 0 else Fraction(30)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream

    def write(self, rgb: np.ndarray) -> None:
        av = _av()
        h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
        if self._stream is None:
            self._open_stream(w, h)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None and self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            if exc_type is None:
                if self.frames == 0:
                    raise PoseCliError("no frames to encode", self.path)
                umask_permissions(self._tmp)
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()
