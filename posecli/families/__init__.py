"""Model families, looked up by name (a small registry in the spirit of timm's).

FAMILIES names the module of each family; it is imported on first use, so importing the registry
costs nothing. A model name (posecli.models) belongs to the family that lists it in `models`;
DEFAULT is the family of presets and checkpoints that name no known model or family.
"""

from __future__ import annotations

import importlib
from functools import cache

from posecli.errors import PoseCliError
from posecli.families.base import Family

FAMILIES: dict[str, str] = {
    "lifter": "posecli.families.lifter.family",
    "image": "posecli.families.image.family",
}
DEFAULT = "lifter"


@cache
def get_family(name: str) -> Family:
    """The family called `name`; an unknown one is a user error (e.g. a checkpoint from elsewhere)."""
    if name not in FAMILIES:
        raise PoseCliError(f"unknown model family '{name}' (known: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[name]).FAMILY


def all_families() -> list[Family]:
    return [get_family(name) for name in FAMILIES]


def family_of_model(model_name: object) -> Family:
    """The family whose models include `model_name`; DEFAULT for an unknown name, which
    posecli.models then reports."""
    return next((f for f in all_families() if model_name in f.models), get_family(DEFAULT))


def family_of(model: object) -> Family:
    """The family of a built model (its `family` attribute, which checkpoints store)."""
    return get_family(str(getattr(model, "family", DEFAULT)))
