"""`posecli infer`: video -> 2D keypoints -> tracks -> 3D -> files, one stage after the other.

decode + detect (or read the user's keypoints) -> track -> bridge short gaps -> One-Euro 2D ->
lift each contiguous run of a track with posecli.predict.lift_sequence -> One-Euro 3D -> write.
An image-family model instead crops each tracked person and predicts from pixels
(posecli.infer.image_tracks); everything around it is shared.
All files are written into a temporary folder beside the output folder and moved into place only
when every one of them is complete, so an error never leaves a half-written result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from torch import nn

from posecli.atomic import atomic_folder
from posecli.errors import PoseCliError
from posecli.options import check_range
from posecli.output_path import check_output_folder
from posecli.infer.detector import Detection, Detector
from posecli.infer.gaps import fill_gaps, present_frames, segments
from posecli.infer.outputs import (
    PoseSequence,
    write_json,
    write_npz,
    write_track_csv,
)
from posecli.infer.smooth import smooth_sequence
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
from posecli.skeleton import NUM_JOINTS

DETECT_SIDE = 960   # frames are scaled to this longer side for the detector (BlazePose sees 256 px)
DEFAULT_MAX_PEOPLE = 4   # people followed per frame by the bundled detector, and tracks kept
STAGES = ("decode", "detect", "track", "lift", "smooth", "write", "render")


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
    max_gap: int = 10                      # frames bridged by interpolation
    min_track_frames: int = 5              # shorter tracks are flicker (never more than half the clip)
    batch_size: int = 64
    detect_side: int | None = DETECT_SIDE  # None = detect on full-resolution frames
    model: str = "auto"                    # lifter | image | auto (the checkpoint's family)
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
    timings: dict[str, float] = field(default_factory=dict)   # busy seconds per stage
    wall: float = 0.0                      # seconds end to end (decode overlaps detect)

    def rate(self, stage: str) -> float:
        """Frames per second of one stage (inf when it took no time)."""
        seconds = self.timings.get(stage, 0.0)
        return self.poses.num_frames / seconds if seconds > 0 else float("inf")


# ---------------------------------------------------------------- stages

def load_lifter(checkpoint: str | Path, device: str = "cpu") -> nn.Module:
    """Load a checkpoint or bundled model and refuse anything that is not an H36M-17 lifter."""
    from posecli.engine.checkpoint import load_model

    model, meta = load_model(checkpoint, device=device)
    check_lifter(model, meta.get("family", "lifter"), meta.get("skeleton", "h36m17"), checkpoint)
    return model


MODEL_FAMILIES = ("auto", "lifter", "image")


def load_infer_model(checkpoint: str | Path, family: str = "auto", device: str = "cpu") -> nn.Module:
    """The model `posecli infer` runs: a lifter, or an image-family checkpoint (--model image, or
    auto when the checkpoint holds one)."""
    if family not in MODEL_FAMILIES:
        raise PoseCliError(f"unknown --model '{family}' (known: {', '.join(MODEL_FAMILIES)})")
    from posecli.predict_image import checkpoint_family

    found = checkpoint_family(checkpoint)
    if family == "image" and found != "image":
        raise PoseCliError("--model image needs an image-family checkpoint (--checkpoint FILE from "
                           "`posecli pretrain/finetune --preset ...-image-...`)", checkpoint)
    if found == "image" and family != "lifter":
        from posecli.predict_image import load_image_model

        return load_image_model(checkpoint, device)[0]
    return load_lifter(checkpoint, device)


def check_lifter(model: nn.Module, family: str, skeleton: str, source: str | Path) -> None:
    if family != "lifter" or getattr(model, "family", "lifter") != "lifter":
        raise PoseCliError(f"checkpoint holds a '{family}' model; infer needs a 2D-to-3D 'lifter'", source)
    if skeleton != "h36m17":
        raise PoseCliError(f"checkpoint predicts the '{skeleton}' skeleton; infer needs 'h36m17'", source)


def detect_video(info: VideoInfo, detector: Detector, progress: "_Stages | None" = None,
                 detect_side: int | None = DETECT_SIDE, max_frames: int | None = None) -> list[list[Detection]]:
    """Decode (in a background thread, scaled to `detect_side`) and detect on every frame (or the
    first `max_frames`); the keypoints come back in full-resolution pixels. Decode and detect are
    timed separately."""
    progress = progress if progress is not None else _Stages(None)
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


def _person_scale(kp: np.ndarray, conf: np.ndarray) -> float:
    """Median box side of a run of frames [T, 17, 2], in pixels (the 2D smoothing unit)."""
    seen = conf > 0
    big = np.float32(1e9)
    lo = np.where(seen[..., None], kp, big).min(axis=1)
    hi = np.where(seen[..., None], kp, -big).max(axis=1)
    sides = (hi - lo).max(axis=-1)[seen.any(axis=-1)]
    return float(np.median(sides)) if len(sides) else 1.0


def track_people(detections: list[list[Detection]], fps: float, options: InferOptions) -> Tracks:
    """Per-frame detections -> person tracks, with infer's gap and flicker settings."""
    return track_detections(detections, max_people=options.max_people,
                            max_age=max(options.max_gap + 1, round(fps)), min_frames=options.min_track_frames)


