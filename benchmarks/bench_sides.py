"""How well `posecli infer` keeps left and right with the body (posecli.infer.sides), on 3D takes
whose labels are known: each sequence is filmed by a wide virtual camera (bench_wild's), its 2D
gets the detector-noise model without its own swaps, and then either nothing or runs of mirrored
arms / legs like BlazePose's (a run starts at 4 % of frames per limb group, lasts 1-12 frames,
and within a run 70 % of frames are mirrored: flicker, as on the pose2sim cam02 view). The fix
sees only the corrupted 2D. Printed per set and frame rate: the share of limb-group frames whose
labels are wrong, before and after, and how far the wrong labels put the joints (mean over all
limb-group frames, % of the person's height). With --checkpoint, the lifter's P-MPJPE on the
same 2D at the sets' own 50 fps: without flicker, with it, and with it after the fix.

    python benchmarks/bench_sides.py [--cmu-test caches/mocap-test.h5] [--dance runs/bench-wild/dance-holdout.h5]
        [--hdm05 caches/hdm05-test.h5] [--sequences N] [--checkpoint default]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_wild import WIDE_CAMERAS, WIDE_SEED  # noqa: E402

from posecli.data.augment import AUGMENT_DEFAULTS, detector_noise, virtual_view  # noqa: E402
from posecli.data.cache import open_cache  # noqa: E402
from posecli.families.lifter.predict import lift_sequence  # noqa: E402
from posecli.infer.export import load_lifter  # noqa: E402
from posecli.infer.sides import LIMB_GROUPS, consistent_sides, mirror_groups  # noqa: E402
from posecli.metrics import masked_mean, p_mpjpe_errors  # noqa: E402

RUN_START = 0.04
RUN_LENGTH = (1, 12)
RUN_FILL = 0.7
STRIDES = (1, 2, 4)       # the caches' 50 fps, 25 fps, 12.5 fps


def detector_flicker(frames: int, rng: np.random.Generator) -> np.ndarray:
    """[frames, G] bool: limb groups a BlazePose-like detector mirrors."""
    mirrored = np.zeros((frames, len(LIMB_GROUPS)), dtype=bool)
    for g in range(len(LIMB_GROUPS)):
        for start in np.nonzero(rng.random(frames) < RUN_START)[0]:
            length = int(rng.integers(RUN_LENGTH[0], RUN_LENGTH[1] + 1))
            run = slice(start, min(frames, start + length))
            mirrored[run, g] |= rng.random(run.stop - run.start) < RUN_FILL
    return mirrored


def label_errors(kp_true: np.ndarray, conf: np.ndarray, wrong: np.ndarray) -> tuple[int, float]:
    """(mislabelled limb-group frames, summed displacement of their joints in person heights)."""
    moved = 0.0
    y = np.where(conf > 0, kp_true[..., 1], np.nan)
    height = np.nanmax(y, axis=1) - np.nanmin(y, axis=1)
    for g, pairs in enumerate(LIMB_GROUPS.values()):
        f = np.nonzero(wrong[:, g])[0]
        for a, b in pairs:
            moved += float((np.linalg.norm(kp_true[f, a] - kp_true[f, b], axis=-1) / height[f]).sum()) / len(pairs)
    return int(wrong.sum()), moved


def run_set(name: str, path: Path, max_sequences: int | None, model=None) -> None:
    if not path.is_file():
        print(f"{name:<20} skipped: {path} not found")
        return
    noise = {k: float(AUGMENT_DEFAULTS[k]) for k in ("jitter", "dropout", "outlier")}
    with open_cache(path) as cache:
        sequences = list(range(cache.num_sequences))[:max_sequences]
        present = np.asarray(cache.joint_status) != 2
        for stride in STRIDES:
            t0 = time.perf_counter()
            totals = {k: 0.0 for k in ("cells", "clean_wrong", "clean_moved", "before", "before_moved", "after",
                                       "after_moved")}
            lifted: dict[str, list[np.ndarray]] = {"no flicker": [], "flicker": [], "flicker, fixed": []}
            masks: list[np.ndarray] = []
            for seq in sequences:
                sl = slice(int(cache.seq_start[seq]), int(cache.seq_start[seq] + cache.seq_length[seq]))
                kp3d, conf = np.asarray(cache.keypoints3d[sl]), np.asarray(cache.confidence[sl])
                rng = np.random.default_rng([WIDE_SEED, int(seq), stride])
                view = next((v for v in (virtual_view(kp3d, conf, cache.intrinsics[seq], rng, **WIDE_CAMERAS)
                                         for _ in range(20)) if v is not None), None)
                if view is None:
                    continue
                kp2d, conf = view[1][::stride], conf[::stride]
                whole = ((conf > 0) | ~present).all(axis=1)            # every joint the rig has is seen
                kp2d, conf, truth = kp2d[whole], conf[whole], kp2d[whole]
                noisy, noisy_conf = detector_noise(kp2d, conf, rng, swap=0.0, **noise)
                clean_fix = consistent_sides(noisy[:, None], noisy_conf[:, None]).mirrored[:, 0]
                flicker = detector_flicker(len(noisy), rng)
                detected = mirror_groups(noisy[:, None], flicker[:, None])
                detected_conf = mirror_groups(noisy_conf[:, None], flicker[:, None])
                fix = consistent_sides(detected, detected_conf)
                fixed = fix.mirrored[:, 0]
                if model is not None and stride == 1:
                    target, valid = view[0][whole], (conf > 0) & present
                    for key, (k2, c2) in (("no flicker", (noisy, noisy_conf)), ("flicker", (detected[:, 0], detected_conf[:, 0])),
                                          ("flicker, fixed", (fix.keypoints2d[:, 0], fix.confidence[:, 0]))):
                        lifted[key].append(p_mpjpe_errors(lift_sequence(model, k2, c2), target, valid))
                    masks.append(valid)
                for key, wrong in (("clean", clean_fix), ("before", flicker), ("after", flicker ^ fixed)):
                    count, moved = label_errors(truth, conf, wrong)
                    totals["clean_wrong" if key == "clean" else key] += count
                    totals[f"{key}_moved"] += moved
                totals["cells"] += flicker.size
            cells = max(totals["cells"], 1)
            pct = lambda k: 100.0 * totals[k] / cells                 # noqa: E731
            print(f"{name:<20} {50 / stride:>5.1f} fps  {int(cells) // len(LIMB_GROUPS):>7} frames   "
                  f"no flicker: wrong {pct('clean_wrong'):5.2f} % (moved {pct('clean_moved'):.2f} % of height)   "
                  f"flicker: wrong {pct('before'):5.2f} % -> {pct('after'):5.2f} % "
                  f"(moved {pct('before_moved'):.2f} -> {pct('after_moved'):.2f} % of height)  "
                  f"[{time.perf_counter() - t0:.1f} s]")
            if masks:
                mask = np.concatenate(masks)
                print(f"{'':<20} lifter P-MPJPE (mm): " + ", ".join(
                    f"{key} {1000.0 * masked_mean(np.concatenate(errs), mask).value:.1f}" for key, errs in lifted.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmu-test", type=Path, default=Path("caches/mocap-test.h5"))
    parser.add_argument("--dance", type=Path, default=Path("runs/bench-wild/dance-holdout.h5"))
    parser.add_argument("--hdm05", type=Path, default=Path("caches/hdm05-test.h5"))
    parser.add_argument("--sequences", type=int, default=None, help="first N sequences of each set")
    parser.add_argument("--checkpoint", default=None, help="also lift the 2D with this model (path or bundled name)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    model = None
    if args.checkpoint is not None:
        if args.threads:
            torch.set_num_threads(args.threads)
        model = load_lifter(args.checkpoint)
    print("left/right labels per limb group (arms, legs) of one tracked person: share of limb-group frames "
          "mislabelled; 'moved': mean displacement that causes, % of the person's height")
    for name, path in (("CMU Li-2018 test", args.cmu_test), ("CMU dance hold-out", args.dance),
                       ("HDM05 test", args.hdm05)):
        run_set(name, path, args.sequences, model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
