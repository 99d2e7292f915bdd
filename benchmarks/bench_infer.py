"""End-to-end `posecli infer` speed and tracking on videos, per stage, per detector.

    python benchmarks/bench_infer.py VIDEO [VIDEO ...] [--detector blazepose|mediapipe|both]
        [--max-people 4] [--copies 1] [--checkpoint default|CKPT] [--threads 2] [--keep DIR]

For each video and detector it prints frames/s end to end, the share of each stage, the bundled
detector's own split (person detector vs landmark model), and per track the frames it covers
(present / frames between its first and last detection), plus the frames that have any pose.
`--copies K` puts K copies of each frame side by side (a 2-person clip becomes 2K people) to time
more people on the same content. `--detector both` also runs MediaPipe's legacy one-person
`solutions.pose` (when mediapipe 0.10.21 is installed) in the same process and prints the ratio,
because absolute figures on a shared CPU mean little. `--keep DIR` keeps each run's outputs with
render.mp4 (one colour per person) for looking at identities.

Without a usable checkpoint it times a randomly initialised stformer of the given size and window
(the lifter's cost does not depend on its weights). Target on 2 CPU cores for the example clip,
one person: >= 25 frames/s end to end without rendering.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from posecli.errors import PoseCliError
from posecli.infer.export import load_lifter
from posecli.infer.pipeline import InferOptions, run_inference
from posecli.infer.stages import STAGES
from posecli.infer.video import H264Writer, iter_frames, probe_video


def lifter(checkpoint: str, size: str, window: int) -> tuple[torch.nn.Module, str]:
    try:
        return load_lifter(checkpoint), checkpoint
    except PoseCliError as exc:
        from posecli.models import build_model

        print(f"({exc}; timing a random stformer-{size} window {window} instead)")
        return build_model({"name": "stformer", "size": size, "window": window}).eval(), f"random stformer-{size}/{window}"


def side_by_side(video: Path, copies: int, folder: Path) -> Path:
    """The video with `copies` copies of each frame next to each other (more people, same content)."""
    if copies == 1:
        return video
    out = folder / f"{video.stem}-x{copies}.mp4"
    with H264Writer(out, probe_video(video).fps, crf=18) as writer:
        for frame in iter_frames(video, max_side=960):
            writer.write(np.concatenate([frame] * copies, axis=1))
    return out


def make_detector(kind: str, max_people: int, threads: int):
    if kind == "mediapipe":
        from posecli.infer.detector import BlazePoseDetector

        return BlazePoseDetector()
    from posecli.infer.blazepose import BlazePoseMultiDetector

    return BlazePoseMultiDetector(max_people=max_people, threads=threads)


def report(name: str, result, detector, wall: float) -> float:
    poses = result.poses
    frames = poses.num_frames
    busy = sum(result.timings.values())
    fps = frames / wall
    print(f"  [{name}] {frames} frames, {poses.num_tracks} tracks, {result.detections} detections; "
          f"{fps:.1f} frames/s end to end ({wall:.1f} s, model load excluded)")
    print(f"    {'stage':<8}{'seconds':>9}{'share':>8}{'frames/s':>10}")
    for stage in STAGES:
        s = result.timings.get(stage, 0.0)
        if s > 0:
            print(f"    {stage:<8}{s:>9.2f}{100 * s / busy:>7.1f}%{frames / s:>10.1f}")
    detect = result.timings.get("detect", 0.0)
    if detect > 0:
        print(f"    detector alone {frames / detect:.1f} frames/s; end to end / detector alone = "
              f"{fps / (frames / detect):.2f}")
    inner = getattr(detector, "timings", None)
    if inner:
        print(f"    detect = person detector {inner['detector']:.2f} s ({detector.detector_runs} runs) + "
              f"landmark model {inner['landmarks']:.2f} s")
    with_pose = int(poses.valid.any(axis=1).sum())
    print(f"    frames with a pose: {with_pose}/{frames}")
    for p, tid in enumerate(poses.track_ids.tolist()):
        present = np.flatnonzero(poses.valid[:, p] & ~poses.interpolated[:, p])
        if len(present):
            span = present[-1] - present[0] + 1
            print(f"    track {tid}: detected in {len(present)} frames, first {present[0]}, last {present[-1]}, "
                  f"{100 * len(present) / span:.1f} % of its span, {len(present) / frames * 100:.1f} % of the video")
    return fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--size", default="s")
    parser.add_argument("--window", type=int, default=81)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smooth", type=float, default=1.0)
    parser.add_argument("--detector", choices=("blazepose", "mediapipe", "both"), default="blazepose")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep outputs (with render.mp4) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, name = lifter(args.checkpoint, args.size, args.window)
    kinds = ("mediapipe", "blazepose") if args.detector == "both" else (args.detector,)
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.videos:
            video = side_by_side(source, args.copies, Path(tmp))
            info = probe_video(video)
            print(f"{video.name}: {info.width}x{info.height} {info.codec} {info.fps:g} fps; lifter {name}; "
                  f"{args.threads} threads; max people {args.max_people}")
            rates = {}
            for kind in kinds:
                try:
                    detector = make_detector(kind, args.max_people, args.threads)
                except PoseCliError as exc:
                    print(f"  [{kind}] skipped: {exc}")
                    continue
                out = (args.keep or Path(tmp)) / f"{video.stem}-{kind}"
                options = InferOptions(smooth=args.smooth, max_people=args.max_people, render=args.keep is not None)
                t0 = time.perf_counter()
                result = run_inference(video, out, options, model=model, detector=detector)
                wall = time.perf_counter() - t0 - result.timings.get("render", 0.0)
                rates[kind] = report(kind, result, detector, wall)
                detector.close()
            if len(rates) == 2:
                print(f"  ratio blazepose / mediapipe frames/s: {rates['blazepose'] / rates['mediapipe']:.2f}")


if __name__ == "__main__":
    main()