def lift_tracks(tracks: Tracks, fps: float, image_size: tuple[int, int], model: nn.Module,
                options: InferOptions, progress: "_Stages | None" = None) -> PoseSequence:
    """Bridge gaps, smooth and lift every contiguous run of every track."""
    from posecli.predict import lift_sequence

    progress = progress if progress is not None else _Stages(None)
    f, p = tracks.num_frames, tracks.num_tracks
    kp2 = np.full((f, p, NUM_JOINTS, 2), np.nan, np.float32)
    kp3 = np.full((f, p, NUM_JOINTS, 3), np.nan, np.float32)
    conf = np.zeros((f, p, NUM_JOINTS), np.float32)
    valid = np.zeros((f, p), bool)
    interp = np.zeros((f, p), bool)
    with progress.task("lift", p):
        for t in range(p):
            k, c, interp[:, t] = fill_gaps(tracks.keypoints2d[:, t], tracks.confidence[:, t], options.max_gap)
            valid[:, t] = present_frames(c)
            for a, b in segments(valid[:, t]):
                t0 = time.perf_counter()
                k2 = smooth_sequence(k[a:b], fps, options.smooth, scale=_person_scale(k[a:b], c[a:b]))
                t1 = time.perf_counter()
                k3 = lift_sequence(model, k2, c[a:b], flip=options.flip, batch_size=options.batch_size,
                                   device=options.device)
                t2 = time.perf_counter()
                k3 = smooth_sequence(k3, fps, options.smooth)
                k3 -= k3[:, :1]
                progress.add("smooth", t1 - t0 + time.perf_counter() - t2)
                progress.add("lift", t2 - t1)
                kp2[a:b, t] = np.where(c[a:b, :, None] > 0, k2, np.nan)
                conf[a:b, t] = c[a:b]
                kp3[a:b, t] = k3
            progress.advance()
    return PoseSequence(kp2, conf, tracks.track_ids, kp3, valid, interp & valid, fps, image_size,
                        world3d=tracks.world3d)


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


# ---------------------------------------------------------------- progress

class _Stages:
    """Per-stage timings plus an optional rich progress bar per stage."""

    def __init__(self, console: Console | None):
        self.timings = {s: 0.0 for s in STAGES}
        self._progress = (Progress(TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
                                   TimeRemainingColumn(), console=console, transient=False)
                          if console is not None else None)
        self._task = None

    def __enter__(self) -> "_Stages":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def task(self, name: str, total: int | None) -> Iterator[None]:
        if self._progress is not None:
            self._task = self._progress.add_task(name, total=total)
        try:
            yield
        finally:
            if self._progress is not None:
                done = self._progress.tasks[-1].completed
                self._progress.update(self._task, total=done or total, completed=done or total)
                self._task = None

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] += seconds

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)


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


