"""Evaluation protocols: a model or a predictions NPZ against a cache with 3D ground truth.

Every frame of every selected sequence is scored, root-relative (joint 0), in millimetres. On a
Human3.6M cache the test subjects default to S9 and S11, sub-actions ("Directions 1") are merged into
their action, and the headline number is the mean over actions of the per-action means, reported
next to the frame-weighted mean (both labelled). Tables: per action, subject, camera and joint.
The predictions NPZ layout is documented in docs/evaluation.md.

Image-family checkpoints predict from the cache's person crops (schema v2) and are scored in the
same tables, plus SN-MPJPE (scale-normalised, the reference study's figure) and 2D PCK@0.2 (torso)
/ PCKh@0.5 against the labelled 2D, which also serve 2D-only photo caches. `every` scores every
k-th frame of each sequence (the study: every 10th frame of Human3.6M, with flip test).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posecli.data.augment import AUGMENT_DEFAULTS, detector_noise
from posecli.data.cache import PoseCache, open_cache
from posecli.errors import PoseCliError
from posecli.options import check_range
from posecli import metrics as M
from posecli.skeleton import H36M_JOINTS, NUM_JOINTS, JointStatus

PROTOCOLS: dict[str, tuple[str, str]] = {
    # key: (display name, unit)
    "p1": ("MPJPE", "mm"),
    "p2": ("P-MPJPE", "mm"),
    "n": ("N-MPJPE", "mm"),
    "vel": ("MPJVE", "mm/frame"),
    "pck": ("PCK@150mm", "%"),
    "auc": ("AUC", "%"),
    "snm": ("SN-MPJPE", "mm"),
    "pck2d": ("PCK@0.2", "%"),
    "pckh": ("PCKh@0.5", "%"),
}
PROTOCOLS_2D = ("pck2d", "pckh")
DEFAULT_LIFTER = ("p1", "p2", "n", "vel", "pck", "auc")
DEFAULT_IMAGE_3D = ("snm", "p1", "p2", "n", "pck", "pck2d", "pckh")
H36M_TEST_SUBJECTS = ("S9", "S11")
H36M_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
PREDICTION_SKELETON = "h36m17"
MAX_BATCH = 65_536                 # windows per forward pass
MAX_INPUT_NOISE = 10.0             # x the training detector model
# Predictions up to this size are scored exactly in float64 (squares of millimetres stay finite).
MAX_PREDICTION_M = 1e100


def parse_protocols(text: str | Sequence[str]) -> list[str]:
    """'p1,p2,vel' -> ['p1', 'p2', 'vel']; unknown names are user errors."""
    names = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown or not names:
        raise PoseCliError(f"unknown protocol '{unknown[0] if unknown else text}' "
                           f"(known: {', '.join(PROTOCOLS)})")
    return list(dict.fromkeys(names))


def is_h36m(cache: PoseCache) -> bool:
    return cache.dataset.lower().replace(".", "").replace("-", "") in {"h36m", "human36m"}


def h36m_action(name: str) -> str:
    """Human3.6M action of a sequence name: 'Directions 1' / 'Directions_1' -> 'Directions',
    'TakingPhoto' -> 'Photo', 'WalkingDog' -> 'WalkDog' (the names differ between subjects)."""
    match = re.match(r"[A-Za-z]+", name.strip())
    base = match.group(0) if match else name.strip()
    return H36M_ACTION_ALIASES.get(base, base)


def select_sequences(cache: PoseCache, subjects: Sequence[str] | None = None) -> list[int]:
    """Indices of the sequences to score: the given subjects, else S9/S11 on Human3.6M, else all."""
    if subjects is None and is_h36m(cache):
        subjects = H36M_TEST_SUBJECTS
    if subjects is None:
        return list(range(cache.num_sequences))
    wanted = set(subjects)
    chosen = [i for i, s in enumerate(cache.subject) if s in wanted]
    if not chosen:
        have = ", ".join(sorted(set(cache.subject))) or "none"
        raise PoseCliError(f"no sequence of subject(s) {', '.join(sorted(wanted))} in the cache "
                           f"(it has: {have}); pass --subjects", cache.path)
    return chosen


def load_predictions(path: str | Path, num_frames: int) -> np.ndarray:
    """`keypoints3d` [N, 17, 3] metres from a predictions NPZ, checked against the cache's N frames.

    A single-person infer output [N, 1, 17, 3] is accepted; NaN marks a frame/joint with no
    prediction (scored as missing and counted)."""
    path = Path(path)
    if not path.is_file():
        raise PoseCliError("predictions file not found", path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PoseCliError(f"not a readable NPZ file ({exc.__class__.__name__})", path) from None
    with data:
        if "keypoints3d" not in data.files:
            raise PoseCliError(f"no 'keypoints3d' array (has: {', '.join(data.files) or 'nothing'})", path)
        skeleton = str(data["skeleton"]) if "skeleton" in data.files else PREDICTION_SKELETON
        kp = np.asarray(data["keypoints3d"])
    if skeleton != PREDICTION_SKELETON:
        raise PoseCliError(f"predictions use skeleton '{skeleton}', eval needs '{PREDICTION_SKELETON}'", path)
    if kp.ndim == 4 and kp.shape[1] == 1:
        kp = kp[:, 0]
    if kp.shape != (num_frames, NUM_JOINTS, 3):
        raise PoseCliError(f"keypoints3d has shape {kp.shape}, expected ({num_frames}, {NUM_JOINTS}, 3): "
                           "one pose per cache frame, in the cache's frame order", path)
    if not np.issubdtype(kp.dtype, np.floating) or not np.isfinite(kp[~np.isnan(kp)]).all():
        raise PoseCliError("keypoints3d must be finite floats (NaN only for missing predictions)", path)
    if np.nanmax(np.abs(kp), initial=0.0) > MAX_PREDICTION_M:
        raise PoseCliError(f"keypoints3d has values beyond {MAX_PREDICTION_M:g} m: not poses in metres", path)
    return kp if kp.dtype == np.float64 else kp.astype(np.float32)


NOISE_SEED = 0


def noisy_input(kp2d: np.ndarray, conf: np.ndarray, level: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like corruption of one sequence's 2D (pixels) for robustness tests.

    `level` scales the training detector model (posecli.data.augment.detector_noise with
    AUGMENT_DEFAULTS' jitter, swap, dropout and outlier rates; probabilities capped at 1): 0 is the
    clean input, 1 the default detector model, 2 twice its jitter and failure rates. The jitter is
    relative to each frame's person size, so pixels work as well as normalised coordinates.
    """
    check_range("input noise level", level, 0, MAX_INPUT_NOISE)
    if level == 0:
        return kp2d, conf
    rates = {k: min(1.0, float(AUGMENT_DEFAULTS[k]) * level) for k in ("swap", "dropout", "outlier")}
    return detector_noise(np.asarray(kp2d, np.float32), np.asarray(conf, np.float32), rng,
                          jitter=float(AUGMENT_DEFAULTS["jitter"]) * level, **rates)


