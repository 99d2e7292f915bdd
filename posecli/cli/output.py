"""What the long commands print: human output on a terminal or log, nothing with --quiet, and one
machine-readable JSON object on stdout with --json (for scripts and CI; nothing else goes to stdout).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")
JSON = typer.Option(False, "--json", help="Print one JSON summary on stdout instead of tables and progress.")


def human_console(quiet: bool, as_json: bool, *, stderr: bool = False) -> Console:
    """The console for tables and progress: silent with --quiet or --json."""
    return Console(stderr=stderr, quiet=quiet or as_json)


def jsonable(value: Any) -> Any:
    """Plain JSON values: paths as strings, numpy scalars/arrays as numbers/lists, NaN/inf as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def print_json(summary: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(jsonable(summary), indent=2) + "\n")
    sys.stdout.flush()
