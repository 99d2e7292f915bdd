"""Checkpoints: one file per run state, loaded without executing pickled code.

A checkpoint is a plain dict of tensors and YAML-like values (weights, resolved config, skeleton,
normalisation convention, model family, posecli version, training state), so
`torch.load(weights_only=True)` reads it and anything carrying pickled objects is refused.
Every tensor of a checkpoint is covered by a sha256 stored beside it (`checksum`), verified on load,
so a flipped byte is reported instead of silently changing a weight; checkpoints written before the
checksum existed still load. Bundled models ship as `<name>.safetensors` + `<name>.json` in
posecli/assets/ (the JSON carries the checksum of the weights when the bundle was exported with it).
`load_model` reads a checkpoint or bundle once and builds the model through the family it names
(posecli.families), so callers get the model, its metadata and its family together.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from posecli import __version__
from posecli.atomic import atomic_output
from posecli.config import section
from posecli.data.normalize import CONVENTION
from posecli.device import select_device
from posecli.errors import PoseCliError
from posecli.families import DEFAULT, get_family
from posecli.families.base import Family
from posecli.output_path import check_output_folder

FORMAT = "posecli-checkpoint"
FORMAT_VERSION = 1
CHECKSUMMED = ("model", "state")      # the payload entries the checksum covers
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


def _tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a nested checkpoint payload with its key path, in a fixed order."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _tensors(value[key], f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}/{i}")


def tensor_checksum(payload: Any) -> str:
    """sha256 over the names, dtypes, shapes and bytes of every tensor in `payload`."""
    digest = hashlib.sha256()
    for name, tensor in _tensors(payload):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _verify(payload: Any, expected: Any, path: Path) -> None:
    if expected is not None and tensor_checksum(payload) != expected:
        raise PoseCliError("damaged checkpoint: its tensors do not match the stored sha256 checksum "
                           "(a changed byte; restore the file or retrain)", path)


def save_checkpoint(path: str | Path, model: nn.Module, cfg: dict[str, Any],
                    state: dict[str, Any] | None = None) -> Path:
    """Write weights + resolved config + metadata + training `state` atomically to `path`."""
    module = unwrap(model)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "config": cfg,
        "family": str(getattr(module, "family", DEFAULT)),
        "skeleton": SKELETON,
        "normalisation": CONVENTION,
        "posecli_version": __version__,
        "state": state or {},
    }
    payload["checksum"] = tensor_checksum({k: payload[k] for k in CHECKSUMMED})
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
    except Exception as exc:   # garbage bytes reach the unpickler in many shapes (IndexError, KeyError, ...)
        raise PoseCliError(f"not a readable checkpoint ({exc.__class__.__name__})", path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise PoseCliError("not a posecli checkpoint (no 'format: posecli-checkpoint' entry)", path)
    try:
        version = int(ckpt.get("format_version", 0))
    except (TypeError, ValueError):
        raise PoseCliError(f"checkpoint format_version is not an integer ({ckpt.get('format_version')!r})",
                           path) from None
    if version > FORMAT_VERSION:
        raise PoseCliError(f"checkpoint format v{ckpt['format_version']} is newer than this posecli "
                           f"(v{FORMAT_VERSION}); upgrade posecli", path)
    if not isinstance(ckpt["model"], dict) or not isinstance(ckpt.get("config"), dict):
        raise PoseCliError("not a posecli checkpoint ('model' weights or 'config' missing)", path)
    _verify({k: ckpt.get(k, {}) for k in CHECKSUMMED}, ckpt.get("checksum"), path)
    return ckpt


def checkpoint_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The metadata every consumer of a model needs (no weights, no training state)."""
    state = ckpt.get("state", {})
    return {
        "config": ckpt["config"],
        "family": ckpt.get("family", DEFAULT),
        "skeleton": ckpt.get("skeleton", SKELETON),
        "normalisation": ckpt.get("normalisation", CONVENTION),
        "posecli_version": ckpt.get("posecli_version", ""),
        "step": int(state.get("step", 0)) if isinstance(state, dict) else 0,
    }


