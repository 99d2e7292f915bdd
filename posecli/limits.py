"""Upper bounds on what an input file may make posecli allocate.

A few bytes can declare huge sizes (an .npy header saying 2^36 frames, a zip entry that inflates
to gigabytes, a frame number of 10^12 in a CSV). Readers size every allocation from the data and
check it against these bounds first, so a hostile or damaged file is refused with one line
instead of exhausting memory. The bounds sit far above any real dataset posecli reads (the whole
CMU mocap npz decodes to 31 MB, Human3.6M's largest 2D file to about 500 MB);
POSECLI_MAX_INPUT_BYTES raises the per-file one for bigger data.
"""

from __future__ import annotations

import os
from pathlib import Path

from posecli.errors import PoseCliError


def _env_bytes(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(float(value)) if value.strip() else default
    except ValueError:
        raise PoseCliError(f"environment variable {name} must be a number of bytes, got '{value}'") from None


MAX_INPUT_BYTES = _env_bytes("POSECLI_MAX_INPUT_BYTES", 1 << 30)   # decoded arrays / text of one file
MAX_LINE_BYTES = 1 << 20          # one line of a text format (CSV, BVH, expmap rows)
MAX_JSON_DEPTH = 64               # nesting of JSON arrays/objects (keypoint files need 4)
MAX_FRAMES = 10_000_000           # frames of one sequence or video (46 hours at 60 Hz)
MAX_FILLED_FRAMES = 100_000       # missing frames a reader may fill inside one sequence


def max_input_bytes() -> int:
    """The per-file bound, read when called so tests and users can change the variable."""
    return _env_bytes("POSECLI_MAX_INPUT_BYTES", MAX_INPUT_BYTES)


def check_bytes(declared: int, path: str | Path, what: str) -> None:
    """Refuse a declared size (bytes) above the per-file bound, before allocating it."""
    limit = max_input_bytes()
    if declared > limit:
        raise PoseCliError(f"{what} declares {declared / 1e6:,.0f} MB, over the {limit / 1e6:,.0f} MB "
                           "limit for one input (damaged file? set POSECLI_MAX_INPUT_BYTES to allow more)",
                           path)


def check_frames(frames: int, path: str | Path | None, what: str = "sequence") -> None:
    """Refuse a frame count above MAX_FRAMES before anything of that length is allocated."""
    if frames > MAX_FRAMES:
        raise PoseCliError(f"{what} would have {frames:,} frames, over the limit of {MAX_FRAMES:,} "
                           "(damaged file or a wrong frame number?)", path)
