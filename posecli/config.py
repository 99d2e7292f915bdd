"""Presets: YAML recipes with `extends:`, `--set a.b=c` overrides and a schema of known keys.

A preset is validated layer by layer (each file, then each override) against the schema of its
model family, so an unknown or mistyped key is reported with the file it came from instead of
surfacing later as a silent no-op. A schema is the keys every run shares (SHARED: description,
data sources and sampling, train) plus the family's own sections (posecli.families: `model:` from
its models' options, its `data:` keys such as augmentation, and its `objective:`), so a preset of
one family never inherits another family's keys. The family is the one of `model.name`. The
resolved config is the schema deep-merged with the layers, a plain dict of YAML types that
checkpoints store verbatim.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from posecli.errors import PoseCliError
from posecli.families import DEFAULT, all_families, family_of_model
from posecli.families.base import Family
from posecli.options import check_range

# The keys of every family with their defaults; the type of the default is the type a value must
# have (a float default accepts ints, a None default accepts any scalar, e.g. an optional path).
SHARED_DATA: dict[str, Any] = {
    "sources": [],             # training caches: list of {path, weight}; a bare path means weight 1
    "window": None,            # frames per training sample (None = model.window; 1 for photos)
    "epoch_length": None,      # samples per epoch (None = all frames of all sources)
    "val": None,               # cache used for validation (the family picks the figure)
    "val_sequences": 0,        # validate on at most this many sequences (0 = all)
    "fraction": 1.0,           # train on this share of the 3D takes, rounded up (posecli.data.windows)
    "fraction_seed": 0,        # which takes data.fraction keeps
    "num_workers": 0,
}
SHARED_TRAIN: dict[str, Any] = {
    "seed": 0,
    "steps": 20000,
    "batch_size": 64,          # per process; global batch = batch_size x world size
    "accumulate": 1,           # gradient accumulation micro-batches per step
    "lr": 5.0e-4,
    "min_lr_ratio": 0.01,      # cosine decays to lr * min_lr_ratio
    "warmup_steps": 500,
    "schedule": "cosine",      # cosine (decay to lr * min_lr_ratio) | step (x gamma at each milestone)
    "milestones": [],          # step schedule: optimizer steps where the rate drops
    "gamma": 0.1,              # step schedule: factor per drop
    "weight_decay": 0.01,
    "betas": [0.9, 0.999],
    "grad_clip": 1.0,          # max gradient norm (0 = off)
    "amp": True,               # bf16/fp16 autocast on GPU; always off on CPU
    "compile": False,          # torch.compile the model
    "log_every": 50,
    "val_every": 1000,
    "ckpt_every": 1000,
    "tensorboard": True,       # used when the tensorboard package is installed
    "init_from": None,         # checkpoint to initialise matching tensors from (fine-tuning)
}

# Ranges of numeric keys: dotted key (or section prefix ending in '.') -> (lo, hi, lo_open); every
# float must also be finite. Checked for each preset layer and override (posecli.options). The
# families add the ranges of their own keys (Family.ranges).
SHARED_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "model.window": (1, 100_000, False), "model.dropout": (0, 1, False),
    "data.window": (1, 100_000, False), "data.epoch_length": (1, None, False),
    "data.val_sequences": (0, None, False), "data.fraction": (0, 1, True), "data.fraction_seed": (0, None, False),
    "data.num_workers": (0, 256, False), "data.augment.": (0, None, False),
    "objective.": (0, None, False),
    "train.seed": (0, 2**63 - 1, False), "train.steps": (1, 10**9, False), "train.batch_size": (1, 65_536, False),
    "train.accumulate": (1, 4096, False), "train.lr": (0, 10, True), "train.min_lr_ratio": (0, 1, False),
    "train.warmup_steps": (0, None, False), "train.gamma": (0, None, True), "train.weight_decay": (0, None, False),
    "train.grad_clip": (0, None, False), "train.log_every": (1, None, False), "train.val_every": (1, None, False),
    "train.ckpt_every": (1, None, False),
}
LIST_RANGES: dict[str, tuple[int | None, float | None, float | None, bool]] = {
    # dotted key -> (length or None, lo, hi, integer) of each item
    "train.betas": (2, 0, 0.999999, False), "train.milestones": (None, 1, None, True),
}


def family_schema(family: Family) -> dict[str, Any]:
    """The whole preset schema of one family: its own sections inside the shared keys."""
    own = family.schema()
    return {"description": "", "model": own["model"], "data": {**copy.deepcopy(SHARED_DATA), **own["data"]},
            "objective": own["objective"], "train": copy.deepcopy(SHARED_TRAIN)}


SCHEMAS: dict[str, dict[str, Any]] = {f.name: family_schema(f) for f in all_families()}
DEFAULTS: dict[str, Any] = SCHEMAS[DEFAULT]     # the schema of presets that name no other family
RANGES = {**SHARED_RANGES, **{key: rng for f in all_families() for key, rng in f.ranges().items()}}
SOURCE_DEFAULTS: dict[str, Any] = {"path": "", "weight": 1.0}


def _range_of(dotted: str) -> tuple[float | None, float | None, bool] | None:
    if dotted in RANGES:
        return RANGES[dotted]
    prefix = next((p for p in RANGES if p.endswith(".") and dotted.startswith(p)), None)
    return RANGES[prefix] if prefix else None


def _check_value(dotted: str, value: Any, default: Any, source: str) -> None:
    """Finite floats everywhere; the schema's ranges where it has one."""
    name = f"key '{dotted}'"
    if isinstance(value, float) and not math.isfinite(value):
        raise PoseCliError(f"{name} must be a finite number, got {value!r}", source)
    rng = _range_of(dotted)
    numeric = isinstance(default, (int, float, type(None))) and not isinstance(default, bool)
    if rng is not None and value is not None and numeric and not (default is None and isinstance(value, list)):
        lo, hi, lo_open = rng
        check_range(name, value, lo, hi, lo_open=lo_open, integer=isinstance(default, int), source=source)
    if dotted in LIST_RANGES and isinstance(value, list):
        length, lo, hi, integer = LIST_RANGES[dotted]
        if length is not None and len(value) != length:
            raise PoseCliError(f"{name} must be a list of {length} numbers, got {value!r}", source)
        for item in value:
            check_range(f"{name} item", item, lo, hi, integer=integer, source=source)


