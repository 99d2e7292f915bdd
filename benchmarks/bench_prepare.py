"""Timings for `posecli prepare` and cache window reads; prints figures against their targets.

    python benchmarks/bench_prepare.py [--data DIR] [--windows 50000]

- prepare coco on the COCO val2017 subset (538 images): target <= 3 s
- prepare mocap on the CMU positions (67,870 frames x 4 virtual cameras): target <= 30 s
  (only when posecli.data.readers.mocap is importable and the data is present)
- random 243-frame window reads from a warm in-memory cache: target >= 20,000 windows/s, on the
  mocap cache when it was made, else on a synthetic cache of the same size (67,870 x 4 frames)

DIR defaults to the shared data folder tests use (tests/conftest.py, or $POSECLI_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COCO_VAL = "coco/person_keypoints_val2017_subset538img.json"
CMU_POSITIONS = "mocap/cmu_expmap_li2018/cmu_li2018_positions38_120fps.npz"
MOCAP_FRAMES, MOCAP_CAMERAS, WINDOW = 67_870, 4, 243


def default_data_dir() -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from conftest import SHARED_DATA
    finally:
        sys.path.pop(0)
    return Path(SHARED_DATA)


def time_prepare(fmt: str, inputs: list[Path], out: Path, repeats: int, **options) -> float:
    """Best wall time of `repeats` full prepare runs (read, convert, validate, write)."""
    from posecli.data.prepare import prepare
    from posecli.data.records import PrepareOptions

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        prepare(fmt, inputs, out, PrepareOptions(**options), force=True, command=f"bench {fmt}")
        best = min(best, time.perf_counter() - start)
    return best


def synthetic_cache(out: Path, seed: int) -> Path:
    """A 2D+3D cache shaped like the mocap one: 96 takes x 4 cameras, 67,870 frames per camera."""
    from posecli.data.cache import write_cache
    from posecli.data.records import ReaderResult, SequenceRecord
    from posecli.skeleton import H36M17

    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, MOCAP_FRAMES), size=95, replace=False))
    lengths = np.diff(np.concatenate([[0], cuts, [MOCAP_FRAMES]]))
    records = [SequenceRecord(
        keypoints2d=rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32),
        confidence=np.ones((n, 17), np.float32),
        keypoints3d=rng.normal(0, 0.5, (n, 17, 3)).astype(np.float32),
        subject=f"take{i}", camera=f"cam{c}", fps=120.0)
        for i, n in enumerate(lengths) for c in range(MOCAP_CAMERAS)]
    result = ReaderResult(records=records, dataset="synthetic", source_layout=H36M17.name,
                          joint_status=H36M17.status, sources=[])
    return write_cache(out, result, split="all", force=True, command="bench synthetic")


def windows_per_second(path: Path, count: int, seed: int) -> tuple[float, int]:
    """Random windows/s from a warm in-memory cache, sequences drawn by frame count."""
    from posecli.data.cache import open_cache

    cache = open_cache(path)
    rng = np.random.default_rng(seed)
    lengths = cache.seq_length
    seqs = rng.choice(len(lengths), size=count + 1000, p=lengths / lengths.sum())
    starts = (rng.random(count + 1000) * np.maximum(lengths[seqs] - WINDOW + 1, 1)).astype(int)
    for s, t in zip(seqs[:1000], starts[:1000]):          # warm-up
        cache.window(int(s), int(t), WINDOW)
    begin = time.perf_counter()
    for s, t in zip(seqs[1000:], starts[1000:]):
        cache.window(int(s), int(t), WINDOW)
    return count / (time.perf_counter() - begin), cache.num_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--windows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = args.data or default_data_dir()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        coco = data / COCO_VAL
        if coco.is_file():
            seconds = time_prepare("coco", [coco], tmp / "coco.h5", args.repeats)
            print(f"prepare coco (538 images, 2,213 annotations): {seconds:.2f} s  (target <= 3 s, best of {args.repeats})")
        else:
            print(f"prepare coco: skipped ({coco} not found)")

        window_cache = None
        positions = data / CMU_POSITIONS
        if importlib.util.find_spec("posecli.data.readers.mocap") and positions.is_file():
            out = tmp / "mocap.h5"
            seconds = time_prepare("mocap", [positions], out, 1, cameras=MOCAP_CAMERAS)
            print(f"prepare mocap ({MOCAP_FRAMES:,} frames x {MOCAP_CAMERAS} cameras): {seconds:.2f} s  (target <= 30 s)")
            window_cache, kind = out, "mocap"
        else:
            print("prepare mocap: skipped (reader or CMU positions not available)")
        if window_cache is None:
            window_cache, kind = synthetic_cache(tmp / "synthetic.h5", args.seed), "synthetic"
        rate, frames = windows_per_second(window_cache, args.windows, args.seed)
        print(f"random {WINDOW}-frame windows from the {kind} cache ({frames:,} frames, warm): "
              f"{rate:,.0f}/s  (target >= 20,000/s)")


if __name__ == "__main__":
    main()
