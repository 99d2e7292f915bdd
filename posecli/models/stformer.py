"""STFormer: a compact spatio-temporal transformer lifter (MotionBERT / MotionAGFormer family).

Each block attends over the 17 joints of a frame, then over the frames of a joint, then applies an
MLP (all pre-norm). Alternating the two axes costs O(T*J^2 + J*T^2) instead of O((T*J)^2), so one
model serves photos (T=1) and 243-frame video. Missing joints (confidence 0) have their input zeroed
and are masked as keys in spatial attention, so their coordinates can never leak into the output.

Sizes (parameters at window 243): xs 64/4 = 0.22 M, s 128/5 = 1.03 M, m 256/6 = 4.81 M,
l 512/8 = 25.4 M (dim / depth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posecli.geometry import UPRIGHT_TOLERANCE_DEG
from posecli.skeleton import NUM_JOINTS

SIZES: dict[str, dict[str, int]] = {
    "xs": {"dim": 64, "depth": 4, "heads": 4},
    "s": {"dim": 128, "depth": 5, "heads": 4},
    "m": {"dim": 256, "depth": 6, "heads": 8},
    "l": {"dim": 512, "depth": 8, "heads": 8},
}
MAX_WINDOW = 243


class Attention(nn.Module):
    """Multi-head self-attention over the second axis of [N, L, C], with an optional key mask."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class Block(nn.Module):
    """Spatial attention (per frame) + temporal attention (per joint) + MLP, each pre-norm residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm_s, self.norm_t, self.norm_m = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.spatial = Attention(dim, heads, dropout)
        self.temporal = Attention(dim, heads, dropout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, h: torch.Tensor, joint_mask: torch.Tensor) -> torch.Tensor:
        b, t, j, c = h.shape
        s = self.spatial(self.norm_s(h).reshape(b * t, j, c), joint_mask.reshape(b * t, j))
        h = h + s.view(b, t, j, c)
        tt = self.temporal(self.norm_t(h).transpose(1, 2).reshape(b * j, t, c))
        h = h + tt.view(b, j, t, c).transpose(1, 2)
        return h + self.mlp(self.norm_m(h))


class STFormer(nn.Module):
    """2D keypoint windows [B, T, 17, (x, y, conf)] -> root-relative 3D and reconstructed 2D."""

    family = "lifter"
    frame_axes = {"frame_pos": 1}   # per-frame tensors: fine-tuning at another window resamples them

    def __init__(self, window: int = 243, dim: int = 128, depth: int = 5, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.0, num_joints: int = NUM_JOINTS,
                 upright_deg: float = UPRIGHT_TOLERANCE_DEG):
        super().__init__()
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"stformer window must be in [1, {MAX_WINDOW}], got {window}")
        if dim % heads:
            raise ValueError(f"stformer dim {dim} is not divisible by heads {heads}")
        self.window = self.receptive_field = window
        self.upright_deg = float(upright_deg)      # input contract (posecli.models): not a weight
        self.embed = nn.Linear(3, dim)
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, num_joints, dim))
        self.frame_pos = nn.Parameter(torch.zeros(1, window, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head3d = nn.Linear(dim, 3)
        self.head2d = nn.Linear(dim, 2)
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.frame_pos, std=0.02)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        t = x.shape[1]
        if t > self.window:
            raise ValueError(f"stformer got {t} frames but its window is {self.window}")
        visible = x[..., 2] > 0
        # A frame with every joint missing may attend to all (zeroed) joints, so softmax is never empty.
        joint_mask = visible | ~visible.any(dim=-1, keepdim=True)
        h = self.embed(x * visible[..., None]) + self.joint_pos + self.frame_pos[:, :t]
        for block in self.blocks:
            h = block(h, joint_mask)
        h = self.norm(h)
        pose3d = self.head3d(h)
        return {"pose3d": pose3d - pose3d[:, :, :1], "pose2d": self.head2d(h)}


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


def build(cfg: dict) -> STFormer:
    """Build from a complete `model:` section (posecli.models fills it): size picks dim/depth/heads,
    explicit keys override."""
    params = dict(SIZES[cfg["size"]])
    for key in ("dim", "depth", "heads", "mlp_ratio"):
        if cfg[key] is not None:
            params[key] = cfg[key]
    return STFormer(window=int(cfg["window"]), dropout=float(cfg["dropout"]), upright_deg=float(cfg["upright_deg"]),
                    **params)
