"""Prediction with an image-family model: person crops -> 2D in image pixels + root-relative 3D.

The image family's counterpart of posecli.families.lifter.predict: eval, validation and infer all
call `predict_crops`, so they cannot disagree on resizing, flip test or the mapping back to the
photo. 2D comes back through each crop's crop -> image affine. `predict_cache` is eval's loop over the
crops of a cache. 3D comes from the heatmap position
and per-joint depth (posecli.models.image_pose.pose_from_prediction), whose scale a single crop
cannot know; it is turned into metres by giving the pose the bone-length sum of a typical adult
(REFERENCE_BONES_M). Scale-normalised MPJPE (the study's figure) does not depend on that choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from posecli.data import crops as cr
from posecli.data.cache import PoseCache
from posecli.data.image_cache import ImageStore
from posecli.device import select_device
from posecli.families.image.windows import resize_transform
from posecli.geometry import bone_lengths
from posecli.models import eval_mode
from posecli.models.heatmaps import crop_to_heatmap
from posecli.models.image_pose import pose_from_prediction
from posecli.skeleton import H36M_BONES, NUM_JOINTS

# Bone lengths of a typical adult in metres, per H36M_BONES (rounded Human3.6M values: hips 0.133,
# thigh 0.454, shin 0.450, spine 0.233 + 0.257, neck 0.121, head 0.115, shoulder 0.151, upper arm
# 0.279, forearm 0.250); only their sum is used, to give image-family 3D a metric size.
REFERENCE_BONES_M = np.array([0.133, 0.454, 0.450, 0.133, 0.454, 0.450, 0.233, 0.257, 0.121, 0.115,
                              0.151, 0.279, 0.250, 0.151, 0.279, 0.250])
assert len(REFERENCE_BONES_M) == len(H36M_BONES)


def bone_length_sum(pose: np.ndarray) -> np.ndarray:
    """Sum of the H36M bone lengths of poses [..., 17, D] -> [...]."""
    return bone_lengths(pose).sum(axis=-1)


def to_metres(pose: np.ndarray) -> np.ndarray:
    """Root-relative poses [..., 17, 3] in any unit -> metres, with REFERENCE_BONES_M's bone sum."""
    total = bone_length_sum(pose)
    return pose * (REFERENCE_BONES_M.sum() / np.maximum(total, 1e-9))[..., None, None]


def _inputs(crops: Sequence[np.ndarray], affines: np.ndarray, input_size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Crops resized to the model's input size as a [B, 3, S, S] batch in [0, 1], and the
    input -> image affines."""
    images, to_image = [], []
    for crop, affine in zip(crops, affines):
        size = crop.shape[0]
        if size != input_size:
            resize = resize_transform(size, input_size)
            crop = cr.warp(crop, resize, input_size)
            affine = cr.compose(affine, cr.invert_affine(resize))
        images.append(np.ascontiguousarray(crop))
        to_image.append(affine)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
    return batch, np.stack(to_image)


@torch.inference_mode()
def predict_crops(model: nn.Module, crops: Sequence[np.ndarray], affines: np.ndarray, *,
                  flip: bool | None = None, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Predict one batch of uint8 RGB crops [S, S, 3] with their crop -> image affines [B, 2, 3].

    Returns "keypoints2d" [B, 17, 2] image pixels, "score" [B, 17] and "keypoints3d" [B, 17, 3]
    root-relative metres (typical adult size, see module docstring). `flip` None = the model's
    flip_test setting."""
    dev = select_device(device)
    with eval_mode(model.to(dev)):
        batch, to_image = _inputs(crops, np.asarray(affines, dtype=np.float64), int(model.input_size))
        out = model.predict(batch.to(dev), flip=flip)
    uv_crop = out["uv"].double().cpu().numpy()
    uv_heat = crop_to_heatmap(uv_crop, model.stride)
    pose = pose_from_prediction(torch.from_numpy(uv_heat), out["depth"].double().cpu(), model.heatmap_size).numpy()
    kp2d = np.stack([cr.apply_affine(a, p) for a, p in zip(to_image, uv_crop)])
    return {"keypoints2d": kp2d.astype(np.float32), "score": out["score"].float().cpu().numpy(),
            "keypoints3d": to_metres(pose).astype(np.float32)}


def predict_frames(model: nn.Module, store: ImageStore, frames: Sequence[int], *, flip: bool | None = None,
                   batch_size: int = 32, device: str | torch.device = "cpu",
                   progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """predict_crops over the cache crops `frames` (in that order), `batch_size` at a time;
    `progress(n)` after each batch."""
    frames = [int(f) for f in frames]
    parts: list[dict[str, np.ndarray]] = []
    for i in range(0, len(frames), max(1, batch_size)):
        chunk = [store.read(f) for f in frames[i:i + batch_size]]
        parts.append(predict_crops(model, [c for c, _ in chunk], np.stack([a for _, a in chunk]),
                                   flip=flip, device=device))
        if progress is not None:
            progress(len(chunk))
    if not parts:
        return {"keypoints2d": np.zeros((0, NUM_JOINTS, 2), np.float32), "score": np.zeros((0, NUM_JOINTS), np.float32),
                "keypoints3d": np.zeros((0, NUM_JOINTS, 3), np.float32)}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sequence_frames(cache: PoseCache, sequences: Sequence[int], every: int = 1) -> np.ndarray:
    """Cache frame indices of every `every`-th frame of each chosen sequence, in order."""
    return np.concatenate([cache.seq_start[s] + np.arange(0, cache.seq_length[s], max(1, every))
                           for s in sequences])


def predict_cache_frames(model: nn.Module, cache: PoseCache, frames: Sequence[int], *, flip: bool | None = None,
                         batch_size: int = 32, device: str | torch.device = "cpu",
                         progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """predict_frames over the crops of a cache (its image group opened for the call)."""
    store = ImageStore(cache.path)
    try:
        return predict_frames(model, store, frames, flip=flip, batch_size=batch_size, device=device,
                              progress=progress)
    finally:
        store.close()