def predict_cache(model, cache: PoseCache, sequences: Sequence[int], *, flip: bool = False,
                  stride: int | None = None, batch_size: int = 64, device: str = "cpu",
                  progress: Callable[[int], None] | None = None, input_noise: float = 0.0,
                  noise_seed: int = NOISE_SEED) -> np.ndarray:
    """Lift every selected sequence of the cache; [N, 17, 3] metres, NaN outside the selection.
    `input_noise` > 0 corrupts the 2D first (`noisy_input`; sequence i draws from the generator
    seeded (noise_seed, i), so the noise does not depend on which sequences are selected).
    `progress(frames_done)` is called after each sequence."""
    from posecli.predict import lift_sequence

    out = np.full((cache.num_frames, NUM_JOINTS, 3), np.nan, dtype=np.float32)
    for seq in sequences:
        s0, n = int(cache.seq_start[seq]), int(cache.seq_length[seq])
        sl = slice(s0, s0 + n)
        kp2d, conf = noisy_input(np.asarray(cache.keypoints2d[sl]), np.asarray(cache.confidence[sl]),
                                 input_noise, np.random.default_rng([int(noise_seed), int(seq)]))
        out[sl] = lift_sequence(model, kp2d, conf, flip=flip, stride=stride, batch_size=batch_size,
                                device=device)
        if progress is not None:
            progress(n)
    return out


@dataclass
class EvalResult:
    """A finished evaluation: the JSON-ready report plus per-frame curves for the plots."""

    report: dict
    frame_error: dict[str, np.ndarray] = field(default_factory=dict)   # "subject/action/camera" -> [T] P1 mm


