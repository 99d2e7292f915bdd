"""What `posecli infer` adds for the world frame: arrays in poses.npz and, on request, BVH/TRC files.

Kept apart from the pipeline so the pipeline's change is one call: compute (before the output
folder is opened, so a refused export writes nothing), then write inside the atomic folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posecli.infer.intrinsics import camera_intrinsics, video_tags
from posecli.infer.outputs import PoseSequence
from posecli.infer.world import WorldPoses, locate
from posecli.infer.world_export import export_texts, write_exports


@dataclass
class WorldOutputs:
    poses: WorldPoses
    focal_source: str                                     # focal | fov | metadata | default
    fps: float
    motion_files: dict[str, str | np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The poses.npz keys of the world frame."""
        camera = self.poses.camera
        return {"root_camera": self.poses.root_camera, "keypoints3d_world": self.poses.keypoints3d_world,
                "contact": self.poses.contact, "camera_intrinsics": camera.intrinsics.astype(np.float64),
                "camera_rotation": camera.R, "camera_translation": camera.t,
                "camera_source": np.str_(f"focal: {self.focal_source}; up: {self.poses.up_source}")}

    def write_motion_files(self, folder: Path) -> list[Path]:
        return write_exports(folder, self.motion_files, self.fps)


def world_outputs(poses: PoseSequence, options, video: Path) -> WorldOutputs:
    """Root trajectory, world frame, contact, and the BVH/TRC texts `options` asks for."""
    tags = video_tags(video) if options.focal is None and options.fov is None else None
    intrinsics, source = camera_intrinsics(poses.image_size, focal=options.focal, fov=options.fov, tags=tags)
    confidence = np.where(poses.valid[..., None], poses.confidence, 0.0)
    world = locate(poses.keypoints2d, confidence, poses.keypoints3d, intrinsics, poses.fps, poses.image_size,
                   smooth=max(options.smooth, 0.0), fix_feet=options.fix_feet)
    formats = tuple(f for f, wanted in (("bvh", options.bvh), ("trc", options.trc)) if wanted)
    files = export_texts(world.keypoints3d_world, poses.track_ids, poses.fps, formats, Path(video).stem, video,
                         fill_gaps=options.fill_gaps) if formats else {}
    return WorldOutputs(world, source, poses.fps, files)
