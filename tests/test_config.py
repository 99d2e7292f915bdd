"""Presets: extends, --set overrides, validation against the schema of known keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from posecli.config import DEFAULTS, apply_run_options, available_presets, load_config, section
from posecli.errors import PoseCliError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_preset_resolves():
    names = available_presets()
    for required in ("base", "pretrain-2d", "finetune-cmu", "finetune-h36m", "scratch-cmu", "default-model"):
        assert required in names
    for name in names:
        cfg = load_config(name)
        assert set(cfg) == set(DEFAULTS)
    pre = load_config("pretrain-2d")
    assert [s["path"] for s in pre["data"]["sources"]] == ["caches/coco-train.h5", "caches/mpii-train.h5"]
    assert pre["data"]["window"] == 1 and pre["objective"]["masked"] == 1.0 and pre["objective"]["lifting"] == 1.0
    ft, scratch = load_config("finetune-cmu"), load_config("scratch-cmu")
    assert ft["data"]["val"] == "caches/mocap-val.h5"          # held-out train takes, never the test split
    assert scratch["train"]["init_from"] is None and ft["train"]["init_from"] is not None
    assert {**scratch["train"], "init_from": None} == {**ft["train"], "init_from": None}
    assert scratch["data"] == ft["data"] and scratch["objective"] == ft["objective"]


def test_extends_merges_deeply_and_set_overrides(tmp_path):
    write(tmp_path / "parent.yaml", "model: {size: m, window: 27}\ntrain: {lr: 0.001, steps: 10}\n")
    child = write(tmp_path / "child.yaml", "extends: parent\ntrain: {steps: 20}\ndata: {sources: a.h5}\n")
    cfg = load_config(child, ["train.lr=2e-4", "model.window=81", "train.amp=false",
                              "data.augment.flip=0.25"])
    assert cfg["model"]["size"] == "m"                      # from the parent
    assert cfg["model"]["window"] == 81                     # --set, YAML-typed int
    assert cfg["train"]["steps"] == 20                      # child over parent
    assert cfg["train"]["lr"] == pytest.approx(2e-4)        # '2e-4' is a string in YAML 1.1: coerced
    assert cfg["train"]["amp"] is False
    assert cfg["train"]["batch_size"] == DEFAULTS["train"]["batch_size"]
    assert cfg["data"]["augment"]["flip"] == 0.25
    assert cfg["data"]["augment"]["noise"] == DEFAULTS["data"]["augment"]["noise"]
    assert cfg["data"]["sources"] == [{"path": "a.h5", "weight": 1.0}]


def test_unknown_key_names_key_and_file(tmp_path):
    write(tmp_path / "parent.yaml", "train:\n  lrr: 0.1\n")
    child = write(tmp_path / "child.yaml", "extends: parent\n")
    with pytest.raises(PoseCliError) as err:
        load_config(child)
    assert "train.lrr" in str(err.value) and "parent.yaml" in str(err.value)
    with pytest.raises(PoseCliError, match=r"--set.*unknown key 'model\.sise'"):
        load_config(write(tmp_path / "ok.yaml", "{}\n"), ["model.sise=m"])


def test_bad_values_are_user_errors(tmp_path):
    ok = write(tmp_path / "ok.yaml", "{}\n")
    with pytest.raises(PoseCliError, match="'train.steps' must be an integer"):
        load_config(ok, ["train.steps=many"])
    with pytest.raises(PoseCliError, match="not of the form"):
        load_config(ok, ["train.steps"])
    with pytest.raises(PoseCliError, match="unknown preset 'nope'"):
        load_config("nope")
    bad = write(tmp_path / "bad.yaml", "model: [1, 2]\n")
    with pytest.raises(PoseCliError, match="'model' must be a mapping"):
        load_config(bad)
    loop = write(tmp_path / "loop.yaml", "extends: loop\n")
    with pytest.raises(PoseCliError, match="cycle"):
        load_config(loop)


def test_run_options_and_sections(tmp_path):
    cfg = apply_run_options(load_config("finetune-cmu"), data=["x.h5", "y.h5"], val="v.h5", steps=7,
                            init_from="p.ckpt")
    assert cfg["data"]["sources"] == [{"path": "x.h5", "weight": 1.0}, {"path": "y.h5", "weight": 1.0}]
    assert (cfg["data"]["val"], cfg["train"]["steps"], cfg["train"]["init_from"]) == ("v.h5", 7, "p.ckpt")
    model = section(cfg, "model")
    assert "channels" not in model and model["name"] == "stformer"
