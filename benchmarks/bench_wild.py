"""The in-the-wild scoreboard: posecli's lifter against MediaPipe's own 3D on calibrated real video,
plus cross-dataset P-MPJPE on mocap the model was not trained on.

    python benchmarks/bench_wild.py [--checkpoint default|CKPT] [--quick] [--no-upright]
        [--video-dir DIR] [--hdm05 caches/hdm05-test.h5] [--dance caches/dance-test.h5]
        [--cmu-test caches/mocap-test.h5] [--work-dir runs/bench-wild]

1. Wild (pose2sim's 4 synchronised, calibrated portrait views, Calib.qca.txt): BlazePose (posecli's
   detector, as `posecli infer` runs it) on every frame of each view gives 2D + confidence and
   MediaPipe's `pose_world_landmarks`, both mapped to H36M-17 by the blazepose33 layout. Pseudo
   ground truth = the 4 views' 2D (undistorted) triangulated by confidence-weighted DLT, dropping
   views whose 2D reprojects further than 40 px (`--max-reprojection`); its mean reprojection error
   in pixels checks the calibration. Per view, P-MPJPE (mm) of (a) posecli's
   lifter on that view's 2D + confidence, through infer's own tracking / gap filling / smoothing /
   lifting path, (b) MediaPipe's world landmarks, on the same frames, and (c) the lifter given the
   reference projected into the view (a perfect detector's 2D: splits the lifter's own error from
   the detector's). Scored on the 15 joints whose definitions agree between BlazePose and mocap (all but neck/nose and head, which BlazePose
   puts at the nose and the eye midpoint: the pseudo ground truth inherits them) and on all 17.
   It also prints how stable the reference is (each view left out in turn, bone-length spread),
   each camera's roll and pitch from the calibration, and the lifter's roll sensitivity (each
   view's 2D made upright, then rolled to +-15 and +-30 degrees about its principal point).
   The detector output is cached per view in `<work-dir>/detections/` (npz), so reruns with another
   checkpoint take seconds.
2. Cross-dataset (ground-truth 2D through virtual cameras, clean and with detector noise, `posecli
   eval --input-noise`), each set also re-filmed by wide cameras (WIDE_CAMERAS, at least WIDE_MIN_CAMERAS per set,
   the wild recipe's distribution: users' footage is not shot by H36M-like cameras), and once more
   by the same cameras rolled up to 30 degrees (ROLLED_CAMERAS, clean 2D): HDM05 test actors (mm, tr; CC BY-SA 3.0, test only), the held-out CMU
   dance takes (posecli.data.splits.CMU_DANCE_TEST) and the CMU Li-2018 test split. A section whose
   cache is missing is skipped with the command that prepares it (the dance hold-out is prepared
   into the work dir from ../shared/data when its BVH files are there).

--quick: the first 20 frames of each view and 8 sequences of each cache (a smoke run, not figures).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posecli.atomic import atomic_output
from posecli.data.qualisys import QcaCamera, distort_points, read_qca, undistort_points
from posecli.data.splits import CMU_DANCE_TEST
from posecli.errors import PoseCliError
from posecli.data.rig import cache_bone_lengths
from posecli.geometry import bone_lengths, retarget, rotate_xy
from posecli.metrics import masked_mean, p_mpjpe_errors
from posecli.eval.triangulate import reprojection_errors, triangulate_consistent
from posecli.infer.detector import Detection
from posecli.infer.sides import consistent_sides, mirror_groups
from posecli.skeleton import H36M_BONES, H36M_JOINTS, NUM_JOINTS

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSECLI_SHARED_DATA", REPO.parent / "shared" / "data"))
VIDEO_DIR = SHARED / "video" / "pose2sim_singleperson"
DANCE_BVH_DIR = SHARED / "mocap" / "cmu_bvh_dance_martial"
CMU_NPZ = SHARED / "mocap" / "cmu_expmap_li2018" / "cmu_li2018_positions38_120fps.npz"
VIEWS = ("cam01", "cam02", "cam03", "cam04")
# BlazePose puts H36M's neck/nose at the nose and its head at the eye midpoint; mocap puts them at
# the top of the neck and the head top. The other 15 joints mean the same thing in both.
DEFINITION_CONSISTENT = tuple(j for j in range(NUM_JOINTS) if H36M_JOINTS[j] not in ("neck", "head"))
ALL_JOINTS = tuple(range(NUM_JOINTS))
# A view is dropped from a joint's triangulation when its 2D reprojects further than this. It is
# set above BlazePose's ordinary error on these 1920 px views (a subject ~1000 px tall: 40 px is
# 4 %) so that most joints keep 3-4 views (2-view pairs have short baselines and poor depth), and
# far below its gross failures (left/right swaps, guessed occluded limbs: > 100 px). Pose2Sim's
# 15 px default, set for its own detector, leaves many 2-view points; no threshold lets gross
# failures in. The benchmark prints both as a sensitivity check of the reference.
MAX_REPROJECTION_PX = 40.0
SENSITIVITY_PX = (15.0, float("inf"))
QUICK_FRAMES = 20
QUICK_SEQUENCES = 8
DETECTIONS_VERSION = 1
UPRIGHT = True              # lifter windows turned upright as infer and eval do (`--no-upright`: not)


# ---------------------------------------------------------------- detections (cached)

@dataclass
class ViewDetections:
    keypoints2d: np.ndarray   # float32 [F, 17, 2] pixels, NaN where nobody was detected
    confidence: np.ndarray    # float32 [F, 17], 0 where nobody was detected
    world3d: np.ndarray       # float32 [F, 17, 3] metres (MediaPipe world landmarks), NaN where none
    fps: float
    image_size: tuple[int, int]

    @property
    def num_frames(self) -> int:
        return len(self.confidence)

    def detections(self) -> list[list[Detection]]:
        """Per frame, the detections posecli infer's tracker takes (at most one person here)."""
        out = []
        for kp, conf, world in zip(self.keypoints2d, self.confidence, self.world3d):
            seen = conf > 0
            out.append([Detection(np.nan_to_num(kp), conf, float(conf[seen].mean()), world)] if seen.any() else [])
        return out


