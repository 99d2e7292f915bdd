"""Read a BVH back through Blender's own importer (headless), for the round-trip check.

`blender -b --python-expr` imports the file with `bpy.ops.import_anim.bvh` and writes every joint's
world position per frame (the pose bones' heads) to a JSON file, which is mapped back from
Blender's z-up axes to the BVH's y-up metres. Used by the test that skips without Blender and by
benchmarks/bench_export.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from posecli.errors import PoseCliError
from posecli.infer.bvh_export import BVH_NAMES, UNITS_PER_METRE

_SCRIPT = """
import builtins, bpy, json
import io_anim_bvh.import_bvh as importer
# Blender 3.4's importer opens files with mode 'rU', which Python 3.11 refuses (Debian's build
# runs on the system Python): give it plain 'r', the same thing on Python 3.
importer.open = lambda path, mode='r', *a, **k: builtins.open(path, mode.replace('U', ''), *a, **k)
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath={bvh!r}, global_scale={scale!r}, frame_start=1, use_fps_scale=False,
                        update_scene_fps=True, update_scene_duration=True, rotate_mode='NATIVE',
                        axis_forward='-Z', axis_up='Y')
arm = [o for o in bpy.context.scene.objects if o.type == 'ARMATURE'][0]
scene = bpy.context.scene
out = []
for f in range(1, {frames} + 1):
    scene.frame_set(f)
    out.append([list(arm.matrix_world @ arm.pose.bones[n].head) for n in {names!r}])
json.dump({{"fps": scene.render.fps / scene.render.fps_base, "positions": out}}, open({out!r}, "w"))
"""


def _frame_count(bvh: Path) -> int:
    with open(bvh, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("Frames:"):
                return int(line.split(":")[1])
    raise PoseCliError("BVH has no 'Frames:' line", bvh)


def blender_available() -> bool:
    return shutil.which("blender") is not None


def blender_positions(bvh: str | Path, timeout: float = 300.0) -> np.ndarray:
    """[T, 17, 3] joint positions (metres, the BVH's y-up frame) as Blender animates the file."""
    if not blender_available():
        raise PoseCliError("Blender is not on PATH (apt-get install blender)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "positions.json"
        frames = _frame_count(Path(bvh))
        script = _SCRIPT.format(bvh=str(Path(bvh).resolve()), scale=1.0 / UNITS_PER_METRE, frames=frames,
                                names=list(BVH_NAMES), out=str(out))
        run = subprocess.run(["blender", "-b", "--factory-startup", "--python-expr", script],
                             capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0 or not out.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PoseCliError(f"Blender could not import the BVH ({tail[0]})", bvh)
        data = json.loads(out.read_text())
    z_up = np.asarray(data["positions"], dtype=np.float64)
    return np.stack([z_up[..., 0], z_up[..., 2], -z_up[..., 1]], axis=-1)    # Blender (x, -z, y) -> BVH (x, y, z)
