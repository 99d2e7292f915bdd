"""Device selection shared by training, evaluation and inference."""

from __future__ import annotations

import torch

from posecli.errors import PoseCliError


def select_device(name: str | torch.device = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU; an explicit device that is absent is a user error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PoseCliError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PoseCliError(f"--device {name} asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise PoseCliError("--device mps asked for, but Apple MPS is not available")
    return device
