"""Pose metrics: numpy, vectorised over frames, float64 internally (see docs/evaluation.md).

Every metric takes a `valid` mask [N, J] (or None = all joints valid): masked joints are excluded
from alignment and from averages, and every reduced result carries the number of joints it counted,
so a report can say what was measured. 3D metrics take poses in millimetres; error functions return
per-joint errors [N, J] so the caller can average them over any grouping (action, subject, joint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli.geometry import bone_mask, bone_vectors, box_side, joint_box
from posecli.skeleton import NUM_JOINTS

PCK3D_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0.0, 150.0 + 1e-9, 5.0)      # 0, 5, ..., 150: 31 thresholds
OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)                 # COCO: .50:.05:.95
PROCRUSTES_CHUNK = 1 << 16                                  # frames per chunk / batched SVD

# COCO keypoint sigmas mapped onto H36M-17 where COCO has the same joint; NaN = no COCO equivalent
# (pelvis, spine, thorax and head are derived or absent in COCO and are left out of OKS).
_COCO_SIGMA = {"nose": 0.026, "shoulder": 0.079, "elbow": 0.072, "wrist": 0.062,
               "hip": 0.107, "knee": 0.087, "ankle": 0.089}
H36M_OKS_SIGMAS = np.array([
    np.nan, _COCO_SIGMA["hip"], _COCO_SIGMA["knee"], _COCO_SIGMA["ankle"],
    _COCO_SIGMA["hip"], _COCO_SIGMA["knee"], _COCO_SIGMA["ankle"],
    np.nan, np.nan, _COCO_SIGMA["nose"], np.nan,
    _COCO_SIGMA["shoulder"], _COCO_SIGMA["elbow"], _COCO_SIGMA["wrist"],
    _COCO_SIGMA["shoulder"], _COCO_SIGMA["elbow"], _COCO_SIGMA["wrist"],
])
assert H36M_OKS_SIGMAS.shape == (NUM_JOINTS,)


@dataclass(frozen=True)
class Score:
    """A reduced metric and how many joints (or persons, for AP) it was computed over."""

    value: float
    count: int


def _mask(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"valid mask has shape {valid.shape}, expected {shape}")
    return valid


def masked_mean(values: np.ndarray, valid: np.ndarray | None = None) -> Score:
    """Mean of `values` over entries where `valid` is true; NaN when nothing is valid."""
    values = np.asarray(values, dtype=np.float64)
    valid = _mask(valid, values.shape)
    count = int(valid.sum())
    value = float(values[valid].sum() / count) if count else float("nan")
    return Score(value, count)


def root_relative(poses: np.ndarray, root: int = 0) -> np.ndarray:
    """Poses [..., J, D] with the root joint subtracted (Human3.6M Protocol 1 convention)."""
    poses = np.asarray(poses, dtype=np.float64)
    return poses - poses[..., root:root + 1, :]


def _norm(d: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis, scaled by the largest component first so that squaring
    neither overflows nor underflows for any finite input."""
    d = np.asarray(d, dtype=np.float64)
    big = np.abs(d).max(axis=-1) if d.shape[-1] else np.zeros(d.shape[:-1])
    scale = np.where((big > 0) & np.isfinite(big), big, 1.0)
    q = d / scale[..., None]
    return np.where(np.isinf(big), np.inf, scale * np.sqrt(np.einsum("...i,...i->...", q, q)))


def joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per joint, [N, J]."""
    return _norm(np.subtract(pred, gt, dtype=np.float64))


# ---------------------------------------------------------------- Protocol 1: MPJPE

def mpjpe_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol 1 per-joint errors ||(p_j - p_0) - (g_j - g_0)||: each pose is made root-relative
    (joint 0) before the two are differenced, in float64, so a prediction far larger than the
    ground truth (1e30 m) keeps its error instead of cancelling it; chunks of frames keep the
    float64 temporaries small."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    out = np.empty(pred.shape[:-1], dtype=np.float64)
    for a in range(0, len(pred), PROCRUSTES_CHUNK):
        sl = slice(a, a + PROCRUSTES_CHUNK)
        out[sl] = _norm(root_relative(pred[sl]) - root_relative(gt[sl]))
    return out


def mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> Score:
    """MPJPE (Protocol 1): mean over valid joints of ||(p_j - p_0) - (g_j - g_0)||."""
    return masked_mean(mpjpe_errors(pred, gt), valid)


# ---------------------------------------------------------------- Protocol 2: P-MPJPE

def procrustes_align(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Align each frame of `pred` [N, J, 3] to `gt` by similarity (scale s, rotation R, translation t)
    minimising sum_j w_j ||s R p_j + t - g_j||^2 over valid joints (Umeyama / Kabsch).

    R comes from the SVD of the cross-covariance; when the best orthogonal map is a reflection
    (det < 0) the sign of the last singular vector and value is flipped, giving the best proper
    rotation. Both poses are made root-relative first (the alignment is translation-invariant),
    so a huge offset cannot swamp the pose in the centroids. Processed in chunks so memory stays
    bounded for millions of frames.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    w = _mask(valid, pred.shape[:-1]).astype(np.float64)
    out = np.empty(pred.shape, dtype=np.float64)
    for a in range(0, len(pred), PROCRUSTES_CHUNK):
        sl = slice(a, a + PROCRUSTES_CHUNK)
        out[sl] = _procrustes_chunk(pred[sl], gt[sl], w[sl])
    return out


def _procrustes_chunk(p: np.ndarray, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    return _procrustes_relative(root_relative(p), root_relative(g), w) + g[:, :1]


def _procrustes_relative(p: np.ndarray, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Aligned prediction for root-relative float64 poses p, g (in g's root-relative frame)."""
    wsum = np.maximum(w.sum(axis=1), 1.0)[:, None, None]            # [n,1,1]
    wt = w[:, None, :]                                               # [n,1,J]
    mu_p = (wt @ p) / wsum                                           # [n,1,3]
    mu_g = (wt @ g) / wsum
    p0 = p - mu_p
    g0 = g - mu_g
    h = (p0 * w[..., None]).transpose(0, 2, 1) @ g0                  # [n,3,3] = sum_j w p0_j g0_j^T
    u, s, vt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))             # -1: best map is a reflection
    sign[sign == 0] = 1.0
    vt[:, -1, :] *= sign[:, None]
    s[:, -1] *= sign
    rot = u @ vt                                                     # p0 @ rot ~ g0 (row vectors)
    var_p = np.einsum("njk,njk,nj->n", p0, p0, w)
    scale = s.sum(axis=1) / np.maximum(var_p, 1e-12)
    return scale[:, None, None] * (p0 @ rot) + mu_g


def p_mpjpe_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Protocol 2 per-joint errors after per-frame Procrustes alignment on the valid joints
    (chunked like procrustes_align, so no aligned copy of the whole input is kept)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    w = _mask(valid, pred.shape[:-1]).astype(np.float64)
    out = np.empty(pred.shape[:-1], dtype=np.float64)
    for a in range(0, len(pred), PROCRUSTES_CHUNK):
        sl = slice(a, a + PROCRUSTES_CHUNK)
        g = root_relative(gt[sl])
        out[sl] = joint_errors(_procrustes_relative(root_relative(pred[sl]), g, w[sl]), g)
    return out


def p_mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> Score:
    """P-MPJPE (Protocol 2): MPJPE after aligning each predicted frame to the ground truth by a
    similarity transform (scale, rotation, translation)."""
    return masked_mean(p_mpjpe_errors(pred, gt, valid), valid)


# ---------------------------------------------------------------- N-MPJPE (scale only)

def n_mpjpe_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """N-MPJPE per-joint errors: root-relative poses, prediction scaled per frame by the least-squares
    factor s = sum_j w_j <p_j, g_j> / sum_j w_j <p_j, p_j> (Rhodin et al., CVPR 2018)."""
    p = root_relative(pred)
    g = root_relative(gt)
    w = _mask(valid, p.shape[:-1]).astype(np.float64)
    num = (w * (p * g).sum(axis=-1)).sum(axis=-1)
    den = (w * (p * p).sum(axis=-1)).sum(axis=-1)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return joint_errors(scale[:, None, None] * p, g)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> Score:
    """N-MPJPE: MPJPE after the per-frame least-squares scale alignment of the prediction."""
    return masked_mean(n_mpjpe_errors(pred, gt, valid), valid)


# ---------------------------------------------------------------- SN-MPJPE (bone-length scale)

