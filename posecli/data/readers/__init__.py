"""Registry of `posecli prepare` formats: name -> "module:function".

Every reader has the signature `read(inputs: list[Path], options: PrepareOptions) -> ReaderResult`
and returns records already converted to H36M-17 (posecli.skeleton). Modules import lazily so a
format's optional dependencies cost nothing to the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from posecli.data.records import PrepareOptions, ReaderResult
from posecli.errors import PoseCliError

Reader = Callable[[list[Path], PrepareOptions], ReaderResult]

FORMATS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line description shown by `posecli prepare --help`)
    "coco": ("posecli.data.readers.coco:read_coco", "COCO person keypoints JSON or COCO results JSON"),
    "crowdpose": ("posecli.data.readers.coco:read_crowdpose", "CrowdPose COCO-style JSON (14 joints)"),
    "aic": ("posecli.data.readers.coco:read_aic", "AI Challenger COCO-style JSON (14 joints)"),
    "halpe": ("posecli.data.readers.coco:read_halpe", "Halpe COCO-style JSON (26/136 joints)"),
    "posetrack18": ("posecli.data.readers.coco:read_posetrack18", "PoseTrack18 JSON, frames grouped by video"),
    "mpii": ("posecli.data.readers.mpii:read_mpii", "MPII: Kaggle CSV, hourglass .h5, H36M-ordered .npy, mmpose JSON"),
    "h36m": ("posecli.data.readers.h36m:read_h36m", "Human3.6M: VideoPose3D npz layout or mmpose annotation npz"),
    "3dhp": ("posecli.data.readers.threedhp:read_3dhp", "MPI-INF-3DHP: mmpose npz or VideoPose3D-style npz"),
    "3dpw": ("posecli.data.readers.threedpw:read_3dpw", "3DPW sequence files (SMPL-24 joints)"),
    "humaneva": ("posecli.data.readers.humaneva:read_humaneva", "HumanEva-I, VideoPose3D npz layout (15 joints)"),
    "mocap": ("posecli.data.readers.mocap:read_mocap",
              "CMU mocap (positions npz, expmap txt), BVH and ASF/AMC, seen by virtual cameras"),
    "lsp": ("posecli.data.readers.lsp:read_lsp", "Leeds Sports Pose joints.mat (14 joints; photos via --images)"),
    "custom": ("posecli.data.readers.custom:read_custom", "posecli's documented JSON/CSV layout for your own keypoints"),
}


def get_reader(name: str) -> Reader:
    try:
        target = FORMATS[name][0]
    except KeyError:
        raise PoseCliError(f"unknown format '{name}' (known: {', '.join(FORMATS)})") from None
    module_name, func = target.split(":")
    return getattr(importlib.import_module(module_name), func)
