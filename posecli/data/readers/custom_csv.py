"""CSV form of the `custom` format: one row per frame per person, one x_/y_/c_ column per joint.

Spreadsheets and pandas write this easily; `# key: value` comment lines before the header carry
what JSON puts at its top level (layout, fps, image_size, intrinsics, dataset). See
docs/custom-format.md.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from posecli.data.readers._files import read_text
from posecli.data.readers.custom_fields import (
    ParsedFile,
    RawSequence,
    as_array,
    check_confidence,
    parse_fps,
    parse_image_size,
    parse_intrinsics,
    parse_layout,
)
from posecli.errors import PoseCliError
from posecli.limits import MAX_FILLED_FRAMES
from posecli.skeleton import LAYOUTS, Layout

META_KEYS = ("layout", "fps", "image_size", "intrinsics", "dataset")
TEXT_COLUMNS = ("subject", "action", "camera", "split")


def _split_header(path: Path) -> tuple[dict[str, str], list[str], list[tuple[int, list[str]]]]:
    """Comment metadata, the header and the data rows (with their 1-based line numbers)."""
    lines = read_text(path).splitlines()
    meta: dict[str, str] = {}
    start = 0
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        text = lines[start].lstrip("#").strip()
        if text:
            key, sep, value = text.partition(":")
            key = key.strip().lower()
            if not sep or key not in META_KEYS:
                raise PoseCliError(f"line {start + 1}: expected '# key: value' with key in {list(META_KEYS)}", path)
            meta[key] = value.strip()
        start += 1
    try:
        rows = list(csv.reader(lines[start:]))
    except csv.Error as exc:
        raise PoseCliError(f"malformed CSV ({exc})", path) from None
    if not rows:
        raise PoseCliError("no header row (expected sequence,frame,x_<joint>,y_<joint>,...)", path)
    header = [h.strip() for h in rows[0]]
    body = [(start + 2 + i, row) for i, row in enumerate(rows[1:]) if any(cell.strip() for cell in row)]
    if not body:
        raise PoseCliError("has a header but no data rows", path)
    return meta, header, body


def _numbers(text: str, count: int, what: str, path: Path) -> list[float]:
    parts = [p for p in re.split(r"[\s,x]+", text.strip().strip("[]")) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise PoseCliError(f"'# {what}:' needs {count} numbers, got '{text}'", path)
    return values


def _infer_layout(names: set[str], path: Path) -> Layout:
    matches = {layout.name: layout for layout in LAYOUTS.values() if set(layout.joints) == names}
    if len(matches) != 1:
        found = f"several layouts match ({', '.join(sorted(matches))})" if matches else "no layout has these joints"
        raise PoseCliError(f"{found}; add a line '# layout: <name>' before the header", path)
    return next(iter(matches.values()))


def _columns(header: list[str], layout: Layout, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Column indices of x/y per joint ([K, 2]) and of c per joint ([K] or None)."""
    position = {name: i for i, name in enumerate(header)}
    if len(position) != len(header):
        raise PoseCliError("header repeats a column name", path)
    for required in ("sequence", "frame"):
        if required not in position:
            raise PoseCliError(f"header has no '{required}' column", path)
    expected = {"sequence", "frame", *TEXT_COLUMNS}
    expected |= {f"{axis}_{j}" for j in layout.joints for axis in "xyc"}
    unknown = [h for h in header if h not in expected]
    if unknown:
        raise PoseCliError(f"unknown column(s) {unknown[:5]} for layout {layout.name} "
                           f"(joints: {', '.join(layout.joints)})", path)
    absent = [f"{axis}_{j}" for j in layout.joints for axis in "xy" if f"{axis}_{j}" not in position]
    if absent:
        raise PoseCliError(f"missing column(s) {absent[:6]} for layout {layout.name}", path)
    xy = np.array([[position[f"x_{j}"], position[f"y_{j}"]] for j in layout.joints])
    has_c = [f"c_{j}" in position for j in layout.joints]
    if any(has_c) and not all(has_c):
        raise PoseCliError("give a c_<joint> column for every joint or for none", path)
    c = np.array([position[f"c_{j}"] for j in layout.joints]) if all(has_c) else None
    return xy, c


