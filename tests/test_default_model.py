"""The bundled default model: it ships in the package, loads without pickle, and lifts real poses."""

from __future__ import annotations

import numpy as np

from conftest import shared_file
from posecli.data.cameras import project
from posecli.engine.checkpoint import ASSETS, load_model
from posecli.metrics import mpjpe, p_mpjpe
from posecli.families.lifter.predict import lift_sequence

# A person standing upright, arms hanging, in metres (x right, y down, z forward), H36M-17 order.
STANDING = np.array([
    [0.00, 0.00, 0.00], [-0.13, 0.00, 0.00], [-0.13, 0.44, 0.00], [-0.13, 0.87, 0.03],
    [0.13, 0.00, 0.00], [0.13, 0.44, 0.00], [0.13, 0.87, 0.03],
    [0.00, -0.23, -0.01], [0.00, -0.48, 0.00], [0.00, -0.58, -0.05], [0.00, -0.70, 0.00],
    [0.18, -0.45, 0.00], [0.20, -0.17, 0.00], [0.21, 0.08, 0.00],
    [-0.18, -0.45, 0.00], [-0.20, -0.17, 0.00], [-0.21, 0.08, 0.00],
])
INTRINSICS = np.array([1145.0, 1145.0, 500.0, 500.0])


def test_default_model_ships_as_safetensors_and_is_small():
    weights = ASSETS / "default.safetensors"
    assert weights.is_file() and (ASSETS / "default.json").is_file()
    assert weights.stat().st_size <= 10 * 1024 * 1024
    model, meta = load_model("default")
    assert meta["family"] == "lifter" and meta["skeleton"] == "h36m17"
    assert model.window == meta["config"]["model"]["window"]


def test_default_model_lifts_a_standing_person():
    model, _ = load_model("default")
    frames = 40
    pose = np.repeat(STANDING[None], frames, axis=0) + np.array([0.0, 0.0, 5.0])
    kp2d = project(pose, INTRINSICS).astype(np.float32)
    pred = lift_sequence(model, kp2d, np.ones((frames, 17), np.float32))
    target = STANDING - STANDING[0]
    valid = np.ones((frames, 17), bool)
    assert p_mpjpe(pred * 1000, np.repeat(target[None] * 1000, frames, 0), valid).value < 60.0
    # Feet below the pelvis, head above it, and leg bones of human length.
    assert (pred[:, 3, 1] > 0.6).all() and (pred[:, 6, 1] > 0.6).all() and (pred[:, 10, 1] < -0.5).all()
    thigh = np.linalg.norm(pred[:, 2] - pred[:, 1], axis=-1)
    assert ((thigh > 0.3) & (thigh < 0.55)).all()


def test_default_model_on_cmu_test_takes(tmp_path):
    from posecli.data.readers.mocap import read_mocap
    from posecli.data.records import PrepareOptions

    npz = shared_file("mocap/cmu_expmap_li2018/cmu_li2018_positions38_120fps.npz")
    result = read_mocap([npz], PrepareOptions(split="test", fps=50, cameras=2, seed=7))
    model, _ = load_model("default")
    records = [r for r in result.records if r.action in ("walking", "running", "soccer")]
    assert records
    errors = []
    for r in records:
        pred = lift_sequence(model, r.keypoints2d, r.confidence)
        target = r.keypoints3d - r.keypoints3d[:, :1]
        errors.append(mpjpe(pred * 1000, target * 1000, np.ones(r.confidence.shape, bool)).value)
    assert float(np.mean(errors)) < 90.0
