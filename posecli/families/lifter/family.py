"""The lifter family: 2D keypoint sequences -> root-relative 3D (stformer, tcn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from posecli.data.augment import AUGMENT_DEFAULTS
from posecli.data.cache import PoseCache
from posecli.data.windows import build_dataloader
from posecli.errors import PoseCliError
from posecli.families.base import Family, Objective, PredictOptions, Predictions, Range, counting
from posecli.families.lifter import objective
from posecli.families.lifter.predict import predict_cache
from posecli.families.lifter.tracks import lift_people, lift_tracks
from posecli.families.lifter.validate import validation_metric
from posecli.families.tracks import Clock, TrackInput, TrackOptions, TrackPoses

DEFAULT_PROTOCOLS = ("p1", "p2", "n", "vel", "pck", "auc")


class LifterFamily(Family):
    name = "lifter"
    models = ("stformer", "tcn")

    def data_schema(self) -> dict[str, Any]:
        return {"augment": dict(AUGMENT_DEFAULTS)}   # posecli.data.augment: flips, virtual cameras, noise

    def objective_schema(self) -> dict[str, Any]:
        return dict(objective.DEFAULTS)

    def ranges(self) -> dict[str, Range]:
        return {"model.dim": (1, 8192, False), "model.depth": (1, 256, False), "model.heads": (1, 256, False),
                "model.mlp_ratio": (0, 64, True), "model.channels": (1, 8192, False),
                "model.upright_deg": (0, 180, False)}

    def sample_frames(self, model: nn.Module, data_cfg: dict[str, Any]) -> int:
        return int(data_cfg.get("window", model.window))

    def build_loader(self, data_cfg: dict[str, Any], model: nn.Module, batch_size: int, seed: int, *,
                     rank: int = 0, world_size: int = 1, num_workers: int = 0) -> DataLoader:
        return build_dataloader(data_cfg, int(model.window), batch_size, seed, rank=rank, world_size=world_size,
                                num_workers=num_workers, upright_deg=float(model.upright_deg))

    def build_objective(self, objective_cfg: dict[str, Any]) -> Objective:
        return objective.build_objective(objective_cfg)

    def check_training_data(self, objective_cfg: dict[str, Any], loader: DataLoader) -> None:
        dataset = loader.dataset
        objective.check_objective_data(objective_cfg, [c.has3d and w > 0
                                                       for c, w in zip(dataset.caches, dataset.weights)])

    def validate(self, model: nn.Module, cache: PoseCache, sequences: list[int],
                 device: torch.device) -> tuple[str, float]:
        return validation_metric(model, cache, sequences, device)

    def default_protocols(self, has3d: bool) -> list[str]:
        return list(DEFAULT_PROTOCOLS)

    def check_eval_cache(self, cache: PoseCache) -> None:
        if cache.keypoints3d is None:
            raise PoseCliError("cache has no 3D ground truth (keypoints3d): eval needs a 3D cache", cache.path)

    def predict_cache(self, model: nn.Module, cache: PoseCache, sequences: Sequence[int],
                      options: PredictOptions) -> Predictions:
        """Lift the cache's 2D (corrupted first when options.input_noise > 0)."""
        step = counting(options.progress, int(sum(cache.seq_length[s] for s in sequences)))
        pred = predict_cache(model, cache, sequences, flip=options.flip, stride=options.stride,
                             batch_size=options.batch_size, device=options.device, progress=step,
                             input_noise=options.input_noise, upright=options.upright)
        return Predictions(pred, None, {"flip": options.flip, "upright": options.upright, "stride": options.stride,
                                        "input_noise": options.input_noise})

    def predict_tracks(self, model: nn.Module, tracks: TrackInput, options: TrackOptions,
                       clock: Clock) -> TrackPoses:
        return lift_tracks(model, tracks, options, clock)

    def predict_people(self, model: nn.Module, keypoints2d: np.ndarray, confidence: np.ndarray,
                       options: TrackOptions) -> np.ndarray:
        return lift_people(model, keypoints2d, confidence, options)

    def wrong_checkpoint(self, found: str) -> str:
        return f"checkpoint holds a '{found}' model; infer needs a 2D-to-3D 'lifter'"


FAMILY = LifterFamily()