def _cache_key(video: Path, frames: int | None) -> dict:
    from posecli.infer.pipeline import DETECT_SIDE

    return {"version": DETECTIONS_VERSION, "video_bytes": video.stat().st_size, "detect_side": DETECT_SIDE,
            "max_frames": -1 if frames is None else frames}


def open_detector(name: str):
    """`bundled`: the multi-person BlazePose `posecli infer` runs (LiteRT), following one person;
    `mediapipe`: MediaPipe's own one-person BlazePose (mediapipe <= 0.10.21)."""
    if name == "mediapipe":
        from posecli.infer.detector import BlazePoseDetector

        return BlazePoseDetector()
    from posecli.infer.blazepose import BlazePoseMultiDetector

    return BlazePoseMultiDetector(max_people=1)


def detect_view(video: Path, cache_dir: Path, frames: int | None,
                detector_name: str = "bundled") -> tuple[ViewDetections, bool]:
    """BlazePose on the video as `posecli infer` runs it, cached in
    `cache_dir/<video stem>[-<detector>].npz`. Returns the detections and whether they came from the cache."""
    from posecli.infer.pipeline import DETECT_SIDE, detect_video
    from posecli.infer.video import probe_video

    key = _cache_key(video, frames)
    suffix = "" if detector_name == "mediapipe" else f"-{detector_name}"      # mediapipe: the first caches
    path = cache_dir / f"{video.stem}{'' if frames is None else f'-first{frames}'}{suffix}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if all(k in data.files and int(data[k]) == v for k, v in key.items()):
                return ViewDetections(data["keypoints2d"], data["confidence"], data["world3d"], float(data["fps"]),
                                      (int(data["image_size"][0]), int(data["image_size"][1]))), True
    info = probe_video(video)
    with open_detector(detector_name) as detector:
        found = detect_video(info, detector, None, DETECT_SIDE, max_frames=frames)
    n = len(found)
    kp = np.full((n, NUM_JOINTS, 2), np.nan, np.float32)
    conf = np.zeros((n, NUM_JOINTS), np.float32)
    world = np.full((n, NUM_JOINTS, 3), np.nan, np.float32)
    for f, people in enumerate(found):
        if people:
            best = max(people, key=lambda d: d.score)
            kp[f], conf[f] = best.keypoints, best.confidence
            if best.world3d is not None:
                world[f] = best.world3d
    fps = info.fps if info.fps > 0 else 30.0
    result = ViewDetections(kp, conf, world, fps, (info.width, info.height))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, keypoints2d=kp, confidence=conf, world3d=world, fps=np.float64(fps),
                                image_size=np.array(result.image_size, np.int64),
                                **{k: np.int64(v) for k, v in key.items()})
    return result, False


# ---------------------------------------------------------------- lifting (infer's own path)

def lift_view(view: ViewDetections, model: torch.nn.Module, fix_sides: bool = True,
              upright: bool | None = None) -> np.ndarray:
    """posecli infer's 3D for the view's main track: [F, 17, 3] metres, NaN where it has no pose.
    `upright` None = the benchmark's setting (UPRIGHT, `--no-upright`)."""
    from posecli.infer.pipeline import InferOptions, track_people, track_poses

    options = InferOptions(viewer=False, fix_sides=fix_sides, upright=UPRIGHT if upright is None else upright)
    tracks = track_people(view.detections(), view.fps, options)
    out = np.full((view.num_frames, NUM_JOINTS, 3), np.nan, np.float32)
    if tracks.num_tracks == 0:
        return out
    poses = track_poses(tracks, view.fps, view.image_size, model, options)
    best = int(poses.valid.sum(axis=0).argmax())
    ok = poses.valid[:, best]
    out[ok] = poses.keypoints3d[ok, best]
    return out


# ---------------------------------------------------------------- scoring

@dataclass
class ViewScore:
    frames: int
    lifter: dict[str, float]          # joint set name -> P-MPJPE mm
    mediapipe: dict[str, float]
    lifter_joint: np.ndarray          # [17] mm (aligned on the 15 joints; NaN for neck/head)
    mediapipe_joint: np.ndarray
    lifter_joint17: np.ndarray        # [17] mm (aligned on all 17)
    mediapipe_joint17: np.ndarray


JOINT_SETS = {"15": DEFINITION_CONSISTENT, "17": ALL_JOINTS}


