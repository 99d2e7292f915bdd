"""LSP 2D PCK@0.2 after a short CPU pretraining on LSP images 1-1000, tested on images 1001-2000:
random vs ImageNet-initialised EfficientNet-Lite0 (the only backbone with shipped ImageNet weights).

    python benchmarks/lsp_pretrain.py LSP_DIR --work DIR --init none|imagenet [--steps 450] [--threads 1]

LSP_DIR holds joints.mat and images/. The recipe is pretrain-image-2d with the sizes shrunk to fit
a few CPU minutes (128x128 crops, batch 16, step drops at the same fractions of the run). Prints
the wall time of training and the test PCK@0.2 (torso, flip test). LSP has no stated licence:
local figures only. Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from posecli.config import load_config
from posecli.data.cache import open_cache
from posecli.data.image_cache import ImageStore
from posecli.data.prepare import prepare
from posecli.data.records import PrepareOptions
from posecli.engine.trainer import train
from posecli.families.image.validate import torso_pck02
from posecli.engine.checkpoint import load_model
from posecli.families.image.predict import predict_frames


def lsp_cache(lsp: Path, work: Path, split: str, size: int) -> Path:
    """The LSP split as a cache with crops (made once, reused by later runs)."""
    out = work / f"lsp-{split}-{size}.h5"
    if not out.exists():
        prepare("lsp", [lsp / "joints.mat"], out, PrepareOptions(split=split, images=lsp / "images"),
                force=False, command="benchmarks/lsp_pretrain.py", crop_size=size)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lsp", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--init", choices=("none", "imagenet"), default="none")
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    train_cache, test_cache = (lsp_cache(args.lsp, args.work, s, args.size) for s in ("train", "test"))

    milestones = [round(args.steps * 90 / 140), round(args.steps * 120 / 140)]
    cfg = load_config("pretrain-image-2d", [
        "model.backbone=efficientnet_lite0", f"model.pretrained={args.init}", f"model.input_size={args.size}",
        "model.deconv_channels=64", f"data.sources=[{train_cache}]", "data.val=null", "data.epoch_length=1000",
        "data.num_workers=0", f"train.steps={args.steps}", f"train.batch_size={args.batch}",
        f"train.milestones={milestones}", "train.log_every=50", "train.ckpt_every=100000", "train.amp=false",
        "train.tensorboard=false"])
    run_dir = args.work / f"run-{args.init}-{int(time.time())}"
    t0 = time.perf_counter()
    result = train(cfg, run_dir, device="cpu", progress=False, console=Console(quiet=True))
    train_s = time.perf_counter() - t0

    model, _ = load_model(result.last_checkpoint, family="image")
    t1 = time.perf_counter()
    with open_cache(test_cache) as cache:
        frames = np.arange(cache.num_frames)
        store = ImageStore(test_cache)
        pred = predict_frames(model, store, frames, flip=True, batch_size=32)
        store.close()
        pck = torso_pck02(pred["keypoints2d"], np.asarray(cache.keypoints2d), np.asarray(cache.confidence))
    eval_s = time.perf_counter() - t1
    print(f"init={args.init} backbone=efficientnet_lite0 input={args.size} steps={args.steps} batch={args.batch} "
          f"threads={args.threads}: train {train_s:.0f} s ({args.steps * args.batch / train_s:.1f} images/s), "
          f"final loss {result.final_loss:.5f}; test LSP 1001-2000 PCK@0.2 (torso, flip) {pck:.1f}% "
          f"({eval_s:.0f} s to predict {len(frames)} crops)")


if __name__ == "__main__":
    main()
