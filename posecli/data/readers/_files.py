"""Opening the files readers are given, with one clear PoseCliError per way a file can be bad.

Readers call these instead of json.load / h5py.File / np.load directly so that a truncated,
empty or mistyped file always becomes one line naming the file, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from posecli.errors import PoseCliError


def load_json(path: Path) -> Any:
    """Parse a JSON file; empty, truncated, non-UTF-8 or malformed files raise PoseCliError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise PoseCliError(f"cannot read file ({exc.strerror})", path) from None
    if not raw.strip():
        raise PoseCliError("file is empty", path)
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise PoseCliError("not a UTF-8 JSON file", path) from None
    except json.JSONDecodeError as exc:
        ended = exc.pos >= len(raw.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if ended else "invalid JSON"
        detail = exc.msg.removesuffix(" starting at")
        raise PoseCliError(f"{what} at line {exc.lineno} column {exc.colno} ({detail})", path) from None


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only; a truncated or non-HDF5 file raises PoseCliError."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        detail = re.search(r"\(([^:)]+)", str(exc))       # e.g. "(truncated file: eof = ...)"
        reason = detail.group(1).strip() if detail else exc.__class__.__name__
        raise PoseCliError(f"not a readable HDF5 file ({reason})", path) from None


def h5_array(f: h5py.File, key: str, path: Path) -> np.ndarray:
    """Read dataset `key` fully; a missing key or unreadable (truncated) data raises PoseCliError."""
    if key not in f:
        raise PoseCliError(f"HDF5 file has no '{key}' dataset (found: {', '.join(f.keys()) or 'none'})", path)
    try:
        return f[key][()]
    except (OSError, RuntimeError, TypeError) as exc:
        raise PoseCliError(f"cannot read dataset '{key}' ({exc.__class__.__name__}): file damaged?", path) from None


def load_npy(path: Path, *, allow_pickle: bool = False) -> np.ndarray:
    """Load a .npy array; pickled object arrays need allow_pickle (they can run code)."""
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise PoseCliError("array holds Python objects; pass --allow-pickle if you trust the file",
                               path) from None
        reason = "truncated" if "reshape" in str(exc) else str(exc)
        raise PoseCliError(f"not a readable .npy file ({reason})", path) from None
    except (OSError, EOFError) as exc:
        raise PoseCliError(f"not a readable .npy file ({exc.__class__.__name__})", path) from None


def require_finite(array: np.ndarray, path: Path, what: str, labels: list | None = None) -> None:
    """Refuse NaN/inf coordinates, naming the first bad row (or its label) so the user can find it."""
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise PoseCliError(f"{what} {labels[row] if labels is not None else row} has NaN or inf coordinates", path)