def schema_for(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of a (partial or resolved) config's model family."""
    model = cfg.get("model") if isinstance(cfg, Mapping) else None
    return SCHEMAS[family_of_model(model.get("name") if isinstance(model, Mapping) else None).name]


_REPO_PRESETS = Path(__file__).resolve().parents[1] / "presets"
_PACKAGE_PRESETS = Path(__file__).resolve().parent / "presets"


def preset_dirs() -> list[Path]:
    """Folders searched for preset names: the repository's presets/ and the packaged copy."""
    dirs: list[Path] = []
    for d in (_REPO_PRESETS, _PACKAGE_PRESETS):
        if d.is_dir() and all(d.resolve() != x.resolve() for x in dirs):
            dirs.append(d)
    return dirs


def available_presets() -> list[str]:
    return sorted({p.stem for d in preset_dirs() for p in d.glob("*.yaml")})


def find_preset(preset: str | Path, relative_to: Path | None = None) -> Path:
    """Resolve a preset name or path; `relative_to` is the folder of a file that `extends:` it."""
    p = Path(preset)
    candidates = [p] if p.suffix in (".yaml", ".yml") else []
    if relative_to is not None:
        candidates += [relative_to / p, relative_to / f"{p}.yaml"]
    candidates += [d / f"{p.name}.yaml" for d in preset_dirs()] if p.suffix == "" else []
    for c in candidates:
        if c.is_file():
            return c
    known = ", ".join(available_presets()) or "none installed"
    raise PoseCliError(f"unknown preset '{preset}' (known: {known})", relative_to)


# default's type -> (what the error message calls it, accepted value types)
_TYPES: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("true/false", (bool,)), int: ("an integer", (int,)), float: ("a number", (int, float, str)),
    str: ("a string", (str,)), list: ("a list", (list,)), type(None): ("a scalar or a list", (str, int, float, bool, list)),
}


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Check a value against its default's type; YAML strings like '1e-4' become floats."""
    name, accepted = _TYPES[type(default)]
    ok = (default is None and value is None) or (
        isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted))
    if ok and isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            ok = False
    if not ok:
        raise PoseCliError(f"key '{key}' must be {name}, got {value!r}", source)
    return value


def _sources(value: Any, source: str) -> list[dict[str, Any]]:
    """data.sources: a path, a list of paths, or a list of {path, weight} mappings."""
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, Mapping):
            raise PoseCliError(f"key 'data.sources[{i}]' must be a path or {{path, weight}}, got {item!r}",
                               source)
        entry = dict(SOURCE_DEFAULTS)
        for k, v in item.items():
            if k not in SOURCE_DEFAULTS:
                raise PoseCliError(f"unknown key 'data.sources[{i}].{k}'", source)
            entry[k] = _coerce(f"data.sources[{i}].{k}", v, SOURCE_DEFAULTS[k], source)
            if k == "weight":
                check_range(f"key 'data.sources[{i}].weight'", entry[k], 0, None, source=source)
        if not entry["path"]:
            raise PoseCliError(f"key 'data.sources[{i}]' has no path", source)
        out.append(entry)
    return out


