"""A real `posecli pretrain` / `posecli finetune` against the engine benchmark, in one run.

bench_train.py times posecli.engine.trainer.train in-process (progress off, threads set). This
script runs the same preset, model, window, batch and cache twice, back to back: once like
bench_train.py (in a subprocess, engine call), once as the real command (`python -m posecli ...`
with stdout to a log file, as a batch job runs it), and prints both throughputs (log.csv
frames/s, first interval skipped as warm-up) and their ratio. The ratio is what to compare on a
shared CPU; absolute figures depend on the load.

    python benchmarks/bench_cli_train.py [--preset pretrain-2d] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def engine_run(preset: str, sets: list[str], run_dir: Path, threads: int) -> None:
    """Runs inside the subprocess: the engine call bench_train.py makes."""
    import torch
    from rich.console import Console

    from posecli.config import load_config
    from posecli.engine.trainer import train

    torch.set_num_threads(threads)
    train(load_config(preset, sets), run_dir, device="cpu", progress=False, console=Console(quiet=True))


def interval_fps(run_dir: Path) -> float:
    with open(run_dir / "log.csv", newline="", encoding="utf-8") as f:
        rows = [float(r["frames_per_s"]) for r in csv.DictReader(f) if r.get("frames_per_s")]
    timed = rows[1:] or rows
    return sum(timed) / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="pretrain-2d")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="alternate engine/CLI this many times")
    parser.add_argument("--engine", nargs=2, metavar=("RUN_DIR", "SETS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        engine_run(args.preset, json.loads(args.engine[1]), Path(args.engine[0]), args.threads)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from engine_data import make_cache

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = make_cache(tmp / "bench.h5", sequences=8, length=400, with3d=not args.preset.startswith("pretrain"))
        sets = [f"data.sources=[{cache}]", "data.val=null", f"train.steps={args.steps}",
                f"train.log_every={max(1, args.steps // 4)}", "train.tensorboard=false", "train.init_from="]
        figures: dict[str, list[float]] = {"engine": [], "cli": []}
        for i in range(args.repeats):
            for kind in ("engine", "cli"):
                run_dir = tmp / f"{kind}-{i}"
                t0 = time.perf_counter()
                if kind == "engine":
                    subprocess.run([sys.executable, __file__, "--preset", args.preset, "--threads", str(args.threads),
                                    "--engine", str(run_dir), json.dumps(sets)], check=True, env=env)
                else:
                    command = ["pretrain"] if args.preset.startswith("pretrain") else ["finetune", "cmu"]
                    with open(tmp / f"{kind}-{i}.log", "w", encoding="utf-8") as log:
                        subprocess.run([sys.executable, "-m", "posecli", *command, "--preset", args.preset,
                                        "--run-dir", str(run_dir), "--device", "cpu",
                                        *[a for s in sets for a in ("--set", s)]],
                                       check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
                figures[kind].append(interval_fps(run_dir))
                print(f"{kind:<6} run {i}: {figures[kind][-1]:8.1f} frames/s ({time.perf_counter() - t0:.1f} s wall)",
                      flush=True)
    engine = sum(figures["engine"]) / len(figures["engine"])
    cli = sum(figures["cli"]) / len(figures["cli"])
    print(f"{args.preset}, {args.steps} steps, {args.threads} threads: engine {engine:.1f} frames/s, "
          f"posecli command {cli:.1f} frames/s, command / engine = {cli / engine:.2f}")


if __name__ == "__main__":
    main()
