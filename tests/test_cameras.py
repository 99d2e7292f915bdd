"""Camera maths: exact projections, round trips, look_at and virtual cameras."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.data.cameras import (
    H36M_LIKE_INTRINSICS,
    Camera,
    camera_to_world,
    look_at,
    project,
    random_rotation_about_vertical,
    random_virtual_cameras,
    unproject,
    world_to_camera,
)


def test_project_known_values():
    intr = np.array([1000.0, 900.0, 500.0, 400.0])
    uv = project(np.array([[0.5, -0.2, 5.0], [0.0, 0.0, 2.0]]), intr)
    np.testing.assert_allclose(uv, [[600.0, 364.0], [500.0, 400.0]])


def test_project_unproject_round_trip():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, 3], [1, 1, 7], size=(50, 17, 3))
    uv = project(pts, H36M_LIKE_INTRINSICS)
    back = unproject(uv, pts[..., 2], H36M_LIKE_INTRINSICS)
    np.testing.assert_allclose(back, pts, atol=1e-5)


def test_world_camera_round_trip():
    R, t = look_at(np.array([3.0, 1.5, 4.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]))
    pts = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(camera_to_world(world_to_camera(pts, R, t), R, t), pts, atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_look_at_target_on_optical_axis():
    eye, target = np.array([2.0, 1.6, -5.0]), np.array([0.1, 0.9, 0.3])
    R, t = look_at(eye, target, np.array([0.0, 1.0, 0.0]))
    cam = world_to_camera(target, R, t)
    np.testing.assert_allclose(cam[:2], 0.0, atol=1e-12)
    assert cam[2] == pytest.approx(np.linalg.norm(target - eye))
    np.testing.assert_allclose(world_to_camera(eye, R, t), 0.0, atol=1e-12)
    # Y-up world: a point above the target appears higher in the image (smaller pixel y).
    above = world_to_camera(target + np.array([0.0, 0.5, 0.0]), R, t)
    assert above[1] < 0


def test_look_at_handedness():
    # Camera on -Z looking at +Z in a Y-up world: image right is world -X (right-handed frame).
    R, t = look_at(np.array([0.0, 0.0, -5.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(R, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(t, [0, 0, 5], atol=1e-12)


def test_virtual_cameras_see_subject():
    rng = np.random.default_rng(3)
    cams = random_virtual_cameras(8, rng, target=(0.0, 0.9, 0.0))
    assert [c.name for c in cams] == [f"vcam{i}" for i in range(8)]
    # A 1.8 m tall person standing at the origin (feet at y=0).
    body = np.array([[x, y, z] for x in (-0.3, 0.3) for y in (0.0, 0.9, 1.8) for z in (-0.2, 0.2)])
    for cam in cams:
        assert isinstance(cam, Camera)
        dist = np.hypot(*cam.center[[0, 2]])
        assert 4.5 <= dist <= 6.0 and 0.8 <= cam.center[1] <= 1.8
        uv = cam.project_world(body)
        assert (cam.to_camera(body)[:, 2] > 3.5).all()
        assert (uv >= 0).all() and (uv[:, 0] < cam.image_size[0]).all() and (uv[:, 1] < cam.image_size[1]).all()
        # Feet (y=0) are lower in the image than the head (y=1.8).
        assert uv[body[:, 1] == 0.0, 1].min() > uv[body[:, 1] == 1.8, 1].max()
        np.testing.assert_allclose(cam.intrinsics, [1145.0, 1145.0, 500.0, 500.0])


def test_virtual_cameras_given_azimuths_and_seed():
    a = random_virtual_cameras(3, np.random.default_rng(7))
    b = random_virtual_cameras(3, np.random.default_rng(7))
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca.R, cb.R)
    cams = random_virtual_cameras(2, np.random.default_rng(0), azimuth=[0.0, np.pi / 2])
    assert cams[0].center[0] == pytest.approx(0.0, abs=1e-9) and cams[0].center[2] > 0
    assert cams[1].center[2] == pytest.approx(0.0, abs=1e-9) and cams[1].center[0] > 0


def test_rotation_about_vertical_keeps_pelvis_and_bones():
    rng = np.random.default_rng(5)
    pose = rng.normal(scale=0.3, size=(9, 17, 3)) + np.array([0.2, -0.1, 5.0])
    out = random_rotation_about_vertical(pose, np.random.default_rng(1), max_elev_deg=0.0)
    np.testing.assert_allclose(out[..., 0, :].mean(axis=0), pose[..., 0, :].mean(axis=0), atol=1e-12)
    # Rigid: all pairwise distances kept; pure yaw keeps the vertical coordinate.
    np.testing.assert_allclose(np.linalg.norm(out[:, 3] - out[:, 5], axis=-1),
                               np.linalg.norm(pose[:, 3] - pose[:, 5], axis=-1), atol=1e-12)
    np.testing.assert_allclose(out[..., 1], pose[..., 1], atol=1e-12)
    assert not np.allclose(out, pose)
    tilted = random_rotation_about_vertical(pose.astype(np.float32), np.random.default_rng(1), 20.0)
    assert tilted.dtype == np.float32


def test_random_placement_moves_the_pelvis_and_keeps_the_pose():
    """Distance and off-axis ray are as drawn; without roll the root-relative pose is unchanged."""
    from posecli.data.cameras import random_placement
    rng = np.random.default_rng(3)
    pose = rng.normal(scale=0.3, size=(5, 17, 3)) + [0.0, 0.0, 5.0]
    placed = random_placement(pose, np.random.default_rng(1), distance=(2.0, 3.0), off_axis_deg=20.0, roll_deg=0.0)
    pivot = placed[:, 0].mean(axis=0)
    assert 2.0 <= np.linalg.norm(pivot) <= 3.0
    assert np.degrees(np.arccos(pivot[2] / np.linalg.norm(pivot))) <= 20.0 + 1e-9
    np.testing.assert_allclose(placed - placed[:, :1], pose - pose[:, :1], atol=1e-12)
    kept = random_placement(pose, rng, distance=(0.0, 0.0), off_axis_deg=0.0, roll_deg=0.0)
    np.testing.assert_allclose(kept, pose, atol=1e-12)
    rolled = random_placement(pose, rng, distance=(0.0, 0.0), off_axis_deg=0.0, roll_deg=30.0)
    bones = np.linalg.norm(rolled[:, 1:] - rolled[:, :1], axis=-1)
    np.testing.assert_allclose(bones, np.linalg.norm(pose[:, 1:] - pose[:, :1], axis=-1), atol=1e-12)
    np.testing.assert_allclose(rolled[..., 2] - rolled[:, :1, 2], pose[..., 2] - pose[:, :1, 2], atol=1e-12)