def p_mpjpe_on(pred_m: np.ndarray, gt_m: np.ndarray, valid: np.ndarray, joints: tuple[int, ...]
               ) -> tuple[float, np.ndarray]:
    """P-MPJPE (mm) aligned and averaged over `joints` where `valid` [N, 17]; plus per-joint means."""
    mask = valid.copy()
    mask[:, [j for j in range(NUM_JOINTS) if j not in joints]] = False
    errors = p_mpjpe_errors(np.nan_to_num(pred_m) * 1000.0, np.nan_to_num(gt_m) * 1000.0, mask)
    score = masked_mean(errors, mask)
    if score.count == 0:
        raise PoseCliError("nothing was scored: no frame has a pose from both methods and a triangulated reference")
    per_joint = np.array([masked_mean(errors[:, j], mask[:, j]).value for j in range(NUM_JOINTS)])
    return score.value, per_joint


def score_view(lifted: np.ndarray, world: np.ndarray, gt: np.ndarray, gt_valid: np.ndarray) -> ViewScore:
    """Both methods on the same frames and joints: frames where the lifter and MediaPipe have a
    pose, joints the reference triangulated (frames with fewer than 4 such joints are left out)."""
    frames = np.isfinite(lifted).all(axis=(1, 2)) & np.isfinite(world).all(axis=(1, 2))
    valid = frames[:, None] & gt_valid
    valid[valid.sum(axis=1) < 4] = False
    frames = valid.any(axis=1)
    lifter, mediapipe, joints = {}, {}, {}
    for name, joint_set in JOINT_SETS.items():
        lifter[name], joints[("l", name)] = p_mpjpe_on(lifted, gt, valid, joint_set)
        mediapipe[name], joints[("m", name)] = p_mpjpe_on(world, gt, valid, joint_set)
    return ViewScore(int(frames.sum()), lifter, mediapipe, joints[("l", "15")], joints[("m", "15")],
                     joints[("l", "17")], joints[("m", "17")])


def reference_view(view: ViewDetections, camera: QcaCamera, gt: np.ndarray, gt_valid: np.ndarray) -> ViewDetections:
    """The view as a perfect detector would see it: the triangulated reference projected through the
    view's calibration (lens distortion included) at confidence 1, the detector's own 2D where the
    reference has no joint, frames without a detection kept empty. Lifting it separates the lifter's
    own error from the detector's 2D error."""
    n = len(gt)
    projected = distort_points(camera.camera.project_world(np.nan_to_num(gt)), camera.camera.intrinsics,
                               camera.distortion).astype(np.float32)
    seen = view.confidence[:n].sum(axis=1) > 0
    use = gt_valid & seen[:, None]
    keypoints = np.where(use[..., None], projected, view.keypoints2d[:n])
    confidence = np.where(use, 1.0, view.confidence[:n]).astype(np.float32)
    return ViewDetections(keypoints, confidence, view.world3d[:n], view.fps, view.image_size)


def camera_tilt(camera) -> tuple[float, float]:
    """(roll, pitch) in degrees of a calibrated camera whose world is z-up (Qualisys): roll = the
    angle of world up in the image from straight up (rotating the 2D by -roll makes the view
    upright), pitch = the optical axis above (+) or below (-) the horizon."""
    up = camera.R @ np.array([0.0, 0.0, 1.0])
    axis = camera.R.T @ np.array([0.0, 0.0, 1.0])
    return float(np.degrees(np.arctan2(up[0], -up[1]))), float(np.degrees(np.arcsin(np.clip(axis[2], -1, 1))))


def rolled_view(view: ViewDetections, camera: QcaCamera, degrees: float) -> ViewDetections:
    """The view's 2D rotated by `degrees` about the principal point: what the camera would see
    rolled by that much about its optical axis (exact for a pinhole with square pixels; the lens
    distortion is left as it is)."""
    centre = camera.camera.intrinsics[2:4].astype(np.float64)
    keypoints = (rotate_xy(view.keypoints2d.astype(np.float64) - centre, np.deg2rad(degrees)) + centre).astype(np.float32)
    return ViewDetections(keypoints, view.confidence, view.world3d, view.fps, view.image_size)


def wild_cameras(video_dir: Path) -> dict[str, QcaCamera]:
    cameras = {c.camera.name: c for c in read_qca(video_dir / "Calib.qca.txt")}
    missing = [v for v in VIEWS if v not in cameras]
    if missing:
        raise PoseCliError(f"calibration has no camera '{missing[0]}'", video_dir / "Calib.qca.txt")
    return cameras


