"""Throughput of the 3D metrics: P1 + P2 over many frames of random poses (target: 1,000,000
frames in <= 10 s on 2 CPU cores). Prints the figures; run `python benchmarks/bench_eval.py`."""

from __future__ import annotations

import argparse
import time

import numpy as np

from posecli import metrics as M


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=M.PROCRUSTES_CHUNK, help="frames per batched SVD")
    args = parser.parse_args()
    M.PROCRUSTES_CHUNK = args.chunk
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=300.0, size=(args.frames, 17, 3)).astype(np.float32)
    pred = (gt + rng.normal(scale=40.0, size=gt.shape)).astype(np.float32)
    valid = np.ones(gt.shape[:2], dtype=bool)

    c0, t0 = time.process_time(), time.perf_counter()
    p1 = M.mpjpe(pred, gt, valid)
    t1 = time.perf_counter()
    p2 = M.p_mpjpe(pred, gt, valid)
    c2, t2 = time.process_time(), time.perf_counter()
    print(f"frames {args.frames:,}  chunk {args.chunk}")
    print(f"P1 {p1.value:.2f} mm  {t1 - t0:.2f} s")
    print(f"P2 {p2.value:.2f} mm  {t2 - t1:.2f} s")
    print(f"P1+P2 {t2 - t0:.2f} s wall, {c2 - c0:.2f} s CPU  ({args.frames / (t2 - t0):,.0f} frames/s)")


if __name__ == "__main__":
    main()
