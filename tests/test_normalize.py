"""The 2D normalisation convention: person spans about [-1, 1], invariant to image placement."""

from __future__ import annotations

import numpy as np

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
