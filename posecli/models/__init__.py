"""Model registry: a preset's `model:` section -> an nn.Module.

Every lifter has `window` (frames per call), `receptive_field`, `family = "lifter"` and
`forward(x[B, T, 17, 3]) -> {"pose3d": [B, T', 17, 3], "pose2d": [B, T', 17, 2]}`.
The image family (`name: image`, family = "image") instead maps crops [B, 3, H, W] to
{"heatmaps", "depthmaps"} (posecli.models.image_pose).
"""

from __future__ import annotations

import importlib

from torch import nn

from posecli.errors import PoseCliError

# name -> (module, extra keys its `model:` section accepts besides the common ones)
MODELS: dict[str, tuple[str, frozenset[str]]] = {
    "stformer": ("posecli.models.stformer", frozenset({"dim", "depth", "heads", "mlp_ratio"})),
    "tcn": ("posecli.models.tcn", frozenset({"channels", "filter_widths"})),
    "image": ("posecli.models.image_pose", frozenset({"backbone", "pretrained", "width", "deconv_channels",
                                                      "input_size", "decode", "beta", "flip_test"})),
}
COMMON_KEYS = frozenset({"name", "size", "window", "dropout"})
SIZES = ("xs", "s", "m", "l")


def build_model(cfg: dict) -> nn.Module:
    """Build the model a preset's `model:` section names; bad names, sizes or keys are user errors."""
    name = cfg.get("name", "stformer")
    if name not in MODELS:
        raise PoseCliError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    module_name, extra = MODELS[name]
    unknown = sorted(set(cfg) - COMMON_KEYS - extra)
    if unknown:
        raise PoseCliError(f"model '{name}' has no option '{unknown[0]}' "
                           f"(known: {', '.join(sorted(COMMON_KEYS | extra))})")
    if cfg.get("size", "s") not in SIZES:
        raise PoseCliError(f"unknown model size '{cfg['size']}' (known: {', '.join(SIZES)})")
    try:
        return importlib.import_module(module_name).build(cfg)
    except ValueError as exc:
        raise PoseCliError(f"model '{name}': {exc}") from None


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