def run_wild(args: argparse.Namespace, model: torch.nn.Module) -> None:
    video_dir = args.video_dir
    if not all((video_dir / f"{v}.mp4").is_file() for v in VIEWS) or not (video_dir / "Calib.qca.txt").is_file():
        print(f"[wild] skipped: {video_dir} lacks cam01..04.mp4 / Calib.qca.txt")
        return
    frames = QUICK_FRAMES if args.quick else None
    cameras = wild_cameras(video_dir)
    t0 = time.perf_counter()
    views, cached = {}, []
    for v in VIEWS:
        views[v], hit = detect_view(video_dir / f"{v}.mp4", args.work_dir / "detections", frames, args.detector)
        cached.append(hit)
        cam = cameras[v].camera
        if views[v].image_size != cam.image_size:
            print(f"[wild] note: {v}.mp4 is {views[v].image_size[0]}x{views[v].image_size[1]}, its calibration "
                  f"{cam.image_size[0]}x{cam.image_size[1]} (used as is, as Pose2Sim does)")
    detect_s = time.perf_counter() - t0
    n = min(view.num_frames for view in views.values())
    pts = np.stack([undistort_points(views[v].keypoints2d[:n], cameras[v].camera.intrinsics, cameras[v].distortion)
                    for v in VIEWS])
    conf = np.stack([views[v].confidence[:n] for v in VIEWS])
    cams = [cameras[v].camera for v in VIEWS]
    gt, gt_valid, used = triangulate_consistent(pts, conf, cams, max_error_px=args.max_reprojection)
    reproj = reprojection_errors(gt, pts, np.where(used, conf, 0.0), cams)
    # posecli infer keeps left and right with the body (posecli.infer.sides) before lifting; the
    # same relabelling, applied to each view's 2D here, is what the trajectory fit must be given.
    sides = {v: consistent_sides(views[v].keypoints2d[:n, None], views[v].confidence[:n, None]).mirrored
             for v in VIEWS}
    lifted_2d = np.stack([mirror_groups(pts[i][:, None], sides[v])[:, 0] for i, v in enumerate(VIEWS)])
    lifted_conf = np.stack([mirror_groups(conf[i][:, None], sides[v])[:, 0] for i, v in enumerate(VIEWS)])
    t1 = time.perf_counter()
    lifted = {v: lift_view(views[v], model)[:n] for v in VIEWS}
    lift_s = time.perf_counter() - t1
    scores = {v: score_view(lifted[v], views[v].world3d[:n], gt, gt_valid) for v in VIEWS}
    at_ref_lengths = {v: score_view(retarget(lifted[v], bone_lengths(gt)), retarget(views[v].world3d[:n], bone_lengths(gt)),
                                    gt, gt_valid) for v in VIEWS}
    perfect_2d = {v: score_view(lift_view(reference_view(views[v], cameras[v], gt, gt_valid), model)[:n],
                            views[v].world3d[:n], gt, gt_valid) for v in VIEWS}

    print(f"\n== Wild: pose2sim, {len(VIEWS)} views x {n} frames, checkpoint {args.checkpoint}, detector {args.detector}, upright windows {'on' if UPRIGHT else 'off'} ==")
    print(f"detections: {'cached' if all(cached) else 'BlazePose'} ({detect_s:.1f} s); lifting {lift_s:.1f} s; "
          f"pseudo ground truth: DLT of the 4 views' 2D (confidence-weighted, >= 2 views at confidence >= 0.3, "
          f"views dropped until each reprojects within {args.max_reprojection:g} px)")
    print(f"reference: {gt_valid.mean():.1%} of joints triangulated, {used.sum(axis=0)[gt_valid].mean():.2f} views "
          f"per joint, {int(gt_valid.all(axis=1).sum())}/{n} frames with all 17; mean "
          f"reprojection error {np.nanmean(reproj):.2f} px (" + ", ".join(
              f"{v} {np.nanmean(reproj[i]):.2f}" for i, v in enumerate(VIEWS))
          + f"), median {np.nanmedian(reproj):.2f} px")
    print("P-MPJPE mm. 15 = all joints but neck/nose and head (definitions agree); 17 = all joints.")
    print("'ref 2D': the lifter given the reference projected into the view (a perfect detector's 2D). "
          "'at ref lengths': both methods' poses given the reference's bone lengths frame by frame (bone "
          "directions only: pose without rig proportions).")
    print(f"{'view':<8}{'frames':>7}{'lifter 15':>11}{'MediaPipe 15':>14}{'lifter 17':>11}{'MediaPipe 17':>14}"
          f"{'lifter, ref 2D 15':>19}{'at ref lengths 15: lifter':>27}{'MediaPipe':>11}")
    for v in VIEWS:
        s = scores[v]
        print(f"{v:<8}{s.frames:>7}{s.lifter['15']:>11.1f}{s.mediapipe['15']:>14.1f}{s.lifter['17']:>11.1f}"
              f"{s.mediapipe['17']:>14.1f}{perfect_2d[v].lifter['15']:>19.1f}{at_ref_lengths[v].lifter['15']:>27.1f}"
              f"{at_ref_lengths[v].mediapipe['15']:>11.1f}")
    mean = {(k, j): float(np.mean([getattr(scores[v], k)[j] for v in VIEWS])) for k in ("lifter", "mediapipe")
            for j in JOINT_SETS}
    perfect_2d_mean = float(np.mean([perfect_2d[v].lifter["15"] for v in VIEWS]))
    rig_mean = [float(np.mean([getattr(at_ref_lengths[v], k)["15"] for v in VIEWS])) for k in ("lifter", "mediapipe")]
    print(f"{'mean':<8}{'':>7}{mean['lifter', '15']:>11.1f}{mean['mediapipe', '15']:>14.1f}"
          f"{mean['lifter', '17']:>11.1f}{mean['mediapipe', '17']:>14.1f}{perfect_2d_mean:>19.1f}{rig_mean[0]:>27.1f}"
          f"{rig_mean[1]:>11.1f}")
    if args.reference.is_file():
        train_rig = retarget(np.nan_to_num(gt), cache_bone_lengths(args.reference))
        gap, _ = p_mpjpe_on(train_rig, gt, gt_valid, DEFINITION_CONSISTENT)
        print(f"rig gap, 15 joints: {gap:.1f} mm = P-MPJPE of the reference given the median bone lengths of "
              f"{args.reference} (what a perfect lifter with that rig's proportions would score)")
    print(f"ratio lifter / MediaPipe (mean of views): 15 joints {mean['lifter', '15'] / mean['mediapipe', '15']:.3f}, "
          f"17 joints {mean['lifter', '17'] / mean['mediapipe', '17']:.3f}")
    relabelled = {v: score_view(lifted[v], mirror_groups(views[v].world3d[:n, None], sides[v])[:, 0], gt, gt_valid)
                  for v in VIEWS}
    raw = [score_view(lift_view(views[v], model, fix_sides=False)[:n], views[v].world3d[:n], gt, gt_valid).lifter["15"]
           for v in VIEWS]
    print(f"lifter on the detector's own left/right labels (posecli infer --no-fix-sides), 15 joints: "
          + " / ".join(f"{x:.1f}" for x in raw) + f", mean {np.mean(raw):.1f}, ratio {np.mean(raw) / mean['mediapipe', '15']:.3f}")
    other = [score_view(lift_view(views[v], model, upright=not UPRIGHT)[:n], views[v].world3d[:n], gt, gt_valid).lifter["15"]
             for v in VIEWS]
    print(f"lifter {'without' if UPRIGHT else 'with'} upright windows (posecli infer {'--no-upright' if UPRIGHT else '--upright'}), "
          f"15 joints: " + " / ".join(f"{x:.1f}" for x in other) + f", mean {np.mean(other):.1f}, "
          f"ratio {np.mean(other) / mean['mediapipe', '15']:.3f}")
    print(f"left/right relabelled by posecli's side fix: {', '.join(f'{v} {int(sides[v].any(axis=-1).sum())}' for v in VIEWS)} "
          f"frames; MediaPipe's own 3D given the same relabelling (not what the detector outputs; shows how much of "
          f"the ratio is the fix): 15 joints " + " / ".join(f"{relabelled[v].mediapipe['15']:.1f}" for v in VIEWS)
          + f", mean {np.mean([relabelled[v].mediapipe['15'] for v in VIEWS]):.1f}")
    print_roll_sensitivity(views, cameras, model, gt, gt_valid, n)
    print("\nper joint, mean over views (mm; 15-joint alignment, and 17-joint alignment for neck/nose and head):")
    print(f"{'joint':<12}" + "".join(f"{v + ' L':>10}{v + ' M':>10}" for v in VIEWS) + f"{'mean L':>9}{'mean M':>9}")
    for j in range(NUM_JOINTS):
        key = ("lifter_joint", "mediapipe_joint") if j in DEFINITION_CONSISTENT else ("lifter_joint17",
                                                                                      "mediapipe_joint17")
        cells = [(getattr(scores[v], key[0])[j], getattr(scores[v], key[1])[j]) for v in VIEWS]
        name = H36M_JOINTS[j] + ("" if j in DEFINITION_CONSISTENT else "*")
        print(f"{name:<12}" + "".join(f"{a:>10.1f}{b:>10.1f}" for a, b in cells)
              + f"{np.mean([a for a, _ in cells]):>9.1f}{np.mean([b for _, b in cells]):>9.1f}")
    print("* not definition-consistent: BlazePose's nose / eye midpoint against mocap's neck top / head top")
    print_trajectories(lifted_2d, lifted_conf, lifted, cams, gt, gt_valid)
    print("\nsensitivity of the reference (mean over views, 15 joints): reprojection threshold -> lifter, MediaPipe")
    for threshold in (args.max_reprojection, *SENSITIVITY_PX):
        ref, ref_valid, _ = triangulate_consistent(pts, conf, cams, max_error_px=threshold)
        other = [score_view(lifted[v], views[v].world3d[:n], ref, ref_valid) for v in VIEWS]
        lifter_mean = np.mean([o.lifter["15"] for o in other])
        mediapipe_mean = np.mean([o.mediapipe["15"] for o in other])
        print(f"  {threshold:>6g} px: lifter {lifter_mean:.1f}, MediaPipe {mediapipe_mean:.1f}, "
              f"ratio {lifter_mean / mediapipe_mean:.3f}")
    print_reference_stability(pts, conf, cams, gt, gt_valid, lifted, views, n, args.max_reprojection)


