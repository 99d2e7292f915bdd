"""The image family: person crop -> 17 joint heatmaps + 17 depth maps (Zhou et al., ICCV 2017, on a
SimpleBaseline head, Xiao et al., ECCV 2018).

A backbone (ResNet-18/34/50 or EfficientNet-Lite0) gives stride-32 features; three 4x4 stride-2
deconvolutions bring them to stride 4 (64x64 maps for a 256x256 crop) and a 1x1 convolution
predicts J heatmaps and J depth maps. The model takes RGB crops scaled to [0, 1] and normalises
them itself (per-backbone mean/std buffers), so training, eval and infer cannot disagree on it.

Depth unit: root-relative depth in heatmap pixels divided by heatmap_size / 2, i.e. the camera
z offset scaled like the 2D (Zhou et al.: scale = sum of 2D bone lengths / sum of 3D x-y bone
lengths); `pose_from_prediction` turns (uv, depth) back into a root-relative 3D pose in heatmap
pixels, which eval rescales to the ground truth's bone lengths (scale-normalised MPJPE) or infer to
a known skeleton size.

`model:` keys: backbone (resnet18|resnet34|resnet50|efficientnet_lite0; default from size:
xs=efficientnet_lite0, s=resnet18, m=resnet34, l=resnet50), pretrained (none|imagenet|path to a
state dict), width (ResNet base channels, 64 = standard), deconv_channels (256), input_size (256),
decode (argmax|soft_argmax), beta (soft_argmax sharpness), flip_test (bool).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from posecli.errors import PoseCliError
from posecli.models import heatmaps as hm
from posecli.models.efficientnet_lite import (
    LOAD_ERRORS,
    EfficientNetLite0,
    load_imagenet_weights,
)
from posecli.models.efficientnet_lite import PIXEL_MEAN as LITE_MEAN
from posecli.models.efficientnet_lite import PIXEL_STD as LITE_STD
from posecli.models.resnet import DEPTHS, ResNet
from posecli.skeleton import H36M_FLIP_PERM, NUM_JOINTS

BACKBONES = (*DEPTHS, "efficientnet_lite0")
SIZE_BACKBONE = {"xs": "efficientnet_lite0", "s": "resnet18", "m": "resnet34", "l": "resnet50"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
STRIDE = 4   # backbone stride 32, three x2 deconvolutions


def build_backbone(name: str, pretrained: str | None, width: int = 64) -> tuple[nn.Module, tuple, tuple]:
    """Backbone module plus the pixel mean/std its weights expect."""
    if name == "efficientnet_lite0":
        net = EfficientNetLite0()
        if pretrained:
            load_imagenet_weights(net, None if pretrained == "imagenet" else pretrained)
        return net, LITE_MEAN, LITE_STD
    if name not in DEPTHS:
        raise ValueError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    net = ResNet(name, width)
    if pretrained == "imagenet":
        raise PoseCliError(f"no ImageNet weights ship for {name}: give model.pretrained a torchvision "
                           "state dict file, or use backbone efficientnet_lite0")
    if pretrained:
        _load_torchvision_resnet(net, Path(pretrained))
    return net, IMAGENET_MEAN, IMAGENET_STD


def _load_torchvision_resnet(net: ResNet, path: Path) -> None:
    """Load a torchvision-layout ResNet state dict (weights_only); only the classifier may be left over."""
    if not path.is_file():
        raise PoseCliError("backbone weights file not found", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        raise PoseCliError(f"cannot load weights safely ({exc.__class__.__name__})", path) from None
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise PoseCliError(f"not a matching ResNet state dict ({len(missing)} missing, "
                           f"{len(unexpected)} unexpected tensors, e.g. '{first}')", path)


class ImagePoseModel(nn.Module):
    """forward(images [B, 3, H, W] in [0, 1]) -> {"heatmaps": [B, J, H/4, W/4], "depthmaps": same}."""

    family = "image"
    window = 1
    receptive_field = 1

    def __init__(self, backbone: str = "resnet18", *, pretrained: str | None = None, width: int = 64,
                 deconv_channels: int = 256, input_size: int = 256, decode: str = "argmax",
                 beta: float = 1.0, flip_test: bool = True, num_joints: int = NUM_JOINTS):
        super().__init__()
        if decode not in hm.DECODERS:
            raise ValueError(f"unknown decode '{decode}' (known: {', '.join(hm.DECODERS)})")
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.backbone, mean, std = build_backbone(backbone, pretrained, width)
        self.backbone_name, self.num_joints = backbone, num_joints
        self.input_size, self.heatmap_size, self.stride = input_size, input_size // STRIDE, STRIDE
        self.decode_method, self.beta, self.flip_test = decode, float(beta), bool(flip_test)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        layers, cin = [], self.backbone.out_channels
        for _ in range(3):
            layers += [nn.ConvTranspose2d(cin, deconv_channels, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
            cin = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, 2 * num_joints, 1)
        for m in self.deconv:
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)
        self.register_buffer("flip_perm", torch.as_tensor(H36M_FLIP_PERM[:num_joints]), persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.pixel_mean) / self.pixel_std
        out = self.final(self.deconv(self.backbone(x)))
        return {"heatmaps": out[:, :self.num_joints], "depthmaps": out[:, self.num_joints:]}

    def mirror(self, maps: torch.Tensor) -> torch.Tensor:
        """Maps of the mirrored image -> maps of the original: flip width, swap left/right joints."""
        return maps.flip(-1)[:, self.flip_perm]

    def forward_tta(self, images: torch.Tensor, flip: bool | None = None) -> dict[str, torch.Tensor]:
        """forward, averaged with the mirrored image's output when flip (default: self.flip_test)."""
        out = self(images)
        if not (self.flip_test if flip is None else flip):
            return out
        mirrored = self(images.flip(-1))
        return {k: 0.5 * (v + self.mirror(mirrored[k])) for k, v in out.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, flip: bool | None = None) -> dict[str, torch.Tensor]:
        """Decoded joints: "uv" [B, J, 2] crop pixels, "score" [B, J], "depth" [B, J] (depth unit above)."""
        out = self.forward_tta(images, flip)
        dec = hm.decode(out["heatmaps"], out["depthmaps"], self.decode_method, self.beta)
        dec["uv"] = hm.heatmap_to_crop(dec["uv"], self.stride)
        return dec


def pose_from_prediction(uv_heatmap: torch.Tensor, depth: torch.Tensor, heatmap_size: int) -> torch.Tensor:
    """Root-relative 3D pose [..., J, 3] in heatmap pixels from heatmap positions and depths (joint 0 = 0)."""
    xy = uv_heatmap - uv_heatmap[..., :1, :]
    z = depth * (heatmap_size / 2)
    z = z - z[..., :1]
    return torch.cat([xy, z[..., None]], dim=-1)


def build(cfg: dict) -> ImagePoseModel:
    """The registry's entry point: a complete `model:` section (posecli.models.build_model validated
    and filled it)."""
    if int(cfg["window"]) != 1:
        raise ValueError("the image family sees one crop per call: model.window must be 1")
    pretrained = cfg["pretrained"]
    return ImagePoseModel(
        backbone=cfg["backbone"] or SIZE_BACKBONE[cfg["size"]],
        pretrained=None if pretrained in (None, "", "none", False) else str(pretrained),
        width=int(cfg["width"]), deconv_channels=int(cfg["deconv_channels"]),
        input_size=int(cfg["input_size"]), decode=cfg["decode"],
        beta=float(cfg["beta"]), flip_test=bool(cfg["flip_test"]),
    )
