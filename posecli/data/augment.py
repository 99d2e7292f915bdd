"""Training-time augmentation of one window: horizontal flips, rig proportions, virtual cameras and a
2D detector model.

Clean ground-truth 2D is far easier than what a real detector gives at inference time, so the
training input is corrupted the way detectors fail: per-joint jitter proportional to person size
(COCO's per-keypoint OKS sigmas set which joints are noisier), rare gross outliers, left/right limb
swaps and dropped joints (confidence 0), with a confidence that falls as the error grows. The noise
is applied in normalised coordinates, so the clean target and the noisy input share one frame.
Rigs disagree on proportions far more than people do (HDM05's spine-to-thorax bone is twice CMU's,
the cgspeed BVH's shoulders half as wide), so a lifter trained on two rigs learns to output those
two rigs whatever the 2D shows; `scale_bones` draws new proportions per window, so the 2D carries
them and the lifter has to read them. `bend_forward` makes the bent-over poses those takes lack,
`recline` the lying, falling and seen-from-above bodies (the takes stand upright throughout).
Masking for masked pose modelling lives in posecli.families.lifter.objective (it needs the clean input).
"""

from __future__ import annotations

import numpy as np

from posecli.data.cameras import project, random_placement, random_rotation_about_vertical
from posecli.errors import PoseCliError
from posecli.geometry import bone_lengths, box_side, expmap_to_rotmat, retarget
from posecli.skeleton import H36M_BONES, H36M_FLIP_PAIRS, H36M_FLIP_PERM

# `augment:` section of a preset. Probabilities are per window, except swap/dropout/outlier, which
# are per frame and joint (pair); jitter is the mean per-coordinate std as a fraction of person size.
AUGMENT_DEFAULTS: dict[str, float] = {
    "flip": 0.0,               # probability of a horizontal flip
    "bone_scale": 0.0,         # probability of new proportions for a 3D window (scale_bones)
    "bone_spread": 0.15,       #   log-std of each bone group's length factor
    "bend": 0.0,               # probability of bending a 3D window's upper body forward (bend_forward)
    "max_bend_deg": 80.0,      #   up to this angle at the hips
    "recline": 0.0,            # probability of tilting a 3D window's whole body off the vertical (recline)
    "max_recline_deg": 90.0,   #   up to this angle
    "virtual_camera": 0.0,     # probability of re-viewing 3D windows from a rotated camera
    "max_elevation_deg": 10.0,  # tilt range of that virtual camera
    "distance_min": 0.0,       # metres from that camera to the pelvis, drawn from [min, max];
    "distance_max": 0.0,       #   max 0 keeps the recorded distance
    "off_axis_deg": 0.0,       # the person anywhere within this angle of the optical axis (0: keep)
    "roll_deg": 0.0,           # camera roll about its optical axis, up to this angle
    "face_landmarks": 0.0,     # probability of giving 3D windows detector-style face inputs (nose, eyes)
    "upright": 0.0,            # probability of turning a window upright as prediction does (the model's upright_deg)
    "noise": 0.0,              # probability of applying the detector model below
    "jitter": 0.015,
    "swap": 0.01,
    "dropout": 0.05,
    "outlier": 0.005,
}

# COCO OKS sigmas mapped to H36M-17 (derived joints: pelvis/thorax average two detections).
_OKS_SIGMA = np.array([0.076, 0.107, 0.087, 0.089, 0.107, 0.087, 0.089, 0.079, 0.056, 0.026, 0.025,
                       0.079, 0.072, 0.062, 0.079, 0.072, 0.062], dtype=np.float32)
JOINT_NOISE = _OKS_SIGMA / _OKS_SIGMA.mean()
MIN_DEPTH = 0.1  # metres: a virtual view that puts a joint closer than this is discarded


def check_augment(cfg: dict | None) -> dict[str, float]:
    """Defaults merged with `cfg`; unknown keys and out-of-range probabilities are user errors."""
    out = dict(AUGMENT_DEFAULTS)
    for key, value in (cfg or {}).items():
        if key not in AUGMENT_DEFAULTS:
            raise PoseCliError(f"unknown augment option '{key}' (known: {', '.join(AUGMENT_DEFAULTS)})")
        out[key] = float(value)
    for key in ("flip", "bone_scale", "bend", "recline", "virtual_camera", "noise", "swap", "dropout", "outlier",
                "face_landmarks", "upright"):
        if not 0.0 <= out[key] <= 1.0:
            raise PoseCliError(f"augment option '{key}' is a probability, got {out[key]}")
    for key in ("max_elevation_deg", "off_axis_deg", "roll_deg", "max_bend_deg", "max_recline_deg"):
        if not 0.0 <= out[key] <= 90.0:
            raise PoseCliError(f"augment option '{key}' is an angle in [0, 90] degrees, got {out[key]}")
    if not 0.0 <= out["bone_spread"] <= 0.5:
        raise PoseCliError(f"augment option 'bone_spread' is a log-std in [0, 0.5], got {out['bone_spread']}")
    if out["distance_max"] != 0.0 and not 0.5 <= out["distance_min"] <= out["distance_max"] <= 100.0:
        raise PoseCliError("augment options distance_min/distance_max need 0.5 <= min <= max <= 100 metres, "
                           f"got {out['distance_min']} and {out['distance_max']}")
    return out


