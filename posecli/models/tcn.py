"""VideoPose3D's dilated temporal convolution lifter (Pavllo et al., CVPR 2019), rebuilt from the paper.

An expanding 1D convolution over all joints of a frame, then blocks of (dilated conv of width w,
BN, ReLU, dropout, 1x1 conv, BN, ReLU, dropout) with a residual connection that slices the input
to the block's shrunken length. Dilations grow as the product of the previous widths, so widths
3,3,3 / 3,3,3,3 / 3,3,3,3,3 give receptive fields 27 / 81 / 243. Convolutions are 'valid': T input
frames give T - receptive_field + 1 outputs (T = receptive_field gives the centre frame).

Sizes set the channels: xs 128, s 256, m 512, l 1024 (the paper's). Parameters at 243 frames:
xs 0.29 M, s 1.11 M, m 4.33 M, l 17.04 M (the paper's 16.95 M plus the confidence input channel
and the 2D reconstruction head).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from posecli.geometry import UPRIGHT_TOLERANCE_DEG
from posecli.skeleton import NUM_JOINTS

CHANNELS: dict[str, int] = {"xs": 128, "s": 256, "m": 512, "l": 1024}


def filter_widths_for(window: int) -> tuple[int, ...]:
    """Widths of the paper's architectures: 1 frame -> (1, 1, 1), 3^k frames -> k widths of 3."""
    if window == 1:
        return (1, 1, 1)
    k = round(math.log(window, 3))
    if k < 1 or 3 ** k != window:
        raise ValueError(f"tcn window must be 1 or a power of 3 (27, 81, 243), got {window}")
    return (3,) * k


class TCN(nn.Module):
    """2D keypoint windows [B, T, 17, (x, y, conf)] -> 3D and reconstructed 2D for the centre frames."""

    family = "lifter"

    def __init__(self, filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3), channels: int = 1024,
                 dropout: float = 0.25, num_joints: int = NUM_JOINTS, upright_deg: float = UPRIGHT_TOLERANCE_DEG):
        super().__init__()
        self.num_joints = num_joints
        self.receptive_field = self.window = math.prod(filter_widths)
        self.upright_deg = float(upright_deg)      # input contract (posecli.models): not a weight
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv1d(num_joints * 3, channels, filter_widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.convs, self.bns, self.pads = nn.ModuleList(), nn.ModuleList(), []
        dilation = filter_widths[0]
        for width in filter_widths[1:]:
            self.pads.append((width - 1) * dilation // 2)
            self.convs.append(nn.Conv1d(channels, channels, width, dilation=dilation, bias=False))
            self.convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            dilation *= width
        self.head3d = nn.Conv1d(channels, num_joints * 3, 1)
        self.head2d = nn.Conv1d(channels, num_joints * 2, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t, j, _ = x.shape
        if t < self.receptive_field:
            raise ValueError(f"tcn needs at least {self.receptive_field} frames, got {t}")
        x = x * (x[..., 2:] > 0)
        h = self.drop(self.relu(self.expand_bn(self.expand(x.reshape(b, t, j * 3).transpose(1, 2)))))
        for i, pad in enumerate(self.pads):
            res = h[:, :, pad:h.shape[2] - pad]
            h = self.drop(self.relu(self.bns[2 * i](self.convs[2 * i](h))))
            h = res + self.drop(self.relu(self.bns[2 * i + 1](self.convs[2 * i + 1](h))))
        t_out = h.shape[2]
        pose3d = self.head3d(h).transpose(1, 2).reshape(b, t_out, j, 3)
        pose2d = self.head2d(h).transpose(1, 2).reshape(b, t_out, j, 2)
        return {"pose3d": pose3d - pose3d[:, :, :1], "pose2d": pose2d}


def build(cfg: dict) -> TCN:
    """Build from a complete `model:` section (posecli.models fills it): window picks the widths,
    size the channels; explicit filter_widths / channels override them."""
    given = cfg["filter_widths"]
    widths = tuple(given) if given is not None else filter_widths_for(int(cfg["window"]))
    channels = int(cfg["channels"] if cfg["channels"] is not None else CHANNELS[cfg["size"]])
    return TCN(widths, channels=channels, dropout=float(cfg["dropout"]), upright_deg=float(cfg["upright_deg"]))
