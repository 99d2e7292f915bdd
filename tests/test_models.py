"""Lifter models: shapes, the root joint, missing-joint safety, registry errors, parameter counts."""

from __future__ import annotations

import pytest
import torch

from posecli.errors import PoseCliError
from posecli.models import build_model, count_parameters
from posecli.models.tcn import filter_widths_for

TINY_ST = {"name": "stformer", "size": "xs", "dim": 16, "depth": 2, "heads": 2}
TINY_TCN = {"name": "tcn", "channels": 16}


def _input(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 17, 3, generator=g)
    x[..., 2] = torch.rand(b, t, 17, generator=g) * 0.9 + 0.1
    return x


@pytest.mark.parametrize("t", [1, 27, 81])
def test_stformer_shapes_and_root(t: int) -> None:
    model = build_model({**TINY_ST, "window": 81})
    out = model(_input(2, t))
    assert out["pose3d"].shape == (2, t, 17, 3)
    assert out["pose2d"].shape == (2, t, 17, 2)
    assert torch.equal(out["pose3d"][:, :, 0], torch.zeros(2, t, 3))
    assert model.family == "lifter" and model.window == 81


@pytest.mark.parametrize("window", [1, 27, 81])
def test_tcn_shapes_and_root(window: int) -> None:
    model = build_model({**TINY_TCN, "window": window})
    assert model.receptive_field == model.window == window
    out = model(_input(2, window))
    assert out["pose3d"].shape == (2, 1, 17, 3) and out["pose2d"].shape == (2, 1, 17, 2)
    assert torch.equal(out["pose3d"][:, :, 0], torch.zeros(2, 1, 3))
    assert model(_input(2, window + 4))["pose3d"].shape == (2, 5, 17, 3)


def test_tcn_filter_widths_match_paper() -> None:
    assert filter_widths_for(27) == (3, 3, 3)
    assert filter_widths_for(81) == (3, 3, 3, 3)
    assert filter_widths_for(243) == (3, 3, 3, 3, 3)
    with pytest.raises(ValueError):
        filter_widths_for(30)


@pytest.mark.parametrize("cfg,t", [({**TINY_ST, "window": 9}, 9), ({**TINY_TCN, "window": 9}, 9)])
def test_missing_joints_never_leak(cfg: dict, t: int) -> None:
    model = build_model(cfg).eval()
    x = _input(2, t)
    x[0, :, [3, 13], 2] = 0.0          # two joints missing in every frame
    x[1, 4, :, 2] = 0.0                # one frame with every joint missing
    with torch.no_grad():
        out = model(x)
        y = x.clone()
        y[0, :, [3, 13], :2] += 100.0
        y[1, 4, :, :2] = -50.0
        out2 = model(y)
    for key in ("pose3d", "pose2d"):
        assert torch.isfinite(out[key]).all()
        assert torch.equal(out[key], out2[key])


def test_stformer_rejects_longer_windows() -> None:
    model = build_model({**TINY_ST, "window": 9})
    with pytest.raises(ValueError):
        model(_input(1, 10))


def test_registry_errors() -> None:
    with pytest.raises(PoseCliError, match="unknown model 'vit'"):
        build_model({"name": "vit"})
    with pytest.raises(PoseCliError, match="no option 'channels'"):
        build_model({"name": "stformer", "channels": 8})
    with pytest.raises(PoseCliError, match="unknown model size 'xxl'"):
        build_model({"name": "tcn", "size": "xxl"})
    with pytest.raises(PoseCliError, match="power of 3"):
        build_model({"name": "tcn", "window": 30})


def test_parameter_counts_exact() -> None:
    # tcn, one width-3 layer, 8 channels: expand 51*8*3 + BN 2*8 + heads (8*51+51) + (8*34+34)
    assert count_parameters(build_model({"name": "tcn", "channels": 8, "filter_widths": [3]})) == 2005
    # stformer xs (dim 64, depth 4, mlp 2x, window 243): embed + joint/frame pos + blocks + norm + heads
    d, depth, w = 64, 4, 243
    block = 3 * 2 * d + 2 * (4 * d * d + 4 * d) + (2 * d * d + 2 * d) + (2 * d * d + d)
    expected = (3 * d + d) + 17 * d + w * d + depth * block + 2 * d + (3 * d + 3) + (2 * d + 2)
    assert count_parameters(build_model({"name": "stformer", "size": "xs", "window": 243})) == expected == 218309
