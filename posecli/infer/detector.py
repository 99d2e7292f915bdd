"""2D person keypoints per frame: the Detection type, the Detector protocol, and MediaPipe's legacy
one-person BlazePose as an optional alternative.

posecli's default detector is posecli.infer.blazepose (every person, bundled models, no MediaPipe).
`BlazePoseDetector` here runs MediaPipe's `mediapipe.solutions.pose` instead, for comparisons
(benchmarks/bench_infer.py --detector mediapipe, benchmarks/bench_wild.py); that API exists only
in mediapipe <= 0.10.21 (Python <= 3.12; 0.10.30 removed it), and with a newer mediapipe it says
so in one line. BlazePose gives 33 landmarks; posecli.skeleton's `blazepose33` layout turns them
into H36M-17 with per-joint confidence (the landmark visibility), and its own metric 3D
(`pose_world_landmarks`, hip-centred, x right, y down) the same way; posecli's lifter never reads
that 3D (it would tie the model to one detector), benchmarks compare against it. Only
model_complexity=1 is used: its weights ship inside the mediapipe wheel, whereas complexity 2 would
download at run time. MediaPipe is imported lazily and is never required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from posecli.errors import PoseCliError
from posecli.skeleton import convert_to_h36m

INSTALL_HINT = ('MediaPipe is not installed (optional, for comparisons: pip install "mediapipe==0.10.21" on '
                'Python <= 3.12); posecli\'s own detector needs none')


@dataclass
class Detection:
    """One person in one frame, already in H36M-17 order, pixels."""

    keypoints: np.ndarray   # float32 [17, 2]
    confidence: np.ndarray  # float32 [17], 0 = missing
    score: float            # person score (mean confidence of the observed joints)
    world3d: np.ndarray | None = None  # float32 [17, 3] metres: the detector's own 3D, if it has one
    # A detector that follows people from frame to frame (posecli.infer.blazepose) gives each one an
    # id; equal ids in consecutive frames are the same person followed, which the tracker trusts.
    follow_id: int | None = None


class Detector(Protocol):
    def __call__(self, frame_rgb: np.ndarray) -> list[Detection]: ...

    def close(self) -> None: ...


def detection_from_layout(keypoints: np.ndarray, confidence: np.ndarray, layout: str,
                          world3d: np.ndarray | None = None) -> Detection:
    """Convert one person of any registered layout (and its 3D landmarks, if any) to a Detection."""
    kp, conf = convert_to_h36m(keypoints, confidence, layout)
    seen = conf > 0
    world = None if world3d is None else convert_to_h36m(world3d, confidence, layout)[0]
    return Detection(kp, conf, float(conf[seen].mean()) if seen.any() else 0.0, world)


def legacy_pose_solution():
    """mediapipe.solutions.pose, or one clear error naming the installed version that lacks it."""
    try:
        import mediapipe
    except ImportError:
        raise PoseCliError(INSTALL_HINT) from None
    try:
        from mediapipe.python.solutions import pose
    except ImportError:
        version = getattr(mediapipe, "__version__", "?")
        raise PoseCliError(f"mediapipe {version} has no legacy solutions API (removed in 0.10.30); "
                           "install mediapipe==0.10.21 for this comparison detector, or use posecli's own") from None
    return pose


class BlazePoseDetector:
    """MediaPipe BlazePose full (model_complexity=1) in video mode: one person per frame."""

    layout = "blazepose33"

    def __init__(self, *, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 static_image_mode: bool = False):
        mp_pose = legacy_pose_solution()
        self._pose = mp_pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=1,
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def __call__(self, frame_rgb: np.ndarray) -> list[Detection]:
        result = self._pose.process(frame_rgb)
        if result.pose_landmarks is None:
            return []
        h, w = frame_rgb.shape[:2]
        marks = result.pose_landmarks.landmark
        kp = np.array([[m.x * w, m.y * h] for m in marks], dtype=np.float32)
        vis = np.array([m.visibility for m in marks], dtype=np.float32).clip(0.0, 1.0)
        world = None
        if result.pose_world_landmarks is not None:
            world = np.array([[m.x, m.y, m.z] for m in result.pose_world_landmarks.landmark], dtype=np.float32)
        return [detection_from_layout(kp, vis, self.layout, world)]

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "BlazePoseDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