ROLLS_DEG = (-30.0, -15.0, 15.0, 30.0)


def print_roll_sensitivity(views: dict[str, ViewDetections], cameras: dict[str, QcaCamera], model: torch.nn.Module,
                           gt: np.ndarray, gt_valid: np.ndarray, n: int) -> None:
    """How much the lifter depends on the camera's roll: each view's 2D made upright (its calibrated
    roll undone, what a phone's gravity sensor could give), then rolled to each of ROLLS_DEG, lifted
    through infer's path and scored against the same reference (MediaPipe saw the unrotated images)."""
    tilts = {v: camera_tilt(cameras[v].camera) for v in VIEWS}
    print("\ncameras (calibration): " + ", ".join(f"{v} roll {r:+.0f}, pitch {p:+.0f} deg" for v, (r, p) in tilts.items()))
    cells = {f"{d:+g}" if d else "upright": [-d - tilts[v][0] for v in VIEWS] for d in (0.0, *ROLLS_DEG)}
    print("roll sensitivity, lifter 15 joints, each view's 2D rotated about its principal point to a roll of "
          "(deg) -> per view and mean:")
    for name, angles in cells.items():
        errors = [score_view(lift_view(rolled_view(views[v], cameras[v], a), model)[:n], views[v].world3d[:n],
                             gt, gt_valid).lifter["15"] for v, a in zip(VIEWS, angles)]
        print(f"  {name:>8}: " + " / ".join(f"{e:.1f}" for e in errors) + f", mean {np.mean(errors):.1f}")


