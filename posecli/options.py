"""Range checks for numeric settings: preset keys (posecli.config's schema) and command options.

One helper so that every number a user gives is refused the same way, with one line naming the
setting, its allowed range and the value, before any work: zero, negative, NaN or absurdly large
values would otherwise surface as a traceback ("cannot convert float NaN to integer"), a silent
no-op, or minutes of work and gigabytes of memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from posecli.errors import PoseCliError


def _describe(lo: float | None, hi: float | None, lo_open: bool, integer: bool) -> str:
    kind = "an integer" if integer else "a finite number"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return kind + (" " + " and ".join(parts) if parts else "")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, integer: bool = False, source: str | None = None) -> Any:
    """Return `value` if it is a finite number (an integer when `integer`) within [lo, hi]
    ((lo, hi] when `lo_open`); else raise one PoseCliError naming `name` (and `source`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or v <= hi)
    if not ok:
        raise PoseCliError(f"{name} must be {_describe(lo, hi, lo_open, integer)}, got {value!r}", source)
    return int(value) if integer else value


def refuse_unknown(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """One PoseCliError naming the first (sorted) key of `given` that is not `known`, and the known
    ones: "{what} 'key' (known: a, b)"."""
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise PoseCliError(f"{what} '{unknown[0]}' (known: {', '.join(known)})")
