"""Time `prepare mocap` on the CMU positions npz: read + film with virtual cameras + write the cache.

Usage: python benchmarks/bench_mocap_prepare.py PATH/TO/cmu_li2018_positions38_120fps.npz [--cameras 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from posecli.data.cache import open_cache, write_cache
from posecli.data.readers.mocap import read_mocap
from posecli.data.records import PrepareOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", type=Path)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--fps", type=float, default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = read_mocap([args.npz], PrepareOptions(cameras=args.cameras, fps=args.fps))
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_cache(Path(tmp) / "mocap.h5", result, split="all", command="benchmark")
        t2 = time.perf_counter()
        frames = open_cache(path).num_frames
    print(f"sequences x cameras: {len(result.records)}  frames: {frames:,}")
    print(f"read+film: {t1 - t0:.2f} s  write: {t2 - t1:.2f} s  total: {t2 - t0:.2f} s")


if __name__ == "__main__":
    main()
