"""`posecli infer`: video -> 2D keypoints -> tracks -> 3D -> files, one stage after the other.

decode + detect (or read the user's keypoints) -> track -> the model's family predicts every
track (posecli.families: bridge short gaps, One-Euro 2D, a lifter lifts each contiguous run, an
image model crops and predicts from pixels, One-Euro 3D) -> world frame -> write. Photos go
through posecli.infer.photos. All files are written into a temporary folder beside the output
folder and moved into place only when every one of them is complete, so an error never leaves a
half-written result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from rich.console import Console
from torch import nn

from posecli.atomic import atomic_folder
from posecli.engine.checkpoint import load_model
from posecli.errors import PoseCliError
from posecli.families import FAMILIES, family_of
from posecli.families.tracks import TrackInput, TrackOptions
from posecli.infer.detector import Detection, Detector
from posecli.infer.outputs import (
    PoseSequence,
    write_json,
    write_npz,
    write_track_csv,
)
from posecli.infer.sides import consistent_sides
from posecli.infer.stages import Stages
from posecli.infer.track import Tracks, track_detections
from posecli.infer.video import (
    VideoInfo,
    count_frames,
    iter_frames,
    prefetch,
    probe_video,
    scaled_size,
)
from posecli.infer.world_outputs import WorldOutputs, world_outputs
from posecli.options import check_range
from posecli.output_path import check_output_folder

T = TypeVar("T")
DETECT_SIDE = 960   # frames are scaled to this longer side for the detector (BlazePose sees 256 px)
DEFAULT_MAX_PEOPLE = 4   # people followed per frame by the bundled detector, and tracks kept


MAX_SMOOTH = 1000.0             # One-Euro strength; far beyond it every pose is the first one

@dataclass
class InferOptions:
    checkpoint: str | Path = "default"     # checkpoint path or bundled model name
    keypoints: Path | None = None          # user's own 2D instead of the detector
    render: bool = False
    viewer: bool = True
    smooth: float = 1.0                    # One-Euro strength, 0 = off
    device: str = "cpu"
    max_people: int | None = DEFAULT_MAX_PEOPLE   # None = every track the detector input gives
    flip: bool = False                     # flip test-time augmentation in the lifter
    upright: bool = True                   # turn leaning windows upright before lifting (lifter.predict)
    fix_sides: bool = True                 # keep left/right labels with the body (posecli.infer.sides)
    max_gap: int = 10                      # frames bridged by interpolation
    min_track_frames: int = 5              # shorter tracks are flicker (never more than half the clip)
    batch_size: int = 64
    detect_side: int | None = DETECT_SIDE  # None = detect on full-resolution frames
    model: str = "auto"                    # a family name (posecli.families) | auto (the checkpoint's)
    # World frame and motion files (posecli.infer.world, posecli.infer.world_export).
    focal: float | None = None             # camera focal length in pixels (--focal)
    fov: float | None = None               # or horizontal field of view in degrees (--fov)
    fix_feet: bool = False                 # remove foot sliding while a foot is in contact
    bvh: bool = False                      # also write <video>_trackNN.bvh
    trc: bool = False                      # also write <video>_trackNN.trc
    fill_gaps: bool = False                # BVH: interpolate a track's interior missing frames
    render_follow: bool = True             # render's 3D view follows the person (False: fixed on the floor)
    overwrite: bool = False                # replace the results of an earlier run in out_dir
    max_frames: int | None = None          # camera / stream input: stop recording after N frames


@dataclass
class InferResult:
    out_dir: Path
    poses: PoseSequence
    files: list[Path]
    detections: int                        # person detections before tracking
    relabelled: int = 0                    # track-frames whose left/right labels were fixed
    timings: dict[str, float] = field(default_factory=dict)   # busy seconds per stage
    wall: float = 0.0                      # seconds end to end (decode overlaps detect)

    def rate(self, stage: str) -> float:
        """Frames per second of one stage (inf when it took no time)."""
        seconds = self.timings.get(stage, 0.0)
        return self.poses.num_frames / seconds if seconds > 0 else float("inf")


# ---------------------------------------------------------------- stages

def load_infer_model(checkpoint: str | Path, family: str = "auto", device: str = "cpu") -> nn.Module:
    """The model `posecli infer` runs: the checkpoint's own family (auto), or the family --model
    names (another family's checkpoint is refused, as is a skeleton other than H36M-17)."""
    known = ("auto", *FAMILIES)
    if family not in known:
        raise PoseCliError(f"unknown --model '{family}' (known: {', '.join(known)})")
    model, meta = load_model(checkpoint, device=device, family=None if family == "auto" else family)
    skeleton = meta.get("skeleton", "h36m17")
    if skeleton != "h36m17":
        raise PoseCliError(f"checkpoint predicts the '{skeleton}' skeleton; infer needs 'h36m17'", checkpoint)
    return model


def detect_video(info: VideoInfo, detector: Detector, progress: Stages | None = None,
                 detect_side: int | None = DETECT_SIDE, max_frames: int | None = None) -> list[list[Detection]]:
    """Decode (in a background thread, scaled to `detect_side`) and detect on every frame (or the
    first `max_frames`); the keypoints come back in full-resolution pixels. Decode and detect are
    timed separately."""
    progress = progress if progress is not None else Stages(None)
    frames: list[list[Detection]] = []
    width, _ = scaled_size(info.width, info.height, detect_side)
    back = info.width / width
    with progress.task("detect", info.frames or None):
        for frame, decode_s in prefetch(iter_frames(info.path, max_side=detect_side, max_frames=max_frames)):
            progress.add("decode", decode_s)
            t0 = time.perf_counter()
            people = detector(frame)
            for person in people:
                person.keypoints = person.keypoints * np.float32(back)
            frames.append(people)
            progress.add("detect", time.perf_counter() - t0)
            progress.advance()
    if not frames:
        raise PoseCliError("video has no frames", info.path)
    return frames


def track_people(detections: list[list[Detection]], fps: float, options: InferOptions) -> Tracks:
    """Per-frame detections -> person tracks, with infer's gap and flicker settings, left and right
    kept with the body (posecli.infer.sides) unless `options.fix_sides` is off."""
    tracks = track_detections(detections, max_people=options.max_people,
                              max_age=max(options.max_gap + 1, round(fps)), min_frames=options.min_track_frames)
    if not options.fix_sides:
        return tracks
    fixed = consistent_sides(tracks.keypoints2d, tracks.confidence)
    return replace(tracks, keypoints2d=fixed.keypoints2d, confidence=fixed.confidence,
                   relabelled=fixed.mirrored.any(axis=-1))


def track_poses(tracks: Tracks, fps: float, image_size: tuple[int, int], model: nn.Module,
                options: InferOptions, progress: Stages | None = None, video: Path | None = None) -> PoseSequence:
    """2D and 3D of every track, predicted by the model's family (frames of `video` for a family
    that reads pixels)."""
    frames = (lambda n: iter_frames(video, max_frames=n)) if video is not None else _no_video
    predicted = family_of(model).predict_tracks(model, TrackInput(tracks.keypoints2d, tracks.confidence, frames),
                                                track_options(fps, options), progress or Stages(None))
    return PoseSequence(predicted.keypoints2d, predicted.confidence, tracks.track_ids, predicted.keypoints3d,
                        predicted.valid, predicted.interpolated, fps, image_size, world3d=tracks.world3d)


def track_options(fps: float, options: InferOptions) -> TrackOptions:
    return TrackOptions(fps=fps, smooth=options.smooth, max_gap=options.max_gap, flip=options.flip,
                        upright=options.upright, batch_size=options.batch_size, device=options.device)


def _no_video(n: int) -> Iterator[np.ndarray]:
    raise PoseCliError("this model reads pixels: give the video, not only its keypoints")


def write_outputs(folder: Path, poses: PoseSequence, *, viewer: bool, title: str,
                  video: str | None = None, world: WorldOutputs | None = None) -> list[Path]:
    """poses.npz, poses.json, track_<id>.csv, (optionally) viewer.html and the world-frame files;
    the viewer plays `video` (a path relative to the folder) beside its 3D view."""
    files = [folder / "poses.npz", folder / "poses.json"]
    write_npz(files[0], poses, world.arrays() if world is not None else None)
    write_json(files[1], poses)
    for p, tid in enumerate(poses.track_ids.tolist()):
        files.append(folder / f"track_{tid:02d}.csv")
        write_track_csv(files[-1], poses, p)
    if viewer:
        from posecli.infer.viewer import write_viewer

        files.append(folder / "viewer.html")
        write_viewer(files[-1], poses, title=title, video=video, world=world.poses if world is not None else None)
    if world is not None:
        files += world.write_motion_files(folder)
    return files


# ---------------------------------------------------------------- entry point

RESULT_FILE = "poses.npz"   # a folder holding it holds an earlier run's results


def next_free_folder(folder: Path) -> Path:
    """`folder`, or `folder-2`, `folder-3`, ... : the first that holds no earlier run (the default
    output folder, so running twice never replaces the first results)."""
    candidate, n = folder, 1
    while (candidate / RESULT_FILE).exists():
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


def check_no_earlier_run(folder: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's results unless asked (--force)."""
    if not overwrite and (folder / RESULT_FILE).exists():
        raise PoseCliError("output folder already holds an earlier run; choose another --out or pass --force",
                           folder)


def check_options(options: InferOptions, out_dir: str | Path) -> None:
    """Every number and the output folder, before any work."""
    check_range("--smooth", options.smooth, 0, MAX_SMOOTH)
    if options.max_people is not None:
        check_range("--max-people", options.max_people, 1, integer=True)
    check_range("--max-gap", options.max_gap, 0, integer=True)
    check_range("batch size", options.batch_size, 1, 65_536, integer=True)
    if options.max_frames is not None:
        check_range("--max-frames", options.max_frames, 1, integer=True)
    check_output_folder(out_dir)
    check_no_earlier_run(Path(out_dir), options.overwrite)


def _read_source(video: str | Path, out_dir: Path, options: InferOptions) -> str | Path:
    """A camera or stream is recorded into the output folder first and then read as a file."""
    from posecli.infer.stream import RECORDING, is_stream, record_stream

    if is_stream(video):
        out_dir.mkdir(parents=True, exist_ok=True)
        record_stream(video, out_dir / RECORDING, options.max_frames)
        return out_dir / RECORDING
    if options.max_frames is not None:
        raise PoseCliError("--max-frames is for a camera or stream; a file is read whole", video)
    return video


def _detect(detect: Callable[[Detector], T], detector: Detector | None, options: InferOptions) -> T:
    """Run `detect(detector)` with the given detector, or the bundled BlazePose (closed after)."""
    if detector is not None:
        return detect(detector)
    from posecli.infer.blazepose import BlazePoseMultiDetector

    own = BlazePoseMultiDetector(max_people=options.max_people or DEFAULT_MAX_PEOPLE)
    try:
        return detect(own)
    finally:
        own.close()


def _write_video_results(info: VideoInfo, poses: PoseSequence, options: InferOptions, out_dir: Path,
                         progress: Stages) -> list[Path]:
    """The world frame, every output file and (--render) render.mp4, moved into out_dir together."""
    from posecli.infer.viewer import relative_video

    with progress.timed("write"):
        world = world_outputs(poses, options, info.path)
    with atomic_folder(out_dir, merge=True) as tmp:
        with progress.timed("write"):
            # render.mp4 travels with the folder; without it, the source video where it lies
            shown = "render.mp4" if options.render else relative_video(info.path, out_dir)
            files = write_outputs(tmp, poses, viewer=options.viewer, title=info.path.name, video=shown,
                                  world=world)
        if options.render:
            from posecli.infer.render import render_video

            with progress.task("render", poses.num_frames), progress.timed("render"):
                render_video(info.path, poses, tmp / "render.mp4", on_frame=progress.advance,
                             world=world.poses, follow=options.render_follow)
            files.append(tmp / "render.mp4")
    return [out_dir / f.name for f in files]


def run_inference(video: str | Path, out_dir: str | Path, options: InferOptions | None = None, *,
                  model: nn.Module | None = None, detector: Detector | None = None,
                  console: Console | None = None) -> InferResult:
    """Run the whole pipeline on one video and write its outputs into `out_dir` atomically.

    `model` / `detector` override the checkpoint and the bundled BlazePose detector (tests,
    benchmarks, other detectors).
    """
    options = options or InferOptions()
    start = time.perf_counter()
    check_options(options, out_dir)
    from posecli.infer.photos import image_files
    from posecli.infer.stream import RECORDING

    video = _read_source(video, Path(out_dir), options)

    photos = image_files(video)
    if photos is not None:
        return run_photos(photos, Path(out_dir), options, model=model, detector=detector, console=console)
    info = probe_video(video)
    keypoints = None
    if options.keypoints is not None:          # before the model: a wrong file fails in a blink
        from posecli.infer.keypoints_io import read_keypoints

        keypoints = read_keypoints(options.keypoints, video_frames=count_frames(info.path))
    if model is None:
        model = load_infer_model(options.checkpoint, options.model, options.device)
    fps = info.fps if info.fps > 0 else 30.0
    with Stages(console) as progress:
        if keypoints is None:
            keypoints = _detect(lambda d: detect_video(info, d, progress, options.detect_side), detector, options)
        with progress.timed("track"):
            tracks = track_people(keypoints, fps, options)
        if tracks.num_tracks == 0:
            raise PoseCliError("nobody was detected in any frame (is a whole person in view? or give your own "
                               "2D keypoints with --keypoints FILE)", options.keypoints or info.path)
        poses = track_poses(tracks, fps, (info.width, info.height), model, options, progress, video=info.path)
        files = _write_video_results(info, poses, options, Path(out_dir), progress)
    if video == Path(out_dir) / RECORDING:
        files.append(Path(video))
    relabelled = int(tracks.relabelled.sum()) if tracks.relabelled is not None else 0
    return InferResult(Path(out_dir), poses, files, sum(len(d) for d in keypoints), relabelled=relabelled,
                       timings=progress.timings, wall=time.perf_counter() - start)


def run_photos(files: list[Path], out_dir: Path, options: InferOptions, *, model: nn.Module | None = None,
               detector: Detector | None = None, console: Console | None = None) -> InferResult:
    """`posecli infer` on images (posecli.infer.photos): one result per image, people lifted with
    T = 1, the same files as for a video (plus images.txt, frame i = line i)."""
    from posecli.infer.photos import detect_photos, lift_photos

    start = time.perf_counter()
    if options.keypoints is not None or options.render:
        raise PoseCliError("--keypoints and --render need a video; images are detected and lifted one by one")
    if model is None:
        model = load_infer_model(options.checkpoint, options.model, options.device)
    lift = family_of(model).predict_people
    lift(model, np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32),   # refused before detection
         track_options(0.0, options))
    with Stages(console) as progress:
        with progress.timed("detect"):
            people, size = _detect(lambda d: detect_photos(files, d, options.detect_side, options.max_people),
                                   detector, options)
        with progress.timed("lift"):
            poses = lift_photos(people, size, lambda kp, conf: lift(model, kp, conf, track_options(0.0, options)))
        with atomic_folder(out_dir, merge=True) as tmp:
            with progress.timed("write"):
                written = write_outputs(tmp, poses, viewer=options.viewer, title=f"{len(files)} images")
                written.append(tmp / "images.txt")
                written[-1].write_text("".join(f"{p}\n" for p in files), encoding="utf-8")
    return InferResult(out_dir, poses, [out_dir / f.name for f in written], sum(len(p) for p in people),
                       timings=progress.timings, wall=time.perf_counter() - start)
