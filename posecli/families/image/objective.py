"""Training objective of the image family (Zhou et al., ICCV 2017, "Towards 3D Human Pose
Estimation in the Wild"): one weighted sum serves 2D pretraining and mixed 2D/3D fine-tuning.

Terms (the preset's `objective:` section; weight 0 = off):
- heatmap: MSE between predicted and Gaussian target heatmaps over labelled joints (SimpleBaseline).
- coord:   L1 between soft-argmax joint positions and the labels (integral regression, for
           `decode: soft_argmax` models).
- depth:   L2 on per-joint depth for samples with 3D; the target is the root-relative camera z
           scaled like the 2D (sum of 2D bone lengths / sum of 3D x-y bone lengths), in units of
           half the heatmap side, the depth unit of posecli.models.image_pose.
- varloss: the bone-length ratio loss for samples with 2D only: within each group of bones
           (legs, arms, hips, shoulders) the lengths of the 3D pose (labelled 2D + predicted
           depth), each times its mean-length ratio, should be equal; the loss is their variance.
Depth is read from the depth maps at the labelled 2D position (decode: argmax) or as the softmax
average (decode: soft_argmax). Batches come from posecli.families.image.windows.
"""

from __future__ import annotations

import torch
from torch import nn

from posecli.errors import PoseCliError
from posecli.families.losses import weighted_mean
from posecli.geometry import bone_mask, bone_vectors
from posecli.options import refuse_unknown
from posecli.models.heatmaps import DECODERS, sample_maps, soft_argmax

DEFAULTS: dict[str, float | str] = {"heatmap": 1.0, "coord": 0.0, "depth": 0.0, "varloss": 0.0,
                                    "decode": "argmax", "beta": 1.0}
TERMS = ("heatmap", "coord", "depth", "varloss")

# VarLoss groups in H36M-17 order, with Zhou et al.'s weights (Human3.6M mean length ratios:
# shin/thigh 1.0086, forearm/upper arm 1.1375 as in their reference implementation), so that the
# weighted lengths within a group are equal on an average body.
VAR_GROUPS: tuple[tuple[tuple[tuple[int, int], ...], tuple[float, ...]], ...] = (
    (((3, 2), (2, 1), (4, 5), (5, 6)), (1.0085885098415446, 1.0, 1.0, 1.0085885098415446)),
    (((16, 15), (15, 14), (11, 12), (12, 13)), (1.1375361376887123, 1.0, 1.0, 1.1375361376887123)),
    (((1, 0), (4, 0)), (1.0, 1.0)),
    (((14, 8), (11, 8)), (1.0, 1.0)),
)


def depth_target(target2d: torch.Tensor, target3d: torch.Tensor, conf: torch.Tensor, heatmap_size: int
                 ) -> torch.Tensor:
    """Per-joint depth targets [B, J]: root-relative z times (2D bone length sum / 3D x-y bone
    length sum) over bones with both joints labelled, divided by heatmap_size / 2."""
    valid = bone_mask(conf > 0)
    len2d = (bone_vectors(target2d).norm(dim=-1) * valid).sum(dim=1)
    len3d = (bone_vectors(target3d[..., :2]).norm(dim=-1) * valid).sum(dim=1)
    scale = len2d / len3d.clamp_min(1e-8)
    return target3d[..., 2] * (scale / (heatmap_size / 2))[:, None]


def var_loss(xyz: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Zhou et al.'s bone-length variance per sample [B] for poses [B, J, 3] (labelled bones only)."""
    total = xyz.new_zeros(xyz.shape[0])
    for bones, weights in VAR_GROUPS:
        w = torch.tensor(weights, device=xyz.device, dtype=xyz.dtype)
        valid = bone_mask(conf > 0, bones).to(xyz.dtype)
        length = bone_vectors(xyz, bones).norm(dim=-1) * w
        num = valid.sum(dim=1)
        mean = (length * valid).sum(dim=1) / num.clamp_min(1.0)
        total = total + (valid * (length - mean[:, None]) ** 2).sum(dim=1) / 2 / num.clamp_min(1.0)
    return total


class ImageObjective:
    """Weighted sum of the terms above; __call__(model, batch) -> (loss, logs) like lifter objectives."""

    def __init__(self, cfg: dict | None = None):
        cfg = cfg or {}
        refuse_unknown(cfg, DEFAULTS, "unknown objective option")
        merged = {**DEFAULTS, **cfg}
        if merged["decode"] not in DECODERS:
            raise PoseCliError(f"objective.decode must be one of {', '.join(DECODERS)}, got '{merged['decode']}'")
        self.weights = {t: float(merged[t]) for t in TERMS}
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise PoseCliError(f"image objective weights must be >= 0 and not all 0, got {self.weights}")
        self.decode, self.beta = str(merged["decode"]), float(merged["beta"])

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["image"])
        return self.loss(out, batch)

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss of model outputs {"heatmaps", "depthmaps"} against a batch."""
        heat, depthmaps = out["heatmaps"].float(), out["depthmaps"].float()
        conf, target2d = batch["conf"], batch["target2d"]
        visible = (conf > 0).to(heat.dtype)
        size = heat.shape[-1]
        terms: dict[str, torch.Tensor] = {}
        if self.weights["heatmap"]:
            per_joint = ((heat - batch["heatmap_target"]) ** 2).mean(dim=(2, 3))
            terms["heatmap"] = weighted_mean(per_joint, visible)
        weights_map = None
        if self.weights["coord"] or self.decode == "soft_argmax":
            uv, weights_map = soft_argmax(heat, self.beta)
            if self.weights["coord"]:
                terms["coord"] = weighted_mean((uv - target2d).abs().sum(dim=-1), visible)
        if self.weights["depth"] or self.weights["varloss"]:
            if self.decode == "soft_argmax":
                depth = (weights_map * depthmaps).flatten(2).sum(dim=-1)
            else:
                depth = sample_maps(depthmaps, target2d)
            has3d = batch["has3d"].to(heat.dtype)
            if self.weights["depth"]:
                target = depth_target(target2d, batch["target3d"], conf, size)
                terms["depth"] = weighted_mean((depth - target) ** 2, visible * has3d[:, None])
            if self.weights["varloss"]:
                xyz = torch.cat([target2d / (size / 2), depth[..., None]], dim=-1)
                terms["varloss"] = (var_loss(xyz, conf) * (1 - has3d)).sum() / heat.shape[0]
        loss = sum(self.weights[k] * v for k, v in terms.items())
        logs = {k: float(v.detach()) for k, v in terms.items()}
        logs["loss"] = float(loss.detach())
        return loss, logs


def build_image_objective(cfg: dict | None) -> ImageObjective:
    return ImageObjective(cfg)
