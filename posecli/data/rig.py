"""A 3D cache's rig proportions: the reference that `posecli prepare mocap --bone-lengths` maps
another mocap rig onto.

Mocap rigs put the H36M joints at different places on the body (median shoulder width 0.40 m in
the Li-2018 CMU skeleton, 0.23 m in the cgspeed BVH rig, 0.47 m in HDM05's), so training on a mix
of rigs teaches a blend of joint definitions. Giving every take one rig's bone lengths (keeping
each bone's direction, posecli.geometry.retarget) makes the 3D targets one definition again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli.data.cache import open_cache
from posecli.errors import PoseCliError
from posecli.geometry import bone_lengths
from posecli.skeleton import H36M_BONES, JointStatus

SAMPLE_EVERY = 25   # frames: medians over every 25th frame are stable and cheap on large caches


def cache_bone_lengths(path: str | Path, every: int = SAMPLE_EVERY) -> np.ndarray:
    """Median length (metres) of each H36M bone [len(H36M_BONES)] over every `every`-th frame of a
    3D cache; NaN for a bone with a joint the cache's rig lacks."""
    with open_cache(path, in_memory=False) as cache:
        if not cache.has3d:
            raise PoseCliError("has no 3D keypoints: bone lengths need a 3D cache (posecli prepare mocap/h36m)", path)
        poses = np.asarray(cache.keypoints3d[::every], dtype=np.float64)
        present = np.asarray(cache.joint_status) != JointStatus.MISSING
    lengths = np.median(bone_lengths(poses), axis=0)
    for k, (a, b) in enumerate(H36M_BONES):
        if not (present[a] and present[b]):
            lengths[k] = np.nan
        elif not 0.005 < lengths[k] < 2.0:
            raise PoseCliError(f"median bone length {lengths[k]:.3g} m between joints {a} and {b} is not a "
                               "human bone in metres", path)
    return lengths
