"""Training windows: weighted sampling over caches, augmentation, and a distributed batch sampler.

A sample is a pure function of (seed, index): the index picks a cache by weight, a sequence by
frame count and a centre frame, through a generator seeded with both. That makes data-loader
workers, resume and multi-process training reproducible without any shared RNG state, and lets the
batch sampler split one global batch across ranks: rank r of w with batch b takes indices
[r*b, (r+1)*b) of each global batch of w*b, so w processes see exactly what one process with batch
w*b sees.

`data:` section keys used here: `sources` (list of {path, weight}), `augment` (see
posecli.data.augment.AUGMENT_DEFAULTS), optional `window` (frames per sample; default the model's)
and `epoch_length` (samples per epoch; default all frames of all sources). Other keys are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from posecli.data.augment import check_augment, detector_noise, flip_window, virtual_view
from posecli.data.cache import PoseCache, open_cache
from posecli.data.normalize import normalize_window
from posecli.errors import PoseCliError


class WindowDataset(Dataset):
    """Random windows from several caches, mixed by weight; `index` may be any non-negative int."""

    def __init__(self, sources: list[dict], window: int, augment: dict | None, *, split_seed: int,
                 length: int | None = None):
        if not sources:
            raise PoseCliError("data.sources is empty: name at least one cache")
        if window < 1:
            raise PoseCliError(f"window must be at least 1 frame, got {window}")
        self.paths = [str(_source_field(s, "path")) for s in sources]
        weights = np.array([float(s.get("weight", 1.0)) for s in sources], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise PoseCliError(f"data.sources weights must be >= 0 and not all 0, got {weights.tolist()}")
        self.window, self.augment, self.seed = int(window), check_augment(augment), int(split_seed)
        self._caches: list[PoseCache] | None = None
        caches = self.caches
        self.cache_cdf = np.cumsum(weights / weights.sum())
        self.seq_cdf = [np.cumsum(c.seq_length / c.seq_length.sum()) for c in caches]
        self.length = int(length) if length else sum(c.num_frames for c in caches)

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
        seq = min(int(np.searchsorted(self.seq_cdf[c], rng.random(), side="right")), len(self.seq_cdf[c]) - 1)
        centre = int(rng.integers(int(self.caches[c].seq_length[seq])))
        return c, seq, centre - self.window // 2, rng

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        c, seq, start, rng = self.locate(index)
        cache = self.caches[c]
        raw = cache.window(seq, start, self.window)
        kp2d, conf, kp3d = raw["keypoints2d"], raw["confidence"], raw.get("keypoints3d")
        aug = self.augment
        intrinsics = cache.intrinsics[seq]
        if kp3d is not None and not np.isnan(intrinsics).any() and rng.random() < aug["virtual_camera"]:
            view = virtual_view(kp3d, conf, intrinsics, rng, aug["max_elevation_deg"])
            if view is not None:
                kp3d, kp2d = view
        target2d, _, scale = normalize_window(kp2d, conf)
        target3d = np.zeros((*conf.shape, 3), np.float32) if kp3d is None else kp3d - kp3d[:, :1]
        target3d = np.where(conf[..., None] > 0, target3d, 0.0).astype(np.float32)
        if rng.random() < aug["flip"]:
            target2d, conf, target3d = flip_window(target2d, conf, target3d)
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
                     world_size: int = 1, num_workers: int = 0) -> DataLoader:
    """DataLoader of augmented windows for one rank; its `batch_sampler` is a WindowBatchSampler."""
    window = int(data_cfg.get("window", model_window))
    dataset = WindowDataset(data_cfg.get("sources") or [], window, data_cfg.get("augment"),
                            split_seed=seed, length=data_cfg.get("epoch_length"))
    sampler = WindowBatchSampler(len(dataset), batch_size, rank=rank, world_size=world_size)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