def print_reference_stability(pts: np.ndarray, conf: np.ndarray, cams: list, gt: np.ndarray, gt_valid: np.ndarray,
                              lifted: dict[str, np.ndarray], views: dict[str, ViewDetections], n: int,
                              max_error_px: float) -> None:
    """How far the pseudo ground truth itself is from the truth, bounded from below: the 4-view
    reference against the 3 views without each camera, the bone-length spread over frames of a
    body that is rigid, and both methods scored against the 3 other views only (a reference that
    does not contain the scored view's own 2D)."""
    print("\nstability of the reference (15 joints): P-MPJPE of the 3 other views' triangulation against the "
          "4-view reference, and each view scored against the 3 other views only -> lifter, MediaPipe")
    for i, v in enumerate(VIEWS):
        others = [k for k in range(len(VIEWS)) if k != i]
        ref, ref_valid, _ = triangulate_consistent(pts[others], conf[others], [cams[k] for k in others],
                                                   max_error_px=max_error_px)
        both = ref_valid & gt_valid
        both[both.sum(axis=1) < 4] = False
        drift, _ = p_mpjpe_on(ref, gt, both, DEFINITION_CONSISTENT)
        score = score_view(lifted[v], views[v].world3d[:n], ref, ref_valid)
        print(f"  without {v}: {drift:.1f} mm from the 4-view reference; {v} against it: lifter {score.lifter['15']:.1f}, "
              f"MediaPipe {score.mediapipe['15']:.1f}")
    spread = np.nanstd(bone_lengths(gt), axis=0) * 1000.0
    limbs = [k for k, (a, b) in enumerate(H36M_BONES) if a not in (0, 8) and b not in (9, 10)]
    print(f"  bone-length spread over frames (std, mm; a rigid body has ~0): limbs {np.mean(spread[limbs]):.0f} "
          f"(max {spread[limbs].max():.0f}), all bones {np.mean(spread):.0f}")


def print_trajectories(pts: np.ndarray, conf: np.ndarray, lifted: dict[str, np.ndarray], cams: list,
                       gt: np.ndarray, gt_valid: np.ndarray) -> None:
    """Monocular world trajectory: each view's pelvis by posecli.infer.world's re-projection fit
    (calibrated intrinsics), put in the calibration's world frame, against the triangulated pelvis."""
    from posecli.data.cameras import camera_to_world
    from posecli.infer.world import root_translation

    print("\nroot trajectory per view (posecli infer's re-projection fit, calibrated focal length) against the "
          "triangulated pelvis, calibration world frame:")
    print(f"{'view':<8}{'frames':>7}{'mean mm':>9}{'median mm':>11}{'distance m':>12}{'% of distance':>15}")
    for i, (v, cam) in enumerate(zip(VIEWS, cams)):
        root = root_translation(pts[i][:, None], conf[i][:, None], lifted[v][:, None], cam.intrinsics)[:, 0]
        world = camera_to_world(root, cam.R, cam.t)
        ok = np.isfinite(world).all(axis=1) & gt_valid[:, 0]
        err = np.linalg.norm(world[ok] - gt[ok, 0], axis=1) * 1000.0
        dist = float(np.linalg.norm(gt[ok, 0] - cam.center, axis=1).mean()) if ok.any() else float("nan")
        print(f"{v:<8}{int(ok.sum()):>7}{err.mean():>9.0f}{np.median(err):>11.0f}{dist:>12.2f}"
              f"{100 * err.mean() / 1000 / dist:>15.1f}")


# ---------------------------------------------------------------- cross-dataset

def prepare_dance_holdout(path: Path) -> str | None:
    """Prepare the CMU dance hold-out cache from the shared BVH files; a reason when it cannot."""
    from posecli.data.prepare import prepare
    from posecli.data.records import PrepareOptions

    files = [DANCE_BVH_DIR / f"{name}.bvh" for name in sorted(CMU_DANCE_TEST)]
    absent = [f for f in files if not f.is_file()]
    if absent:
        return f"{absent[0]} not found"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        prepare("mocap", files, path, PrepareOptions(split="all", fps=50.0), force=False,
                command="benchmarks/bench_wild.py (CMU dance hold-out)")
    except PoseCliError as exc:
        return str(exc)
    return None


