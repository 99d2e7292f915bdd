"""Figures for the world trajectory, foot contact, BVH/TRC export (docs/inference.md, "World frame").

    python benchmarks/bench_export.py [--data DIR] [--takes 8] [--blender]

1. CMU test takes (Li 2018 positions, resampled to 50 Hz) filmed by posecli's virtual cameras
   (posecli.data.readers.mocap.film, known intrinsics); the bundled default lifter lifts the exact
   2D; posecli.infer.world.locate recovers the pelvis in the camera frame. Reports the root error
   (mm), its ratio to the subject's distance, the error of "up" (degrees) and foot skating
   (mean horizontal ankle speed in contact) before and after the clean-up, beside the ground truth's.
2. Export speed: BVH and TRC for a synthetic 7.7 s, 30 fps, one-person poses file.
3. With --blender (and Blender on PATH): the BVH round trip through Blender's importer.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posecli.data.readers.mocap import film, load_world_sequences, resample  # noqa: E402
from posecli.skeleton import convert_to_h36m  # noqa: E402


def default_data() -> Path:
    return Path(os.environ.get("POSECLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def cmu_takes(data: Path, count: int, fps: float = 50.0):
    npz = data / "mocap" / "cmu_expmap_li2018" / "cmu_li2018_positions38_120fps.npz"
    takes = [s for s in load_world_sequences([npz]) if s.split == "test"]
    step = max(1, len(takes) // count)
    for seq in takes[::step][:count]:
        world, conf = convert_to_h36m(seq.positions, None, seq.layout)
        yield f"{seq.action}/{seq.name}", resample(world, seq.fps, fps), conf[0], fps


def trajectory(data: Path, count: int) -> None:
    import torch

    from posecli.infer.pipeline import load_lifter
    from posecli.infer.world import foot_contact, gravity_frame, locate, remove_foot_sliding, skating_speed
    from posecli.predict import lift_sequence

    torch.set_num_threads(2)
    model = load_lifter("default")
    rows = []
    for name, world, conf, fps in cmu_takes(data, count):
        rng = np.random.default_rng(0)
        views = [v for v in film(world.astype(np.float64), conf, 2, rng) if v is not None]
        for cam_name, kp3d, kp2d, intrinsics, size in views:
            c = np.broadcast_to(conf, kp2d.shape[:2]).astype(np.float32)
            lifted = lift_sequence(model, kp2d, c)
            lifted = lifted - lifted[:, :1]
            t0 = time.perf_counter()
            out = locate(kp2d[:, None], c[:, None], lifted[:, None], intrinsics, fps, size)
            seconds = time.perf_counter() - t0
            root_gt = kp3d[:, 0].astype(np.float64)
            err = np.linalg.norm(out.root_camera[:, 0] - root_gt, axis=-1)
            dist = np.linalg.norm(root_gt, axis=-1)
            # "up" of the ground truth in the camera frame: the world y axis seen by this camera.
            rot_gt, _, _ = gravity_frame(kp3d[:, None].astype(np.float64))
            up_est = out.camera.R[:, 1]
            gt_world = kp3d[:, None].astype(np.float64) @ rot_gt.T
            gt_world[..., 1] -= np.percentile(gt_world[..., [3, 6], 1].min(-1), 5) - 0.08
            contact_gt = foot_contact(gt_world.astype(np.float32), fps)
            up_true = _true_up(kp3d, world)
            rows.append(dict(
                name=f"{name}@{cam_name}", frames=len(kp2d), err=err.mean(), ratio=(err / dist).mean(),
                depth_err=np.abs(out.root_camera[:, 0, 2] - root_gt[:, 2]).mean(),
                up_deg=np.degrees(np.arccos(np.clip(up_est @ up_true, -1, 1))), source=out.up_source,
                skate_gt=skating_speed(gt_world, contact_gt, fps),
                skate=skating_speed(out.keypoints3d_world, out.contact, fps),
                skate_fixed=skating_speed(remove_foot_sliding(out.keypoints3d_world, out.contact), out.contact, fps),
                contact=out.contact.mean(), seconds=seconds))
    print(f"{'take@camera':44s} {'frames':>6s} {'root mm':>8s} {'ratio %':>8s} {'depth mm':>8s} "
          f"{'up deg':>6s} {'up from':>7s} {'skate gt':>8s} {'skate':>6s} {'fixed':>6s} (cm/s)")
    for r in rows:
        print(f"{r['name']:44s} {r['frames']:6d} {r['err'] * 1000:8.0f} {r['ratio'] * 100:8.2f} "
              f"{r['depth_err'] * 1000:8.0f} {r['up_deg']:6.1f} {r['source']:>7s} {r['skate_gt'] * 100:8.1f} "
              f"{r['skate'] * 100:6.1f} {r['skate_fixed'] * 100:6.1f}")
    frames = np.array([r["frames"] for r in rows], float)
    mean = lambda k: float(np.nansum([r[k] * f for r, f in zip(rows, frames)]) / frames.sum())  # noqa: E731
    print(f"frame-weighted mean over {len(rows)} views: root {mean('err') * 1000:.0f} mm "
          f"({mean('ratio') * 100:.2f} % of the distance), depth {mean('depth_err') * 1000:.0f} mm, "
          f"up {np.mean([r['up_deg'] for r in rows]):.1f} deg; skating gt {mean('skate_gt') * 100:.1f}, "
          f"estimate {mean('skate') * 100:.1f}, after clean-up {mean('skate_fixed') * 100:.1f} cm/s; "
          f"contact {mean('contact') * 100:.0f} % of foot-frames")


def _true_up(kp3d_cam: np.ndarray, world: np.ndarray) -> np.ndarray:
    """World +y in camera coordinates, from the rigid map between the take's world and camera poses."""
    a = world.reshape(-1, 3) - world.reshape(-1, 3).mean(0)
    b = kp3d_cam.reshape(-1, 3) - kp3d_cam.reshape(-1, 3).mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    r = (u @ np.diag([1, 1, d]) @ vt).T          # camera = r @ world
    return r[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--takes", type=int, default=8)
    args = parser.parse_args()
    trajectory(args.data, args.takes)


if __name__ == "__main__":
    main()
