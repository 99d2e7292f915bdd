"""The image family: person crops -> 17 heatmaps + depth maps -> 2D pixels and root-relative 3D."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from posecli.data.cache import PoseCache
from posecli.data.crops import AUGMENT_DEFAULTS
from posecli.errors import PoseCliError
from posecli.families.base import Family, Objective, PredictOptions, Predictions, Range, counting
from posecli.families.image import objective
from posecli.families.image.predict import predict_cache_frames, sequence_frames
from posecli.families.image.tracks import predict_tracks
from posecli.families.image.validate import HIGHER_IS_BETTER, validation_metric
from posecli.families.image.windows import build_image_dataloader
from posecli.families.tracks import Clock, TrackInput, TrackOptions, TrackPoses
from posecli.models import build_model
from posecli.skeleton import NUM_JOINTS

PROTOCOLS_3D = ("snm", "p1", "p2", "n", "pck", "pck2d", "pckh")
PROTOCOLS_2D = ("pck2d", "pckh")


class ImageFamily(Family):
    name = "image"
    models = ("image",)
    higher_is_better = HIGHER_IS_BETTER

    def data_schema(self) -> dict[str, Any]:
        return {"augment": dict(AUGMENT_DEFAULTS),   # posecli.data.crops: scale, rotation, flip, colour
                "sigma": 2.0}                        # heatmap target Gaussian, heatmap pixels

    def objective_schema(self) -> dict[str, Any]:
        return dict(objective.DEFAULTS)

    def ranges(self) -> dict[str, Range]:
        return {"model.beta": (0, None, True), "model.width": (1, 4096, False),
                "model.deconv_channels": (1, 8192, False), "model.input_size": (32, 2048, False),
                "data.sigma": (0, 1000, True)}

    def build_model(self, model_cfg: dict[str, Any], *, for_weights: bool = False) -> nn.Module:
        """A model about to receive a checkpoint's weights skips the backbone's ImageNet
        initialisation, so the optional package that ships those weights is not needed."""
        return build_model({**model_cfg, "pretrained": None} if for_weights else model_cfg)

    def sample_frames(self, model: nn.Module, data_cfg: dict[str, Any]) -> int:
        return 1

    def build_loader(self, data_cfg: dict[str, Any], model: nn.Module, batch_size: int, seed: int, *,
                     rank: int = 0, world_size: int = 1, num_workers: int = 0) -> DataLoader:
        return build_image_dataloader(data_cfg, int(model.input_size), batch_size, seed, rank=rank,
                                      world_size=world_size, num_workers=num_workers)

    def build_objective(self, objective_cfg: dict[str, Any]) -> Objective:
        return objective.build_image_objective(objective_cfg)

    def validate(self, model: nn.Module, cache: PoseCache, sequences: list[int],
                 device: torch.device) -> tuple[str, float]:
        return validation_metric(model, cache, sequences, device)

    def default_protocols(self, has3d: bool) -> list[str]:
        return list(PROTOCOLS_3D if has3d else PROTOCOLS_2D)

    def check_predict_options(self, options: PredictOptions, source: str | Path) -> None:
        if options.input_noise:
            raise PoseCliError("--input-noise corrupts a lifter's 2D input; an image model reads pixels", source)

    def check_eval_cache(self, cache: PoseCache) -> None:
        if not cache.has_images:
            raise PoseCliError("cache has no image crops, which an image-family model needs: prepare it "
                               "with --images DIR", cache.path)

    def predict_cache(self, model: nn.Module, cache: PoseCache, sequences: Sequence[int],
                      options: PredictOptions) -> Predictions:
        """Each chosen frame's crop (with the flip test when options.flip), 2D mapped back to image
        pixels through the crop's affine; 3D only where the cache has 3D to score it against."""
        frames = sequence_frames(cache, sequences, options.every)
        out = predict_cache_frames(model, cache, frames, flip=options.flip, batch_size=options.batch_size,
                                   device=options.device, progress=counting(options.progress, len(frames)))
        pred3d = np.full((cache.num_frames, NUM_JOINTS, 3), np.nan, dtype=np.float32)
        pred2d = np.full((cache.num_frames, NUM_JOINTS, 2), np.nan, dtype=np.float32)
        pred3d[frames], pred2d[frames] = out["keypoints3d"], out["keypoints2d"]
        return Predictions(pred3d if cache.has3d else None, pred2d, {"flip": options.flip, "family": "image"})

    def predict_tracks(self, model: nn.Module, tracks: TrackInput, options: TrackOptions,
                       clock: Clock) -> TrackPoses:
        return predict_tracks(model, tracks, options, clock)

    def predict_people(self, model: nn.Module, keypoints2d: np.ndarray, confidence: np.ndarray,
                       options: TrackOptions) -> np.ndarray:
        raise PoseCliError("images are lifted with a 2D-to-3D lifter; --model image needs a video")

    def wrong_checkpoint(self, found: str) -> str:
        return ("--model image needs an image-family checkpoint (--checkpoint FILE from "
                "`posecli pretrain/finetune --preset ...-image-...`)")


FAMILY = ImageFamily()
