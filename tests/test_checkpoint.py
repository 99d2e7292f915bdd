"""Checkpoints: round trip, safe loading (pickled code refused), bundled export, fine-tune init."""

from __future__ import annotations

import collections
import json

import pytest
import torch

from posecli.config import load_config, override, section
from posecli.data.normalize import CONVENTION
from posecli.engine.checkpoint import (export_bundled, load_bundled, load_checkpoint, load_matching,
                                       load_model, save_checkpoint)
from posecli.errors import PoseCliError
from posecli.models import build_model


class Payload:
    """A custom class: pickling it stores a reference to code, which weights_only must refuse."""

    def __init__(self):
        self.value = 1


def tiny_cfg(window: int = 9) -> dict:
    cfg = load_config("base", ["model.size=xs", f"model.window={window}"])
    return cfg


def test_round_trip_and_metadata(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    path = save_checkpoint(tmp_path / "m.ckpt", model, cfg, {"step": 12})
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]          # no temp file left behind
    ckpt = load_checkpoint(path)
    assert ckpt["state"]["step"] == 12 and ckpt["skeleton"] == "h36m17" and ckpt["normalisation"] == CONVENTION
    loaded, meta = load_model(path)
    assert meta["family"] == "lifter" and meta["config"] == cfg and meta["step"] == 12
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "posecli-checkpoint", "model": {}, "payload": Payload()}, path)
    with pytest.raises(PoseCliError, match="refusing to load.*pickled") as err:
        load_checkpoint(path)
    assert "evil.ckpt" in str(err.value)
    other = tmp_path / "other.ckpt"
    torch.save(collections.OrderedDict(w=torch.zeros(2)), other)
    with pytest.raises(PoseCliError, match="not a posecli checkpoint"):
        load_checkpoint(other)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PoseCliError, match="junk.ckpt"):
        load_checkpoint(junk)


def test_export_bundled_and_missing_bundle(tmp_path):
    torch.manual_seed(1)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    ckpt = save_checkpoint(tmp_path / "m.ckpt", model, cfg, {"step": 3})
    weights, meta_path = export_bundled(ckpt, tmp_path / "assets", name="tiny")
    assert weights.name == "tiny.safetensors" and meta_path.name == "tiny.json"
    meta = json.loads(meta_path.read_text())
    assert meta["config"]["model"]["size"] == "xs" and meta["family"] == "lifter"
    bundled, bmeta = load_bundled("tiny", assets=tmp_path / "assets")
    x = torch.randn(2, 9, 17, 3)
    x[..., 2] = 1.0
    with torch.no_grad():
        assert torch.equal(model.eval()(x)["pose3d"], bundled(x)["pose3d"])
    with pytest.raises(PoseCliError, match="no bundled model named 'nosuchmodel' is installed"):
        load_model("nosuchmodel")


def test_export_bundle_command_writes_a_loadable_model(tmp_path):
    from posecli.cli import main

    torch.manual_seed(2)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    ckpt = save_checkpoint(tmp_path / "m.ckpt", model, cfg)
    with pytest.raises(SystemExit) as done:
        main(["export", "bundle", "--checkpoint", str(ckpt), "--name", "mine", "-o", str(tmp_path / "out")])
    assert done.value.code == 0
    bundled, _ = load_bundled("mine", assets=tmp_path / "out")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, bundled.state_dict()[name])


def test_load_matching_reports_loaded_new_skipped(tmp_path):
    torch.manual_seed(2)
    pre_cfg = tiny_cfg(window=1)
    pretrained = build_model(section(pre_cfg, "model"))
    ckpt = save_checkpoint(tmp_path / "pre.ckpt", pretrained, pre_cfg)
    ft_cfg = override(tiny_cfg(window=9), "model.depth", 5)     # one more block than xs (4)
    model = build_model(section(ft_cfg, "model"))
    report = load_matching(model, ckpt)
    own = model.state_dict()
    assert report.skipped == ["frame_pos"]                      # [1,1,1,64] vs [1,9,1,64]
    assert report.new and all(name.startswith("blocks.4.") for name in report.new)
    assert len(report.loaded) + len(report.new) + len(report.skipped) == len(own)
    assert report.unused == []
    for name in report.loaded:
        assert torch.equal(own[name], pretrained.state_dict()[name])
    assert "skipped (shape mismatch)" in report.summary()


def test_load_matching_resamples_frame_positions_of_another_window(tmp_path):
    """A lifter trained on 5-frame windows initialises one of 9: its per-frame position embedding
    is interpolated linearly (end frames kept, the middle frame of 9 is frame 2 of 5)."""
    from posecli.engine.checkpoint import resample_frames

    torch.manual_seed(4)
    short = build_model(section(tiny_cfg(window=5), "model"))
    ckpt = save_checkpoint(tmp_path / "short.ckpt", short, tiny_cfg(window=5))
    model = build_model(section(tiny_cfg(window=9), "model"))
    report = load_matching(model, ckpt)
    assert report.resampled == ["frame_pos"] and report.skipped == [] and "frame_pos" in report.loaded
    src, got = short.frame_pos.detach(), model.frame_pos.detach()
    assert got.shape == (1, 9, 1, src.shape[-1])
    for i in range(5):                                           # frame i of 5 lands on frame 2i of 9
        assert torch.allclose(got[:, 2 * i], src[:, i], atol=1e-6)
    assert torch.allclose(got[:, 1], (src[:, 0] + src[:, 1]) / 2, atol=1e-6)
    assert "1 resampled to the window" in report.summary()
    assert resample_frames(src, torch.zeros(1, 9, 2, src.shape[-1]), 1) is None   # another axis differs
    assert resample_frames(src, torch.zeros(1, 9, 1, src.shape[-1]), None) is None  # not a per-frame tensor


