"""Image family throughput on this machine: inference crops/s at 256x256 per backbone (with and
without the flip test) and the crop loader's samples/s (decode + augment + heatmap targets).

    python benchmarks/bench_image.py [--threads 2] [--lsp DIR_WITH_joints.mat_AND_images/]

The loader figure uses an LSP-style folder when given (real JPEGs), else synthetic photos.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from posecli.data.cache import write_cache
from posecli.data.image_cache import crops_for_records, write_image_group
from posecli.families.image.windows import ImageDataset
from posecli.data.readers.lsp import read_lsp
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.models import build_model
from posecli.skeleton import H36M17


def bench_inference(backbone: str, batch: int, flip: bool, seconds: float = 5.0) -> float:
    model = build_model({"name": "image", "backbone": backbone, "flip_test": flip}).eval()
    x = torch.rand(batch, 3, 256, 256)
    with torch.inference_mode():
        model.predict(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.predict(x)
            n += batch
    return n / (time.perf_counter() - start)


def synthetic_source(folder: Path, n: int = 64) -> ReaderResult:
    """n random 640x480 JPEG photos with a random person-sized pose each."""
    import cv2

    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        cv2.imwrite(str(folder / f"p{i}.jpg"), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
        kp = (np.array([320.0, 240.0]) + rng.uniform(-90, 90, (17, 2))).astype(np.float32)
        records.append(SequenceRecord(keypoints2d=kp[None], confidence=np.ones((1, 17), np.float32),
                                      subject=f"p{i}", frame_names=[f"p{i}.jpg"]))
    return ReaderResult(records=records, dataset="synthetic", source_layout="h36m17",
                        joint_status=H36M17.status, sources=[])


def bench_loader(result: ReaderResult, image_dir: Path, encoding: str, work: Path, samples: int = 400) -> tuple[float, float]:
    """(crops/s cutting crops from photos at prepare time, samples/s of the augmented loader)."""
    path = work / f"bench_{encoding}.h5"
    start = time.perf_counter()
    crops, affines = crops_for_records(result.records, image_dir, crop_size=256)
    cut = len(crops) / (time.perf_counter() - start)
    write_cache(path, result, split="train", force=True, command="bench")
    with h5py.File(path, "a") as f:
        write_image_group(f, crops, affines, encoding=encoding)
    ds = ImageDataset([{"path": str(path)}], None, split_seed=0, length=samples, input_size=256)
    ds[0]
    start = time.perf_counter()
    for i in range(samples):
        ds[i]
    return cut, samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lsp", type=Path, default=None, help="LSP folder (joints.mat + images/)")
    parser.add_argument("--backbones", default="resnet18,resnet50,efficientnet_lite0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    for backbone in args.backbones.split(","):
        for flip in (False, True):
            rate = bench_inference(backbone, batch=8, flip=flip)
            print(f"inference {backbone:18s} 256x256 flip={flip!s:5s}: {rate:6.1f} crops/s")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.lsp is not None:
            result = read_lsp([args.lsp / "joints.mat"], PrepareOptions(split="train"))
            result.records = result.records[:200]
            image_dir, what = args.lsp / "images", "LSP photos"
        else:
            result, image_dir, what = synthetic_source(work), work, "synthetic 640x480 JPEGs"
        for encoding in ("raw", "jpeg"):
            cut, rate = bench_loader(result, image_dir, encoding, work)
            print(f"loader ({what}, {encoding} crops): prepare {cut:6.1f} crops/s, "
                  f"augmented samples {rate:6.1f}/s per worker")


if __name__ == "__main__":
    main()
