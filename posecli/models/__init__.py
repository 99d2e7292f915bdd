"""Model registry: a preset's `model:` section -> an nn.Module (one architecture per module, as timm).

Every lifter has `window` (frames per call), `receptive_field`, `upright_deg` (how far a window's
torso may lean before prediction turns it: part of the input contract, like window), `family = "lifter"` and
`forward(x[B, T, 17, 3]) -> {"pose3d": [B, T', 17, 3], "pose2d": [B, T', 17, 2]}`.
The image model (`name: image`, family = "image") instead maps crops [B, 3, H, W] to
{"heatmaps", "depthmaps"} (posecli.models.image_pose).

OPTIONS is the one table of each model's keys and defaults: a model family's `model:` schema is
built from it (posecli.families), and build_model fills what a section leaves out from it, so the
builders themselves have no defaults. None means "derived" (from size, window or the backbone).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from posecli.errors import PoseCliError
from posecli.geometry import UPRIGHT_TOLERANCE_DEG
from posecli.options import refuse_unknown

SIZES = ("xs", "s", "m", "l")
# keys every model takes: size picks the architecture, window the frames per call
COMMON: dict[str, Any] = {"size": "s", "window": 81, "dropout": 0.1}
# keys every lifter takes: prediction turns a window whose torso leans further than upright_deg from
# image up back to that angle (posecli.families.lifter.predict.turn_upright); training with
# augment.upright turns its windows the same way (posecli.data.windows)
LIFTER: dict[str, Any] = {"upright_deg": UPRIGHT_TOLERANCE_DEG}
# name -> (module, options besides `name` with their defaults)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "stformer": ("posecli.models.stformer", {**COMMON, **LIFTER, "dim": None, "depth": None, "heads": None,
                                             "mlp_ratio": None}),
    "tcn": ("posecli.models.tcn", {**COMMON, **LIFTER, "channels": None, "filter_widths": None}),
    "image": ("posecli.models.image_pose", {**COMMON, "window": 1, "backbone": None, "pretrained": None,
                                            "width": 64, "deconv_channels": 256, "input_size": 256,
                                            "decode": "argmax", "beta": 1.0, "flip_test": True}),
}


def model_options(names: Iterable[str]) -> dict[str, Any]:
    """The options of several models in one table (a family's `model:` schema); a key that two of
    them share must have one default."""
    out: dict[str, Any] = {}
    for name in names:
        for key, value in MODELS[name][1].items():
            if key in out and out[key] != value:
                raise ValueError(f"models disagree on the default of '{key}': {out[key]!r} vs {value!r}")
            out[key] = value
    return out


def complete_model_section(cfg: dict) -> dict[str, Any]:
    """A `model:` section with its unset (missing or None) keys taken from OPTIONS: what the model
    is, however old the config (a key added later gets the default older models were built with).
    Bad names, sizes or keys are user errors."""
    name = cfg.get("name")
    if name not in MODELS:
        raise PoseCliError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    options = MODELS[name][1]
    given = {k: v for k, v in cfg.items() if v is not None and k != "name"}
    refuse_unknown(given, sorted({"name", *options}), f"model '{name}' has no option")
    full = {"name": name, **options, **given}
    if full["size"] not in SIZES:
        raise PoseCliError(f"unknown model size '{full['size']}' (known: {', '.join(SIZES)})")
    return full


def build_model(cfg: dict) -> nn.Module:
    """Build the model a preset's `model:` section names (complete_model_section fills it)."""
    full = complete_model_section(cfg)
    name = full.pop("name")
    try:
        return importlib.import_module(MODELS[name][0]).build(full)
    except ValueError as exc:
        raise PoseCliError(f"model '{name}': {exc}") from None


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block, its previous training mode restored afterwards
    (validation in the middle of training, prediction with a model the caller may be training)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
