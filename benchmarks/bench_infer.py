"""End-to-end `posecli infer` speed on one video, per stage, plus the rendering rate.

    python benchmarks/bench_infer.py VIDEO [--checkpoint default|CKPT] [--threads 2]

Without a usable checkpoint it times a randomly initialised stformer of the given size and window
(the lifter's cost does not depend on its weights). Target on 2 CPU cores for a 1768x994 30 fps
clip: >= 25 frames/s end to end without rendering, the lifter <= 10 % of the time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from posecli.errors import PoseCliError
from posecli.infer.pipeline import InferOptions, load_lifter, run_inference
from posecli.infer.render import render_video
from posecli.infer.video import probe_video


def lifter(checkpoint: str, size: str, window: int) -> tuple[torch.nn.Module, str]:
    try:
        return load_lifter(checkpoint), checkpoint
    except PoseCliError as exc:
        from posecli.models import build_model

        print(f"({exc}; timing a random stformer-{size} window {window} instead)")
        return build_model({"name": "stformer", "size": size, "window": window}).eval(), f"random stformer-{size}/{window}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--size", default="s")
    parser.add_argument("--window", type=int, default=81)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smooth", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = probe_video(args.video)
    model, name = lifter(args.checkpoint, args.size, args.window)
    print(f"{args.video.name}: {info.width}x{info.height} {info.codec} {info.fps:g} fps; lifter {name}; "
          f"{args.threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_inference(args.video, Path(tmp) / "out", InferOptions(smooth=args.smooth), model=model)
        wall = time.perf_counter() - t0
        frames = result.poses.num_frames
        t1 = time.perf_counter()
        render_video(args.video, result.poses, Path(tmp) / "render.mp4")
        render_s = time.perf_counter() - t1
    busy = sum(result.timings.values())
    print(f"{frames} frames, {result.poses.num_tracks} tracks, {result.detections} detections")
    print(f"{'stage':<8}{'seconds':>9}{'share':>8}{'frames/s':>10}")
    for stage in ("decode", "detect", "track", "lift", "smooth", "write"):
        s = result.timings[stage]
        print(f"{stage:<8}{s:>9.2f}{100 * s / busy:>7.1f}%{frames / s if s else float('inf'):>10.1f}")
    print(f"{'total':<8}{wall:>9.2f}{'':>8}{frames / wall:>10.1f}   (wall clock, model load excluded; "
          f"decode runs in a background thread beside detect)")
    print(f"lifter share of wall clock: {100 * result.timings['lift'] / wall:.1f} %")
    print(f"render  {render_s:>9.2f}{'':>8}{frames / render_s:>10.1f}   (separate pass: decode + draw + H.264)")


if __name__ == "__main__":
    main()
