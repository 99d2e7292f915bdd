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

from posecli import metrics as M
from posecli.data.cache import PoseCache, open_cache
from posecli.engine.checkpoint import load_model
from posecli.errors import PoseCliError
from posecli.families.base import MAX_INPUT_NOISE, PredictOptions
from posecli.options import check_range
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
PROTOCOLS_2D = ("pck2d", "pckh")          # scored against the labelled 2D
PREDICTION_PROTOCOLS = ("p1", "p2", "n", "vel", "pck", "auc")   # a predictions NPZ's defaults
H36M_TEST_SUBJECTS = ("S9", "S11")
H36M_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
PREDICTION_SKELETON = "h36m17"
MAX_BATCH = 65_536                 # windows per forward pass
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
    if float(np.nanmax(np.abs(kp), initial=0.0)) > MAX_PREDICTION_M:   # in float64: 1e100 overflows float32
        raise PoseCliError(f"keypoints3d has values beyond {MAX_PREDICTION_M:g} m: not poses in metres", path)
    return kp if kp.dtype == np.float64 else kp.astype(np.float32)


@dataclass
class EvalResult:
    """A finished evaluation: the JSON-ready report plus per-frame curves for the plots."""

    report: dict
    frame_error: dict[str, np.ndarray] = field(default_factory=dict)   # "subject/action/camera" -> [T] P1 mm


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


def _check_scoring(cache: PoseCache, pred_m: np.ndarray | None, pred2d: np.ndarray | None,
                   protocols: list[str], every: int) -> list[str]:
    """The protocols that need 3D, after refusing what cannot be scored."""
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
    return need3d


@dataclass
class _Sequence:
    """One sequence's per-joint masks and Protocol 1 errors (None without 3D protocols)."""

    chosen: np.ndarray                     # [T] frames scored (every k-th)
    values: dict[str, tuple[np.ndarray, np.ndarray]]
    scored: np.ndarray                     # [T, J] joints that count
    has_pred: np.ndarray                   # [T, J] joints with a prediction
    p1: np.ndarray | None = None           # [T, J] mm
    valid3d: np.ndarray | None = None      # [T, J]


def _score_sequence(cache: PoseCache, seq: int, pred_m: np.ndarray | None, pred2d: np.ndarray | None,
                    protocols: list[str], need3d: bool, every: int) -> _Sequence:
    """The per-joint values of every protocol on one sequence (float64, millimetres / pixels)."""
    s0, n = int(cache.seq_start[seq]), int(cache.seq_length[seq])
    sl = slice(s0, s0 + n)
    chosen = np.arange(n) % every == 0
    p1_err = pred_mm = gt_mm = None
    valid = np.zeros((n, NUM_JOINTS), dtype=bool)
    has_pred = np.zeros_like(valid)
    if need3d:
        gt_mm = np.asarray(cache.keypoints3d[sl], dtype=np.float64) * 1000.0
        pred = np.asarray(pred_m[sl], dtype=np.float64)
        has_pred = np.isfinite(pred).all(axis=-1) & np.isfinite(pred[:, :1]).all(axis=-1)
        status_ok = cache.joint_status != JointStatus.MISSING
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
    values = _metric_values(pred_mm, gt_mm, p1_err, valid, np.array([0]), protocols, p2d, gt2d, conf2d, valid2d)
    return _Sequence(chosen, values, valid if need3d else valid2d, has_pred, p1_err, valid)


def _group_tables(cache: PoseCache, sequences: list[int], sums: _Sums, frames_chosen: np.ndarray,
                  h36m: bool) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """The per action / subject / camera / joint tables, and each sequence's labels."""
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
    return tables, labels


