"""Sliding-window prediction: frame alignment, lengths for both model kinds, flip TTA exactness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from posecli.models import build_model
from posecli.families.lifter.predict import flip_input, lift_sequence, output_shrink, unflip_pose3d, window_plan
from posecli.skeleton import H36M_FLIP_PERM



def _sequence(t: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(300, 700, size=(1, 17, 2))
    kp = (base + rng.normal(scale=5.0, size=(t, 17, 2)) + np.arange(t)[:, None, None] * 2.0)
    conf = rng.uniform(0.2, 1.0, size=(t, 17))
    conf[rng.random((t, 17)) < 0.1] = 0.0
    return kp.astype(np.float32), conf.astype(np.float32)


class ConfidenceEcho(nn.Module):
    """Toy lifter whose 3D x is the input confidence of the frame it predicts (normalisation leaves
    confidence untouched), so the output reveals which input frame landed on which output frame."""

    def __init__(self, window: int, shrink: int = 0):
        super().__init__()
        self.window, self.receptive_field, self.shrink = window, window, shrink
        self.dummy = nn.Parameter(torch.zeros(()))
        self.family = "lifter"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.shrink // 2
        conf = x[:, h:x.shape[1] - h, :, 2]
        pose = torch.zeros(*conf.shape, 3, dtype=x.dtype)
        pose[..., 0] = conf - conf[..., :1]
        return {"pose3d": pose, "pose2d": x[:, h:x.shape[1] - h, :, :2]}


@pytest.mark.parametrize("t", [1, 5, 9, 23, 40])
@pytest.mark.parametrize("shrink", [0, 4])
def test_every_frame_gets_its_own_output(t, shrink):
    kp, conf = _sequence(t)
    model = ConfidenceEcho(window=9 if shrink == 0 else 5, shrink=shrink)
    out = lift_sequence(model, kp, conf, batch_size=3, upright=False)     # an echo, not a pose: nothing to turn
    assert out.shape == (t, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], conf - conf[:, :1], atol=1e-6)
    assert np.abs(out[..., 1:]).max() == 0.0


def test_window_plans_cover_the_sequence():
    plan = window_plan(20, 8)
    assert plan.starts == [0, 4, 8, 12] and plan.in_len == 8
    np.testing.assert_array_equal(plan.weights, [1, 2, 3, 4, 4, 3, 2, 1])
    assert window_plan(21, 8, 1).starts == [0, 4, 8, 12, 13]
    assert window_plan(5, 8).starts == [0]
    conv = window_plan(20, 27, 27)
    assert (conv.in_len, conv.out_len, conv.pad, conv.starts) == (53, 27, 13, [0])
    conv = window_plan(100, 27, 27, stride=30)
    assert (conv.in_len, conv.out_len, conv.starts) == (56, 30, [0, 30, 60, 70])
    with pytest.raises(ValueError):
        window_plan(10, 8, stride=0)


@pytest.mark.parametrize("cfg", [
    {"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2},
    {"name": "tcn", "size": "xs", "window": 9, "channels": 16},
])
@pytest.mark.parametrize("t", [4, 9, 30])
def test_real_models_give_one_root_relative_pose_per_frame(cfg, t):
    torch.manual_seed(0)
    model = build_model(cfg)
    assert output_shrink(model.eval(), torch.device("cpu")) == (0 if cfg["name"] == "stformer" else 8)
    model.train()
    kp, conf = _sequence(t, seed=t)
    out = lift_sequence(model, kp, conf, batch_size=4)
    assert out.shape == (t, 17, 3)
    assert np.isfinite(out).all() and np.abs(out[:, 0]).max() == 0.0
    assert model.training                                   # training mode restored


def test_flip_transforms_are_exact_inverses():
    x = torch.randn(2, 5, 17, 3)
    torch.testing.assert_close(flip_input(flip_input(x)), x, rtol=0, atol=0)
    torch.testing.assert_close(unflip_pose3d(unflip_pose3d(x)), x, rtol=0, atol=0)
    f = flip_input(x)
    torch.testing.assert_close(f[..., 1, 0], -x[..., 4, 0])  # r_hip <- mirrored l_hip
    torch.testing.assert_close(f[..., 1, 2], x[..., 4, 2])   # confidence travels with its joint


class Symmetrised(nn.Module):
    """A model made mirror-equivariant: f(mirror(x)) = mirror(f(x)) holds exactly."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.window, self.receptive_field = inner, inner.window, inner.receptive_field
        self.upright_deg = inner.upright_deg

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.inner(x)["pose3d"]
        b = unflip_pose3d(self.inner(flip_input(x))["pose3d"])
        return {"pose3d": (a + b) / 2}