def validate(layer: Mapping[str, Any], source: str, schema: Mapping[str, Any] = DEFAULTS,
             prefix: str = "") -> dict[str, Any]:
    """Check a partial config against the schema; return it with values coerced."""
    out: dict[str, Any] = {}
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise PoseCliError(f"unknown key '{dotted}'", source)
        default = schema[key]
        if dotted == "data.sources":
            out[key] = _sources(value, source)
        elif isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise PoseCliError(f"key '{dotted}' must be a mapping, got {value!r}", source)
            out[key] = validate(value, source, default, dotted + ".")
        else:
            out[key] = _coerce(dotted, value, default, source)
            _check_value(dotted, out[key], default, source)
    return out


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) in `top` replaces `base`."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_layers(path: Path, seen: tuple[Path, ...] = (), schema: Mapping[str, Any] | None = DEFAULTS
                 ) -> dict[str, Any]:
    """One preset file merged over what it extends, each file validated on its own against
    `schema` (None: not validated, used to find the model family first)."""
    if path.resolve() in seen:
        raise PoseCliError("'extends' forms a cycle", path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PoseCliError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    except UnicodeDecodeError:
        raise PoseCliError("not a UTF-8 text file (a binary file given as a preset?)", path) from None
    except RecursionError:
        raise PoseCliError("not a preset: YAML nested too deeply", path) from None
    except OSError as exc:
        raise PoseCliError(f"cannot read preset ({exc.strerror or exc.__class__.__name__})", path) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise PoseCliError("a preset must be a YAML mapping", path)
    parents = raw.pop("extends", None) or []
    parents = [parents] if isinstance(parents, str) else parents
    if not isinstance(parents, list) or not all(isinstance(x, str) for x in parents):
        raise PoseCliError("'extends' must be a preset name or a list of names", path)
    merged: dict[str, Any] = {}
    for parent in parents:
        merged = deep_merge(merged, _read_layers(find_preset(parent, path.parent), (*seen, path.resolve()),
                                                 schema))
    return deep_merge(merged, raw if schema is None else validate(raw, str(path), schema))


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b=c' -> (['a', 'b'], YAML value of c)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise PoseCliError(f"override '{text}' is not of the form key.sub=value", "--set")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def nested(keys: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for k in reversed(keys):
        out = {k: out}
    return out


def override(cfg: Mapping[str, Any], key: str, value: Any, source: str = "--set") -> dict[str, Any]:
    """Set dotted `key` to `value` in a resolved config, validated like a preset layer."""
    return deep_merge(cfg, validate(nested(key.split("."), value), source, schema_for(cfg)))


def load_config(preset: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Resolve a preset (name or path): schema <- extends chain <- file <- `--set` overrides, the
    schema being that of the model family the preset and overrides name."""
    path = find_preset(preset)
    parsed = [parse_override(text) for text in overrides]
    raw = _read_layers(path, schema=None)
    for keys, value in parsed:
        raw = deep_merge(raw, nested(keys, value))
    schema = schema_for(raw)
    cfg = deep_merge(schema, _read_layers(path, schema=schema))
    for keys, value in parsed:
        cfg = deep_merge(cfg, validate(nested(keys, value), "--set", schema))
    _check_model_name(cfg, "--set" if any(k[:2] == ["model", "name"] for k, _ in parsed) else path)
    return cfg


def _check_model_name(cfg: Mapping[str, Any], source: str | Path) -> None:
    """An unknown `model.name` is named with the preset (or --set) that gave it, before any work."""
    from posecli.models import MODELS

    name = section(cfg, "model").get("name")
    if name not in MODELS:
        from_set = source == "--set"
        raise PoseCliError(f"unknown model '{name}' (known: {', '.join(MODELS)})" + (" in --set" if from_set else ""),
                           None if from_set else source)


def apply_run_options(cfg: Mapping[str, Any], *, data: list[str] | None = None, val: str | None = None,
                      steps: int | None = None, compile: bool | None = None,
                      init_from: str | None = None) -> dict[str, Any]:
    """The command-line shortcuts (--data, --val, --steps, --compile, --from) as overrides."""
    out = dict(cfg)
    for key, value, given in (("data.sources", data, bool(data)), ("data.val", val, val is not None),
                              ("train.steps", steps, steps is not None),
                              ("train.compile", compile, compile is not None),
                              ("train.init_from", init_from, init_from is not None)):
        if given:
            out = override(out, key, value, "command line")
    return out


def section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A section as the library functions take it (build_model, the loaders): unset (None) keys
    left out, so that "derived" stays derived (e.g. data.window = the model's window)."""
    return {k: v for k, v in cfg[name].items() if v is not None}


def dump_config(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False, default_flow_style=None)