def rig_scores(cache, sequences: list[int], pred: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    """(rig gap, P-MPJPE at the test rig's bone lengths), mm.

    Rig gap: P-MPJPE between the set's 3D and the same poses with the reference rig's bone lengths,
    the error a perfect lifter that learnt the reference rig's proportions would still score.
    The second figure gives the prediction the ground truth's bone lengths frame by frame before
    P-MPJPE, so only the predicted bone directions count: a score of pose, not of rig definitions."""
    idx = np.concatenate([np.arange(cache.seq_start[s], cache.seq_start[s] + cache.seq_length[s])
                          for s in sequences])
    gt = np.asarray(cache.keypoints3d[idx], dtype=np.float64)
    valid = np.broadcast_to(np.asarray(cache.joint_status) != 2, gt.shape[:2])
    gap = masked_mean(p_mpjpe_errors(retarget(gt, lengths), gt, valid), valid).value
    directions = retarget(np.asarray(pred[idx], dtype=np.float64), bone_lengths(gt))
    return 1000.0 * gap, 1000.0 * masked_mean(p_mpjpe_errors(directions, gt, valid), valid).value


# The wild recipe's virtual cameras (presets/wild-v2.yaml): from above and below, close and far, the
# person off the optical axis, rolled. The cross-dataset caches are filmed by prepare's narrow,
# H36M-like cameras (4.5-6 m, <= 10 degrees); users' footage is not.
WIDE_CAMERAS = {"max_elev_deg": 35.0, "distance": (2.0, 9.0), "off_axis_deg": 25.0, "roll_deg": 10.0}
# The same cameras rolled up to 30 degrees (a tilted tripod or phone): one draw per camera stays the
# same but for its roll, so the two rows are paired.
ROLLED_CAMERAS = {**WIDE_CAMERAS, "roll_deg": 30.0}
WIDE_SEED = 7
# Cameras per set at least: one draw of 16 cameras (the dance hold-out) spreads by 2.6 mm P-MPJPE
# over seeds, so a set of few sequences films each one several times.
WIDE_MIN_CAMERAS = 64


def wide_draws(sequences: int, min_cameras: int = WIDE_MIN_CAMERAS) -> int:
    """Cameras per sequence so that a set of `sequences` is filmed by at least `min_cameras`."""
    return max(1, -(-min_cameras // max(1, sequences)))


def wide_camera_scores(cache, sequences: list[int], model: torch.nn.Module, noise: float,
                       min_cameras: int = WIDE_MIN_CAMERAS, cameras: dict = WIDE_CAMERAS) -> tuple[float, float, int]:
    """(MPJPE, P-MPJPE mm, cameras scored) of each sequence re-filmed by cameras drawn from
    WIDE_CAMERAS, its 2D corrupted at `noise` as `posecli eval --input-noise` does: ceil(min_cameras / sequences)
    cameras per sequence, each seeded by (sequence, draw) so every model sees the same views (the
    first draw of a sequence is the one camera earlier versions used)."""
    from posecli.data.augment import virtual_view
    from posecli.families.lifter.predict import lift_sequence, noisy_input
    from posecli.metrics import mpjpe_errors

    present = np.asarray(cache.joint_status) != 2
    draws = wide_draws(len(sequences), min_cameras)
    p1, p2, masks = [], [], []
    for seq, draw in ((s, d) for s in sequences for d in range(draws)):
        sl = slice(int(cache.seq_start[seq]), int(cache.seq_start[seq] + cache.seq_length[seq]))
        kp3d, conf = np.asarray(cache.keypoints3d[sl]), np.asarray(cache.confidence[sl])
        rng = np.random.default_rng([WIDE_SEED, int(seq)] + ([draw] if draw else []))
        view = next((v for v in (virtual_view(kp3d, conf, cache.intrinsics[seq], rng, **cameras)
                                 for _ in range(20)) if v is not None), None)
        if view is None:
            continue
        kp3d, kp2d = view
        kp2d, in_conf = noisy_input(kp2d, conf, noise, rng)
        pred = lift_sequence(model, kp2d, in_conf, upright=UPRIGHT)
        valid = (conf > 0) & present
        p1.append(mpjpe_errors(pred, kp3d))
        p2.append(p_mpjpe_errors(pred, kp3d, valid))
        masks.append(valid)
    if not masks:
        raise PoseCliError("nothing was scored: no sequence could be re-filmed by a wide camera")
    mask = np.concatenate(masks)
    return (1000.0 * masked_mean(np.concatenate(p1), mask).value, 1000.0 * masked_mean(np.concatenate(p2), mask).value,
            len(masks))


def motion_classes(rows: list[dict]) -> list[tuple[str, float, float, float]]:
    """HDM05 per-sequence report rows ({name: HDM_<actor>_<class>_<take>_<fps>, joints, p1, p2})
    grouped by motion class: (class, share of scored joints, MPJPE, P-MPJPE), joint-weighted,
    worst P-MPJPE first. Rows whose name has no class keep the whole name."""
    groups: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        match = re.fullmatch(r"HDM_[A-Za-z]+_(.+?)_\d+_\d+", str(row["name"]))
        groups.setdefault(match.group(1) if match else str(row["name"]), []).append(
            (float(row["joints"]), float(row["p1"]), float(row["p2"])))
    total = sum(j for g in groups.values() for j, _, _ in g)
    if total <= 0:
        raise PoseCliError("nothing was scored: no joints in the per-sequence rows")
    out = []
    for name, g in groups.items():
        joints, p1, p2 = np.array(g).T
        out.append((name, joints.sum() / total, (joints * p1).sum() / joints.sum(), (joints * p2).sum() / joints.sum()))
    return sorted(out, key=lambda c: -c[3])


def cross_dataset(name: str, path: Path, model: torch.nn.Module, noise: float, quick: bool,
                  checkpoint: str, lengths: np.ndarray | None = None) -> None:
    from posecli.data.cache import open_cache
    from posecli.eval.protocols import score, select_sequences
    from posecli.families.lifter.predict import predict_cache

    with open_cache(path) as cache:
        sequences = select_sequences(cache)
        if quick:
            sequences = sequences[:: max(1, len(sequences) // QUICK_SEQUENCES)][:QUICK_SEQUENCES]
        frames = int(sum(cache.seq_length[s] for s in sequences))
        cells, gap, classes = [], "", []
        for level in (0.0, noise):
            t0 = time.perf_counter()
            pred = predict_cache(model, cache, sequences, input_noise=level, upright=UPRIGHT)
            report = score(cache, pred, sequences, ("p1", "p2"),
                           {"kind": "checkpoint", "path": checkpoint, "input_noise": level}).report
            if level == 0.0 and name.startswith("HDM05"):
                classes = motion_classes(report["tables"]["subject"])
            rig = ""
            if lengths is not None:
                gap_mm, rig_mm = rig_scores(cache, sequences, pred, lengths)
                rig, gap = f", at its rig's bone lengths {rig_mm:.1f}", f"; rig gap {gap_mm:.1f}"
            cells.append((level, report["overall"]["p1"]["value"], report["overall"]["p2"]["value"], rig,
                          time.perf_counter() - t0))
        wide = [(level, *wide_camera_scores(cache, sequences, model, level)) for level in (0.0, noise)]
        rolled = wide_camera_scores(cache, sequences, model, 0.0, cameras=ROLLED_CAMERAS)
    text = "; ".join(f"noise {lv:g}: MPJPE {p1:.1f}, P-MPJPE {p2:.1f}{rig} ({s:.0f} s)"
                     for lv, p1, p2, rig, s in cells)
    text += gap
    print(f"{name:<22}{len(sequences):>5} seq {frames:>7} frames  {text}")
    print(f"{'':<22}{'':>5}     {'':>7}  wide cameras ({wide[0][3]}): " + "; ".join(
        f"noise {lv:g}: MPJPE {p1:.1f}, P-MPJPE {p2:.1f}" for lv, p1, p2, _ in wide)
          + f"; rolled up to {ROLLED_CAMERAS['roll_deg']:g} deg, noise 0: MPJPE {rolled[0]:.1f}, P-MPJPE {rolled[1]:.1f}")
    if classes:
        print(f"{'':<22}by motion class, noise 0 (share of joints, MPJPE / P-MPJPE): " + "; ".join(
            f"{c} {share:.0%} {p1:.0f} / {p2:.0f}" for c, share, p1, p2 in classes))


def run_cross(args: argparse.Namespace, model: torch.nn.Module) -> None:
    print(f"\n== Cross-dataset: ground-truth 2D through virtual cameras, checkpoint {args.checkpoint}, upright windows {'on' if UPRIGHT else 'off'} (mm) ==")
    dance = args.dance
    if not dance.is_file():
        fallback = args.work_dir / "dance-holdout.h5"
        reason = None if fallback.is_file() else prepare_dance_holdout(fallback)
        if reason is None:
            dance = fallback
        else:
            print(f"[dance] note: could not prepare the hold-out from the BVH files ({reason})")
    sections = [
        ("HDM05 test (mm, tr)", args.hdm05,
         f"python -m posecli prepare mocap {SHARED}/mocap/hdm05_subset/test --fps 50 -o {args.hdm05}"),
        ("CMU dance hold-out", dance,
         f"python -m posecli prepare mocap <{', '.join(sorted(CMU_DANCE_TEST))}>.bvh --fps 50 -o {args.dance}"),
        ("CMU Li-2018 test", args.cmu_test,
         f"python -m posecli prepare mocap {CMU_NPZ} --split test --fps 50 -o {args.cmu_test}"),
    ]
    lengths = cache_bone_lengths(args.reference) if args.reference.is_file() else None
    if lengths is None:
        print(f"rig gap skipped: reference cache {args.reference} not found")
    else:
        print(f"rig gap: P-MPJPE of each set's 3D against itself with the bone lengths of {args.reference}; "
              "'at its rig's bone lengths': P-MPJPE after giving the prediction the ground truth's bone lengths")
    for name, path, command in sections:
        if not path.is_file():
            print(f"{name:<22} skipped: {path} not found (prepare it: {command})")
            continue
        cross_dataset(name, path, model, args.noise, args.quick, args.checkpoint, lengths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default", help="checkpoint path or bundled model name")
    parser.add_argument("--video-dir", type=Path, default=VIDEO_DIR)
    parser.add_argument("--hdm05", type=Path, default=Path("caches/hdm05-test.h5"))
    parser.add_argument("--dance", type=Path, default=Path("caches/dance-test.h5"))
    parser.add_argument("--cmu-test", type=Path, default=Path("caches/mocap-test.h5"))
    parser.add_argument("--reference", type=Path, default=Path("caches/mocap-train.h5"),
                        help="3D cache whose median bone lengths define the reference rig (rig gap)")
    parser.add_argument("--detector", choices=("bundled", "mediapipe"), default="bundled",
                        help="2D (and world landmarks) for the pose2sim views: posecli's bundled detector, "
                             "or MediaPipe's legacy one-person API")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench-wild"))
    parser.add_argument("--noise", type=float, default=1.0, help="detector-noise level of the noisy rows")
    parser.add_argument("--max-reprojection", type=float, default=MAX_REPROJECTION_PX,
                        help="px: a view whose 2D reprojects further is dropped from that joint's triangulation")
    parser.add_argument("--skip", choices=("wild", "cross"), action="append", default=[])
    parser.add_argument("--quick", action="store_true", help="smoke run: few frames and sequences")
    parser.add_argument("--no-upright", action="store_true",
                        help="lift windows as they come (infer/eval --no-upright), not turned upright")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    global UPRIGHT
    UPRIGHT = not args.no_upright
    from posecli.infer.export import load_lifter

    try:
        model = load_lifter(args.checkpoint)
        if "wild" not in args.skip:
            run_wild(args, model)
        if "cross" not in args.skip:
            run_cross(args, model)
    except PoseCliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
