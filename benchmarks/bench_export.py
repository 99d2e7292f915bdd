"""Figures for the world trajectory, foot contact, BVH/TRC export (docs/inference.md, "World frame").

    python benchmarks/bench_export.py [--data DIR] [--takes 8] [--blender] [--videos CLIP.mp4 ...]

1. CMU test takes (Li 2018 positions, resampled to 50 Hz) filmed by posecli's virtual cameras
   (posecli.data.readers.mocap.film, known intrinsics); the bundled default lifter lifts the exact
   2D; posecli.infer.world.locate recovers the pelvis in the camera frame. Reports the root error
   (mm), its ratio to the subject's distance, the error of "up" (degrees) and foot skating
   (mean horizontal ankle speed in contact) before and after the clean-up, beside the ground truth's.
2. With --blender (and Blender on PATH): CMU takes -> BVH -> Blender's importer -> joint positions,
   compared with posecli's positions after the bone-length equalisation, and with the input.
3. Per --videos clip: `posecli infer` (default model, BlazePose), foot skating before and after
   the clean-up, and the time `export_poses` takes from poses.npz to BVH / TRC files.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
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

    from posecli.infer.export import load_lifter
    from posecli.infer.world import foot_contact, gravity_frame, locate, remove_foot_sliding, skating_speed
    from posecli.families.lifter.predict import lift_sequence

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


def blender_round_trip(data: Path, count: int) -> None:
    """CMU test takes (ground-truth world positions) -> BVH -> Blender's importer -> positions."""
    from posecli.infer.blender_check import blender_available, blender_positions
    from posecli.infer.bvh_export import bvh_text, fit_skeleton, forward_kinematics

    if not blender_available():
        print("blender round trip: Blender is not on PATH, skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name, world, _, fps in cmu_takes(data, count):
            skeleton = fit_skeleton(world, fps)
            path = Path(tmp) / "take.bvh"
            path.write_text(bvh_text(skeleton))
            back = blender_positions(path)
            equalised = forward_kinematics(skeleton)
            vs_eq = np.linalg.norm(back - equalised, axis=-1) * 1000
            vs_raw = np.linalg.norm(back - world, axis=-1) * 1000
            eq = np.linalg.norm(equalised - world, axis=-1) * 1000
            print(f"blender {name:34s} {len(world):4d} frames: vs posecli after equalisation max {vs_eq.max():.4f} "
                  f"mean {vs_eq.mean():.4f} mm; vs the input positions max {vs_raw.max():.1f} mean "
                  f"{vs_raw.mean():.1f} mm (equalisation alone: max {eq.max():.1f} mean {eq.mean():.1f} mm)")


def video_figures(video: Path, checkpoint: str) -> None:
    """infer on a real clip, then foot skating before/after the clean-up and the export time."""
    from posecli.infer.pipeline import InferOptions, run_inference
    from posecli.infer.world import foot_contact, remove_foot_sliding, skating_speed
    from posecli.infer.world_export import export_poses

    with tempfile.TemporaryDirectory() as tmp:
        result = run_inference(video, Path(tmp) / "out", InferOptions(checkpoint=checkpoint, viewer=False))
        npz = Path(tmp) / "out" / "poses.npz"
        with np.load(npz) as data:
            world, contact, valid = data["keypoints3d_world"], data["contact"], data["valid"]
            source, fps = str(data["camera_source"]), float(data["fps"])
        fixed = remove_foot_sliding(world, contact)
        print(f"{video.name}: {result.poses.num_frames} frames ({result.poses.num_frames / fps:.1f} s), "
              f"{result.poses.num_tracks} tracks, camera {source}; contact {contact[valid].mean() * 100:.0f} % of "
              f"foot-frames; skating {skating_speed(world, contact, fps) * 100:.1f} cm/s before, "
              f"{skating_speed(fixed, contact, fps) * 100:.1f} cm/s after the clean-up "
              f"(contact re-detected after: {foot_contact(fixed, fps)[valid].mean() * 100:.0f} %)")
        for formats in (("bvh",), ("trc",), ("bvh", "trc")):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                export_poses(npz, formats, Path(tmp) / "export")
                times.append(time.perf_counter() - t0)
            print(f"  export {'+'.join(formats)}: {min(times):.3f} s (best of 3, {result.poses.num_tracks} tracks, "
                  f"from poses.npz to files)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--takes", type=int, default=8)
    parser.add_argument("--videos", type=Path, nargs="*", default=[])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--blender", action="store_true")
    args = parser.parse_args()
    trajectory(args.data, args.takes)
    if args.blender:
        blender_round_trip(args.data, min(args.takes, 4))
    for video in args.videos:
        video_figures(video, args.checkpoint)


if __name__ == "__main__":
    main()