class LoadedModel(NamedTuple):
    """A ready-to-run model (eval mode), its metadata (checkpoint_meta) and, as `.family`, the
    model family that trains, evaluates and runs it (posecli.families)."""

    model: nn.Module
    meta: dict[str, Any]

    @property
    def family(self) -> Family:
        return get_family(self.meta["family"])


def _build(meta: dict[str, Any], weights: dict[str, torch.Tensor], source: Path,
           device: str | torch.device) -> LoadedModel:
    """The model a checkpoint's config describes, built by its family, with its weights."""
    family = get_family(str(meta["family"]))
    model = family.build_model(section(meta["config"], "model"), for_weights=True)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise PoseCliError(f"weights do not fit the model its config describes "
                           f"({str(exc).splitlines()[0]})", source) from None
    return LoadedModel(model.to(device).eval(), meta)


def _is_name(path_or_name: str | Path) -> bool:
    text = str(path_or_name)
    return not Path(text).exists() and "/" not in text and os.sep not in text and Path(text).suffix == ""


def bundled_paths(name: str, assets: Path = ASSETS) -> tuple[Path, Path]:
    return assets / f"{name}.safetensors", assets / f"{name}.json"


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file (no pickle); a truncated or damaged file is one clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise PoseCliError(f"damaged safetensors file ({str(exc).splitlines()[0]})", path) from None


