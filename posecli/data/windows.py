"""Training windows: weighted sampling over caches, augmentation, and a distributed batch sampler.

A sample is a pure function of (seed, index): the index picks a cache by weight, a sequence by
frame count and a centre frame, through a generator seeded with both. That makes data-loader
workers, resume and multi-process training reproducible without any shared RNG state, and lets the
batch sampler split one global batch across ranks: rank r of w with batch b takes indices
[r*b, (r+1)*b) of each global batch of w*b, so w processes see exactly what one process with batch
w*b sees.

`data:` section keys used here: `sources` (list of {path, weight}), `augment` (see
posecli.data.augment.AUGMENT_DEFAULTS), optional `window` (frames per sample; default the model's)
and `epoch_length` (samples per epoch; default all frames of all sources), `fraction` and
`fraction_seed` (train on a random subset of the 3D takes: see `select_takes`). Other keys are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from posecli.data.augment import (bend_forward, check_augment, detector_face_inputs, detector_noise, flip_window,
                                  recline, scale_bones, virtual_view)
from posecli.data.cache import PoseCache, open_cache
from posecli.data.normalize import normalize_window
from posecli.errors import PoseCliError
from posecli.geometry import UPRIGHT_TOLERANCE_DEG, rotate_xy, upright_angle


class WindowDataset(Dataset):
    """Random windows from several caches, mixed by weight; `index` may be any non-negative int."""

    def __init__(self, sources: list[dict], window: int, augment: dict | None, *, split_seed: int,
                 length: int | None = None, fraction: float = 1.0, fraction_seed: int = 0,
                 upright_deg: float = UPRIGHT_TOLERANCE_DEG):
        """`upright_deg`: the model's (posecli.models): `augment.upright` turns windows as its predictions will."""
        if not sources:
            raise PoseCliError("data.sources is empty: name at least one cache")
        if window < 1:
            raise PoseCliError(f"window must be at least 1 frame, got {window}")
        self.paths = [str(_source_field(s, "path")) for s in sources]
        weights = np.array([float(s.get("weight", 1.0)) for s in sources], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise PoseCliError(f"data.sources weights must be >= 0 and not all 0, got {weights.tolist()}")
        self.window, self.augment, self.seed = int(window), check_augment(augment), int(split_seed)
        self.upright_deg = float(upright_deg)
        self._caches: list[PoseCache] | None = None
        caches = self.caches
        self.weights = weights
        self.cache_cdf = np.cumsum(weights / weights.sum())
        # sequences that may be sampled: all of them, or the kept takes of 3D caches (data.fraction)
        self.seq_index = [select_takes(c, fraction, fraction_seed) if c.has3d else np.arange(c.num_sequences)
                          for c in caches]
        self.kept_takes = [take_names(c, idx) if c.has3d else [] for c, idx in zip(caches, self.seq_index)]
        lengths = [c.seq_length[idx] for c, idx in zip(caches, self.seq_index)]
        self.seq_cdf = [np.cumsum(n / n.sum()) for n in lengths]
        self.length = int(length) if length else int(sum(n.sum() for n in lengths))

    @property
    def caches(self) -> list[PoseCache]:
        """Caches open lazily, so a pickled dataset (spawned workers) reopens them in the worker."""
        if self._caches is None:
            self._caches = [open_cache(p) for p in self.paths]
        return self._caches

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_caches": None}

    def __len__(self) -> int:
        return self.length

    def locate(self, index: int) -> tuple[int, int, int, np.random.Generator]:
        """(cache, sequence, start frame, generator) of sample `index`: a pure function of seed+index."""
        rng = np.random.default_rng([self.seed, int(index)])
        c = min(int(np.searchsorted(self.cache_cdf, rng.random(), side="right")), len(self.paths) - 1)
        pick = min(int(np.searchsorted(self.seq_cdf[c], rng.random(), side="right")), len(self.seq_cdf[c]) - 1)
        seq = int(self.seq_index[c][pick])
        centre = int(rng.integers(int(self.caches[c].seq_length[seq])))
        return c, seq, centre - self.window // 2, rng

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        c, seq, start, rng = self.locate(index)
        cache = self.caches[c]
        raw = cache.window(seq, start, self.window)
        kp2d, conf, kp3d = raw["keypoints2d"], raw["confidence"], raw.get("keypoints3d")
        aug = self.augment
        intrinsics = cache.intrinsics[seq]
        filmed = kp3d is not None and not np.isnan(intrinsics).any()
        # drawn only when enabled, so presets without it keep their exact sample stream
        if filmed and aug["bone_scale"] > 0 and rng.random() < aug["bone_scale"]:
            scaled = scale_bones(kp3d, conf, intrinsics, rng, aug["bone_spread"])
            if scaled is not None:
                kp3d, kp2d = scaled
        if filmed and aug["bend"] > 0 and rng.random() < aug["bend"]:
            bent = bend_forward(kp3d, conf, intrinsics, rng, aug["max_bend_deg"])
            if bent is not None:
                kp3d, kp2d = bent
        if filmed and aug["recline"] > 0 and rng.random() < aug["recline"]:
            reclined = recline(kp3d, conf, intrinsics, rng, aug["max_recline_deg"])
            if reclined is not None:
                kp3d, kp2d = reclined
        if filmed and rng.random() < aug["virtual_camera"]:
            view = virtual_view(kp3d, conf, intrinsics, rng, aug["max_elevation_deg"],
                                distance=(aug["distance_min"], aug["distance_max"]),
                                off_axis_deg=aug["off_axis_deg"], roll_deg=aug["roll_deg"])
            if view is not None:
                kp3d, kp2d = view
        if filmed and rng.random() < aug["face_landmarks"]:
            kp2d = detector_face_inputs(kp3d, conf, kp2d, intrinsics)
        target2d, _, scale = normalize_window(kp2d, conf)
        target3d = np.zeros((*conf.shape, 3), np.float32) if kp3d is None else kp3d - kp3d[:, :1]
        target3d = np.where(conf[..., None] > 0, target3d, 0.0).astype(np.float32)
        if rng.random() < aug["flip"]:
            target2d, conf, target3d = flip_window(target2d, conf, target3d)
        if aug["upright"] > 0 and rng.random() < aug["upright"]:
            angle = upright_angle(target2d, conf, self.upright_deg)
            target2d, target3d = rotate_xy(target2d, angle), rotate_xy(target3d, angle)
        in2d, in_conf = target2d, conf
        if rng.random() < aug["noise"]:
            in2d, in_conf = detector_noise(target2d, conf, rng, jitter=aug["jitter"], swap=aug["swap"],
                                           dropout=aug["dropout"], outlier=aug["outlier"])
        return {
            "input": torch.from_numpy(np.concatenate([in2d, in_conf[..., None]], axis=-1).astype(np.float32)),
            "target2d": torch.from_numpy(np.ascontiguousarray(target2d, dtype=np.float32)),
            "conf": torch.from_numpy(np.ascontiguousarray(conf, dtype=np.float32)),
            "target3d": torch.from_numpy(np.ascontiguousarray(target3d, dtype=np.float32)),
            "has3d": torch.tensor(kp3d is not None),
            "scale": torch.tensor(scale, dtype=torch.float32),
        }


def take_keys(cache: PoseCache) -> list[tuple[str, str]]:
    """(subject, action) of every sequence: one take, seen by one or more (virtual) cameras."""
    return list(zip(cache.subject, cache.action))


def take_names(cache: PoseCache, sequences: np.ndarray) -> list[str]:
    """'subject/action' of the takes among `sequences`, in cache order (for logs and summaries)."""
    keys = take_keys(cache)
    return list(dict.fromkeys(f"{keys[i][0]}/{keys[i][1]}" for i in sequences))


def select_takes(cache: PoseCache, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the sequences of a random `fraction` of the cache's takes.

    Sequences are grouped by (subject, action) so that every camera view of a take is kept or
    dropped together (no take leaks between views). The count is rounded up, with at least one
    take: ceil(fraction x takes), so 1 % of 72 takes keeps 1 and 10 % keeps 8. The choice is the
    first takes of `np.random.default_rng(seed).permutation(takes)`, takes numbered in order of
    first appearance, so a smaller fraction with the same seed keeps a subset of a larger one.
    """
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise PoseCliError(f"data.fraction must be in (0, 1], got {fraction}", cache.path)
    keys = take_keys(cache)
    order = list(dict.fromkeys(keys))
    if fraction >= 1.0:
        return np.arange(cache.num_sequences)
    n_keep = max(1, math.ceil(fraction * len(order) - 1e-9))
    kept = {order[i] for i in np.random.default_rng(int(seed)).permutation(len(order))[:n_keep]}
    return np.array([i for i, k in enumerate(keys) if k in kept], dtype=np.int64)


def _source_field(source: dict, key: str):
    if not isinstance(source, dict) or key not in source:
        raise PoseCliError(f"each entry of data.sources needs '{key}' (got {source!r})")
    return source[key]


class WindowBatchSampler(Sampler[list[int]]):
    """Batches of consecutive sample indices; rank r takes slice r of every global batch.

    Each pass over the sampler is a new epoch with fresh indices (the epoch counts up by itself;
    `set_epoch` sets it, e.g. on resume). Incomplete global batches are dropped.
    """

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.num_batches = max(1, num_samples // (batch_size * world_size))
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Next pass yields epoch `epoch`, starting at its batch `start_batch` (for resume)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, first = self.epoch, self.start_batch
        self.epoch, self.start_batch = epoch + 1, 0
        global_batch = self.batch_size * self.world_size
        for n in range(epoch * self.num_batches + first, (epoch + 1) * self.num_batches):
            start = n * global_batch + self.rank * self.batch_size
            yield list(range(start, start + self.batch_size))

    def __len__(self) -> int:
        return self.num_batches


def build_dataloader(data_cfg: dict, model_window: int, batch_size: int, seed: int, rank: int = 0,
                     world_size: int = 1, num_workers: int = 0,
                     upright_deg: float = UPRIGHT_TOLERANCE_DEG) -> DataLoader:
    """DataLoader of augmented windows for one rank; its `batch_sampler` is a WindowBatchSampler.
    `upright_deg`: the model's upright tolerance, for `augment.upright`."""
    window = int(data_cfg.get("window", model_window))
    dataset = WindowDataset(data_cfg.get("sources") or [], window, data_cfg.get("augment"),
                            split_seed=seed, length=data_cfg.get("epoch_length"),
                            fraction=float(data_cfg.get("fraction", 1.0)),
                            fraction_seed=int(data_cfg.get("fraction_seed", 0)), upright_deg=upright_deg)
    return window_loader(dataset, batch_size, rank=rank, world_size=world_size, num_workers=num_workers)


def window_loader(dataset: WindowDataset, batch_size: int, *, rank: int = 0, world_size: int = 1,
                  num_workers: int = 0) -> DataLoader:
    """The DataLoader of one rank over a WindowDataset (or a subclass), batched by WindowBatchSampler."""
    sampler = WindowBatchSampler(len(dataset), batch_size, rank=rank, world_size=world_size)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
