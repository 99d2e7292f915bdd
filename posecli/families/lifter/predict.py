"""Whole-sequence 3D prediction with a lifter: the one code path shared by validation, `eval` and
`infer` (predict_cache is eval's loop over a cache, with optional detector-like input noise).

A model sees `model.window` frames at a time, exactly as in training: each window is cut from the
sequence (indices clipped to the sequence, i.e. edge padding), normalised on its own with
`normalize_window`, and lifted. Windows overlap and their outputs are averaged per frame:

- transformer (stformer, T' = T): windows of `model.window` frames start every `stride` frames
  (default window // 2), the last one ends on the last frame, and a sequence shorter than the window
  is edge padded to it (as in training). Overlapping outputs are averaged with tent weights
  min(k + 1, window - k) for output position k, so a frame counts most from the windows in which
  it sits near the centre, where it has context on both sides.
- convolutional (tcn, valid convolutions, T' = T - receptive_field + 1): the sequence is edge
  padded by (receptive_field - 1) / 2 frames on each side and cut into chunks of `stride` outputs
  (default receptive_field), each reading stride + receptive_field - 1 frames normalised together;
  chunks tile the sequence (the last one is shifted back to end on the last frame and its overlap is
  averaged uniformly). stride=1 reproduces training's per-window normalisation exactly, at
  receptive_field times the cost.

Upright windows (on by default): a window whose torso leans further from image up than training
windows did (the model's `upright_deg`: a rolled camera, a person lying down) is
turned about its centre until it is just inside that range, and its 3D is turned back about the
optical axis, so a tilted view reaches the lifter as one it was trained on.

Optional flip test-time augmentation lifts each window a second time mirrored (normalised x negated,
left/right joints swapped), mirrors the 3D result back and averages the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from posecli.data.augment import AUGMENT_DEFAULTS, detector_noise
from posecli.data.cache import PoseCache
from posecli.data.normalize import normalize_window
from posecli.device import select_device
from posecli.families.base import MAX_INPUT_NOISE
from posecli.geometry import rotate_xy, upright_angle
from posecli.models import eval_mode
from posecli.options import check_range
from posecli.skeleton import H36M_FLIP_PERM, NUM_JOINTS


def flip_input(x: torch.Tensor) -> torch.Tensor:
    """Mirror model inputs [..., 17, 3] (normalised x, y, confidence) about the window centre.

    The window centre is the origin of the normalised frame, and the mirrored pose has the same
    box, so mirroring is exactly: negate x and swap left/right joints (confidence moves along)."""
    out = x[..., H36M_FLIP_PERM, :].clone()
    out[..., 0] = -out[..., 0]
    return out


def unflip_pose3d(pose: torch.Tensor) -> torch.Tensor:
    """Mirror a 3D camera-frame pose [..., 17, 3] back: negate x and swap left/right joints."""
    out = pose[..., H36M_FLIP_PERM, :].clone()
    out[..., 0] = -out[..., 0]
    return out


MAX_CHUNK_OUTPUTS = 16_384      # convolutional lifters: outputs per chunk (--stride) at most

@dataclass(frozen=True)
class WindowPlan:
    """How a sequence is cut: each window reads `in_len` input frames from start - pad (clipped to
    the sequence) and yields `out_len` outputs for frames [start, start + out_len)."""

    in_len: int
    out_len: int
    pad: int
    starts: list[int]
    weights: np.ndarray          # [out_len] averaging weight of each output position


def window_plan(num_frames: int, window: int, receptive_field: int = 1,
                stride: int | None = None) -> WindowPlan:
    """Plan the windows for a sequence of `num_frames`; `receptive_field` is the number of input
    frames one output needs (1 for a transformer, which returns T' = T; more for valid
    convolutions, which return T' = T - receptive_field + 1).

    Transformer: windows of `window` frames every `stride` (default window // 2, at most window)
    frames, tent weights. Convolutional: chunks of `stride` outputs (default receptive_field, at
    most the sequence length) read stride + receptive_field - 1 inputs centred on them; chunks tile
    the sequence, uniform weights where the last one overlaps.
    """
    if stride is not None and int(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    receptive_field = max(int(receptive_field), 1)
    if receptive_field > 1:
        # A chunk longer than the sequence only adds padding: its size (and the memory and time of
        # the one model call it makes) is bounded by the sequence, whatever stride asks for.
        out_len = min(int(stride), max(num_frames, 1)) if stride is not None else receptive_field
        in_len, pad, step = out_len + receptive_field - 1, (receptive_field - 1) // 2, out_len
        weights = np.ones(out_len)
    else:
        # Windows further apart than their length would leave frames without any output.
        out_len = in_len = int(window)
        pad, step = 0, min(int(stride), out_len) if stride is not None else max(window // 2, 1)
        k = np.arange(out_len)
        weights = np.minimum(k + 1, out_len - k).astype(np.float64)
    last = max(num_frames - out_len, 0)
    starts = list(range(0, last + 1, step))
    if starts[-1] != last:
        starts.append(last)
    return WindowPlan(in_len, out_len, pad, starts, weights)


def output_shrink(model: torch.nn.Module, device: torch.device) -> int:
    """Frames a model loses per call (T - T'): 0 for transformers, receptive_field - 1 for valid
    convolutions. Found by one probe call on a zero window, since both kinds of lifter report
    window == receptive_field."""
    window = int(model.window)
    probe = torch.zeros(1, window, NUM_JOINTS, 3, device=device)
    with torch.inference_mode():
        return window - int(model(probe)["pose3d"].shape[1])


def lift_sequence(model: torch.nn.Module, keypoints2d: np.ndarray, confidence: np.ndarray, *,
                  flip: bool = False, stride: int | None = None, batch_size: int = 64,
                  device: str | torch.device = "cpu", upright: bool = True) -> np.ndarray:
    """Lift a whole 2D sequence [T, 17, 2] (pixels) with confidence [T, 17] to root-relative 3D
    [T, 17, 3] in metres (float32), one output per input frame whatever T is.

    The model is moved to `device` ("auto" picks CUDA when present) and run in eval mode under
    torch.inference_mode; its previous training mode is restored afterwards."""
    kp = np.asarray(keypoints2d, dtype=np.float32)
    conf = np.asarray(confidence, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 2) or conf.shape != kp.shape[:2]:
        raise ValueError(f"expected keypoints2d [T,{NUM_JOINTS},2] and confidence [T,{NUM_JOINTS}], "
                         f"got {kp.shape} and {conf.shape}")
    num_frames = len(kp)
    if num_frames == 0:
        return np.zeros((0, NUM_JOINTS, 3), dtype=np.float32)
    dev = select_device(device)
    with eval_mode(model.to(dev)):
        shrink = output_shrink(model, dev)
        plan = window_plan(num_frames, int(model.window), shrink + 1, stride)
        inputs = window_inputs(kp, conf, plan)[0]
        angles = turn_upright(inputs, model.upright_deg) if upright else np.zeros(len(inputs))
        outputs = _run_windows(model, inputs, flip, batch_size, dev)
    for i in np.flatnonzero(angles):
        outputs[i] = rotate_xy(outputs[i], -angles[i])

    total = np.zeros((num_frames + plan.out_len, NUM_JOINTS, 3), dtype=np.float64)
    weight = np.zeros(num_frames + plan.out_len, dtype=np.float64)
    for i, s in enumerate(plan.starts):
        total[s:s + plan.out_len] += outputs[i] * plan.weights[:, None, None]
        weight[s:s + plan.out_len] += plan.weights
    pose3d = total[:num_frames] / weight[:num_frames, None, None]
    pose3d -= pose3d[:, :1]
    return pose3d.astype(np.float32)


def window_inputs(keypoints2d: np.ndarray, confidence: np.ndarray,
                  plan: WindowPlan) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs [windows, in_len, 17, 3] (normalised x, y, confidence) of a plan, and each
    window's normalisation scale [windows] (pixels per unit): each window is edge padded and
    normalised on its own. Output i of window w belongs to frame starts[w] + i and was read from
    input position pad + i."""
    offsets = np.arange(plan.in_len)
    inputs = np.empty((len(plan.starts), plan.in_len, NUM_JOINTS, 3), dtype=np.float32)
    scales = np.empty(len(plan.starts), dtype=np.float32)
    for i, s in enumerate(plan.starts):
        idx = np.clip(s - plan.pad + offsets, 0, len(keypoints2d) - 1)
        inputs[i, ..., :2], _, scales[i] = normalize_window(keypoints2d[idx], confidence[idx])
        inputs[i, ..., 2] = confidence[idx]
    return inputs, scales


def turn_upright(inputs: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """Turn each normalised window [W, T, 17, 3] in place until its torso is within `tolerance_deg`
    (the model's upright_deg) of image up (`upright_angle`); returns the angles [W] (radians, 0 for
    windows left as they were). Missing joints sit at 0 and stay there."""
    angles = np.array([upright_angle(w[..., :2], w[..., 2], tolerance_deg) for w in inputs], dtype=np.float64)
    for w, angle in zip(inputs, angles):
        if angle:
            w[..., :2] = rotate_xy(w[..., :2], angle)
    return angles


def _run_windows(model: torch.nn.Module, inputs: np.ndarray, flip: bool, batch_size: int,
                 dev: torch.device) -> np.ndarray:
    """3D outputs [W, T', 17, 3] of all windows, in batches, flip-averaged when asked."""
    chunks = []
    with torch.inference_mode():
        for b in range(0, len(inputs), batch_size):
            x = torch.from_numpy(inputs[b:b + batch_size]).to(dev)
            pose = model(x)["pose3d"]
            if flip:
                pose = (pose + unflip_pose3d(model(flip_input(x))["pose3d"])) / 2
            chunks.append(pose.double().cpu().numpy())
    return np.concatenate(chunks)


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
                  noise_seed: int = NOISE_SEED, upright: bool = True) -> np.ndarray:
    """Lift every selected sequence of the cache; [N, 17, 3] metres, NaN outside the selection.
    `input_noise` > 0 corrupts the 2D first (`noisy_input`; sequence i draws from the generator
    seeded (noise_seed, i), so the noise does not depend on which sequences are selected).
    `progress(frames_done)` is called after each sequence."""
    out = np.full((cache.num_frames, NUM_JOINTS, 3), np.nan, dtype=np.float32)
    for seq in sequences:
        s0, n = int(cache.seq_start[seq]), int(cache.seq_length[seq])
        sl = slice(s0, s0 + n)
        kp2d, conf = noisy_input(np.asarray(cache.keypoints2d[sl]), np.asarray(cache.confidence[sl]),
                                 input_noise, np.random.default_rng([int(noise_seed), int(seq)]))
        out[sl] = lift_sequence(model, kp2d, conf, flip=flip, stride=stride, batch_size=batch_size,
                                device=device, upright=upright)
        if progress is not None:
            progress(n)
    return out
