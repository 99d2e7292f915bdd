"""`posecli export onnx`: a lifter as an ONNX graph with a dynamic batch axis.

The graph takes `input` float32 [batch, window, 17, 3] (normalised 2D + confidence, exactly what
posecli.families.lifter.predict feeds the model) and returns `pose3d` [batch, T', 17, 3] in metres, root-relative.
Torch's TorchScript-based exporter is used because it needs only the `onnx` package (the dynamo
exporter also needs onnxscript); the file is written to a temp file and renamed into place.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from posecli.atomic import atomic_output
from posecli.errors import PoseCliError
from posecli.options import check_range
from posecli.output_path import check_output_file
from posecli.skeleton import NUM_JOINTS

DEFAULT_OPSET = 17
MIN_OPSET = 13                 # LayerNorm and friends export from opset 13 on


class _Pose3dOnly(nn.Module):
    """ONNX outputs are tensors, not dicts: keep the 3D head only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["pose3d"]


def check_opset(opset: int) -> int:
    """An opset the TorchScript exporter writes (older ones lack the operators a lifter uses)."""
    from torch.onnx import _constants

    return check_range("--opset", opset, MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET, integer=True)


def export_onnx(model: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export `model` (eval mode, CPU) to `path` with a dynamic batch axis; returns the path."""
    try:
        import onnx  # noqa: F401  (torch's exporter imports it; fail with a clear message instead)
    except ImportError as exc:
        raise PoseCliError(f'ONNX export needs the onnx package ({exc}): pip install "posecli[onnx]"') from None
    check_opset(opset)
    path = check_output_file(path, create_parents=False)
    wrapped = _Pose3dOnly(model).cpu().eval()
    example = torch.zeros(2, int(model.window), NUM_JOINTS, 3)
    with atomic_output(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (example,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["pose3d"],
                          dynamic_axes={"input": {0: "batch"}, "pose3d": {0: "batch"}})
    return path


def check_bundle_name(name: str) -> str:
    """A bundled model name becomes `<name>.safetensors` + `<name>.json` inside the output folder:
    refuse anything that is not a plain file name (`../x`, `a/b`, empty, hidden), so export
    never writes outside that folder."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name) or ".." in name:
        raise PoseCliError(f"--name must be a plain name (letters, digits, '_', '-', '.'; no folders), "
                           f"got {name!r}")
    return name


def load_lifter(checkpoint: str | Path, device: str = "cpu") -> nn.Module:
    """The model of a checkpoint that must be a lifter: ONNX export (input [batch, window, 17, 3])
    and the benchmarks that feed 2D keypoints take no other family."""
    from posecli.infer.pipeline import load_infer_model

    return load_infer_model(checkpoint, "lifter", device)