def _worst_sequences(cache: PoseCache, sequences: list[int], p1_sum: np.ndarray, p1_count: np.ndarray,
                     curves: list[np.ndarray | None], worst: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The `worst` sequences by Protocol 1 and their per-frame error curves."""
    rows = [{"index": int(s), "subject": cache.subject[s], "action": cache.action[s], "camera": cache.camera[s],
             "frames": int(cache.seq_length[s]), "p1": float(p1_sum[i] / p1_count[i]) if p1_count[i] else float("nan")}
            for i, s in enumerate(sequences)]
    worst_rows = sorted((r for r in rows if np.isfinite(r["p1"])), key=lambda r: -r["p1"])[:worst]
    curve_of = {f"{r['subject']}/{r['action']}/{r['camera']}": curves[sequences.index(r["index"])]
                for r in worst_rows}
    return worst_rows, curve_of


def score(cache: PoseCache, pred_m: np.ndarray | None, sequences: Sequence[int], protocols: Sequence[str],
          source: dict, worst: int = 3, *, pred2d: np.ndarray | None = None, every: int = 1) -> EvalResult:
    """Score predictions [N, 17, 3] (metres) and/or 2D predictions [N, 17, 2] (pixels) against the
    cache on the selected sequences, on every `every`-th frame of each, one sequence at a time.
    An evaluation that counts no joint for a protocol is refused (`_nothing_scored`)."""
    protocols = parse_protocols(protocols)
    need3d = _check_scoring(cache, pred_m, pred2d, protocols, every)
    sequences = list(sequences)
    sums = _Sums(protocols, len(sequences))
    p1_sum, p1_count = np.zeros(len(sequences)), np.zeros(len(sequences), dtype=np.int64)
    frames_chosen = np.zeros(len(sequences), dtype=np.int64)
    curves: list[np.ndarray | None] = [None] * len(sequences)
    joints_missing = predictions_missing = predicted = 0
    for i, seq in enumerate(sequences):
        one = _score_sequence(cache, seq, pred_m, pred2d, protocols, bool(need3d), every)
        frames_chosen[i] = int(one.chosen.sum())
        sums.add(i, one.values)
        chosen = one.chosen[:, None]
        joints_missing += int((~one.scored & chosen).sum())
        predictions_missing += int((~one.has_pred & chosen).sum())
        predicted += int((one.has_pred & chosen).sum())
        if one.p1 is not None:
            masked = np.where(one.valid3d, one.p1, 0.0)
            p1_sum[i], p1_count[i] = masked.sum(), int(one.valid3d.sum())
            per_frame = one.valid3d.sum(axis=1)
            curves[i] = np.where(per_frame > 0, masked.sum(axis=1) / np.maximum(per_frame, 1), np.nan)
    totals = {k: int(v.sum()) for k, v in sums.seq_count.items()}
    _nothing_scored(protocols, totals, predicted, int(frames_chosen.sum()) * NUM_JOINTS, source)

    h36m = is_h36m(cache)
    tables, labels = _group_tables(cache, sequences, sums, frames_chosen, h36m)
    overall = {key: {"name": PROTOCOLS[key][0], "unit": PROTOCOLS[key][1],
                     "value": float(sums.seq_sum[key].sum() / totals[key]), "count": totals[key]}
               for key in protocols}
    action_average = ({k: float(np.nanmean([row[k] for row in tables["action"]])) for k in protocols}
                      if h36m else None)
    worst_rows, frame_error = (_worst_sequences(cache, sequences, p1_sum, p1_count, curves, worst)
                               if need3d else ([], {}))
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


def evaluate_predictions(predictions: str | Path, data: str | Path, *, protocols: Sequence[str] = PREDICTION_PROTOCOLS,
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
                        input_noise: float = 0.0, upright: bool = True) -> EvalResult:
    """Evaluate a checkpoint (or bundled model name) on a cache: its family predicts the selected
    sequences (a lifter lifts the cache's 2D, corrupted first when `input_noise` > 0; an image model
    predicts from the crops) and the predictions are scored. `protocols` None = the family's
    defaults. `progress(frames_done, frames_total)` reports progress."""
    check_range("--batch-size", batch_size, 1, MAX_BATCH, integer=True)
    check_range("--input-noise", input_noise, 0, MAX_INPUT_NOISE)
    check_range("--every", every, 1, integer=True)
    if stride is not None:
        check_range("--stride", stride, 1, integer=True)
    options = PredictOptions(flip=flip, upright=upright, stride=stride, batch_size=batch_size, device=device,
                             every=every, input_noise=input_noise, progress=progress)
    with open_cache(data, in_memory=False) as cache:
        model, meta = loaded = load_model(checkpoint, device=device)
        family = loaded.family
        family.check_predict_options(options, checkpoint)
        family.check_eval_cache(cache)
        if meta.get("skeleton", PREDICTION_SKELETON) != PREDICTION_SKELETON:
            raise PoseCliError(f"model predicts skeleton '{meta['skeleton']}', eval needs "
                               f"'{PREDICTION_SKELETON}'", checkpoint)
        sequences = select_sequences(cache, subjects)
        pred = family.predict_cache(model, cache, sequences, options)
        source = {"kind": "checkpoint", "path": str(checkpoint), **pred.source,
                  "model": meta.get("config", {}).get("model", {}), "step": meta.get("step")}
        protocols = family.default_protocols(cache.has3d) if protocols is None else protocols
        return score(cache, pred.keypoints3d, sequences, protocols, source, pred2d=pred.keypoints2d, every=every)
