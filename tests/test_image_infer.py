"""`posecli infer` with an image-family model: the example clip, a scripted detector and a tiny
random image model (no accuracy expected, only the shared outputs and the crop -> frame mapping)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from infer_support import ScriptedDetector, tiny_model

from posecli.engine.checkpoint import save_checkpoint
from posecli.errors import PoseCliError
from posecli.infer.pipeline import InferOptions, load_infer_model, run_inference
from posecli.models import build_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sports2d_demo_4s.mp4"
IMAGE_CFG = {"name": "image", "window": 1, "backbone": "resnet18", "width": 8, "deconv_channels": 16,
             "input_size": 64}




def test_example_clip_with_an_image_model(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "image.ckpt", build_model(IMAGE_CFG), {"model": IMAGE_CFG})
    model = load_infer_model(ckpt, "auto")
    assert model.family == "image"
    detector = ScriptedDetector(missing={3})
    result = run_inference(EXAMPLE, tmp_path / "out", InferOptions(max_gap=2), model=model, detector=detector)
    poses = result.poses
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "poses.json", "poses.npz", "track_00.csv", "viewer.html"]
    npz = np.load(tmp_path / "out" / "poses.npz")
    frames = detector.calls
    assert npz["keypoints2d"].shape == (frames, 1, 17, 2) and npz["keypoints3d"].shape == (frames, 1, 17, 3)
    assert poses.valid.all() and poses.interpolated[:, 0].sum() == 1           # frame 3 bridged
    kp3 = poses.keypoints3d[:, 0]
    assert np.isfinite(kp3).all() and np.abs(kp3[:, 0]).max() == 0.0           # root-relative
    # 2D comes back through the crop affine: inside the scripted person's box (margin 1.25).
    kp2 = poses.keypoints2d[:, 0]
    assert (kp2[..., 1] > 20 - 70).all() and (kp2[..., 1] < 110 + 70).all()


def test_model_image_needs_an_image_checkpoint(tmp_path):
    lifter = save_checkpoint(tmp_path / "lifter.ckpt", tiny_model(),
                             {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}})
    with pytest.raises(PoseCliError, match="--model image needs an image-family checkpoint"):
        load_infer_model(lifter, "image")
    assert load_infer_model(lifter, "auto").family == "lifter"
