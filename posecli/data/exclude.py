"""`prepare --exclude`: drop every person whose image also belongs to another split.

The list comes from a text file (one image name per line, '#' comments) or from any file whose
image names posecli can read: an MPII file (.csv, .h5, .npy, mmpose .json list) or a COCO-style
annotation JSON. Matching is on exact frame names as readers store them (record.frame_names), and
a sequence with any excluded frame is dropped whole so no evaluation frame leaks into training.
"""

from __future__ import annotations

from pathlib import Path

from posecli.data.readers import mpii
from posecli.data.readers._files import load_json, read_text
from posecli.data.records import PrepareOptions, ReaderResult
from posecli.errors import PoseCliError


def load_exclude_names(path: Path, options: PrepareOptions | None = None) -> set[str]:
    """Image names listed by `path` (see module docstring for the accepted kinds)."""
    if not path.is_file():
        raise PoseCliError("exclude list not found", path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = load_json(path)
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            return {str(image.get("file_name", image.get("id"))) for image in data["images"]}
        return set(mpii.image_names(path, options))
    if suffix in mpii.KINDS:
        return set(mpii.image_names(path, options))
    lines = read_text(path).splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def apply_exclude(result: ReaderResult, names: set[str], source: Path) -> int:
    """Remove records with an excluded frame, counting their frames in result.dropped; returns it."""
    kept, removed = [], 0
    for record in result.records:
        if record.frame_names is not None and not names.isdisjoint(record.frame_names):
            removed += len(record)
        else:
            kept.append(record)
    if any(r.frame_names is None for r in result.records):
        result.notes.append(f"{result.dataset} records carry no image names: --exclude could not apply to them")
    result.records = kept
    if removed:
        result.dropped[f"excluded: listed in {source.name}"] += removed
    return removed
