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
