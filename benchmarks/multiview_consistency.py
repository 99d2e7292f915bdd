"""Multi-view consistency of `posecli infer`: lift each synchronised view on its own and measure
how well the 3D poses of different views agree after Procrustes alignment (P-MPJPE, mm).

    python benchmarks/multiview_consistency.py cam01.mp4 cam02.mp4 cam03.mp4 cam04.mp4 [--checkpoint default]

No ground truth is needed: a lifter that understands depth gives the same body shape from every
camera, so the per-frame P-MPJPE between views (rotation, scale and translation removed) measures
view-dependent depth errors. Frames are matched by index (the views must be synchronised); the
longest track of each view is used. With random weights the numbers mean nothing: rerun it once
a trained model (`default`) exists.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np
import torch

from posecli.metrics import p_mpjpe
from posecli.infer.export import load_lifter
from posecli.infer.pipeline import InferOptions, run_inference


def main_track(keypoints3d: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3D [F, 17, 3] and valid mask [F] of the track present in most frames."""
    best = int(valid.sum(axis=0).argmax())
    return keypoints3d[:, best], valid[:, best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if len(args.videos) < 2:
        parser.error("give at least two synchronised views")
    torch.set_num_threads(args.threads)
    model = load_lifter(args.checkpoint)
    views = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, video in enumerate(args.videos):
            result = run_inference(video, Path(tmp) / f"view{i}", InferOptions(viewer=False, flip=args.flip),
                                   model=model)
            views[video.stem] = main_track(result.poses.keypoints3d, result.poses.valid)
            print(f"{video.name}: {result.poses.num_frames} frames, {int(views[video.stem][1].sum())} with a pose")
    names = list(views)
    table = np.full((len(names), len(names)), np.nan)
    for (a, na), (b, nb) in itertools.combinations(enumerate(names), 2):
        frames = min(len(views[na][0]), len(views[nb][0]))
        both = views[na][1][:frames] & views[nb][1][:frames]
        if both.any():
            pa, pb = views[na][0][:frames][both], views[nb][0][:frames][both]
            table[a, b] = table[b, a] = p_mpjpe(pa * 1000.0, pb * 1000.0).value
            print(f"{na} vs {nb}: P-MPJPE {table[a, b]:.1f} mm over {int(both.sum())} frames")
    print("P-MPJPE matrix (mm):")
    print(" " * 8 + "".join(f"{n:>9}" for n in names))
    for n, row in zip(names, table):
        print(f"{n:<8}" + "".join(f"{v:>9.1f}" for v in row))
    print(f"mean over view pairs: {np.nanmean(table):.1f} mm")


if __name__ == "__main__":
    main()