def default_protocols(family: str, has3d: bool) -> list[str]:
    """What `posecli eval` scores when --protocols is not given."""
    if family == "image":
        return list(DEFAULT_IMAGE_3D if has3d else PROTOCOLS_2D)
    return list(DEFAULT_LIFTER)


def _metric_values(pred_mm: np.ndarray | None, gt_mm: np.ndarray | None, p1: np.ndarray | None,
                   valid: np.ndarray, seq_start: np.ndarray, protocols: list[str],
                   pred2d: np.ndarray | None = None, gt2d: np.ndarray | None = None,
                   conf2d: np.ndarray | None = None, valid2d: np.ndarray | None = None
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-joint values [N, J] and their valid masks for each protocol (p1: Protocol 1 errors;
    the 2D protocols use pred2d/gt2d pixels, conf2d labels and valid2d)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in protocols:
        if key == "pck2d":
            out[key] = M.pck2d_scores(pred2d, gt2d, M.labelled_torso_size(gt2d, conf2d), 0.2, valid2d)
        elif key == "pckh":
            head = np.where((conf2d[:, 9] > 0) & (conf2d[:, 10] > 0), M.head_size(gt2d), 0.0)
            out[key] = M.pck2d_scores(pred2d, gt2d, head, 0.5, valid2d)
        elif key == "snm":
            out[key] = (M.sn_mpjpe_errors(pred_mm, gt_mm, valid), valid)
        elif key == "p1":
            out[key] = (p1, valid)
        elif key == "p2":
            out[key] = (M.p_mpjpe_errors(pred_mm, gt_mm, valid), valid)
        elif key == "n":
            out[key] = (M.n_mpjpe_errors(pred_mm, gt_mm, valid), valid)
        elif key == "vel":
            out[key] = M.velocity_errors(pred_mm, gt_mm, valid, seq_start)
        elif key == "pck":
            out[key] = (M.pck_scores(p1), valid)
        elif key == "auc":
            out[key] = (M.auc_scores(p1), valid)
    return out


def _table(names: list[str], frames: np.ndarray, sums: dict[str, np.ndarray], counts: dict[str, np.ndarray]
           ) -> list[dict]:
    """Rows of a table: per name, the frames scored, the joints counted (first protocol) and each
    protocol's mean (NaN where it counted nothing)."""
    keys = list(sums)
    table = []
    for i, name in enumerate(names):
        entry = {"name": name, "frames": int(frames[i]), "joints": int(counts[keys[0]][i])}
        for key in keys:
            entry[key] = float(sums[key][i] / counts[key][i]) if counts[key][i] else float("nan")
        table.append(entry)
    return table


@dataclass
class _Sums:
    """Running sums of the per-joint values, per sequence and per joint: scoring streams over the
    sequences, so memory is one sequence's float64 temporaries, not the whole cache's."""

    protocols: list[str]
    num_sequences: int
    seq_sum: dict[str, np.ndarray] = field(init=False)
    seq_count: dict[str, np.ndarray] = field(init=False)
    joint_sum: dict[str, np.ndarray] = field(init=False)
    joint_count: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.seq_sum = {k: np.zeros(self.num_sequences) for k in self.protocols}
        self.seq_count = {k: np.zeros(self.num_sequences, dtype=np.int64) for k in self.protocols}
        self.joint_sum = {k: np.zeros(NUM_JOINTS) for k in self.protocols}
        self.joint_count = {k: np.zeros(NUM_JOINTS, dtype=np.int64) for k in self.protocols}

    def add(self, index: int, values: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for key, (v, m) in values.items():
            masked = np.where(m, v, 0.0)
            self.seq_sum[key][index] = masked.sum()
            self.seq_count[key][index] = int(m.sum())
            self.joint_sum[key] += masked.sum(axis=0)
            self.joint_count[key] += m.sum(axis=0)

    def grouped(self, group_of_seq: np.ndarray, groups: int) -> tuple[dict, dict]:
        sums = {k: np.bincount(group_of_seq, weights=v, minlength=groups) for k, v in self.seq_sum.items()}
        counts = {k: np.bincount(group_of_seq, weights=v, minlength=groups).astype(np.int64)
                  for k, v in self.seq_count.items()}
        return sums, counts


def _nothing_scored(protocols: list[str], counts: dict[str, int], predicted: int, chosen: int,
                    source: dict) -> None:
    """Refuse an evaluation that counted no joint for some protocol: a report of dashes and zero
    counts would read as a result."""
    empty = [k for k in protocols if counts[k] == 0]
    if not empty:
        return
    names = ", ".join(PROTOCOLS[k][0] for k in empty)
    if predicted == 0:
        why = (f"all {chosen} predicted joints are NaN (a model with NaN weights, or NaN input)"
               if chosen else "no frame was selected")
    else:
        why = "no joint has both a prediction and valid ground truth"
    raise PoseCliError(f"nothing was scored for {names}: {why}", source.get("path"))


def score(cache: PoseCache, pred_m: np.ndarray | None, sequences: Sequence[int], protocols: Sequence[str],
          source: dict, worst: int = 3, *, pred2d: np.ndarray | None = None, every: int = 1) -> EvalResult:
    """Score predictions [N, 17, 3] (metres) and/or 2D predictions [N, 17, 2] (pixels) against the
    cache on the selected sequences, on every `every`-th frame of each, one sequence at a time.
    An evaluation that counts no joint for a protocol is refused (`_nothing_scored`)."""
    protocols = parse_protocols(protocols)
    need3d = [k for k in protocols if k not in PROTOCOLS_2D]
    if need3d and cache.keypoints3d is None:
        raise PoseCliError("cache has no 3D ground truth (keypoints3d): eval needs a 3D cache, or 2D "
                           "protocols (--protocols pck2d,pckh) with an image-family checkpoint", cache.path)
    if need3d and pred_m is None:
        raise PoseCliError(f"protocol '{need3d[0]}' needs 3D predictions")
    if len(need3d) < len(protocols) and pred2d is None:
        raise PoseCliError("2D protocols (pck2d, pckh) need 2D predictions: evaluate an image-family checkpoint")
    if every < 1:
        raise PoseCliError(f"--every must be >= 1, got {every}")
    if every > 1 and "vel" in protocols:
        raise PoseCliError("MPJVE (vel) needs consecutive frames: drop it from --protocols or use --every 1")
    sequences = list(sequences)
    lengths = np.array([int(cache.seq_length[s]) for s in sequences], dtype=np.int64)
    status_ok = cache.joint_status != JointStatus.MISSING
    sums = _Sums(protocols, len(sequences))
    p1_sum, p1_count = np.zeros(len(sequences)), np.zeros(len(sequences), dtype=np.int64)
    frames_chosen = np.zeros(len(sequences), dtype=np.int64)
    curves: list[np.ndarray | None] = [None] * len(sequences)
    joints_missing = predictions_missing = predicted = 0

    for i, seq in enumerate(sequences):
        s0, n = int(cache.seq_start[seq]), int(lengths[i])
        sl = slice(s0, s0 + n)
        chosen = np.arange(n) % every == 0
        frames_chosen[i] = int(chosen.sum())
        p1_err = pred_mm = gt_mm = None
        valid = np.zeros((n, NUM_JOINTS), dtype=bool)
        has_pred = np.zeros_like(valid)
        if need3d:
            gt_mm = np.asarray(cache.keypoints3d[sl], dtype=np.float64) * 1000.0
            pred = np.asarray(pred_m[sl], dtype=np.float64)
            has_pred = np.isfinite(pred).all(axis=-1) & np.isfinite(pred[:, :1]).all(axis=-1)
            valid = has_pred & status_ok[None, :] & np.isfinite(gt_mm).all(axis=-1) & chosen[:, None]
            pred_mm = np.nan_to_num(pred) * 1000.0
            p1_err = M.mpjpe_errors(pred_mm, gt_mm)
        gt2d = conf2d = valid2d = p2d = None
        if pred2d is not None:
            gt2d = np.asarray(cache.keypoints2d[sl], dtype=np.float64)
            conf2d = np.asarray(cache.confidence[sl])
            p2d = np.asarray(pred2d[sl], dtype=np.float64)
            has2d = np.isfinite(p2d).all(axis=-1)
            valid2d = has2d & (conf2d > 0) & chosen[:, None]
            has_pred = has_pred | has2d
            p2d = np.nan_to_num(p2d)
        sums.add(i, _metric_values(pred_mm, gt_mm, p1_err, valid, np.array([0]), protocols, p2d, gt2d,
                                   conf2d, valid2d))
        scored = valid if need3d else valid2d
        joints_missing += int((~scored & chosen[:, None]).sum())
        predictions_missing += int((~has_pred & chosen[:, None]).sum())
        predicted += int((has_pred & chosen[:, None]).sum())
        if p1_err is not None:
            masked = np.where(valid, p1_err, 0.0)
            p1_sum[i], p1_count[i] = masked.sum(), int(valid.sum())
            per_frame = valid.sum(axis=1)
            curves[i] = np.where(per_frame > 0, masked.sum(axis=1) / np.maximum(per_frame, 1), np.nan)

    totals = {k: int(v.sum()) for k, v in sums.seq_count.items()}
    _nothing_scored(protocols, totals, predicted, int(frames_chosen.sum()) * NUM_JOINTS, source)

    h36m = is_h36m(cache)
    labels = {
        "action": [h36m_action(cache.action[s]) if h36m else cache.action[s] for s in sequences],
        "subject": [cache.subject[s] for s in sequences],
        "camera": [cache.camera[s] for s in sequences],
    }
    tables: dict[str, list[dict]] = {}
    for kind, per_seq in labels.items():
        names = sorted(set(per_seq))
        index = {n: i for i, n in enumerate(names)}
        group_of_seq = np.array([index[n] for n in per_seq], dtype=np.int64)
        frames = np.bincount(group_of_seq, weights=frames_chosen, minlength=len(names)).astype(np.int64)
        tables[kind] = _table(names, frames, *sums.grouped(group_of_seq, len(names)))
    tables["joint"] = _table(list(H36M_JOINTS), np.full(NUM_JOINTS, int(frames_chosen.sum())),
                             sums.joint_sum, sums.joint_count)

    overall = {}
    for key in protocols:
        name, unit = PROTOCOLS[key]
        overall[key] = {"name": name, "unit": unit, "value": float(sums.seq_sum[key].sum() / totals[key]),
                        "count": totals[key]}
    action_average = None
    if h36m:
        action_average = {k: float(np.nanmean([row[k] for row in tables["action"]])) for k in protocols}

    worst_rows, frame_error = [], {}
    if need3d:
        seq_rows = [{"index": int(s), "subject": cache.subject[s], "action": cache.action[s],
                     "camera": cache.camera[s], "frames": int(n),
                     "p1": float(p1_sum[i] / p1_count[i]) if p1_count[i] else float("nan")}
                    for i, (s, n) in enumerate(zip(sequences, lengths))]
        worst_rows = sorted((r for r in seq_rows if np.isfinite(r["p1"])), key=lambda r: -r["p1"])[:worst]
    for r in worst_rows:
        frame_error[f"{r['subject']}/{r['action']}/{r['camera']}"] = curves[sequences.index(r["index"])]

    report = {
        "source": source,
        "data": {"path": str(cache.path), "dataset": cache.dataset, "split": str(cache.attrs.get("split", "")),
                 "sequences": len(sequences), "frames": int(frames_chosen.sum()), "every": int(every),
                 "subjects": sorted(set(labels["subject"])), "h36m_conventions": h36m},
        "protocols": protocols,
        "joints_missing": joints_missing,
        "predictions_missing": predictions_missing,
        "overall": overall,
        "action_average": action_average,
        "tables": tables,
        "worst_sequences": worst_rows,
    }
    return EvalResult(report, frame_error)


def evaluate_predictions(predictions: str | Path, data: str | Path, *, protocols: Sequence[str] = DEFAULT_LIFTER,
                         subjects: Sequence[str] | None = None, every: int = 1) -> EvalResult:
    """Evaluate a predictions NPZ (docs/evaluation.md) against a 3D cache."""
    with open_cache(data, in_memory=False) as cache:
        sequences = select_sequences(cache, subjects)
        pred = load_predictions(predictions, cache.num_frames)
        return score(cache, pred, sequences, protocols, {"kind": "predictions", "path": str(predictions)},
                     every=every)


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, protocols: Sequence[str] | None = None,
                        subjects: Sequence[str] | None = None, flip: bool = False, stride: int | None = None,
                        batch_size: int = 64, device: str = "cpu", every: int = 1,
                        progress: Callable[[int, int], None] | None = None,
                        input_noise: float = 0.0) -> EvalResult:
    """Evaluate a checkpoint (or bundled model name) on a cache: a lifter lifts the cache's 2D
    (corrupted first when `input_noise` > 0, see predict_cache), an image-family model predicts
    from its crops (evaluate_image_checkpoint). `protocols` None = default_protocols.
    `progress(frames_done, frames_total)` reports progress."""
    from posecli.predict_image import checkpoint_family

    check_range("--batch-size", batch_size, 1, MAX_BATCH, integer=True)
    check_range("--input-noise", input_noise, 0, MAX_INPUT_NOISE)
    check_range("--every", every, 1, integer=True)
    if stride is not None:
        check_range("--stride", stride, 1, integer=True)
    if checkpoint_family(checkpoint) == "image":
        if input_noise:
            raise PoseCliError("--input-noise corrupts a lifter's 2D input; an image model reads pixels",
                               checkpoint)
        return evaluate_image_checkpoint(checkpoint, data, protocols=protocols, subjects=subjects, flip=flip,
                                         batch_size=batch_size, device=device, every=every, progress=progress)
    from posecli.engine.checkpoint import load_model

    protocols = default_protocols("lifter", True) if protocols is None else protocols
    with open_cache(data, in_memory=False) as cache:
        if cache.keypoints3d is None:
            raise PoseCliError("cache has no 3D ground truth (keypoints3d): eval needs a 3D cache", cache.path)
        sequences = select_sequences(cache, subjects)
        model, meta = load_model(checkpoint, device=device)
        if meta.get("skeleton", PREDICTION_SKELETON) != PREDICTION_SKELETON:
            raise PoseCliError(f"model predicts skeleton '{meta['skeleton']}', eval needs "
                               f"'{PREDICTION_SKELETON}'", checkpoint)
        total = int(sum(cache.seq_length[s] for s in sequences))
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        pred = predict_cache(model, cache, sequences, flip=flip, stride=stride, batch_size=batch_size,
                             device=device, progress=step, input_noise=input_noise)
        source = {"kind": "checkpoint", "path": str(checkpoint), "flip": flip, "stride": stride,
                  "input_noise": input_noise,
                  "model": meta.get("config", {}).get("model", {}), "step": meta.get("step")}
        return score(cache, pred, sequences, protocols, source, every=every)


def evaluate_image_checkpoint(checkpoint: str | Path, data: str | Path, *, protocols: Sequence[str] | None = None,
                              subjects: Sequence[str] | None = None, flip: bool = False, batch_size: int = 64,
                              device: str = "cpu", every: int = 1,
                              progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """An image-family checkpoint on a cache with crops: each chosen frame's crop is predicted
    (with the flip test when `flip`), 2D mapped back to image pixels through the crop's affine."""
    from posecli.data.image_cache import ImageStore
    from posecli.predict_image import load_image_model, predict_frames

    with open_cache(data, in_memory=False) as cache:
        if not cache.has_images:
            raise PoseCliError("cache has no image crops, which an image-family model needs: prepare it "
                               "with --images DIR", cache.path)
        protocols = default_protocols("image", cache.has3d) if protocols is None else protocols
        sequences = select_sequences(cache, subjects)
        frames = np.concatenate([cache.seq_start[s] + np.arange(0, cache.seq_length[s], max(1, every))
                                 for s in sequences])
        model, meta = load_image_model(checkpoint, device=device)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], len(frames))

        store = ImageStore(cache.path)
        try:
            out = predict_frames(model, store, frames, flip=flip, batch_size=batch_size, device=device,
                                 progress=step)
        finally:
            store.close()
        pred3d = np.full((cache.num_frames, NUM_JOINTS, 3), np.nan, dtype=np.float32)
        pred2d = np.full((cache.num_frames, NUM_JOINTS, 2), np.nan, dtype=np.float32)
        pred3d[frames], pred2d[frames] = out["keypoints3d"], out["keypoints2d"]
        source = {"kind": "checkpoint", "path": str(checkpoint), "flip": flip, "family": "image",
                  "model": meta.get("config", {}).get("model", {}), "step": meta.get("step")}
        return score(cache, pred3d if cache.has3d else None, sequences, protocols, source, pred2d=pred2d,
                     every=every)