def read_csv_file(path: Path) -> ParsedFile:
    """Parse and validate one custom CSV file; frame gaps become frames with confidence 0."""
    meta, header, body = _split_header(path)
    if "layout" in meta:
        layout = parse_layout(meta["layout"], path)
    else:
        layout = _infer_layout({h[2:] for h in header if h.startswith("x_")}, path)
    xy_cols, c_cols = _columns(header, layout, path)
    fps = parse_fps(float(_numbers(meta["fps"], 1, "fps", path)[0]), "fps", path) if "fps" in meta else 0.0
    size = parse_image_size(_numbers(meta["image_size"], 2, "image_size", path), "image_size", path) \
        if "image_size" in meta else None
    intrinsics = parse_intrinsics(_numbers(meta["intrinsics"], 4, "intrinsics", path), "intrinsics", path) \
        if "intrinsics" in meta else None
    position = {name: i for i, name in enumerate(header)}
    numeric_cols = np.concatenate([xy_cols.ravel(), [] if c_cols is None else c_cols]).astype(int)

    groups: dict[str, dict] = {}
    for line, row in body:
        if len(row) != len(header):
            raise PoseCliError(f"line {line} has {len(row)} cells, the header has {len(header)} (truncated?)", path)
        name = row[position["sequence"]].strip()
        frame_text = row[position["frame"]].strip()
        if not re.fullmatch(r"[0-9]{1,15}", frame_text):
            raise PoseCliError(f"line {line}: frame must be a whole number >= 0, got '{frame_text}'", path)
        frame = int(frame_text)
        group = groups.setdefault(name, {"frames": {}, "text": {c: row[position[c]].strip()
                                                                for c in TEXT_COLUMNS if c in position}})
        for column, value in group["text"].items():
            if row[position[column]].strip() != value:
                raise PoseCliError(f"line {line}: {column} changes within sequence '{name}'", path)
        if frame in group["frames"]:
            raise PoseCliError(f"line {line}: frame {frame} of sequence '{name}' appears twice", path)
        try:
            group["frames"][frame] = [float(row[i]) for i in numeric_cols]
        except ValueError:
            bad = next(header[i] for i in numeric_cols if not _is_float(row[i]))
            raise PoseCliError(f"line {line} column {bad}: '{row[position[bad]]}' is not a number", path) from None
        values = np.asarray(group["frames"][frame])
        if not np.isfinite(values).all():
            bad = header[numeric_cols[int(np.argmin(np.isfinite(values)))]]
            raise PoseCliError(f"line {line} column {bad} is NaN or infinite "
                               "(mark a missing joint with c_<joint> = 0 instead)", path)

    k = layout.num_joints
    sequences, notes, filled = [], [], 0
    for name, group in groups.items():
        frames = sorted(group["frames"])
        t = frames[-1] - frames[0] + 1
        if t - len(frames) > MAX_FILLED_FRAMES:
            raise PoseCliError(f"sequence '{name}' has {len(frames):,} rows but its frame numbers span "
                               f"{frames[0]:,}..{frames[-1]:,}: filling {t - len(frames):,} missing frames is "
                               f"over the limit of {MAX_FILLED_FRAMES:,} (a wrong frame number?)", path)
        kp = np.zeros((t, k, 2))
        conf = np.zeros((t, k))
        for frame, values in group["frames"].items():
            row = np.asarray(values)
            kp[frame - frames[0]] = row[: 2 * k].reshape(k, 2)
            conf[frame - frames[0]] = row[2 * k:] if c_cols is not None else 1.0
        filled += t - len(frames)
        text = group["text"]
        sequences.append(RawSequence(
            keypoints2d=as_array(kp, (t, k, 2), f"sequence '{name}'", path).astype(np.float32),
            confidence=check_confidence(conf, f"c_ columns of sequence '{name}'", path),
            subject=text.get("subject", ""), action=text.get("action", name), camera=text.get("camera", ""),
            split=text.get("split") or None, frame_names=[str(f) for f in range(frames[0], frames[-1] + 1)],
            fps=fps, image_size=size, intrinsics=intrinsics,
        ))
    if filled:
        notes.append(f"{path.name}: {filled} missing frame(s) inside sequences filled with confidence 0")
    return ParsedFile(layout=layout, sequences=sequences, dataset=meta.get("dataset") or None, notes=notes)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
