"""Synthetic caches for the engine tests: a random-walk skeleton with 3D + intrinsics, projected
with a pinhole camera, written with posecli.data.cache.write_cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli.data.cameras import H36M_LIKE_INTRINSICS, project
from posecli.data.cache import write_cache
from posecli.data.records import ReaderResult, SequenceRecord
from posecli.skeleton import H36M_BONES, NUM_JOINTS

# A standing person (metres, camera frame: x right, y down), joint order H36M-17.
REST = np.array([
    [0, 0, 0], [-0.13, 0, 0], [-0.13, 0.45, 0], [-0.13, 0.9, 0], [0.13, 0, 0], [0.13, 0.45, 0],
    [0.13, 0.9, 0], [0, -0.25, 0], [0, -0.5, 0], [0, -0.6, 0], [0, -0.75, 0], [0.18, -0.48, 0],
    [0.45, -0.48, 0], [0.7, -0.48, 0], [-0.18, -0.48, 0], [-0.45, -0.48, 0], [-0.7, -0.48, 0],
], dtype=np.float32)


def random_walk_sequence(rng: np.random.Generator, length: int, depth: float = 5.0) -> np.ndarray:
    """[T, 17, 3] camera-frame poses: bone directions start from a random perturbation of the rest
    pose (so sequences differ) and drift by a small random walk."""
    parents = {child: parent for parent, child in H36M_BONES}
    drift = rng.normal(0, 0.3, (1, NUM_JOINTS, 3)) + np.cumsum(rng.normal(0, 0.02, (length, NUM_JOINTS, 3)), axis=0)
    pose = np.zeros((length, NUM_JOINTS, 3), np.float32)
    for child in range(1, NUM_JOINTS):
        bone = REST[child] - REST[parents[child]]
        direction = bone + drift[:, child] * np.linalg.norm(bone)
        direction *= np.linalg.norm(bone) / np.linalg.norm(direction, axis=-1, keepdims=True)
        pose[:, child] = pose[:, parents[child]] + direction
    root = np.array([0.0, 0.0, depth]) + np.cumsum(rng.normal(0, 0.005, (length, 3)), axis=0)
    return (pose + root[:, None]).astype(np.float32)


def make_cache(path: Path, *, sequences: int = 3, length: int = 40, with3d: bool = True,
               seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(sequences):
        pose3d = random_walk_sequence(rng, length)
        records.append(SequenceRecord(
            keypoints2d=project(pose3d, H36M_LIKE_INTRINSICS).astype(np.float32),
            confidence=np.ones((length, NUM_JOINTS), np.float32),
            keypoints3d=pose3d if with3d else None, subject=f"S{i}", action="walk", camera="c0",
            intrinsics=H36M_LIKE_INTRINSICS.copy(), image_size=(1000.0, 1000.0), fps=50.0))
    result = ReaderResult(records=records, dataset="synthetic", source_layout="h36m17",
                          joint_status=np.zeros(NUM_JOINTS, np.uint8), sources=[])
    return write_cache(Path(path), result, split="train")
