"""The 2D normalisation convention: person spans about [-1, 1], invariant to image placement."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.data.normalize import denormalize, normalize_window


def test_box_maps_to_unit_square():
    kp = np.array([[[100.0, 200.0], [300.0, 600.0], [200.0, 400.0]]])  # one frame, box 200 x 400
    conf = np.ones((1, 3))
    norm, center, scale = normalize_window(kp, conf)
    np.testing.assert_allclose(center, [200.0, 400.0])
    assert scale == 200.0
    np.testing.assert_allclose(norm[0], [[-0.5, -1.0], [0.5, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(denormalize(norm, center, scale), kp)


def test_invariant_to_translation_and_zoom():
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 100, (8, 17, 2))
    conf = np.ones((8, 17))
    a, _, _ = normalize_window(kp, conf)
    b, _, _ = normalize_window(kp * 3.5 + np.array([700.0, -20.0]), conf)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_missing_joints_are_ignored_and_zeroed():
    kp = np.array([[[0.0, 0.0], [10.0, 10.0], [5000.0, 5000.0]]])
    conf = np.array([[1.0, 1.0, 0.0]])
    norm, center, scale = normalize_window(kp, conf)
    np.testing.assert_allclose(center, [5.0, 5.0])
    assert scale == 5.0
    assert (norm[0, 2] == 0).all()


def test_all_missing_window_is_finite():
    norm, center, scale = normalize_window(np.zeros((4, 17, 2)), np.zeros((4, 17)))
    assert np.isfinite(norm).all() and scale == 1.0


def _torso_at(degrees: float, frames: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A window whose pelvis -> thorax vector leans `degrees` from image up (clockwise on screen)."""
    kp = np.zeros((frames, 17, 2))
    a = np.deg2rad(degrees)
    kp[:, 8] = [np.sin(a), -np.cos(a)]
    return kp, np.ones((frames, 17))


def test_upright_angle_turns_only_the_excess_lean():
    from posecli.geometry import UPRIGHT_TOLERANCE_DEG, upright_angle
    from posecli.geometry import rotate_xy

    assert UPRIGHT_TOLERANCE_DEG == 20.0
    for lean, turn in ((50.0, -30.0), (-50.0, 30.0), (170.0, -150.0), (10.0, 0.0), (-20.0, 0.0)):
        kp, conf = _torso_at(lean)
        angle = upright_angle(kp, conf, UPRIGHT_TOLERANCE_DEG)
        assert np.degrees(angle) == pytest.approx(turn, abs=1e-9)
        torso = rotate_xy(kp, angle)[0, 8]
        assert np.degrees(np.arctan2(torso[0], -torso[1])) == pytest.approx(float(np.clip(lean, -20, 20)), abs=1e-9)
        assert np.degrees(upright_angle(kp, conf, 0.0)) == pytest.approx(-lean, abs=1e-9)   # all the way up
    kp, conf = _torso_at(60.0)
    conf[:, 0] = 0.0                                    # no pelvis seen: nothing to go by
    assert upright_angle(kp, conf, 0.0) == 0.0
    assert upright_angle(np.zeros((2, 17, 2)), np.ones((2, 17)), 0.0) == 0.0      # zero-length torso


def test_rotate_xy_is_a_rotation_about_z():
    from posecli.data.cameras import rotation_z
    from posecli.geometry import rotate_xy

    points = np.random.default_rng(0).normal(size=(4, 17, 3))
    np.testing.assert_allclose(rotate_xy(points, 0.7), points @ rotation_z(0.7).T, atol=1e-12)
    np.testing.assert_allclose(rotate_xy(rotate_xy(points, 0.7), -0.7), points, atol=1e-12)
    np.testing.assert_allclose(rotate_xy(points[..., :2], 0.7), (points @ rotation_z(0.7).T)[..., :2], atol=1e-12)
