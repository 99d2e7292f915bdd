"""Training objectives: one weighted sum of terms serves 2D pretraining and 3D fine-tuning.

Terms (weights from the preset's `objective:` section, 0 = off):
- masked:   hide joints/frames of the input, reconstruct the clean 2D with the pose2d head.
- lifting:  self-supervised lifting from 2D alone (geometric self-supervision in the style of
            Chen et al., CVPR 2019): reproject the lifted 3D with a closed-form scaled-orthographic
            fit, re-view it from a random rotation about the vertical, lift that view again and ask
            for the rotated pose back (and for its inverse rotation to reproject onto the input),
            plus left/right bone-length symmetry.
- mpjpe, velocity, bone: 3D supervision on samples with has3d.
- mpjpe2d:  2D supervision through the pose2d head (for mixed 2D/3D batches).
Every term ignores joints with confidence 0; 3D terms ignore samples without 3D. Models may return
fewer frames than they get (valid convolutions); targets are cropped to the centre frames.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from posecli.data.normalize import MIN_SCALE
from posecli.errors import PoseCliError
from posecli.families.losses import weighted_mean
from posecli.geometry import bone_mask, bone_vectors
from posecli.skeleton import H36M_BONES, H36M_FLIP_PERM

DEFAULTS: dict[str, float] = {
    "masked": 0.0, "mask_joints": 0.15, "mask_frames": 0.1,
    "lifting": 0.0, "lifting_cycle": 1.0, "lifting_symmetry": 1.0, "lifting_max_elev_deg": 10.0,
    "mpjpe": 0.0, "velocity": 0.0, "bone": 0.0, "mpjpe2d": 0.0,
}
TERMS = ("masked", "lifting", "mpjpe", "velocity", "bone", "mpjpe2d")


def _symmetric_bones() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(left bone, right bone) pairs: a bone and its mirror image under the flip permutation."""
    bones, pairs = set(H36M_BONES), []
    for a, b in H36M_BONES:
        mirror = (int(H36M_FLIP_PERM[a]), int(H36M_FLIP_PERM[b]))
        if mirror != (a, b) and mirror in bones and (mirror, (a, b)) not in pairs:
            pairs.append(((a, b), mirror))
    return pairs


SYMMETRIC_BONES = _symmetric_bones()


