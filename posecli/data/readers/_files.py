"""Opening the files readers are given, with one clear PoseCliError per way a file can be bad.

Readers (and `posecli infer --keypoints`) call these instead of json.load / h5py.File / np.load /
open directly, so that a truncated, empty, CRC-damaged or mistyped file always becomes one line
naming the file, never a traceback, and so that every size a file declares (zip entries, .npy
headers, HDF5 dataset shapes, text lines) is checked against posecli.limits before anything of
that size is allocated.
"""

from __future__ import annotations

import gzip
import json
import math
import pickle
import re
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

from posecli.errors import PoseCliError
from posecli.limits import MAX_LINE_BYTES, check_bytes, max_input_bytes

_CHUNK = 1 << 20


def read_bytes(path: Path, *, max_line: int | None = None) -> bytes:
    """A whole (plain or .gz) file, refused past the per-file limit while reading (so a small
    gzip that inflates to gigabytes stops at the limit, not at MemoryError); with `max_line`, a
    line longer than that is refused as soon as it is seen (a 400 MB single line never sits in
    memory whole)."""
    limit = max_input_bytes()
    gz = Path(path).name.lower().endswith(".gz")
    lines = _LineCheck(max_line, path) if max_line is not None else None
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            chunks, total = [], 0
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    check_bytes(total, path, "decompressed file" if gz else "file")
                if lines is not None:
                    lines.feed(chunk)
                chunks.append(chunk)
    except IsADirectoryError:
        raise PoseCliError("is a folder, expected a file", path) from None
    except OSError as exc:      # gzip.BadGzipFile is an OSError
        reason = exc.strerror or str(exc) or exc.__class__.__name__
        raise PoseCliError(f"cannot read file ({reason})", path) from None
    except (EOFError, zlib.error) as exc:
        raise PoseCliError(f"truncated or damaged gzip file ({exc.__class__.__name__})", path) from None
    return b"".join(chunks)


class _LineCheck:
    """Line lengths of a byte stream fed chunk by chunk; raises at the first line over the limit."""

    def __init__(self, max_line: int, path: Path):
        self.max_line, self.path, self.carry, self.line = max_line, path, 0, 1

    def feed(self, chunk: bytes) -> None:
        parts = chunk.split(b"\n")
        lengths = [self.carry + len(parts[0]), *map(len, parts[1:])]
        longest = max(lengths[:-1], default=0) if len(parts) > 1 else 0
        self.carry = lengths[-1]
        if max(longest, self.carry) > self.max_line:
            where = self.line + next((i for i, n in enumerate(lengths) if n > self.max_line), len(lengths) - 1)
            raise PoseCliError(f"line {where} is over {self.max_line / 1e6:g} MB long; not a text file of this "
                               "format?", self.path)
        self.line += len(parts) - 1


def read_text(path: Path, *, max_line: int | None = MAX_LINE_BYTES, errors: str = "strict") -> str:
    """A UTF-8 text file (plain or .gz), bounded in total size and, for line formats, in line
    length (a 400 MB single line is refused, not parsed)."""
    raw = read_bytes(path, max_line=max_line)
    try:
        return raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError:
        raise PoseCliError("not a UTF-8 text file", path) from None


def load_json(path: Path) -> Any:
    """Parse a JSON file; empty, truncated, too deep, non-UTF-8 or malformed files raise
    PoseCliError."""
    raw = read_bytes(path)
    if not raw.strip():
        raise PoseCliError("file is empty", path)
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise PoseCliError("not a UTF-8 JSON file", path) from None
    except RecursionError:
        raise PoseCliError("JSON nested too deeply (not a keypoint/annotation file?)", path) from None
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
    """Read dataset `key` fully; a missing key, a declared size over the limit or unreadable
    (truncated) data raises PoseCliError."""
    if key not in f:
        raise PoseCliError(f"HDF5 file has no '{key}' dataset (found: {', '.join(f.keys()) or 'none'})", path)
    if not isinstance(f[key], h5py.Dataset):
        raise PoseCliError(f"'{key}' is a group, expected a dataset", path)
    check_bytes(int(f[key].size) * int(f[key].dtype.itemsize), path, f"dataset '{key}'")
    try:
        return f[key][()]
    except (OSError, RuntimeError, TypeError) as exc:
        raise PoseCliError(f"cannot read dataset '{key}' ({exc.__class__.__name__}): file damaged?", path) from None


def _npy_header(f: IO[bytes], where: str, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, declared data bytes) of an .npy stream positioned at its magic string;
    declared sizes are checked against the limit here, before any array exists."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise PoseCliError(f"{where}not a readable .npy array header ({reason[:120]})", path) from None
    declared = math.prod(int(d) for d in shape) * (8 if dtype.hasobject else int(dtype.itemsize))
    check_bytes(declared, path, f"{where}array {list(shape)} of {dtype}")
    return tuple(int(d) for d in shape), dtype, declared


def _object_array_error(path: Path, where: str = "") -> PoseCliError:
    return PoseCliError(f"{where}array holds Python objects; pass --allow-pickle if you trust the file", path)


def load_npz(path: Path, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Every array of an .npz, name -> array. The zip directory and each member's .npy header are
    checked first (declared sizes against the limit, headers against the bytes really stored), so
    a zip bomb or a lying header is refused before allocating; truncated archives and CRC errors
    become one line; object (pickled) arrays need allow_pickle."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except IsADirectoryError:
        raise PoseCliError("is a folder, expected an .npz file", path) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        reason = "truncated or not a zip archive" if isinstance(exc, zipfile.BadZipFile) else exc.__class__.__name__
        raise PoseCliError(f"not a readable .npz file ({reason})", path) from None
    with archive:
        members = archive.infolist()
        check_bytes(sum(m.file_size for m in members), path, "npz contents")
        out: dict[str, np.ndarray] = {}
        for member in members:
            name = member.filename.removesuffix(".npy")
            where = f"npz entry '{name}': "
            try:
                with archive.open(member) as f:
                    _, dtype, declared = _npy_header(f, where, path)
                    if dtype.hasobject and not allow_pickle:
                        raise _object_array_error(path, where)
                    if not dtype.hasobject and declared > member.file_size:
                        raise PoseCliError(f"{where}header declares {declared:,} bytes but the entry holds "
                                           f"{member.file_size:,} (truncated or damaged)", path)
                with archive.open(member) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=allow_pickle)
            except PoseCliError:
                raise
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError,
                    pickle.UnpicklingError, AttributeError, ImportError, IndexError, KeyError,
                    UnicodeDecodeError, NotImplementedError, RuntimeError) as exc:
                reason = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
                raise PoseCliError(f"{where}damaged or truncated ({reason})", path) from None
    return out


def load_npy(path: Path, *, allow_pickle: bool = False) -> np.ndarray:
    """Load a .npy array; pickled object arrays need allow_pickle (they can run code). The header
    is checked first: a declared size over the limit or beyond the file's bytes is refused."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            _, dtype, declared = _npy_header(f, "", path)
            data_bytes = path.stat().st_size - f.tell()
    except OSError as exc:
        raise PoseCliError(f"not a readable .npy file ({exc.__class__.__name__})", path) from None
    if dtype.hasobject and not allow_pickle:
        raise _object_array_error(path)
    if not dtype.hasobject and declared > data_bytes:
        raise PoseCliError(f"not a readable .npy file (truncated: header declares {declared:,} bytes, "
                           f"file holds {data_bytes:,})", path)
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