def sn_mpjpe_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Scale-normalised MPJPE per-joint errors (Zhou et al., ICCV 2017, the reference study's
    figure): root-relative poses, the prediction scaled per frame by sum of ground-truth bone
    lengths / sum of predicted bone lengths, over H36M bones whose two joints are valid."""
    p = root_relative(pred)
    g = root_relative(gt)
    v = _mask(valid, p.shape[:-1])
    both = bone_mask(v)
    len_p = np.where(both, _norm(bone_vectors(p)), 0.0).sum(axis=-1)
    len_g = np.where(both, _norm(bone_vectors(g)), 0.0).sum(axis=-1)
    scale = np.where(len_p > 0, len_g / np.where(len_p > 0, len_p, 1.0), 1.0)
    return joint_errors(scale[:, None, None] * p, g)


def sn_mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> Score:
    """SN-MPJPE: MPJPE after scaling the prediction to the ground truth's bone lengths."""
    return masked_mean(sn_mpjpe_errors(pred, gt, valid), valid)


# ---------------------------------------------------------------- MPJVE (velocity)

def velocity_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
                    seq_start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MPJVE per-joint errors aligned with frames: row t is ||(p_t - p_{t-1}) - (g_t - g_{t-1})||
    (first differences over time, per frame, i.e. mm/frame), on root-relative poses.

    Returns (errors [N, J], valid [N, J]); a row is valid only where the joint is valid in both
    frames and t is not the first frame of a sequence (`seq_start` lists those first frames;
    None = one sequence).
    """
    p = root_relative(pred)
    g = root_relative(gt)
    v = _mask(valid, p.shape[:-1])
    errors = np.zeros(p.shape[:-1], dtype=np.float64)
    errors[1:] = joint_errors(np.diff(p, axis=0), np.diff(g, axis=0))
    out_valid = np.zeros_like(v)
    out_valid[1:] = v[1:] & v[:-1]
    starts = np.asarray([0] if seq_start is None else seq_start, dtype=np.int64)
    out_valid[starts[starts < len(out_valid)]] = False
    return errors, out_valid


def mpjve(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
          seq_start: np.ndarray | None = None) -> Score:
    """MPJVE: mean velocity error (mm/frame) over valid consecutive frame pairs."""
    errors, v = velocity_errors(pred, gt, valid, seq_start)
    return masked_mean(errors, v)


# ---------------------------------------------------------------- PCK@150mm and AUC (MPI-INF-3DHP)

def pck_scores(errors: np.ndarray, threshold: float = PCK3D_THRESHOLD_MM) -> np.ndarray:
    """Per-joint PCK contribution: 100 where error <= threshold, else 0 (average it over joints)."""
    return 100.0 * (np.asarray(errors, dtype=np.float64) <= threshold)


def auc_scores(errors: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS_MM) -> np.ndarray:
    """Per-joint AUC contribution: 100 x the fraction of thresholds t with error <= t, so that its
    mean over joints is the mean over thresholds of PCK(t) (computed without a [T, N, J] array)."""
    thr = np.sort(np.asarray(thresholds, dtype=np.float64))
    passed = len(thr) - np.searchsorted(thr, np.asarray(errors, dtype=np.float64), side="left")
    return 100.0 * passed / len(thr)


def pck(errors: np.ndarray, valid: np.ndarray | None = None, threshold: float = PCK3D_THRESHOLD_MM) -> Score:
    """Percentage (0..100) of valid joints whose error is <= threshold (3D: 150 mm, root-relative)."""
    return masked_mean(pck_scores(errors, threshold), valid)


def auc(errors: np.ndarray, valid: np.ndarray | None = None,
        thresholds: np.ndarray = AUC_THRESHOLDS_MM) -> Score:
    """Area under the PCK curve (MPI-INF-3DHP): mean PCK (0..100) over thresholds 0..150 mm, 5 mm steps."""
    return masked_mean(auc_scores(errors, thresholds), valid)


# ---------------------------------------------------------------- 2D: PCK, PCKh, OKS, AP

def bbox_size(gt2d: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-person size [N]: the longer side of the box around the valid ground-truth joints."""
    g = np.asarray(gt2d, dtype=np.float64)
    side = box_side(g, _mask(valid, g.shape[:-1]))
    return np.where(np.isfinite(side), side, 0.0)


def torso_size(gt2d: np.ndarray) -> np.ndarray:
    """Per-person torso diameter [N]: distance from the left shoulder (11) to the right hip (1)."""
    g = np.asarray(gt2d, dtype=np.float64)
    return np.linalg.norm(g[:, 11] - g[:, 1], axis=-1)


