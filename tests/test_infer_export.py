"""`posecli export onnx`: the graph runs in onnxruntime with any batch size and matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from infer_support import tiny_model

from posecli.cli import main
from posecli.engine.checkpoint import save_checkpoint


def test_export_onnx_matches_torch_with_dynamic_batch(tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = tiny_model(window=9)
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}}
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model, cfg)
    out = tmp_path / "model.onnx"
    with pytest.raises(SystemExit) as info:
        main(["export", "onnx", "--checkpoint", str(ckpt), "-o", str(out)])
    assert info.value.code == 0 and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "tiny.pt"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        x = rng.normal(size=(batch, 9, 17, 3)).astype(np.float32)
        x[..., 2] = rng.uniform(0, 1, size=(batch, 9, 17))
        x[0, :, 3, 2] = 0.0                                     # a missing joint
        with torch.no_grad():
            expected = model(torch.from_numpy(x))["pose3d"].numpy()
        got = session.run(["pose3d"], {"input": x})[0]
        assert got.shape == (batch, 9, 17, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_refuses_non_checkpoint(tmp_path, capsys):
    bad = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, bad)
    with pytest.raises(SystemExit) as info:
        main(["export", "onnx", "--checkpoint", str(bad), "-o", str(tmp_path / "m.onnx")])
    assert info.value.code == 2 and not (tmp_path / "m.onnx").exists()
    assert "not a posecli checkpoint" in capsys.readouterr().err