def crop_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Centre `frames` frames of [B, T, ...] (what a valid-convolution model predicts)."""
    offset = (x.shape[1] - frames) // 2
    return x[:, offset:offset + frames]


def normalize_window_torch(kp2d: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Batched, differentiable twin of posecli.data.normalize.normalize_window: [B,T,J,2] -> same."""
    v = valid[..., None]
    big = torch.finfo(kp2d.dtype).max / 4
    lo = torch.where(v, kp2d, big).amin(dim=2)
    hi = torch.where(v, kp2d, -big).amax(dim=2)
    frames = valid.any(dim=2)                                               # [B, T]
    count = frames.sum(dim=1)                                               # [B]
    centre = (((lo + hi) / 2) * frames[..., None]).sum(dim=1) / count.clamp_min(1)[:, None]
    side = torch.where(frames, (hi - lo).amax(dim=-1), torch.inf).sort(dim=1).values
    k = count.clamp_min(1)[:, None]
    median = (side.gather(1, (k - 1) // 2) + side.gather(1, k // 2)) / 2
    scale = torch.where(count[:, None] > 0, (median / 2).clamp_min(MIN_SCALE), 1.0)
    centre = torch.where(count[:, None] > 0, centre, 0.0)
    out = (kp2d - centre[:, None, None]) / scale[:, None, None]
    return torch.where(v, out, 0.0)


def fit_scaled_orthographic(p2: torch.Tensor, u: torch.Tensor, w: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form least squares scale s and translation t with s*p2 + t ~ u per frame (weights w)."""
    wsum = w.sum(dim=2, keepdim=True).clamp_min(1.0)[..., None]
    wv = w[..., None]
    p_mean = (p2 * wv).sum(dim=2, keepdim=True) / wsum
    u_mean = (u * wv).sum(dim=2, keepdim=True) / wsum
    pc, uc = p2 - p_mean, u - u_mean
    s = (wv * pc * uc).sum(dim=(2, 3), keepdim=True) / ((wv * pc * pc).sum(dim=(2, 3), keepdim=True) + 1e-6)
    return s, u_mean - s * p_mean


def random_rotations(n: int, max_elev_deg: float, device: torch.device) -> torch.Tensor:
    """[n, 3, 3] camera-frame rotations: uniform yaw about the vertical (y), then a tilt about x."""
    yaw = (torch.rand(n) * 2 - 1) * math.pi
    elev = (torch.rand(n) * 2 - 1) * math.radians(max_elev_deg)
    one, zero = torch.ones(n), torch.zeros(n)
    ry = torch.stack([yaw.cos(), zero, yaw.sin(), zero, one, zero, -yaw.sin(), zero, yaw.cos()], 1)
    rx = torch.stack([one, zero, zero, zero, elev.cos(), -elev.sin(), zero, elev.sin(), elev.cos()], 1)
    return (rx.view(n, 3, 3) @ ry.view(n, 3, 3)).to(device)


def bone_lengths(pose: torch.Tensor, bones: list[tuple[int, int]]) -> torch.Tensor:
    """[..., J, 3] -> [..., len(bones)] lengths (differentiable)."""
    return bone_vectors(pose, bones).norm(dim=-1)


class Objective:
    """Weighted sum of the configured terms; `__call__(model, batch) -> (loss, logs)`."""

    def __init__(self, cfg: dict):
        self.cfg = dict(DEFAULTS)
        for key, value in cfg.items():
            if key not in DEFAULTS:
                raise PoseCliError(f"unknown objective option '{key}' (known: {', '.join(DEFAULTS)})")
            if float(value) < 0:
                raise PoseCliError(f"objective option '{key}' must be >= 0, got {value}")
            self.cfg[key] = float(value)
        if not any(self.cfg[t] > 0 for t in TERMS):
            raise PoseCliError(f"objective has no term with a weight > 0 (terms: {', '.join(TERMS)})")

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.cfg
        x, conf = batch["input"], batch["conf"]
        main = any(c[t] > 0 for t in ("lifting", "mpjpe", "velocity", "bone", "mpjpe2d"))
        inputs = ([x] if main else []) + ([self.mask(x)] if c["masked"] > 0 else [])
        outs = model(torch.cat(inputs))                       # one pass for the plain and masked input
        terms: dict[str, torch.Tensor] = {}
        logs: dict[str, float] = {}
        if c["masked"] > 0:
            rec = outs["pose2d"][-len(x):]
            tgt, w = crop_frames(batch["target2d"], rec.shape[1]), crop_frames(conf, rec.shape[1]) > 0
            terms["masked"] = weighted_mean((rec - tgt).norm(dim=-1), w.float())
        if main:
            out = {k: v[:len(x)] for k, v in outs.items()}
            terms.update(self.supervised(out, batch, logs))
            if c["lifting"] > 0:
                terms["lifting"] = self.lifting(model, x, out["pose3d"], batch, logs)
        loss = sum(c[name] * value for name, value in terms.items() if c[name] > 0)
        # Every output head stays in the graph (zero gradient if unused), so DDP without
        # find_unused_parameters works for any choice of terms.
        loss = loss + 0.0 * sum(v.sum() for v in outs.values())
        logs.update({name: float(value.detach()) for name, value in terms.items()})
        logs["loss"] = float(loss.detach())
        return loss, logs

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Hide a random `mask_joints` fraction of joints and `mask_frames` of frames (coords and conf 0)."""
        b, t, j, _ = x.shape
        hide = torch.rand(b, t, j) < self.cfg["mask_joints"]
        if t > 1:
            hide |= (torch.rand(b, t, 1) < self.cfg["mask_frames"])
        return x * (~hide).to(x)[..., None]

    def supervised(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                   logs: dict[str, float]) -> dict[str, torch.Tensor]:
        """MPJPE, velocity, bone and 2D terms of the model's output on the plain input."""
        pred, t_out = out["pose3d"], out["pose3d"].shape[1]
        target = crop_frames(batch["target3d"], t_out)
        valid = crop_frames(batch["conf"], t_out) > 0
        w3 = (valid & batch["has3d"].view(-1, 1, 1)).float()
        terms = {"mpjpe": weighted_mean((pred - target).norm(dim=-1), w3)}
        if batch["has3d"].any():
            logs["mpjpe_mm"] = 1000.0 * float(terms["mpjpe"].detach())
        if self.cfg["velocity"] > 0:
            wv = w3[:, 1:] * w3[:, :-1]
            vel = (pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])
            terms["velocity"] = weighted_mean(vel.norm(dim=-1), wv) if t_out > 1 else 0.0 * pred.sum()
        if self.cfg["bone"] > 0:
            bones = list(H36M_BONES)
            err = (bone_lengths(pred, bones) - bone_lengths(target, bones)).abs()
            terms["bone"] = weighted_mean(err, bone_mask(w3, bones))
        if self.cfg["mpjpe2d"] > 0:
            tgt2d = crop_frames(batch["target2d"], t_out)
            terms["mpjpe2d"] = weighted_mean((out["pose2d"] - tgt2d).norm(dim=-1), valid.float())
        return terms

    def lifting(self, model: nn.Module, x: torch.Tensor, pose3d: torch.Tensor, batch: dict[str, torch.Tensor],
                logs: dict[str, float]) -> torch.Tensor:
        """Self-supervised lifting loss of `pose3d`, the model's lift of input `x`."""
        t1 = pose3d.shape[1]
        u = crop_frames(batch["target2d"], t1)
        conf = crop_frames(batch["conf"], t1)
        w = (conf > 0).float()
        s, t = fit_scaled_orthographic(pose3d[..., :2], u, w)
        reproj = weighted_mean((s * pose3d[..., :2] + t - u).norm(dim=-1), w)
        pairs = SYMMETRIC_BONES
        left, right = [p[0] for p in pairs], [p[1] for p in pairs]
        ws = bone_mask(w, left) * bone_mask(w, right)
        symmetry = weighted_mean((bone_lengths(pose3d, left) - bone_lengths(pose3d, right)).abs(), ws)
        logs.update(lifting_reproj=float(reproj.detach()), lifting_symmetry=float(symmetry.detach()))
        total = reproj + self.cfg["lifting_symmetry"] * symmetry
        t2 = t1 - (x.shape[1] - t1)                          # frames a second lift of t1 frames returns
        if t2 < 1:
            return total
        rot = random_rotations(len(x), self.cfg["lifting_max_elev_deg"], x.device).to(pose3d)
        rotated = torch.einsum("bij,btkj->btki", rot, pose3d)
        view = normalize_window_torch(s * rotated[..., :2], conf > 0)
        relift = model(torch.cat([view, conf[..., None]], dim=-1))["pose3d"]
        w2 = crop_frames(w, t2)
        cycle3d = weighted_mean((relift - crop_frames(rotated, t2)).norm(dim=-1), w2)
        back = torch.einsum("bji,btkj->btki", rot, relift)     # inverse rotation (R^T)
        back2d = crop_frames(s, t2) * back[..., :2] + crop_frames(t, t2)
        cycle2d = weighted_mean((back2d - crop_frames(u, t2)).norm(dim=-1), w2)
        logs.update(lifting_cycle3d=float(cycle3d.detach()), lifting_cycle2d=float(cycle2d.detach()))
        return total + self.cfg["lifting_cycle"] * (cycle3d + cycle2d)


def build_objective(cfg: dict) -> Objective:
    """The objective a preset's `objective:` section describes."""
    return Objective(cfg or {})


TERMS_3D = ("mpjpe", "velocity", "bone")


def check_objective_data(cfg: dict, sources_with_3d: list[bool]) -> None:
    """Refuse, before training, an objective that the training caches cannot drive: with only 3D
    terms weighted and no cache with 3D ground truth, every step's loss would be 0 and the run would
    end "successfully" having learnt nothing."""
    weights = {**DEFAULTS, **(cfg or {})}
    active = [t for t in TERMS if float(weights[t]) > 0]
    if not active:
        raise PoseCliError("objective has no term with a weight > 0 "
                           f"(set one of {', '.join(TERMS)})", "objective")
    if all(t in TERMS_3D for t in active) and not any(sources_with_3d):
        raise PoseCliError(f"objective terms {', '.join(active)} need 3D ground truth, but no training cache "
                           "has keypoints3d (a 2D-only cache): fine-tune on a 3D cache, or pretrain with "
                           "objective.masked / objective.lifting", "data.sources")