def test_checksum_detects_a_changed_tensor_and_old_checkpoints_still_load(tmp_path):
    torch.manual_seed(3)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    path = save_checkpoint(tmp_path / "m.ckpt", model, cfg, {"step": 1, "moment": torch.ones(4)})
    raw = torch.load(path, weights_only=True)
    assert len(raw["checksum"]) == 64
    name = next(iter(raw["model"]))
    raw["model"][name].view(-1)[0] += 1e-6                    # one changed weight, old checksum kept
    torch.save(raw, tmp_path / "changed.ckpt")
    with pytest.raises(PoseCliError, match=r"changed\.ckpt: damaged checkpoint.*sha256"):
        load_checkpoint(tmp_path / "changed.ckpt")
    raw = torch.load(path, weights_only=True)
    raw["state"]["moment"][2] = 0.0                           # training state is covered too
    torch.save(raw, tmp_path / "state.ckpt")
    with pytest.raises(PoseCliError, match="damaged checkpoint"):
        load_checkpoint(tmp_path / "state.ckpt")
    # a flipped byte inside the largest tensor's stored bytes, found in the file itself
    data = bytearray(path.read_bytes())
    biggest = max(model.state_dict().values(), key=lambda t: t.numel())
    at = bytes(data).find(biggest.contiguous().view(-1).view(torch.uint8).numpy().tobytes()[:256])
    assert at > 0
    data[at + 100] ^= 0x10
    (tmp_path / "flipped.ckpt").write_bytes(bytes(data))
    with pytest.raises(PoseCliError, match="flipped.ckpt"):
        load_checkpoint(tmp_path / "flipped.ckpt")
    # written before checksums existed: loads as before
    raw = torch.load(path, weights_only=True)
    del raw["checksum"]
    torch.save(raw, tmp_path / "old.ckpt")
    loaded, _ = load_model(tmp_path / "old.ckpt")
    assert all(torch.equal(t, loaded.state_dict()[n]) for n, t in model.state_dict().items())
    bundled, meta = load_model("default")                      # the shipped model has no checksum
    assert meta["family"] == "lifter" and sum(p.numel() for p in bundled.parameters()) > 0


def test_init_from_another_family_or_architecture_is_refused(tmp_path):
    torch.manual_seed(4)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    path = save_checkpoint(tmp_path / "m.ckpt", model, cfg)
    raw = torch.load(path, weights_only=True)
    raw["family"] = "image"
    torch.save(raw, tmp_path / "image.ckpt")
    with pytest.raises(PoseCliError, match=r"image\.ckpt: cannot initialise a lifter-family model from "
                                           r"a image-family checkpoint"):
        load_matching(build_model(section(cfg, "model")), tmp_path / "image.ckpt")
    tcn_cfg = override(cfg, "model.name", "tcn")
    tcn = build_model(section(tcn_cfg, "model"))
    with pytest.raises(PoseCliError, match=rf"only \d+ of the model's {len(tcn.state_dict())} tensors match"):
        load_matching(tcn, path)


def test_export_bundle_never_touches_the_package_unless_told(tmp_path, monkeypatch):
    """Default options refuse (no silent write into the installed assets); an existing bundle is
    kept without --force; --into-package writes to the package's assets folder."""
    from posecli.cli import main
    from posecli.engine import checkpoint as checkpoint_module

    torch.manual_seed(3)
    cfg = tiny_cfg()
    model = build_model(section(cfg, "model"))
    ckpt = save_checkpoint(tmp_path / "m.ckpt", model, cfg)
    assets = tmp_path / "package-assets"
    assets.mkdir()
    (assets / "default.safetensors").write_bytes(b"shipped weights")
    (assets / "default.json").write_text("{}")
    monkeypatch.setattr(checkpoint_module, "ASSETS", assets)

    def exit_code(args: list[str]) -> int:
        with pytest.raises(SystemExit) as done:
            main(["export", "bundle", "--checkpoint", str(ckpt), *args])
        return done.value.code

    assert exit_code([]) == 2                                       # no destination given
    assert exit_code(["--into-package"]) == 2                       # default exists, no --force
    assert (assets / "default.safetensors").read_bytes() == b"shipped weights"
    out = tmp_path / "bundles"
    assert exit_code(["-o", str(out), "--name", "mine"]) == 0
    assert exit_code(["-o", str(out), "--name", "mine"]) == 2      # exists, no --force
    assert exit_code(["-o", str(out), "--name", "mine", "--force"]) == 0
    loaded, _ = load_model(out / "mine.safetensors")               # usable from where it was written
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    assert exit_code(["--into-package", "--name", "mine"]) == 0
    assert (assets / "mine.safetensors").is_file()
    assert (assets / "default.safetensors").read_bytes() == b"shipped weights"


def test_damaged_safetensors_is_one_clear_error_everywhere(tmp_path):
    """A truncated bundle: --from and load_model (infer's only way in) give one PoseCliError."""
    from posecli.engine.checkpoint import ASSETS

    data = (ASSETS / "default.safetensors").read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) // 3])
    (tmp_path / "cut.json").write_text((ASSETS / "default.json").read_text())
    with pytest.raises(PoseCliError, match=r"cut\.safetensors: damaged safetensors file"):
        load_model(bad)
    cfg = tiny_cfg()
    with pytest.raises(PoseCliError, match=r"cut\.safetensors: damaged safetensors file"):
        load_matching(build_model(section(cfg, "model")), bad)