def labelled_torso_size(gt2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """torso_size where both of its joints are labelled (confidence > 0), else 0 (person left out)."""
    conf = np.asarray(confidence)
    return np.where((conf[:, 11] > 0) & (conf[:, 1] > 0), torso_size(gt2d), 0.0)


def head_size(gt2d: np.ndarray) -> np.ndarray:
    """Per-person head size [N] approximated by the neck (9) to head-top (10) distance; pass MPII's
    own head-box normaliser to `pckh` instead when the data has it."""
    g = np.asarray(gt2d, dtype=np.float64)
    return np.linalg.norm(g[:, 10] - g[:, 9], axis=-1)


def pck2d_scores(pred2d: np.ndarray, gt2d: np.ndarray, size: np.ndarray, alpha: float,
                 valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint 2D PCK contributions [N, J] (100 where the pixel error <= alpha * size of the
    person, else 0) and their valid mask, which leaves out persons of size 0."""
    errors = joint_errors(pred2d, gt2d)
    size = np.asarray(size, dtype=np.float64)
    v = _mask(valid, errors.shape) & (size > 0)[:, None]
    return pck_scores(errors / np.where(size > 0, size, 1.0)[:, None], alpha), v


def pck2d(pred2d: np.ndarray, gt2d: np.ndarray, size: np.ndarray, alpha: float,
          valid: np.ndarray | None = None) -> Score:
    """2D PCK (0..100): a joint is correct when its pixel error <= alpha * size of its person.
    Persons with size 0 are excluded."""
    return masked_mean(*pck2d_scores(pred2d, gt2d, size, alpha, valid))


def pckh(pred2d: np.ndarray, gt2d: np.ndarray, valid: np.ndarray | None = None,
         head: np.ndarray | None = None, alpha: float = 0.5) -> Score:
    """PCKh@alpha (0..100, default 0.5): 2D PCK with the head size as the person size."""
    return pck2d(pred2d, gt2d, head_size(gt2d) if head is None else head, alpha, valid)


def oks(pred2d: np.ndarray, gt2d: np.ndarray, valid: np.ndarray | None = None,
        area: np.ndarray | None = None, sigmas: np.ndarray = H36M_OKS_SIGMAS) -> np.ndarray:
    """Object keypoint similarity per person [N] (COCO): mean over valid joints with a sigma of
    exp(-d^2 / (2 area k^2)), k = 2 sigma. `area` defaults to the area of the box around the valid
    ground-truth joints (COCO uses the segment area). NaN for a person with no such joint."""
    g = np.asarray(gt2d, dtype=np.float64)
    d2 = ((np.asarray(pred2d, np.float64) - g) ** 2).sum(axis=-1)
    sig = np.asarray(sigmas, dtype=np.float64)
    v = _mask(valid, d2.shape) & np.isfinite(sig)[None, :]
    if area is None:
        lo, hi = joint_box(g, v)
        span = hi - lo
        area = np.where(np.isfinite(span).all(axis=1), span.prod(axis=1), 0.0)
    area = np.asarray(area, dtype=np.float64)
    k2 = (2.0 * np.nan_to_num(sig, nan=1.0)) ** 2
    sim = np.exp(-d2 / (2.0 * np.maximum(area, np.finfo(float).eps)[:, None] * k2[None, :]))
    count = v.sum(axis=1)
    total = np.where(v, sim, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def average_precision(scores: np.ndarray, matched: np.ndarray, num_gt: int) -> float:
    """COCO 101-point interpolated AP of detections ranked by `scores`; `matched` says which are
    true positives (each ground-truth person matched at most once)."""
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    tp = np.asarray(matched, dtype=bool)[order]
    ctp = np.cumsum(tp)
    recall = ctp / num_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]         # monotone envelope
    rec_thresholds = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, rec_thresholds, side="left")
    q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(q.mean())


def oks_ap(pred2d: np.ndarray, gt2d: np.ndarray, valid: np.ndarray | None = None,
           scores: np.ndarray | None = None, area: np.ndarray | None = None,
           sigmas: np.ndarray = H36M_OKS_SIGMAS) -> dict[str, float]:
    """OKS-based AP with one person per image: prediction i is matched to ground truth i and is a
    true positive at threshold t when OKS >= t. Returns AP (mean over .50:.05:.95), AP50, AP75 in
    0..100 and the number of persons counted (those with at least one joint that has a sigma)."""
    o = oks(pred2d, gt2d, valid, area, sigmas)
    keep = np.isfinite(o)
    o = o[keep]
    s = np.ones(len(keep)) if scores is None else np.asarray(scores, np.float64)
    s = s[keep]
    aps = np.array([average_precision(s, o >= t, len(o)) for t in OKS_THRESHOLDS])
    return {"AP": 100.0 * float(aps.mean()), "AP50": 100.0 * float(aps[0]),
            "AP75": 100.0 * float(aps[5]), "count": int(len(o))}
