"""The model-family interface: everything the trainer, eval, infer and config need from a family.

A family is a kind of model with its own inputs and targets (a lifter reads 2D keypoints, the
image family reads pixels). Each one lives in its own folder (posecli/families/NAME/) and
implements this class; the layers above call these methods and never ask which family they hold,
so a new family is a new folder plus one line in posecli.families.FAMILIES.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from posecli.data.cache import PoseCache
from posecli.families.tracks import Clock, TrackInput, TrackOptions, TrackPoses
from posecli.models import build_model, model_options

Objective = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
Range = tuple[float | None, float | None, bool]
MAX_INPUT_NOISE = 10.0     # eval's --input-noise at most this many times the training detector model


@dataclass(frozen=True)
class PredictOptions:
    """How `posecli eval` asks a family to predict a cache (each family uses what applies to it)."""

    flip: bool = False
    upright: bool = True                  # lifters: turn leaning windows upright (predict.turn_upright)
    stride: int | None = None             # lifters: frames between windows
    batch_size: int = 64
    device: str | torch.device = "cpu"
    every: int = 1                        # score every k-th frame of each sequence
    input_noise: float = 0.0              # lifters: detector-like corruption of the 2D input
    progress: Callable[[int, int], None] | None = None   # (frames done, frames in all)


def counting(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None]:
    """A per-chunk callback step(n) that reports the running count to progress(done, total)."""
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    return step


@dataclass
class Predictions:
    """A family's predictions for every cache frame (NaN where it predicted nothing)."""

    keypoints3d: np.ndarray | None        # [N, 17, 3] root-relative metres
    keypoints2d: np.ndarray | None = None  # [N, 17, 2] image pixels (families that predict 2D)
    source: dict[str, Any] = field(default_factory=dict)   # what the report's `source` adds


class Family(ABC):
    """One model family. `models` are its posecli.models names, the first one the default."""

    name: str
    models: tuple[str, ...]
    higher_is_better: frozenset[str] = frozenset()   # validation metrics where higher wins

    # ------------------------------------------------------------- config
    def schema(self) -> dict[str, Any]:
        """The family's sections of the preset schema: `model:` (its models' options), the
        family's own `data:` keys and its `objective:`; posecli.config adds the shared keys."""
        return {"model": {"name": self.models[0], **model_options(self.models)},
                "data": self.data_schema(), "objective": self.objective_schema()}

    @abstractmethod
    def data_schema(self) -> dict[str, Any]:
        """The `data:` keys only this family has (augmentation, targets), with defaults."""

    @abstractmethod
    def objective_schema(self) -> dict[str, Any]:
        """The `objective:` section with its defaults."""

    def ranges(self) -> dict[str, Range]:
        """Ranges of the family's numeric keys (posecli.config.RANGES' format)."""
        return {}

    # ------------------------------------------------------------- training
    def build_model(self, model_cfg: dict[str, Any], *, for_weights: bool = False) -> nn.Module:
        """The model a `model:` section describes; `for_weights` when a checkpoint's weights
        replace every tensor next (so no pretrained initialisation is needed)."""
        return build_model(model_cfg)

    @abstractmethod
    def sample_frames(self, model: nn.Module, data_cfg: dict[str, Any]) -> int:
        """Frames in one training sample (the unit of the trainer's frames/s)."""

    @abstractmethod
    def build_loader(self, data_cfg: dict[str, Any], model: nn.Module, batch_size: int, seed: int, *,
                     rank: int = 0, world_size: int = 1, num_workers: int = 0) -> DataLoader:
        """The training DataLoader of one rank."""

    @abstractmethod
    def build_objective(self, objective_cfg: dict[str, Any]) -> Objective:
        """objective(model, batch) -> (loss, logs)."""

    def check_training_data(self, objective_cfg: dict[str, Any], loader: DataLoader) -> None:
        """Refuse, before training, an objective that the training caches cannot drive."""

    @abstractmethod
    def validate(self, model: nn.Module, cache: PoseCache, sequences: list[int],
                 device: torch.device) -> tuple[str, float]:
        """(metric name, value) of an eval-mode model on the chosen validation sequences."""

    # ------------------------------------------------------------- evaluation
    @abstractmethod
    def default_protocols(self, has3d: bool) -> list[str]:
        """What `posecli eval` scores when --protocols is not given."""

    def check_predict_options(self, options: PredictOptions, source: str | Path) -> None:
        """Refuse eval options that mean nothing for this family (`source`: the checkpoint)."""

    @abstractmethod
    def check_eval_cache(self, cache: PoseCache) -> None:
        """Refuse a cache this family cannot be evaluated on, before any prediction."""

    @abstractmethod
    def predict_cache(self, model: nn.Module, cache: PoseCache, sequences: Sequence[int],
                      options: PredictOptions) -> Predictions:
        """Predict the selected sequences of a cache for `posecli eval`."""

    # ------------------------------------------------------------- inference
    @abstractmethod
    def predict_tracks(self, model: nn.Module, tracks: TrackInput, options: TrackOptions,
                       clock: Clock) -> TrackPoses:
        """`posecli infer` on a video: 2D and root-relative 3D of every tracked person
        (posecli.families.tracks: bridge gaps, smooth each run, predict, smooth the 3D)."""

    @abstractmethod
    def predict_people(self, model: nn.Module, keypoints2d: np.ndarray, confidence: np.ndarray,
                       options: TrackOptions) -> np.ndarray:
        """`posecli infer` on photos: root-relative 3D [N, 17, 3] of N unrelated detected people."""

    def wrong_checkpoint(self, found: str) -> str:
        """What infer says when asked for this family (--model NAME) but given a `found` one."""
        return f"checkpoint holds a '{found}' model; --model {self.name} needs a {self.name}-family checkpoint"
