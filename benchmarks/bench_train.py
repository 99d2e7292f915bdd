"""Training throughput, peak memory and inference speed of the lifters, through the real engine.

Each configuration runs in its own subprocess (so peak RSS, from getrusage, is that model's alone):
training goes through posecli.engine.trainer.train on a synthetic cache for a few steps and reports
supervised frames per second after a warm-up interval; inference is one forward pass that yields
243 output frames at batch 1 (stformer: 243 input frames; tcn-243: 243 + 242 input frames).
Ratios are against tcn-243 measured in the same run.

    python benchmarks/bench_train.py [--threads 2] [--batch 16] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # name: (model overrides, supervised frames per sample T)
    "stformer-xs": (["model.name=stformer", "model.size=xs", "model.window=243"], 81),
    "stformer-s": (["model.name=stformer", "model.size=s", "model.window=243"], 81),
    "tcn-243": (["model.name=tcn", "model.size=l", "model.window=243"], 81),
}
PEERS = "MotionBERT-lite trains 68 frames/s at 8.7 GB RSS, infers 206 frames/s; MotionAGFormer-xs infers " \
        "472 frames/s; VideoPose3D-243 trains 94 frames/s, infers 3,384 frames/s (same environment)"


def measure(name: str, threads: int, batch: int, steps: int) -> dict:
    """Runs inside the subprocess: train a few steps, then time inference."""
    import torch
    from rich.console import Console

    sys.path.insert(0, str(ROOT / "tests"))
    from engine_data import make_cache

    from posecli.config import load_config, section
    from posecli.engine.trainer import train
    from posecli.models import build_model, count_parameters

    torch.set_num_threads(threads)
    sets, frames = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp) / "bench.h5", sequences=4, length=400)
        probe = build_model(section(load_config("base", sets), "model"))
        extra = probe.receptive_field - 1 if name.startswith("tcn") else 0   # valid convolutions
        cfg = load_config("base", [*sets, f"data.sources={cache}", f"data.window={frames + extra}",
                                   "objective.mpjpe=1", "objective.velocity=0.5", f"train.batch_size={batch}",
                                   f"train.steps={steps}", f"train.log_every={steps // 3}",
                                   "train.tensorboard=false", "data.augment.noise=1"])
        result = train(cfg, Path(tmp) / "run", device="cpu", progress=False, console=Console(quiet=True))
        timed = [float(r["frames_per_s"]) for r in result.history[1:]]   # skip the warm-up interval
        train_fps = sum(timed) / len(timed) * frames / (frames + extra)   # count supervised frames only
    model = build_model(section(load_config("base", sets), "model")).eval()
    x = torch.zeros(1, 243 + (model.receptive_field - 1 if name.startswith("tcn") else 0), 17, 3)
    x[..., 2] = 1.0
    with torch.inference_mode():
        model(x)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 3.0:
            out = model(x)["pose3d"]
            n += 1
        infer_fps = n * out.shape[1] / (time.perf_counter() - t0)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    return {"name": name, "params_m": count_parameters(model) / 1e6, "train_fps": train_fps,
            "peak_rss_gb": rss_gb, "infer_fps": infer_fps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.batch, args.steps)))
        return
    rows = []
    for name in CONFIGS:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(args.threads),
                               "--batch", str(args.batch), "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(args.threads),
                                   "PYTHONPATH": str(ROOT)})
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    ref = next(r for r in rows if r["name"] == "tcn-243")
    print(f"CPU, {args.threads} threads, batch {args.batch}, T=81 supervised frames per sample, "
          f"{args.steps} steps (first interval is warm-up)")
    print(f"{'model':<12} {'params':>8} {'train f/s':>10} {'x tcn':>6} {'peak RSS':>9} {'infer f/s':>10} {'x tcn':>6}")
    for r in rows:
        print(f"{r['name']:<12} {r['params_m']:>7.2f}M {r['train_fps']:>10.0f} {r['train_fps'] / ref['train_fps']:>6.2f}"
              f" {r['peak_rss_gb']:>7.2f}GB {r['infer_fps']:>10.0f} {r['infer_fps'] / ref['infer_fps']:>6.2f}")
    print(f"peers: {PEERS}")


if __name__ == "__main__":
    main()