def _bundle_parts(name: str, assets: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """The metadata (family filled in) and verified weights of a bundle."""
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
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise PoseCliError("bundled model metadata has no 'config' mapping", meta_path)
    weights = read_safetensors(weights_path)
    _verify(weights, meta.get("checksum"), weights_path)
    return {**meta, "family": str(meta.get("family", DEFAULT))}, weights, weights_path


def load_bundled(name: str, device: str | torch.device = "cpu", assets: Path = ASSETS) -> LoadedModel:
    """A model shipped in posecli/assets as safetensors weights + JSON metadata."""
    return _build(*_bundle_parts(name, assets), device)


def _model_parts(path_or_name: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    if _is_name(path_or_name):
        return _bundle_parts(str(path_or_name), ASSETS)
    path = Path(path_or_name)
    if path.suffix == ".safetensors":
        return _bundle_parts(path.stem, path.parent)
    ckpt = load_checkpoint(path)
    return checkpoint_meta(ckpt), ckpt["model"], path


def load_model(path_or_name: str | Path, device: str | torch.device = "cpu", *,
               family: str | None = None) -> LoadedModel:
    """A ready-to-run model (eval mode), its metadata and its family, from a checkpoint path, a
    bundled name, or a bundle's NAME.safetensors written elsewhere by `posecli export bundle -o
    FOLDER`; the file is read once. `family` given: a model of another family is refused (in that
    family's words) before anything is built."""
    meta, weights, source = _model_parts(path_or_name)
    if family is not None and meta["family"] != family:
        raise PoseCliError(get_family(family).wrong_checkpoint(str(meta["family"])), path_or_name)
    return _build(meta, weights, source, select_device(device))


def export_bundled(ckpt: str | Path, out_dir: str | Path, name: str = "default", *,
                   force: bool = False) -> tuple[Path, Path]:
    """Write `<name>.safetensors` (weights) + `<name>.json` (config and metadata) for shipping.

    An existing bundle of that name is kept unless `force`: replacing one (above all the shipped
    `default` in the package's assets) changes what every later `--checkpoint NAME` loads."""
    from safetensors.torch import save_file

    out_dir = check_output_folder(out_dir)
    weights_path, meta_path = bundled_paths(name, out_dir)
    for path in (weights_path, meta_path):
        if path.exists() and not force:
            raise PoseCliError(f"bundle '{name}' exists (use --force to overwrite it, or another --name)", path)
    source = load_checkpoint(ckpt)
    weights = {k: v.contiguous().clone() for k, v in source["model"].items()}
    meta = {"name": name, **checkpoint_meta(source), "format_version": FORMAT_VERSION,
            "checksum": tensor_checksum(weights)}
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
    resampled: list[str] = field(default_factory=list)  # per-frame tensors of another window, interpolated

    def summary(self) -> str:
        return (f"initialised from {self.source}: {len(self.loaded)} tensors loaded"
                + (f" ({len(self.resampled)} resampled to the window)" if self.resampled else "")
                + f", {len(self.new)} new, {len(self.skipped)} skipped (shape mismatch), {len(self.unused)} unused")


MIN_LOADED_SHARE = 0.5   # --from must fill at least this share of the model's tensors


def _source_weights(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The weights of an initialisation source and its model family (None when a bare
    .safetensors file does not say)."""
    if _is_name(path):
        model, meta = load_bundled(str(path))
        return model.state_dict(), str(meta["family"])
    if Path(path).suffix == ".safetensors":
        if not Path(path).is_file():
            raise PoseCliError("weights file not found", path)
        return read_safetensors(Path(path)), None
    ckpt = load_checkpoint(path)
    return ckpt["model"], str(ckpt.get("family", DEFAULT))


def resample_frames(source: torch.Tensor, target: torch.Tensor, axis: int | None) -> torch.Tensor | None:
    """A per-frame tensor (a model's `frame_axes` names it and its frame axis) trained at another
    window, linearly interpolated to the target's frame count, as ViTs resample position
    embeddings for a new image size; None when it is not one, differs in another axis, or
    has a single frame (a photo-pretrained model: nothing to interpolate, so it starts fresh)."""
    if axis is None or source.dim() != target.dim() or source.shape[axis] < 2:
        return None
    if [n for i, n in enumerate(source.shape) if i != axis] != [n for i, n in enumerate(target.shape) if i != axis]:
        return None
    frames = source.movedim(axis, -1).reshape(1, -1, source.shape[axis]).float()
    out = F.interpolate(frames, size=target.shape[axis], mode="linear", align_corners=True)
    shape = [*source.movedim(axis, -1).shape[:-1], target.shape[axis]]
    return out.reshape(shape).movedim(-1, axis).to(target.dtype).contiguous()


def load_matching(model: nn.Module, source: str | Path) -> InitReport:
    """Copy every tensor of `source` (checkpoint, .safetensors or bundled name) whose name and shape
    match the model (per-frame tensors of another window resampled: `resample_frames`); the rest of
    the model keeps its fresh initialisation.

    A source of another model family, or one that fills less than MIN_LOADED_SHARE of the model's
    tensors, is refused before anything is copied: training would silently start from scratch."""
    weights, family = _source_weights(Path(source))
    module = unwrap(model)
    own_family = str(getattr(module, "family", DEFAULT))
    if family is not None and family != own_family:
        raise PoseCliError(f"cannot initialise a {own_family}-family model from a {family}-family checkpoint",
                           source)
    own = module.state_dict()
    report = InitReport(source=str(source))
    take = {}
    for name, tensor in own.items():
        if name not in weights:
            report.new.append(name)
        elif tuple(weights[name].shape) != tuple(tensor.shape):
            resampled = resample_frames(weights[name], tensor, getattr(module, "frame_axes", {}).get(name))
            if resampled is None:
                report.skipped.append(name)
            else:
                take[name] = resampled
                report.loaded.append(name)
                report.resampled.append(name)
        else:
            take[name] = weights[name]
            report.loaded.append(name)
    report.unused = [name for name in weights if name not in own]
    if len(report.loaded) < MIN_LOADED_SHARE * len(own):
        raise PoseCliError(f"only {len(report.loaded)} of the model's {len(own)} tensors match this checkpoint "
                           f"(name and shape; {len(report.skipped)} differ in shape, {len(report.new)} absent): "
                           "it was trained for another architecture", source)
    module.load_state_dict(take, strict=False)
    return report