def run_inference(video: str | Path, out_dir: str | Path, options: InferOptions | None = None, *,
                  model: nn.Module | None = None, detector: Detector | None = None,
                  console: Console | None = None) -> InferResult:
    """Run the whole pipeline on one video and write its outputs into `out_dir` atomically.

    `model` / `detector` override the checkpoint and the bundled BlazePose detector (tests,
    benchmarks, other detectors).
    """
    options = options or InferOptions()
    start = time.perf_counter()
    check_range("--smooth", options.smooth, 0, MAX_SMOOTH)
    if options.max_people is not None:
        check_range("--max-people", options.max_people, 1, integer=True)
    check_range("--max-gap", options.max_gap, 0, integer=True)
    check_range("batch size", options.batch_size, 1, 65_536, integer=True)
    check_output_folder(out_dir)
    check_no_earlier_run(Path(out_dir), options.overwrite)
    from posecli.infer.photos import image_files
    from posecli.infer.stream import RECORDING, is_stream, record_stream

    if options.max_frames is not None:
        check_range("--max-frames", options.max_frames, 1, integer=True)
    recording = None
    if is_stream(video):                    # recorded into the output folder, then read as a file
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        recording = Path(out_dir) / RECORDING
        record_stream(video, recording, options.max_frames)
        video = recording
    elif options.max_frames is not None:
        raise PoseCliError("--max-frames is for a camera or stream; a file is read whole", video)

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
    elif getattr(model, "family", "lifter") != "image":
        check_lifter(model, getattr(model, "family", "lifter"), "h36m17", "model")
    image = getattr(model, "family", "lifter") == "image"
    fps = info.fps if info.fps > 0 else 30.0
    image_size = (info.width, info.height)

    with _Stages(console) as progress:
        if keypoints is None:
            own = detector is None
            if own:
                from posecli.infer.blazepose import BlazePoseMultiDetector

                detector = BlazePoseMultiDetector(max_people=options.max_people or DEFAULT_MAX_PEOPLE)
            try:
                keypoints = detect_video(info, detector, progress, options.detect_side)
            finally:
                if own:
                    detector.close()
        detections = sum(len(d) for d in keypoints)
        with progress.timed("track"):
            tracks = track_people(keypoints, fps, options)
        if tracks.num_tracks == 0:
            raise PoseCliError("nobody was detected in any frame (is a whole person in view? or give your own "
                               "2D keypoints with --keypoints FILE)", options.keypoints or info.path)
        if image:
            from posecli.infer.image_tracks import predict_tracks

            poses = predict_tracks(info.path, tracks, fps, image_size, model, options, progress)
        else:
            poses = lift_tracks(tracks, fps, image_size, model, options, progress)
        with progress.timed("write"):
            world = world_outputs(poses, options, info.path)
        with atomic_folder(Path(out_dir), merge=True) as tmp:
            with progress.timed("write"):
                from posecli.infer.viewer import relative_video

                # render.mp4 travels with the folder; without it, the source video where it lies
                shown = "render.mp4" if options.render else relative_video(info.path, Path(out_dir))
                files = write_outputs(tmp, poses, viewer=options.viewer, title=info.path.name, video=shown,
                                      world=world)
            if options.render:
                from posecli.infer.render import render_video

                with progress.task("render", poses.num_frames), progress.timed("render"):
                    render_video(info.path, poses, tmp / "render.mp4", on_frame=progress.advance,
                                 world=world.poses, follow=options.render_follow)
                files.append(tmp / "render.mp4")
    out = Path(out_dir)
    if recording is not None:
        files.append(recording)
    return InferResult(out, poses, [out / f.name for f in files], detections, progress.timings,
                       time.perf_counter() - start)


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
    if getattr(model, "family", "lifter") != "lifter":
        raise PoseCliError("images are lifted with a 2D-to-3D lifter; --model image needs a video")
    with _Stages(console) as progress:
        own = detector is None
        if own:
            from posecli.infer.blazepose import BlazePoseMultiDetector

            detector = BlazePoseMultiDetector(max_people=options.max_people or DEFAULT_MAX_PEOPLE)
        try:
            with progress.timed("detect"):
                people, size = detect_photos(files, detector, options.detect_side, options.max_people)
        finally:
            if own:
                detector.close()
        with progress.timed("lift"):
            poses = lift_photos(people, size, model, options)
        with atomic_folder(out_dir, merge=True) as tmp:
            with progress.timed("write"):
                written = write_outputs(tmp, poses, viewer=options.viewer, title=f"{len(files)} images")
                written.append(tmp / "images.txt")
                written[-1].write_text("".join(f"{p}\n" for p in files), encoding="utf-8")
    return InferResult(out_dir, poses, [out_dir / f.name for f in written], sum(len(p) for p in people),
                       progress.timings, time.perf_counter() - start)
