"""Checkpoints: one file per run state, loaded without executing pickled code.

A checkpoint is a plain dict of tensors and YAML-like values (weights, resolved config, skeleton,
normalisation convention, model family, posecli version, training state), so
`torch.load(weights_only=True)` reads it and anything carrying pickled objects is refused.
Bundled models ship as `<name>.safetensors` + `<name>.json` in posecli/assets/.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posecli import __version__
from posecli.atomic import atomic_output
from posecli.data.normalize import CONVENTION
from posecli.device import select_device
from posecli.errors import PoseCliError

FORMAT = "posecli-checkpoint"
FORMAT_VERSION = 1
SKELETON = "h36m17"
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def _atomic_write(path: Path, write) -> Path:
    """Call write(tmp_path) on a temp file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        write(tmp)
    return path


def save_checkpoint(path: str | Path, model: nn.Module, cfg: dict[str, Any],
                    state: dict[str, Any] | None = None) -> Path:
    """Write weights + resolved config + metadata + training `state` atomically to `path`."""
    module = unwrap(model)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "config": cfg,
        "family": str(getattr(module, "family", "lifter")),
        "skeleton": SKELETON,
        "normalisation": CONVENTION,
        "posecli_version": __version__,
        "state": state or {},
    }
    return _atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (weights_only=True); pickled code or non-checkpoints are refused."""
    path = Path(path)
    if not path.is_file():
        raise PoseCliError("checkpoint not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise PoseCliError(
            f"refusing to load: the file contains pickled objects or code, not plain tensors ({first})",
            path) from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise PoseCliError(f"not a readable checkpoint ({exc.__class__.__name__})", path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise PoseCliError("not a posecli checkpoint (no 'format: posecli-checkpoint' entry)", path)
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise PoseCliError(f"checkpoint format v{ckpt['format_version']} is newer than this posecli "
                           f"(v{FORMAT_VERSION}); upgrade posecli", path)
    return ckpt


def checkpoint_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The metadata every consumer of a model needs (no weights, no training state)."""
    state = ckpt.get("state", {})
    return {
        "config": ckpt["config"],
        "family": ckpt.get("family", "lifter"),
        "skeleton": ckpt.get("skeleton", SKELETON),
        "normalisation": ckpt.get("normalisation", CONVENTION),
        "posecli_version": ckpt.get("posecli_version", ""),
        "step": int(state.get("step", 0)) if isinstance(state, dict) else 0,
    }


def _build(config: dict[str, Any], weights: dict[str, torch.Tensor], source: Path,
           device: str | torch.device) -> nn.Module:
    from posecli.config import section
    from posecli.models import build_model

    model = build_model(section(config, "model"))
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise PoseCliError(f"weights do not fit the model its config describes "
                           f"({str(exc).splitlines()[0]})", source) from None
    return model.to(device).eval()


def _is_name(path_or_name: str | Path) -> bool:
    text = str(path_or_name)
    return not Path(text).exists() and "/" not in text and os.sep not in text and Path(text).suffix == ""


def bundled_paths(name: str, assets: Path = ASSETS) -> tuple[Path, Path]:
    return assets / f"{name}.safetensors", assets / f"{name}.json"


def load_bundled(name: str, device: str | torch.device = "cpu",
                 assets: Path = ASSETS) -> tuple[nn.Module, dict[str, Any]]:
    """A model shipped in posecli/assets as safetensors weights + JSON metadata."""
    from safetensors.torch import load_file

    weights_path, meta_path = bundled_paths(name, assets)
    if not weights_path.is_file() or not meta_path.is_file():
        known = sorted(p.stem for p in assets.glob("*.safetensors")) if assets.is_dir() else []
        raise PoseCliError(f"no bundled model named '{name}' is installed "
                           f"(installed: {', '.join(known) or 'none'}); pass a checkpoint path instead",
                           weights_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PoseCliError(f"bundled model metadata is not valid JSON ({exc.msg})", meta_path) from None
    model = _build(meta["config"], load_file(str(weights_path)), weights_path, device)
    return model, meta


def load_model(path_or_name: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """A ready-to-run model (eval mode) and its metadata, from a checkpoint path, a bundled name, or
    a bundle's NAME.safetensors written elsewhere by `posecli export bundle -o FOLDER`."""
    device = select_device(device)
    if _is_name(path_or_name):
        return load_bundled(str(path_or_name), device)
    path = Path(path_or_name)
    if path.suffix == ".safetensors":
        return load_bundled(path.stem, device, assets=path.parent)
    ckpt = load_checkpoint(path)
    return _build(ckpt["config"], ckpt["model"], path, device), checkpoint_meta(ckpt)


def export_bundled(ckpt: str | Path, out_dir: str | Path, name: str = "default", *,
                   force: bool = False) -> tuple[Path, Path]:
    """Write `<name>.safetensors` (weights) + `<name>.json` (config and metadata) for shipping.

    An existing bundle of that name is kept unless `force`: replacing one (above all the shipped
    `default` in the package's assets) changes what every later `--checkpoint NAME` loads."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    weights_path, meta_path = bundled_paths(name, out_dir)
    for path in (weights_path, meta_path):
        if path.exists() and not force:
            raise PoseCliError(f"bundle '{name}' exists (use --force to overwrite it, or another --name)", path)
    source = load_checkpoint(ckpt)
    weights = {k: v.contiguous().clone() for k, v in source["model"].items()}
    meta = {"name": name, **checkpoint_meta(source), "format_version": FORMAT_VERSION}
    _atomic_write(weights_path, lambda tmp: save_file(weights, str(tmp), metadata={"format": FORMAT}))
    _atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8"))
    return weights_path, meta_path


@dataclass
class InitReport:
    """What fine-tuning initialisation did with each tensor of the model and the source."""

    source: str
    loaded: list[str] = field(default_factory=list)    # same name and shape: copied
    new: list[str] = field(default_factory=list)       # only in the model: kept as initialised
    skipped: list[str] = field(default_factory=list)   # same name, different shape: kept as initialised
    unused: list[str] = field(default_factory=list)    # only in the source

    def summary(self) -> str:
        return (f"initialised from {self.source}: {len(self.loaded)} tensors loaded, {len(self.new)} new, "
                f"{len(self.skipped)} skipped (shape mismatch), {len(self.unused)} unused")


def _source_weights(path: Path) -> dict[str, torch.Tensor]:
    if _is_name(path):
        from safetensors.torch import load_file

        weights_path = bundled_paths(str(path))[0]
        if not weights_path.is_file():
            raise PoseCliError(f"no bundled model named '{path}' is installed", weights_path)
        return load_file(str(weights_path))
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        if not Path(path).is_file():
            raise PoseCliError("weights file not found", path)
        return load_file(str(path))
    return load_checkpoint(path)["model"]


def load_matching(model: nn.Module, source: str | Path) -> InitReport:
    """Copy every tensor of `source` (checkpoint, .safetensors or bundled name) whose name and shape
    match the model; the rest of the model keeps its fresh initialisation."""
    weights = _source_weights(Path(source))
    module = unwrap(model)
    own = module.state_dict()
    report = InitReport(source=str(source))
    take = {}
    for name, tensor in own.items():
        if name not in weights:
            report.new.append(name)
        elif tuple(weights[name].shape) != tuple(tensor.shape):
            report.skipped.append(name)
        else:
            take[name] = weights[name]
            report.loaded.append(name)
    report.unused = [name for name in weights if name not in own]
    module.load_state_dict(take, strict=False)
    return report
