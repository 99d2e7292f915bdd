"""Training samples for the image family: an augmented person crop with its heatmap and 3D targets.

Sampling is the lifter's (posecli.data.windows.WindowDataset with one-frame windows: a cache by
weight, a frame uniformly, all a pure function of seed + index; `data.fraction` keeps a share of the
3D takes the same way); only the sample differs. Each sample is a dict of tensors:
- `image` float32 [3, S, S] RGB in [0, 1] (the model normalises);
- `heatmap_target` float32 [17, S/4, S/4] Gaussians at the joints (0 maps for missing joints);
- `target2d` float32 [17, 2] joint positions in *heatmap pixels*;
- `conf` float32 [17] (0 = missing, or pushed outside the crop by augmentation);
- `target3d` float32 [17, 3] root-relative metres, camera frame, rotated/mirrored with the crop
  (zeros when the cache has no 3D); `has3d` bool;
- `affine` float64 [2, 3] crop pixels -> original image pixels (to map predictions back).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from posecli.data import crops as cr
from posecli.data.image_cache import ImageStore
from posecli.data.windows import WindowDataset, window_loader
from posecli.errors import PoseCliError
from posecli.models.heatmaps import crop_to_heatmap, render_heatmaps
from posecli.models.image_pose import STRIDE


def check_image_augment(cfg: dict | None, train: bool) -> dict[str, float]:
    """posecli.data.crops.AUGMENT_DEFAULTS merged with `cfg` (all off when not training)."""
    out = dict(cr.AUGMENT_DEFAULTS)
    for key, value in (cfg or {}).items():
        if key not in out:
            raise PoseCliError(f"unknown image augment option '{key}' (known: {', '.join(out)})")
        out[key] = float(value)
    if not train:
        out.update(scale=0.0, rotation=0.0, rotation_prob=0.0, flip=0.0, colour=0.0)
    for key in ("flip", "rotation_prob"):
        if not 0.0 <= out[key] <= 1.0:
            raise PoseCliError(f"image augment option '{key}' is a probability, got {out[key]}")
    return out


def resize_transform(from_size: int, to_size: int) -> np.ndarray:
    """Stored crop -> input crop affine when the sizes differ (pixel-centre convention)."""
    k = to_size / from_size
    return np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])


class ImageDataset(WindowDataset):
    """Augmented crops from caches with an image group (see module docstring for the sample)."""

    def __init__(self, sources: list[dict], augment: dict | None, *, split_seed: int, length: int | None = None,
                 input_size: int = 256, sigma: float = 2.0, train: bool = True, fraction: float = 1.0,
                 fraction_seed: int = 0):
        super().__init__(sources, 1, None, split_seed=split_seed, length=length, fraction=fraction,
                         fraction_seed=fraction_seed)
        self.image_augment = check_image_augment(augment, train)
        self.input_size, self.sigma, self.train = int(input_size), float(sigma), bool(train)
        self.heatmap_size = self.input_size // STRIDE
        self.stores = [ImageStore(p) for p in self.paths]
        for cache, store in zip(self.caches, self.stores):
            if len(store) != cache.num_frames:
                raise PoseCliError(f"image group has {len(store)} crops for {cache.num_frames} frames", store.path)

    def sample(self, cache_index: int, frame: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """The sample of one cache frame; rng None = no augmentation."""
        cache = self.caches[cache_index]
        crop, crop_to_image = self.stores[cache_index].read(frame)
        kp2d = np.asarray(cache.keypoints2d[frame], dtype=np.float64)
        conf = np.asarray(cache.confidence[frame], dtype=np.float32).copy()
        kp3d = None if cache.keypoints3d is None else np.asarray(cache.keypoints3d[frame], dtype=np.float64)
        to_input = resize_transform(crop.shape[0], self.input_size)
        flip = False
        if rng is not None:
            aug, flip, gains = cr.random_augmentation(rng, self.input_size, self.image_augment)
            to_input = cr.compose(aug, to_input)
            crop = cr.apply_colour(crop, gains)
        image = cr.warp(crop, to_input, self.input_size) if not np.allclose(to_input, np.eye(2, 3)) else crop
        image_to_input = cr.compose(to_input, cr.invert_affine(crop_to_image))
        uv = cr.apply_affine(image_to_input, kp2d)
        target3d = np.zeros((len(conf), 3))
        if kp3d is not None:
            target3d = kp3d - kp3d[:1]
            linear = image_to_input[:, :2] / np.sqrt(abs(np.linalg.det(image_to_input[:, :2])))
            target3d[:, :2] = target3d[:, :2] @ linear.T     # in-plane rotation / mirror follow the crop
        if flip:
            uv, conf = cr.flip_joints(uv, conf)
            target3d = target3d[cr.H36M_FLIP_PERM]
        inside = ((uv >= -0.5) & (uv <= self.input_size - 0.5)).all(axis=-1)
        conf = np.where(inside, conf, 0.0).astype(np.float32)
        uv_hm = crop_to_heatmap(uv, STRIDE)
        target3d = np.where(conf[:, None] > 0, target3d, 0.0)
        heat = render_heatmaps(uv_hm, conf, (self.heatmap_size, self.heatmap_size), self.sigma)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255),
            "heatmap_target": torch.from_numpy(heat),
            "target2d": torch.from_numpy(np.where(conf[:, None] > 0, uv_hm, 0.0).astype(np.float32)),
            "conf": torch.from_numpy(conf),
            "target3d": torch.from_numpy(target3d.astype(np.float32)),
            "has3d": torch.tensor(kp3d is not None),
            "affine": torch.from_numpy(cr.invert_affine(image_to_input)),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        c, seq, start, rng = self.locate(index)
        frame = int(self.caches[c].seq_start[seq]) + start
        return self.sample(c, frame, rng if self.train else None)


def build_image_dataloader(data_cfg: dict, input_size: int, batch_size: int, seed: int, rank: int = 0,
                           world_size: int = 1, num_workers: int = 0, train: bool = True) -> DataLoader:
    """DataLoader of augmented crops for one rank (the image family's build_dataloader)."""
    dataset = ImageDataset(data_cfg.get("sources") or [], data_cfg.get("augment"), split_seed=seed,
                           length=data_cfg.get("epoch_length"), input_size=input_size,
                           sigma=float(data_cfg.get("sigma", 2.0)), train=train,
                           fraction=float(data_cfg.get("fraction", 1.0)),
                           fraction_seed=int(data_cfg.get("fraction_seed", 0)))
    return window_loader(dataset, batch_size, rank=rank, world_size=world_size, num_workers=num_workers)
