"""The record every reader returns and every cache stores: one sequence of one person.

A single photo is a sequence of length 1. Keypoints are already in the canonical H36M-17 order
(posecli.skeleton converts), 2D in image pixels, 3D in metres in the camera frame.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class SequenceRecord:
    keypoints2d: np.ndarray                 # float32 [T, 17, 2], image pixels
    confidence: np.ndarray                  # float32 [T, 17], 0 = missing
    keypoints3d: np.ndarray | None = None   # float32 [T, 17, 3], metres, camera frame
    subject: str = ""
    action: str = ""
    camera: str = ""
    intrinsics: np.ndarray | None = None    # float32 [4]: fx, fy, cx, cy in pixels
    image_size: tuple[float, float] | None = None  # (width, height) in pixels
    fps: float = 0.0                        # 0 for unordered photos
    frame_names: list[str] | None = None    # per frame, e.g. image file names

    def __len__(self) -> int:
        return int(self.keypoints2d.shape[0])


@dataclass
class ReaderResult:
    """What a reader hands to the cache writer: records plus the facts the summary reports."""

    records: list[SequenceRecord]
    dataset: str
    source_layout: str                      # the layout the data came in (posecli.skeleton name)
    joint_status: np.ndarray                # uint8 [17], posecli.skeleton.JointStatus per H36M joint
    sources: list[Path]
    dropped: Counter = field(default_factory=Counter)   # reason -> persons/frames dropped
    notes: list[str] = field(default_factory=list)       # facts the summary should show


@dataclass
class PrepareOptions:
    """Options of `posecli prepare`; each reader uses the ones that apply to its format."""

    split: str = "all"                      # train / test / val / all; dataset-specific meaning
    subjects: list[str] | None = None       # explicit subject list overrides the split's default
    exclude: Path | None = None             # text file of image names to drop (e.g. MPII val)
    allow_pickle: bool = False
    cameras: int = 4                        # virtual cameras for mocap
    fps: float | None = None                # resample mocap to this rate (e.g. 50)
    seed: int = 0
    detector: str | None = None             # e.g. VideoPose3D 2D detections name ("cpn_ft_h36m_dbb")
    images: Path | None = None              # image folder (image family, later)
    units: float | None = None              # metres per BVH/ASF file unit (None = ASF :units or a guess)
    bone_lengths: Path | None = None        # 3D cache whose median bone lengths mocap takes get (rig mapping)
