"""Training objectives: exact geometry helpers, each term learns, overfitting, and an exact lift."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from posecli.data.normalize import normalize_window
from posecli.families.lifter.objective import (
    SYMMETRIC_BONES, build_objective, fit_scaled_orthographic, normalize_window_torch,
)
from posecli.errors import PoseCliError
from posecli.models import build_model
from posecli.models.stformer import STFormer



def symmetric_pose() -> torch.Tensor:
    """A mirror-symmetric H36M-17 pose (camera frame, y down, metres, pelvis at the origin)."""
    centre = {0: (0.0, 0.0, 0.0), 7: (0.0, -0.25, 0.05), 8: (0.0, -0.5, 0.02), 9: (0.0, -0.6, -0.06),
              10: (0.0, -0.72, 0.01)}
    right = {1: (-0.13, 0.0, 0.02), 2: (-0.15, 0.42, 0.12), 3: (-0.16, 0.82, -0.05),
             14: (-0.17, -0.48, 0.0), 15: (-0.32, -0.3, -0.1), 16: (-0.36, -0.05, -0.25)}
    left = {1: 4, 2: 5, 3: 6, 14: 11, 15: 12, 16: 13}
    pose = torch.zeros(17, 3)
    for j, p in centre.items():
        pose[j] = torch.tensor(p)
    for j, p in right.items():
        pose[j] = torch.tensor(p)
        pose[left[j]] = torch.tensor((-p[0], p[1], p[2]))
    return pose


def yaw(theta: torch.Tensor) -> torch.Tensor:
    c, s, o, z = theta.cos(), theta.sin(), torch.ones_like(theta), torch.zeros_like(theta)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).view(*theta.shape, 3, 3)


class RigidOracle(nn.Module):
    """An exact lifter for orthographic views of one known pose turned about the vertical: it solves
    for scale and yaw by least squares and returns the turned pose."""

    family, window, receptive_field = "lifter", 8, 8

    def __init__(self, pose: torch.Tensor):
        super().__init__()
        self.pose = pose

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        u = x[..., :2] - x[..., :2].mean(dim=2, keepdim=True)
        p = self.pose - self.pose.mean(dim=0)
        s = (u[..., 1] * p[:, 1]).sum(-1) / (p[:, 1] ** 2).sum()
        basis = p[:, [0, 2]]                                        # x' = s (cos X + sin Z)
        coef = torch.linalg.lstsq(basis.expand(*u.shape[:2], 17, 2), u[..., :1]).solution[..., 0]
        theta = torch.atan2(coef[..., 1] / s, coef[..., 0] / s)
        pose3d = torch.einsum("btij,kj->btki", yaw(theta), self.pose)
        return {"pose3d": pose3d - pose3d[:, :, :1], "pose2d": x[..., :2]}


def _view_batch(pose3d: torch.Tensor) -> dict[str, torch.Tensor]:
    """Batch whose 2D is the normalised orthographic view of `pose3d` [B, T, 17, 3]."""
    b, t = pose3d.shape[:2]
    conf = torch.ones(b, t, 17)
    target2d = normalize_window_torch(pose3d[..., :2], conf > 0)
    return {"input": torch.cat([target2d, conf[..., None]], -1), "target2d": target2d, "conf": conf,
            "target3d": pose3d - pose3d[:, :, :1], "has3d": torch.ones(b, dtype=torch.bool),
            "scale": torch.ones(b)}


def _random_batch(b: int, t: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pose = symmetric_pose() + torch.randn(b, t, 17, 3, generator=g) * 0.05
    batch = _view_batch(pose)
    batch["has3d"] = torch.tensor([True, False] * (b // 2))
    batch["conf"][0, :, 6] = 0.0              # a missing joint
    batch["input"][0, :, 6] = 0.0
    return batch


def test_normalize_window_torch_matches_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(4, 6, 17, 2, generator=g) * 300 + 100
    valid = torch.rand(4, 6, 17, generator=g) > 0.3
    valid[1, :5] = False          # one valid frame (odd count) ...
    valid[2, :2] = False          # ... four valid frames (even count: mean of the middle two)
    valid[3] = False              # nothing valid
    out = normalize_window_torch(kp, valid)
    for i in range(4):
        expected, _, _ = normalize_window(kp[i].numpy(), valid[i].float().numpy())
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-5)


def test_fit_scaled_orthographic_is_exact() -> None:
    p = torch.randn(2, 3, 17, 2)
    w = torch.ones(2, 3, 17)
    w[0, 0, :4] = 0.0
    u = 2.5 * p + torch.tensor([0.3, -0.1])
    u[0, 0, :4] = 99.0            # ignored: weight 0
    s, t = fit_scaled_orthographic(p, u, w)
    torch.testing.assert_close(s, torch.full((2, 3, 1, 1), 2.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(t, torch.tensor([0.3, -0.1]).expand(2, 3, 1, 2), atol=1e-4, rtol=0)


def test_symmetric_bone_pairs() -> None:
    assert sorted(SYMMETRIC_BONES) == [((0, 1), (0, 4)), ((1, 2), (4, 5)), ((2, 3), (5, 6)),
                                       ((8, 11), (8, 14)), ((11, 12), (14, 15)), ((12, 13), (15, 16))]


def test_lifting_loss_is_zero_for_an_exact_lift() -> None:
    torch.manual_seed(0)
    pose = symmetric_pose()
    truth = torch.einsum("btij,kj->btki", yaw(torch.tensor([[0.3, 0.5], [-2.0, 1.2]])), pose)
    batch = _view_batch(truth)
    objective = build_objective({"lifting": 1.0, "lifting_max_elev_deg": 0.0})
    loss, logs = objective(RigidOracle(pose), batch)
    assert loss.item() < 1e-5
    for key in ("lifting_reproj", "lifting_symmetry", "lifting_cycle3d", "lifting_cycle2d"):
        assert logs[key] < 1e-5
    # a lifter that ignores the view (always the unturned pose) is penalised
    class Frozen(RigidOracle):
        def forward(self, x):
            return {"pose3d": self.pose.expand(*x.shape[:2], 17, 3), "pose2d": x[..., :2]}
    assert objective(Frozen(pose), batch)[0].item() > 0.05


@pytest.mark.parametrize("term", ["masked", "lifting", "mpjpe", "velocity", "bone", "mpjpe2d"])
def test_each_term_is_finite_and_learns(term: str) -> None:
    torch.manual_seed(0)
    model = STFormer(window=4, dim=16, depth=1, heads=2)
    batch = _random_batch(4, 4, seed=1)
    objective = build_objective({term: 1.0})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate() -> float:
        torch.manual_seed(123)      # same masks / rotations every time
        with torch.no_grad():
            return objective(model, batch)[1][term]

    before = evaluate()
    for _ in range(25):
        loss, logs = objective(model, batch)
        assert math.isfinite(loss.item()) and all(math.isfinite(v) for v in logs.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after < 0.9 * before, (term, before, after)


@pytest.mark.parametrize("t,widths,relift", [(1, [1], True), (7, [3], True), (3, [3], False)])
def test_pretraining_objectives_run_for_both_models_and_window_lengths(t: int, widths: list[int],
                                                                       relift: bool) -> None:
    objective = build_objective({"masked": 1.0, "lifting": 1.0, "mpjpe": 1.0})
    stformer = build_model({"name": "stformer", "dim": 16, "depth": 1, "heads": 2, "window": 7})
    tcn = build_model({"name": "tcn", "channels": 16, "filter_widths": widths})
    for model in (stformer, tcn):
        loss, logs = objective(model, _random_batch(2, t, seed=2))
        loss.backward()
        assert math.isfinite(loss.item()) and "mpjpe_mm" in logs and "lifting_reproj" in logs
    # tcn (receptive field 3) on 7 frames predicts the centre 5, and relifting those gives 3 frames;
    # on 3 frames it predicts 1, too few to lift again, so only the cycle terms are left out
    assert ("lifting_cycle3d" in logs) == relift


def test_tiny_stformer_overfits_one_batch_below_1mm() -> None:
    torch.manual_seed(0)
    model = STFormer(window=4, dim=32, depth=2, heads=2)
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(2, 4, 17, 3, generator=g) * 0.2
    batch = _view_batch(pose - pose[:, :, :1])
    objective = build_objective({"mpjpe": 1.0})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    steps = 1500
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for _ in range(steps):
        loss, logs = objective(model, batch)
        if logs["mpjpe_mm"] < 1.0:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert logs["mpjpe_mm"] < 1.0


def test_bad_objective_configs() -> None:
    with pytest.raises(PoseCliError, match="unknown objective option 'mpjpe3d'"):
        build_objective({"mpjpe3d": 1.0})
    with pytest.raises(PoseCliError, match="no term"):
        build_objective({"mask_joints": 0.3})
    with pytest.raises(PoseCliError, match=">= 0"):
        build_objective({"mpjpe": -1})
