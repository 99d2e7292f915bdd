"""Forward speed and size of the lifters: `python benchmarks/bench_models.py [--threads N] [--batch B]`.

Prints parameters, milliseconds per forward pass (eval mode, no grad) and output frames per second
for each size predicting one full window (tcn gets its receptive field as padding), so presets can
be chosen for a real-time budget.
"""

from __future__ import annotations

import argparse
import time

import torch

from posecli.models import build_model, count_parameters

CONFIGS = [
    {"name": "stformer", "size": "xs", "window": 243},
    {"name": "stformer", "size": "s", "window": 243},
    {"name": "stformer", "size": "xs", "window": 27},
    {"name": "tcn", "size": "l", "window": 243},
    {"name": "tcn", "size": "s", "window": 243},
]


def bench(cfg: dict, batch: int, repeats: int) -> tuple[int, float, int]:
    model = build_model(cfg).eval()
    # valid-convolution models (tcn) get receptive_field - 1 extra frames to predict a full window
    shrink = model.window - model(torch.ones(1, model.window, 17, 3))["pose3d"].shape[1]
    x = torch.randn(batch, model.window + shrink, 17, 3)
    x[..., 2] = 1.0
    with torch.inference_mode():
        out_frames = model(x)["pose3d"].shape[1] * batch
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        ms = (time.perf_counter() - start) / repeats * 1000
    return count_parameters(model), ms, out_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}")
    for cfg in CONFIGS:
        params, ms, frames = bench(cfg, args.batch, args.repeats)
        print(f"{cfg['name']:>8} {cfg['size']:>2} T={cfg['window']:<3} {params / 1e6:6.2f} M params "
              f"{ms:8.1f} ms/forward {frames / ms * 1000:9.0f} output frames/s")


if __name__ == "__main__":
    main()