def _mirror_pixels(kp: np.ndarray, conf: np.ndarray, axis_x: float) -> tuple[np.ndarray, np.ndarray]:
    m = kp[:, H36M_FLIP_PERM].copy()
    m[..., 0] = 2 * axis_x - m[..., 0]
    return m, conf[:, H36M_FLIP_PERM].copy()


def test_flip_tta_is_a_no_op_for_a_symmetric_model_and_input():
    torch.manual_seed(1)
    inner = build_model({"name": "stformer", "size": "xs", "window": 9, "dim": 16, "depth": 1, "heads": 2})
    model = Symmetrised(inner)
    kp, conf = _sequence(20, seed=3)
    # a left/right symmetric input: average a pose with its own mirror image
    mk, mc = _mirror_pixels(kp, conf, axis_x=500.0)
    sym_kp, sym_conf = (kp + mk) / 2, np.minimum(conf, mc)
    for k, c in ((sym_kp, sym_conf), (kp, conf)):
        np.testing.assert_allclose(lift_sequence(model, k, c, flip=True), lift_sequence(model, k, c),
                                   atol=1e-5)


def test_flip_tta_equals_averaging_with_the_mirrored_video():
    torch.manual_seed(2)
    model = build_model({"name": "tcn", "size": "xs", "window": 9, "channels": 16})
    kp, conf = _sequence(25, seed=4)
    mk, mc = _mirror_pixels(kp, conf, axis_x=123.0)        # any vertical axis: normalisation re-centres
    expected = (lift_sequence(model, kp, conf)
                + unflip_pose3d(torch.from_numpy(lift_sequence(model, mk, mc))).numpy()) / 2
    np.testing.assert_allclose(lift_sequence(model, kp, conf, flip=True), expected, atol=1e-5)


def _leaning_sequence(lean_deg: float, t: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A person-like 2D sequence around (500, 500) whose torso leans `lean_deg` from image up."""
    rng = np.random.default_rng(4)
    kp = rng.normal(scale=60.0, size=(t, 17, 2)) + 500.0
    a = np.deg2rad(lean_deg)
    kp[:, 8] = kp[:, 0] + 150.0 * np.array([np.sin(a), -np.cos(a)])
    return kp.astype(np.float32), np.ones((t, 17), np.float32)


def test_upright_windows_make_the_lift_equivariant_to_camera_roll():
    """A view turned by 90 degrees (box centre and side unchanged) lifts, with upright windows, to
    the same 3D turned by 90 degrees about the optical axis; without them a model is not bound to
    that. A torso within the tolerance is lifted exactly as without the step."""
    from posecli.geometry import rotate_xy

    torch.manual_seed(0)
    model = build_model({"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}).eval()
    kp, conf = _leaning_sequence(60.0)
    turned = rotate_xy(kp - 500.0, np.pi / 2) + 500.0                        # torso now at 150 degrees
    base, rolled = lift_sequence(model, kp, conf), lift_sequence(model, turned, conf)
    np.testing.assert_allclose(rolled, rotate_xy(base, np.pi / 2), atol=2e-5)
    plain = lift_sequence(model, kp, conf, upright=False), lift_sequence(model, turned, conf, upright=False)
    assert np.abs(plain[1] - rotate_xy(plain[0], np.pi / 2)).max() > 1e-3
    assert not np.allclose(base, plain[0], atol=1e-4)
    kp, conf = _leaning_sequence(15.0)
    np.testing.assert_array_equal(lift_sequence(model, kp, conf), lift_sequence(model, kp, conf, upright=False))
    # the tolerance is the model's (model.upright_deg, saved with its config): at 0 every torso is turned up
    strict = build_model({"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1, "upright_deg": 0})
    strict.load_state_dict(model.state_dict())
    assert strict.upright_deg == 0.0 and model.upright_deg == 20.0
    assert not np.allclose(lift_sequence(strict.eval(), kp, conf), lift_sequence(model, kp, conf), atol=1e-4)
    np.testing.assert_array_equal(lift_sequence(strict, kp, conf, upright=False),
                                  lift_sequence(model, kp, conf, upright=False))