def flip_window(kp2d: np.ndarray, conf: np.ndarray, kp3d: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mirror a normalised window left<->right: 2D x about the window centre (0 in normalised
    coordinates), 3D x negated, left and right joints swapped."""
    perm = H36M_FLIP_PERM
    kp2d = kp2d[:, perm] * np.array([-1.0, 1.0], dtype=kp2d.dtype)
    kp3d = None if kp3d is None else kp3d[:, perm] * np.array([-1.0, 1.0, 1.0], dtype=kp3d.dtype)
    return kp2d, conf[:, perm], kp3d


# One length factor per group: a bone and its mirror image share it (rigs and people are symmetric).
_MIRROR_BONE = [H36M_BONES.index(tuple(int(j) for j in H36M_FLIP_PERM[list(bone)])) for bone in H36M_BONES]
BONE_GROUPS: np.ndarray = np.unique([min(k, m) for k, m in enumerate(_MIRROR_BONE)], return_inverse=True)[1]
MAX_BONE_SIGMAS = 2.5   # factors are drawn within this many log-stds of 1


def scale_bones(kp3d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator,
                spread: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A camera-frame 3D window [T,J,3] with new proportions, re-projected: (3D, 2D pixels), or None
    if a joint ends up behind the camera. Every bone group's length is multiplied by one factor
    exp(N(0, spread)), clipped to MAX_BONE_SIGMAS, for the whole window; bone directions and the
    pelvis stay (posecli.geometry.retarget). Bones touching a joint missing in any frame keep their
    vectors."""
    draws = np.clip(rng.normal(size=int(BONE_GROUPS.max()) + 1), -MAX_BONE_SIGMAS, MAX_BONE_SIGMAS)
    lengths = bone_lengths(kp3d) * np.exp(draws * spread)[BONE_GROUPS]            # [T, bones]
    return _reproject(retarget(kp3d, lengths, (conf > 0).all(axis=0)), conf, intrinsics)


UPPER_BODY = (7, 8, 9, 10, 11, 12, 13, 14, 15, 16)    # spine and everything above it


def bend_forward(kp3d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator,
                 max_deg: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A camera-frame 3D window [T,J,3] with its upper body rotated forward about the hip line
    through the pelvis by one angle drawn from [0, max_deg], re-projected: (3D, 2D pixels), or None
    if the hips or the spine are missing or a joint ends up behind the camera. The CMU takes are
    upright almost throughout; bending to the floor (lifting, picking up, gardening) is common in
    footage and in the 2D photos, and it is where cross-dataset error concentrates (docs/evaluation.md)."""
    if not (conf[:, [0, 1, 4, 7]] > 0).all():
        return None
    left = kp3d[:, 4].astype(np.float64) - kp3d[:, 1]                               # r_hip -> l_hip
    axis = left / np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-9)
    # a positive turn about the left axis takes up towards forward = left x up (where the body faces)
    rot = expmap_to_rotmat(axis * np.deg2rad(rng.uniform(0.0, max_deg)))             # [T, 3, 3]
    pelvis = kp3d[:, :1].astype(np.float64)
    out = kp3d.astype(np.float64, copy=True)
    out[:, UPPER_BODY] = pelvis + (kp3d[:, UPPER_BODY] - pelvis) @ rot.transpose(0, 2, 1)
    return _reproject(out, conf, intrinsics)


def recline(kp3d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator,
            max_deg: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A camera-frame 3D window [T,J,3] rotated as a whole about a horizontal axis (camera y is the
    vertical of the caches' cameras) through its mean pelvis, by one angle drawn from [0, max_deg]
    about an axis of random azimuth, re-projected: (3D, 2D pixels), or None if a joint ends up
    behind the camera. At 90 degrees an upright take lies on the floor, seen from the side or along
    its length; below that it leans or falls, or, equivalently, is seen from above or below. Mocap
    takes stand upright almost throughout; lying down is where cross-dataset error is largest."""
    azimuth = rng.uniform(0.0, 2.0 * np.pi)
    axis = np.array([np.cos(azimuth), 0.0, np.sin(azimuth)])
    rot = expmap_to_rotmat(axis * np.deg2rad(rng.uniform(0.0, max_deg)))
    pivot = kp3d[:, 0].astype(np.float64).mean(axis=0)
    return _reproject((kp3d - pivot) @ rot.T + pivot, conf, intrinsics)


def _reproject(kp3d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(3D, its 2D through `intrinsics`, zero where conf is 0) as float32, or None if a valid joint
    is closer than MIN_DEPTH."""
    valid = conf > 0
    if (kp3d[..., 2][valid] < MIN_DEPTH).any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        kp2d = project(kp3d, intrinsics)
    kp2d = np.where(valid[..., None], kp2d, 0.0).astype(np.float32)
    return kp3d.astype(np.float32), kp2d


def virtual_view(kp3d: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator,
                 max_elev_deg: float, *, distance: tuple[float, float] = (0.0, 0.0), off_axis_deg: float = 0.0,
                 roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Rotate a camera-frame 3D window about the vertical through its pelvis, tilt it, optionally
    re-place it (distance, off-axis direction, roll: `random_placement`) and re-project it with the
    stored intrinsics: (3D [T,J,3], 2D pixels [T,J,2]), or None if a joint ends up behind the camera."""
    rotated = random_rotation_about_vertical(kp3d, rng, max_elev_deg)
    if distance[1] > 0 or off_axis_deg > 0 or roll_deg > 0:
        rotated = random_placement(rotated, rng, distance=distance, off_axis_deg=off_axis_deg, roll_deg=roll_deg)
    return _reproject(rotated, conf, intrinsics)


# Where a 2D detector's face landmarks sit relative to mocap's upper-neck joint (H36M joint 9), in
# metres along the head's up axis and the facing direction: the nose about 1 cm up and 10 cm forward,
# the eyes' midpoint 4 cm up and 8.5 cm forward (adult head anthropometry). COCO, BlazePose and most
# detectors fill H36M's "neck/nose" slot with the nose and "head" with a face point, not with the
# neck and head-top joint centres that mocap gives.
NOSE_OFFSET_M = (0.01, 0.10)
EYES_OFFSET_M = (0.04, 0.085)
_FACE_JOINTS = (8, 9, 10, 11, 14)   # thorax, neck, head top, shoulders: what the face frame needs


def detector_face_inputs(kp3d: np.ndarray, conf: np.ndarray, kp2d: np.ndarray,
                         intrinsics: np.ndarray) -> np.ndarray:
    """2D [T,J,2] with joints 9 and 10 replaced by the projected nose and eyes' midpoint of the 3D
    window, so mocap training inputs use the definitions detectors give at inference (3D targets
    keep mocap's). Frames without the joints the face frame needs keep their 2D."""
    needed = (conf[:, _FACE_JOINTS] > 0).all(axis=1)
    if not needed.any():
        return kp2d
    neck, top = kp3d[:, 9].astype(np.float64), kp3d[:, 10].astype(np.float64)
    up = top - neck
    left = kp3d[:, 11].astype(np.float64) - kp3d[:, 14]
    forward = np.cross(left, up)
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)
    face = np.stack([neck + NOSE_OFFSET_M[0] * up + NOSE_OFFSET_M[1] * forward,
                     neck + EYES_OFFSET_M[0] * up + EYES_OFFSET_M[1] * forward], axis=1)     # [T, 2, 3]
    out = kp2d.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        projected = project(face, intrinsics)
    ok = needed & (face[..., 2] > MIN_DEPTH).all(axis=1)
    out[ok, 9:11] = projected[ok]
    return out.astype(kp2d.dtype, copy=False)


def detector_noise(kp2d: np.ndarray, conf: np.ndarray, rng: np.random.Generator, *, jitter: float,
                   swap: float, dropout: float, outlier: float) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a normalised window [T,J,2] like a 2D detector would; returns (noisy 2D, confidence)."""
    t, j = conf.shape
    valid = conf > 0
    size = np.where(valid.sum(axis=1) >= 2, box_side(kp2d, valid), 2.0)       # [T], ~2 normalised
    std = jitter * size[:, None] * JOINT_NOISE[None, :]                         # [T, J]
    offset = rng.normal(size=(t, j, 2)) * std[..., None]
    gross = rng.random((t, j)) < outlier
    offset[gross] = rng.normal(scale=0.15, size=(int(gross.sum()), 2)) * size[np.nonzero(gross)[0], None]
    noisy = kp2d + offset
    for a, b in H36M_FLIP_PAIRS:
        swapped = (rng.random(t) < swap) & valid[:, a] & valid[:, b]
        noisy[swapped, a], noisy[swapped, b] = noisy[swapped, b].copy(), noisy[swapped, a].copy()
    error = np.linalg.norm(noisy - kp2d, axis=-1) / np.maximum(std, 1e-6)       # in units of std
    confidence = rng.uniform(0.6, 1.0, size=(t, j)) * np.exp(-0.5 * (error / 3.0) ** 2)
    confidence = np.clip(confidence, 0.05, 1.0) * conf
    confidence[rng.random((t, j)) < dropout] = 0.0
    noisy = np.where(confidence[..., None] > 0, noisy, 0.0)
    return noisy.astype(np.float32), confidence.astype(np.float32)
