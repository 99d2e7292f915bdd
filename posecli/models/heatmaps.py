"""Joint heatmaps: rendering training targets and decoding predictions back to coordinates.

Coordinate convention (shared with posecli.data.crops): integer coordinates are pixel *centres*,
in the crop and in the heatmap alike. A heatmap `stride` times smaller than its crop therefore
maps crop x to heatmap u = (x + 0.5) / stride - 0.5, which keeps a horizontal flip of the crop
exactly a flip of the heatmap (no one-pixel shift at flip-test time).

Two decoders, chosen by the preset (`model.decode`):
- "argmax": the peak, refined to sub-pixel by a parabola fit on the log of the 3x3 neighbourhood
  (exact for a Gaussian peak, so render -> decode round-trips);
- "soft_argmax": integral regression (Sun et al., ECCV 2018), the expected position under the
  softmax of the map; differentiable, so a loss can act on the coordinates.
Depth per joint is read from the depth map at the decoded position (bilinear) or, for
soft_argmax, as the same softmax-weighted average.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DECODERS = ("argmax", "soft_argmax")
_EPS = 1e-10


def crop_to_heatmap(xy: np.ndarray | torch.Tensor, stride: float) -> np.ndarray | torch.Tensor:
    """Crop pixel coordinates -> heatmap pixel coordinates (pixel-centre convention)."""
    return (xy + 0.5) / stride - 0.5


def heatmap_to_crop(uv: np.ndarray | torch.Tensor, stride: float) -> np.ndarray | torch.Tensor:
    """Inverse of crop_to_heatmap."""
    return (uv + 0.5) * stride - 0.5


def render_heatmaps(uv: np.ndarray, conf: np.ndarray, size: tuple[int, int], sigma: float = 2.0) -> np.ndarray:
    """Unnormalised Gaussians (peak 1) at sub-pixel heatmap positions uv [J, 2]; joints with
    confidence 0 or a peak more than 3 sigma outside the map get an all-zero map.

    Returns float32 [J, H, W] for size = (H, W).
    """
    h, w = size
    uv = np.asarray(uv, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    gx = np.exp(-((xs[None, :] - uv[:, :1]) ** 2) / (2 * sigma**2))       # [J, W]
    gy = np.exp(-((ys[None, :] - uv[:, 1:2]) ** 2) / (2 * sigma**2))      # [J, H]
    maps = gy[:, :, None] * gx[:, None, :]
    inside = ((uv[:, 0] > -3 * sigma) & (uv[:, 0] < w - 1 + 3 * sigma)
              & (uv[:, 1] > -3 * sigma) & (uv[:, 1] < h - 1 + 3 * sigma))
    keep = (np.asarray(conf) > 0) & inside
    return (maps * keep[:, None, None]).astype(np.float32)


def _parabola_offset(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Vertex of the parabola through log values at -1, 0, +1 (within [-0.5, 0.5])."""
    a, b, c = (torch.log(v.clamp_min(_EPS)) for v in (left, centre, right))
    denom = a - 2 * b + c
    offset = torch.where(denom < -1e-12, 0.5 * (a - c) / denom.clamp_max(-1e-12), torch.zeros_like(b))
    return offset.clamp(-0.5, 0.5)


def argmax_decode(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak positions [B, J, 2] (heatmap pixels, sub-pixel) and peak values [B, J] of [B, J, H, W]."""
    b, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, j, -1)
    score, index = flat.max(dim=-1)
    x, y = index % w, torch.div(index, w, rounding_mode="floor")
    maps = heatmaps.reshape(b * j, h, w)
    rows = torch.arange(b * j, device=heatmaps.device)
    xf, yf = x.reshape(-1), y.reshape(-1)

    def at(dx: int, dy: int) -> torch.Tensor:
        return maps[rows, (yf + dy).clamp(0, h - 1), (xf + dx).clamp(0, w - 1)]

    centre = at(0, 0)
    dx = _parabola_offset(at(-1, 0), centre, at(1, 0))
    dy = _parabola_offset(at(0, -1), centre, at(0, 1))
    # No refinement against the border: the missing neighbour is not a sample of the peak.
    dx = torch.where((xf > 0) & (xf < w - 1), dx, torch.zeros_like(dx))
    dy = torch.where((yf > 0) & (yf < h - 1), dy, torch.zeros_like(dy))
    coords = torch.stack([xf.to(heatmaps.dtype) + dx, yf.to(heatmaps.dtype) + dy], dim=-1)
    return coords.reshape(b, j, 2), score


def soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected positions [B, J, 2] under softmax(beta * map) and the weights [B, J, H, W]."""
    b, j, h, w = heatmaps.shape
    weights = torch.softmax(beta * heatmaps.reshape(b, j, -1).float(), dim=-1).reshape(b, j, h, w)
    xs = torch.arange(w, device=heatmaps.device, dtype=weights.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=weights.dtype)
    x = (weights.sum(dim=2) * xs).sum(dim=-1)
    y = (weights.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1), weights


def sample_maps(maps: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear value of each joint's map [B, J, H, W] at its own position uv [B, J, 2] -> [B, J]."""
    b, j, h, w = maps.shape
    grid = torch.stack([(uv[..., 0] + 0.5) / w * 2 - 1, (uv[..., 1] + 0.5) / h * 2 - 1], dim=-1)
    out = F.grid_sample(maps.reshape(b * j, 1, h, w), grid.reshape(b * j, 1, 1, 2).to(maps.dtype),
                        mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(b, j)


def decode(heatmaps: torch.Tensor, depthmaps: torch.Tensor | None = None, method: str = "argmax",
           beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Joint positions from heatmaps (and depths from depth maps).

    Returns {"uv": [B, J, 2] heatmap pixels, "score": [B, J], "depth": [B, J] (if depthmaps)}.
    The score is the peak value (argmax) or the peak softmax weight (soft_argmax).
    """
    if method == "argmax":
        uv, score = argmax_decode(heatmaps)
        depth = None if depthmaps is None else sample_maps(depthmaps, uv)
    elif method == "soft_argmax":
        uv, weights = soft_argmax(heatmaps, beta)
        score = weights.flatten(2).max(dim=-1).values
        depth = None if depthmaps is None else (weights * depthmaps.float()).flatten(2).sum(dim=-1)
    else:
        raise ValueError(f"unknown decode method '{method}' (known: {', '.join(DECODERS)})")
    out = {"uv": uv, "score": score}
    if depth is not None:
        out["depth"] = depth
    return out
