"""`posecli prepare`: run a format's reader, filter, validate, write one HDF5 cache, summarise.

Every check that can fail on user input runs before anything is written (inputs exist, output is
free and writable, values are finite and shaped right), and write_cache renames a complete temp
file into place, so a failed prepare never leaves a partial cache behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from posecli.data.cache import check_record, write_cache
from posecli.data.exclude import apply_exclude, load_exclude_names
from posecli.data.info import joints_table
from posecli.data.readers import get_reader
from posecli.data.records import PrepareOptions, ReaderResult
from posecli.errors import PoseCliError
from posecli.options import check_range
from posecli.output_path import check_output_file

DEFAULT_CACHE_DIR = Path("caches")


@dataclass
class PrepareSummary:
    """What a prepare run produced: the facts its table shows and tests check."""

    out: Path
    dataset: str
    split: str
    source_layout: str
    sequences: int
    frames: int
    dropped: dict[str, int]
    missing_rate: np.ndarray          # float [17]: fraction of frames where the joint has confidence 0
    joint_status: np.ndarray          # uint8 [17]: posecli.skeleton.JointStatus
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def default_output(fmt: str, split: str) -> Path:
    return DEFAULT_CACHE_DIR / f"{fmt}-{split}.h5"


def prepare(fmt: str, inputs: list[Path], out: Path | None, options: PrepareOptions, *, force: bool,
            command: str, crop_size: int = 256, crop_encoding: str = "raw") -> PrepareSummary:
    """Read `inputs` as `fmt`, apply options, and write the cache (default caches/<fmt>-<split>.h5).

    With `options.images` (a folder holding the frames the records name) one person crop of
    `crop_size` pixels per frame is stored too (cache schema v2, image family)."""
    start = time.perf_counter()
    inputs = [Path(p) for p in inputs]
    reader = _reader(fmt)
    check_prepare_options(options)
    if not inputs:
        raise PoseCliError(f"no input files given for format '{fmt}'")
    for path in inputs:
        if not path.exists():
            raise PoseCliError("input not found", path)
    if options.exclude is not None and not Path(options.exclude).is_file():
        raise PoseCliError("exclude list not found", options.exclude)
    if options.images is not None:
        _check_crop_options(Path(options.images), crop_size, crop_encoding)
    out = default_output(fmt, options.split) if out is None else Path(out)
    check_output(out, inputs, force=force)

    result = _run_reader(reader, fmt, inputs, options)
    if options.exclude is not None:
        apply_exclude(result, load_exclude_names(Path(options.exclude), options), Path(options.exclude))
    _validate(result, inputs)
    crops = None
    if options.images is not None:
        from posecli.data.image_cache import crops_for_records

        crops = crops_for_records(result.records, Path(options.images), crop_size)
        result.notes.append(f"{len(crops[0])} person crops of {crop_size}x{crop_size} px ({crop_encoding})")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoseCliError(f"cannot create output folder ({exc.strerror})", out.parent) from None
    try:
        write_cache(out, result, split=options.split, force=force, command=command, image_crops=crops,
                    crop_encoding=crop_encoding)
    except OSError as exc:
        raise PoseCliError(f"cannot write output ({exc.strerror or exc.__class__.__name__})", out) from None
    conf = np.concatenate([r.confidence for r in result.records])
    return PrepareSummary(
        out=out, dataset=result.dataset, split=options.split, source_layout=result.source_layout,
        sequences=len(result.records), frames=int(conf.shape[0]), dropped=dict(result.dropped),
        missing_rate=(conf <= 0).mean(axis=0), joint_status=np.asarray(result.joint_status, dtype=np.uint8),
        notes=list(result.notes), seconds=time.perf_counter() - start)


def check_output(out: Path, inputs: list[Path], *, force: bool) -> None:
    """Refuse, before any work, an output that exists, is a folder, is an input, or cannot be written.

    A missing output folder is created after the work (with or without -o), so the check applies to
    its first existing ancestor, which must be a writable folder."""
    if out.is_dir():
        raise PoseCliError("output is a folder; give a file name such as out.h5", out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise PoseCliError("output must be an .h5 file", out)
    resolved = out.resolve()
    if any(resolved == p.resolve() for p in inputs):
        raise PoseCliError("output would overwrite an input", out)
    if out.exists() and not force:
        raise PoseCliError("output exists (use --force to overwrite)", out)
    check_output_file(out, create_parents=True)


MAX_FPS = 1000.0          # resampling target; above it a resample is an accident, not a recording
UNITS_RANGE = (1e-6, 1e3)  # metres per file unit: micrometres .. kilometres
MAX_CAMERAS = 64


def check_prepare_options(options: PrepareOptions) -> None:
    """--fps, --units, --cameras and --seed: finite and in range, before any input is read."""
    if options.fps is not None:
        check_range("--fps", options.fps, 0, MAX_FPS, lo_open=True)
    if options.units is not None:
        check_range("--units", options.units, *UNITS_RANGE)
    check_range("--cameras", options.cameras, 1, MAX_CAMERAS, integer=True)
    check_range("--seed", options.seed, 0, 2**32 - 1, integer=True)


def _check_crop_options(images: Path, crop_size: int, crop_encoding: str) -> None:
    """--images/--crop-size/--crop-encoding, checked before any work."""
    from posecli.data.image_cache import ENCODINGS

    if not images.is_dir():
        raise PoseCliError("image folder not found", images)
    if crop_size < 32 or crop_size % 32:
        raise PoseCliError(f"--crop-size must be a multiple of 32 (>= 32), got {crop_size}")
    if crop_encoding not in ENCODINGS:
        raise PoseCliError(f"unknown --crop-encoding '{crop_encoding}' (known: {', '.join(ENCODINGS)})")


def _reader(fmt: str):
    try:
        return get_reader(fmt)
    except ModuleNotFoundError as exc:
        raise PoseCliError(f"format '{fmt}' is not available in this install ({exc.name} missing)") from None


def _run_reader(reader, fmt: str, inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """Call the reader; errors readers did not name are pinned on the input(s) they came from."""
    try:
        return reader(inputs, options)
    except PoseCliError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, OSError, UnicodeDecodeError) as exc:
        where = inputs[0] if len(inputs) == 1 else None
        names = "" if where else f"{', '.join(p.name for p in inputs)}: "
        raise PoseCliError(f"{names}cannot read as '{fmt}' ({exc.__class__.__name__}: {exc})", where) from exc


def _validate(result: ReaderResult, inputs: list[Path]) -> None:
    """Non-emptiness, shapes and finiteness, with the error pinned on the input(s)."""
    where = inputs[0] if len(inputs) == 1 else None
    prefix = "" if where else f"{', '.join(p.name for p in inputs)}: "
    if not result.records:
        dropped = ", ".join(f"{n} {reason}" for reason, n in result.dropped.items()) or "none read"
        raise PoseCliError(f"{prefix}no persons left after filtering ({dropped})", where)
    for i, record in enumerate(result.records):
        try:
            check_record(record, i)
        except PoseCliError as exc:
            raise PoseCliError(f"{prefix}{exc}", where) from None


def summary_table(summary: PrepareSummary) -> Group:
    """Counts and drops by reason, then per-joint status and missing rate, as rich tables."""
    table = Table(title=escape(f"{summary.out}  ({summary.dataset}, split {summary.split}, from {summary.source_layout})"),
                  show_header=True, header_style="bold")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("sequences", f"{summary.sequences:,}")
    table.add_row("frames (persons) kept", f"{summary.frames:,}")
    for reason, n in sorted(summary.dropped.items()):
        table.add_row(f"dropped: {escape(reason)}", f"{n:,}")
    for note in summary.notes:
        table.add_row(f"[dim]{escape(note)}[/]", "")
    table.add_row("time", f"{summary.seconds:.2f} s")
    return Group(table, joints_table(summary.joint_status, summary.missing_rate))
