"""Every person in a frame: MediaPipe's BlazePose models run directly with the LiteRT interpreter.

MediaPipe's Python solution follows one person and needs `mediapipe.solutions`, which newer
MediaPipe releases removed; the Tasks API needs a downloaded bundle. So posecli ships the two
Apache-2.0 BlazePose models (posecli/infer/models/README.md) and runs the graph itself:

1. detector: the frame letterboxed to 224x224 -> SSD over 2254 fixed anchors -> boxes + 4
   keypoints per person (0 = hip centre, 1 = a point on the circle around the body) -> weighted
   non-maximum suppression;
2. region of interest (ROI): a square centred on the hip centre, side 2.5x the hip-to-point-1
   distance, rotated so the body stands upright (BlazePose's alignment rule);
3. landmark model on the 256x256 rotated crop of each ROI: 39 landmarks (33 body + 2 that give
   the next frame's ROI), visibility, a presence score, and 39 world landmarks in metres;
4. between frames each person is followed by the ROI of its own landmarks (cheap, stable) under
   one `follow_id`, which the tracker trusts; the detector runs again, while fewer than
   `max_people` are followed, every `detect_every` frames (to find people who entered) and on the
   frame after someone was lost. The presence flag (a probability) decides who is reported; a
   person already followed survives up to `follow_frames` frames where it fails (flips).

Coordinates are handled in pixels throughout, so non-square frames need no special case.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError
from posecli.geometry import box_iou
from posecli.infer.detector import Detection, detection_from_layout
from posecli.infer.track import similarity

MODELS = Path(__file__).parent / "models"
DETECTOR_MODEL = MODELS / "pose_detection.tflite"
LANDMARK_MODEL = MODELS / "pose_landmark_full.tflite"
INSTALL_HINT = 'the LiteRT runtime is not installed: pip install "posecli[video]"'
DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 39            # 33 body landmarks + 2 ROI landmarks + 4 unused
BODY_LANDMARKS = 33
ROI_SCALE = 1.25              # BlazePose enlarges the aligned square by this factor


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def _interpreter(model: Path, threads: int):
    """A LiteRT interpreter for one bundled model (ai-edge-litert, or tflite-runtime/tensorflow
    where one of those is what is installed)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise PoseCliError(INSTALL_HINT) from None
    if not model.is_file():
        raise PoseCliError("bundled detector model is missing; reinstall posecli", model)
    with _native_stderr_silenced():        # LiteRT's C++ prints "INFO: Created ... delegate" here
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration: native libraries write their log
    lines there, below Python's sys.stderr. Python exceptions still propagate with their message."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PoseCliError('OpenCV is not installed: pip install "posecli[video]"') from None
    return cv2


def ssd_anchors() -> np.ndarray:
    """Anchor centres [2254, 2] (x, y in [0, 1]) of BlazePose's detector: strides 8, 16, 32, 32, 32,
    two anchors per layer (layers of equal stride share one grid), fixed anchor size 1."""
    strides = (8, 16, 32, 32, 32)
    centres = []
    layer = 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])
        cells = math.ceil(DETECTOR_SIZE / strides[layer])
        grid = (np.arange(cells) + 0.5) / cells
        x, y = np.meshgrid(grid, grid)
        xy = np.stack([x.ravel(), y.ravel()], axis=-1)
        centres.append(np.repeat(xy, 2 * same, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


ANCHORS = ssd_anchors()


@dataclass(frozen=True)
class Roi:
    """A rotated square region of a frame, in pixels; angle in radians (BlazePose's convention)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop_to_image(self, size: int) -> np.ndarray:
        """2x3 affine taking crop pixels (u, v) of a size x size crop to frame pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.side / size
        a = np.array([[c * k, -s * k], [s * k, c * k]])
        b = np.array([self.cx, self.cy]) - a @ np.array([size / 2, size / 2])
        return np.concatenate([a, b[:, None]], axis=1)

    def box(self) -> np.ndarray:
        """Axis-aligned [x0, y0, x1, y1] of the unrotated square (for overlap tests)."""
        h = self.side / 2
        return np.array([self.cx - h, self.cy - h, self.cx + h, self.cy + h])


def aligned_roi(start: np.ndarray, end: np.ndarray) -> Roi:
    """BlazePose's alignment rule: centre at `start` (hip centre), side 2 * |end - start| * 1.25,
    rotated so that start -> end points up."""
    dx, dy = float(end[0] - start[0]), float(end[1] - start[1])
    angle = math.pi / 2 - math.atan2(-dy, dx)
    angle = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    return Roi(float(start[0]), float(start[1]), 2 * math.hypot(dx, dy) * ROI_SCALE, angle)


def detection_tiles(height: int, width: int) -> list[tuple[int, int, int | None]]:
    """(x0, y0, side) of the detector's passes over a frame: the whole frame (side None), plus,
    when the frame is wider or taller than 4:3, squares of the short side spread evenly along the
    long side so that they overlap and cover it."""
    tiles: list[tuple[int, int, int | None]] = [(0, 0, None)]
    short, long = min(height, width), max(height, width)
    if long <= short * 4 / 3:
        return tiles
    count = math.ceil(long / short)
    for i in range(count):
        start = round(i * (long - short) / (count - 1))
        tiles.append((start, 0, short) if width >= height else (0, start, short))
    return tiles


def same_person(a: Roi, b: Roi) -> bool:
    """Two regions on one person: centres (hip centres) closer than a third of the smaller side,
    or heavily overlapping squares."""
    near = math.hypot(a.cx - b.cx, a.cy - b.cy) < min(a.side, b.side) / 3
    return near or box_iou(a.box(), b.box()) > 0.5


def decode_detections(raw: np.ndarray, logits: np.ndarray, min_score: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSD output [2254, 12] + score logits [2254] -> boxes [N, 4] (x0, y0, x1, y1), keypoints
    [N, 4, 2] (both in the 224 input's [0, 1] coordinates) and scores [N], above `min_score`."""
    scores = _sigmoid(logits)
    keep = scores >= min_score
    raw, anchors, scores = raw[keep] / DETECTOR_SIZE, ANCHORS[keep], scores[keep]
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None]
    return boxes, keypoints, scores


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3
                 ) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each group of boxes overlapping the best
    remaining one by more than `iou` becomes one person, its keypoints the score-weighted mean.
    Returns (keypoints [4, 2], score) per person, best first."""
    order = list(np.argsort(-scores))
    people = []
    while order:
        top = order[0]
        group = [i for i in order if box_iou(boxes[top], boxes[i]) > iou]
        w = scores[group][:, None, None]
        people.append(((keypoints[group] * w).sum(0) / w.sum(), float(scores[top])))
        order = [i for i in order if i not in group]
    return people


@dataclass
class _Followed:
    roi: Roi
    follow_id: int      # the same while this person is followed from frame to frame
    present: int        # the last frame whose presence flag passed


class BlazePoseMultiDetector:
    """Up to `max_people` people per frame with BlazePose full (see the module docstring).

    Frames are RGB uint8 [H, W, 3]; call `reset()` between unrelated images (photos) so that no
    region is carried over from the previous one.
    """

    layout = "blazepose33"

    def __init__(self, *, max_people: int = 4, min_detection: float = 0.5, min_presence: float = 0.5,
                 detect_every: int = 5, follow_frames: int = 10, threads: int = 2):
        if max_people < 1:
            raise PoseCliError(f"--max-people must be >= 1, got {max_people}")
        self.max_people = max_people
        self.min_detection = min_detection
        self.min_presence = min_presence
        self.detect_every = max(1, detect_every)
        self.follow_frames = follow_frames
        self._detector = _interpreter(DETECTOR_MODEL, threads)
        self._landmarks = _interpreter(LANDMARK_MODEL, threads)
        self._det_in = self._detector.get_input_details()[0]["index"]
        det_out = {d["shape"][-1]: d["index"] for d in self._detector.get_output_details()}
        self._det_boxes, self._det_scores = det_out[12], det_out[1]
        self._lm_in = self._landmarks.get_input_details()[0]["index"]
        lm_out = {int(np.prod(d["shape"])): d["index"] for d in self._landmarks.get_output_details()}
        self._lm_points, self._lm_presence, self._lm_world = lm_out[195], lm_out[1], lm_out[117]
        self._followed: list[_Followed] = []
        self._next_id = 0
        self._frame = 0
        self._lost = False
        self.timings = {"detector": 0.0, "landmarks": 0.0}
        self.detector_runs = 0

    # ------------------------------------------------------------ the two models

    def detect(self, frame: np.ndarray) -> list[tuple[Roi, float]]:
        """Run the person detector on the whole frame and on square tiles along its long side
        (at 224 px a person in a wide frame is too small to be found): (ROI, score) per person,
        best first, duplicates across tiles merged."""
        found = [p for x0, y0, side in detection_tiles(*frame.shape[:2])
                 for p in self._detect_square(frame, x0, y0, side)]
        found.sort(key=lambda p: -p[1])
        people: list[tuple[Roi, float]] = []
        for roi, score in found:
            if not any(same_person(roi, kept) for kept, _ in people):
                people.append((roi, score))
        return people

    def _detect_square(self, frame: np.ndarray, x0: int, y0: int, side: int | None
                       ) -> list[tuple[Roi, float]]:
        """The detector on one square tile (side None = the whole frame, letterboxed)."""
        cv2 = _cv2()
        if side is not None:
            frame = frame[y0:y0 + side, x0:x0 + side]
        h, w = frame.shape[:2]
        scale = DETECTOR_SIZE / max(h, w)
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (DETECTOR_SIZE - rw) // 2, (DETECTOR_SIZE - rh) // 2
        canvas = np.full((DETECTOR_SIZE, DETECTOR_SIZE, 3), -1.0, np.float32)
        small = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_AREA)
        canvas[pad_y:pad_y + rh, pad_x:pad_x + rw] = small.astype(np.float32) / 127.5 - 1.0
        self._detector.set_tensor(self._det_in, canvas[None])
        self._detector.invoke()
        raw = self._detector.get_tensor(self._det_boxes)[0]
        logits = self._detector.get_tensor(self._det_scores)[0, :, 0]
        boxes, keypoints, scores = decode_detections(raw, logits, self.min_detection)
        offset = np.array([pad_x, pad_y], np.float32)
        origin = np.array([x0, y0], np.float32)
        people = []
        for kp, score in weighted_nms(boxes, keypoints, scores):
            px = (kp * DETECTOR_SIZE - offset) / scale + origin
            people.append((aligned_roi(px[0], px[1]), score))
        return people

    def landmarks(self, frame: np.ndarray, roi: Roi
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Landmark model on one ROI: frame-pixel landmarks [39, 2], visibility [39], world
        landmarks [39, 3] (metres, hip-centred, turned back by the ROI's rotation), presence."""
        cv2 = _cv2()
        to_image = roi.crop_to_image(LANDMARK_SIZE)
        crop = cv2.warpAffine(frame, to_image, (LANDMARK_SIZE, LANDMARK_SIZE),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._landmarks.set_tensor(self._lm_in, (crop.astype(np.float32) / 255.0)[None])
        self._landmarks.invoke()
        raw = self._landmarks.get_tensor(self._lm_points)[0].reshape(NUM_LANDMARKS, 5)
        # The presence flag is already a probability (the model ends in a sigmoid); a second
        # sigmoid would map every output, however low, to >= 0.5 and pass any region as a person.
        presence = float(self._landmarks.get_tensor(self._lm_presence)[0, 0])
        world = self._landmarks.get_tensor(self._lm_world)[0].reshape(NUM_LANDMARKS, 3).copy()
        points = raw[:, :2] @ to_image[:, :2].T + to_image[:, 2]
        visibility = _sigmoid(raw[:, 3])
        c, s = math.cos(roi.angle), math.sin(roi.angle)
        world[:, :2] = world[:, :2] @ np.array([[c, s], [-s, c]])
        return points.astype(np.float32), visibility.astype(np.float32), world, presence

    # ------------------------------------------------------------ per frame

    def reset(self) -> None:
        """Forget the people followed so far (the next frame runs the detector)."""
        self._followed = []
        self._frame = 0
        self._lost = False

    def __call__(self, frame_rgb: np.ndarray) -> list[Detection]:
        """The people in one frame of a video, each with the `follow_id` of its chain of regions.

        A person is reported in the frames where the landmark model's presence flag passes
        `min_presence`, but followed on through up to `follow_frames` frames where it does not:
        in a flip or a cartwheel the flag drops for a few frames at a time while the region still
        turns with the body, and dropping the person there would lose them to the detector, which
        does not find people upside down. A region from the detector must pass at once."""
        import time

        frame = np.ascontiguousarray(frame_rgb)
        height, width = frame.shape[:2]
        now = self._frame
        rois = [(f.roi, f.follow_id, f.present) for f in self._followed]
        due = now % self.detect_every == 0 or self._lost
        if not rois or (due and len(rois) < self.max_people):   # nobody new could be added otherwise
            t0 = time.perf_counter()
            for roi, _ in self.detect(frame):
                if len(rois) >= self.max_people:
                    break
                if not any(same_person(roi, r) for r, _, _ in rois):
                    rois.append((roi, self._next_id, now))
                    self._next_id += 1
            self.timings["detector"] += time.perf_counter() - t0
            self.detector_runs += 1
        self._frame += 1
        t0 = time.perf_counter()
        followed: list[tuple[_Followed, Detection]] = []
        reported: list[Detection] = []
        for roi, follow_id, present in rois:              # people followed first, then new ones
            points, visibility, world, presence = self.landmarks(frame, roi)
            passes = presence >= self.min_presence
            if not passes and (present == now or now - present > self.follow_frames):
                continue                                  # a new region that is nobody, or lost
            hip = points[BODY_LANDMARKS]
            if not (0 <= hip[0] < width and 0 <= hip[1] < height):
                continue                                  # walked out of the frame: lost, not a ghost
            next_roi = aligned_roi(hip, points[BODY_LANDMARKS + 1])
            body = slice(0, BODY_LANDMARKS)
            det = detection_from_layout(points[body], visibility[body].clip(0.0, 1.0), self.layout)
            if any(same_person(next_roi, other.roi) or similarity(kept.keypoints, kept.confidence, det) > 0.5
                   for other, kept in followed):
                continue                                  # two regions ended on one person
            det.world3d = detection_from_layout(world[body], visibility[body].clip(0.0, 1.0),
                                                self.layout).keypoints
            det.follow_id = follow_id
            followed.append((_Followed(next_roi, follow_id, now if passes else present), det))
            if passes:
                reported.append(det)
        self.timings["landmarks"] += time.perf_counter() - t0
        self._lost = len(reported) < len(rois)
        self._followed = [f for f, _ in followed]
        return reported

    def close(self) -> None:
        self._detector = self._landmarks = None

    def __enter__(self) -> "BlazePoseMultiDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
