"""The `custom` format: posecli's own JSON/CSV layout for keypoints you produced yourself.

Users export whatever they have (a detector's output, a lab's mocap) into one simple documented
shape (docs/custom-format.md) naming a registered layout; this reader validates it strictly, so a
mistake becomes one clear line naming the file and the place rather than a silently bad cache,
then converts every sequence to H36M-17 through posecli.skeleton.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from posecli.data.readers._files import read_bytes
from posecli.data.readers.custom_csv import read_csv_file
from posecli.data.readers.custom_fields import (
    ParsedFile,
    RawSequence,
    as_array,
    check_confidence,
    check_metres,
    parse_fps,
    parse_image_size,
    parse_intrinsics,
    parse_layout,
    text_field,
)
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import Layout, convert_to_h36m

SUFFIXES = (".json", ".csv")
TOP_KEYS = {"layout", "fps", "image_size", "intrinsics", "dataset", "sequences"}
SEQUENCE_KEYS = {"subject", "action", "camera", "split", "keypoints2d", "confidence", "keypoints3d",
                 "frame_names", "fps", "image_size", "intrinsics"}



def read_json_file(path: Path) -> ParsedFile:
    """Parse and validate one custom JSON file (see docs/custom-format.md)."""
    try:
        doc = json.loads(read_bytes(path).decode("utf-8"))
    except RecursionError:
        raise PoseCliError("JSON nested too deeply", path) from None
    except json.JSONDecodeError as exc:
        raise PoseCliError(f"not valid JSON (truncated?): {exc.msg} at line {exc.lineno} column {exc.colno}",
                           path) from None
    except UnicodeDecodeError:
        raise PoseCliError("not a UTF-8 text file", path) from None
    if not isinstance(doc, dict):
        raise PoseCliError("top level must be an object with 'layout' and 'sequences'", path)
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise PoseCliError(f"unknown key(s) {unknown}; allowed: {sorted(TOP_KEYS)}", path)
    if "layout" not in doc:
        raise PoseCliError("missing 'layout' (e.g. \"coco17\")", path)
    layout = parse_layout(doc["layout"], path)
    sequences = doc.get("sequences")
    if not isinstance(sequences, list) or not sequences:
        raise PoseCliError("'sequences' must be a non-empty list", path)
    defaults = {
        "fps": parse_fps(doc["fps"], "fps", path) if "fps" in doc else 0.0,
        "image_size": parse_image_size(doc["image_size"], "image_size", path) if "image_size" in doc else None,
        "intrinsics": parse_intrinsics(doc["intrinsics"], "intrinsics", path) if "intrinsics" in doc else None,
    }
    dataset = text_field(doc["dataset"], "dataset", path) if "dataset" in doc else None
    parsed = [_json_sequence(s, i, layout, defaults, path) for i, s in enumerate(sequences)]
    return ParsedFile(layout=layout, sequences=parsed, dataset=dataset)


def _json_sequence(seq: Any, i: int, layout: Layout, defaults: dict, path: Path) -> RawSequence:
    where = f"sequences[{i}]"
    if not isinstance(seq, dict):
        raise PoseCliError(f"{where} must be an object", path)
    unknown = sorted(set(seq) - SEQUENCE_KEYS)
    if unknown:
        raise PoseCliError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(SEQUENCE_KEYS)}", path)
    if "keypoints2d" not in seq:
        raise PoseCliError(f"{where} has no 'keypoints2d'", path)
    k = layout.num_joints
    kp2d = as_array(seq["keypoints2d"], (None, None, 2), f"{where}.keypoints2d", path)
    if kp2d.shape[1] != k:
        raise PoseCliError(f"{where}.keypoints2d has {kp2d.shape[1]} joints per frame, "
                           f"layout {layout.name} has {k}", path)
    t = kp2d.shape[0]
    conf = np.ones((t, k))
    if "confidence" in seq:
        conf = as_array(seq["confidence"], (t, k), f"{where}.confidence", path)
    kp3d = None
    if "keypoints3d" in seq:
        kp3d = check_metres(as_array(seq["keypoints3d"], (t, k, 3), f"{where}.keypoints3d", path),
                            f"{where}.keypoints3d", path)
    names = seq.get("frame_names")
    if names is not None and (not isinstance(names, list) or len(names) != t):
        raise PoseCliError(f"{where}.frame_names must be a list of {t} names (one per frame)", path)
    return RawSequence(
        keypoints2d=kp2d.astype(np.float32),
        confidence=check_confidence(conf, f"{where}.confidence", path),
        keypoints3d=kp3d,
        subject=text_field(seq.get("subject", ""), f"{where}.subject", path),
        action=text_field(seq.get("action", ""), f"{where}.action", path),
        camera=text_field(seq.get("camera", ""), f"{where}.camera", path),
        split=text_field(seq["split"], f"{where}.split", path) if "split" in seq else None,
        frame_names=None if names is None else [text_field(n, f"{where}.frame_names", path) for n in names],
        fps=parse_fps(seq["fps"], f"{where}.fps", path) if "fps" in seq else defaults["fps"],
        image_size=(parse_image_size(seq["image_size"], f"{where}.image_size", path)
                    if "image_size" in seq else defaults["image_size"]),
        intrinsics=(parse_intrinsics(seq["intrinsics"], f"{where}.intrinsics", path)
                    if "intrinsics" in seq else defaults["intrinsics"]),
    )


# ------------------------------------------------------------- reader entry point

def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files given directly, plus the .json/.csv files inside any folder given."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise PoseCliError("folder has no .json or .csv files", item)
            files.extend(found)
        elif not item.is_file():
            raise PoseCliError("file not found", item)
        elif item.suffix.lower() not in SUFFIXES:
            raise PoseCliError(f"custom files must end in .json or .csv, not '{item.suffix}'", item)
        else:
            files.append(item)
    if not files:
        raise PoseCliError("no input files given for the custom format")
    return files


def to_record(raw: RawSequence, layout: Layout) -> SequenceRecord:
    """Convert one validated sequence to H36M-17 (3D joints the layout lacks stay 0)."""
    kp2d, conf = convert_to_h36m(raw.keypoints2d, raw.confidence, layout)
    kp3d = None if raw.keypoints3d is None else convert_to_h36m(raw.keypoints3d, None, layout)[0]
    return SequenceRecord(
        keypoints2d=kp2d, confidence=conf, keypoints3d=kp3d, subject=raw.subject, action=raw.action,
        camera=raw.camera, intrinsics=raw.intrinsics, image_size=raw.image_size, fps=raw.fps,
        frame_names=raw.frame_names,
    )


def _keep(raw: RawSequence, options: PrepareOptions, dropped: Counter) -> bool:
    if options.split not in (None, "", "all") and raw.split != options.split:
        dropped["other split (sequences)"] += 1
        return False
    if options.subjects and raw.subject not in options.subjects:
        dropped["other subject (sequences)"] += 1
        return False
    return True


def read_custom(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """Read posecli custom JSON/CSV files (docs/custom-format.md) into H36M-17 records."""
    files = expand_inputs(inputs)
    parsed = [(path, read_csv_file(path) if path.suffix.lower() == ".csv" else read_json_file(path))
              for path in files]
    layout = parsed[0][1].layout
    for path, item in parsed[1:]:
        if item.layout is not layout:
            raise PoseCliError(f"layout {item.layout.name} differs from {layout.name} in {files[0].name};"
                               " prepare each layout separately", path)
    datasets = {item.dataset for _, item in parsed if item.dataset}
    if len(datasets) > 1:
        raise PoseCliError(f"files name different datasets {sorted(datasets)}", files[0])
    wants_split = options.split not in (None, "", "all")
    if wants_split and not any(s.split is not None for _, item in parsed for s in item.sequences):
        raise PoseCliError(f"--split {options.split} asked for, but no sequence has a 'split'; "
                           "add one or use --split all", files[0])
    dropped: Counter = Counter()
    records = [to_record(raw, layout) for _, item in parsed for raw in item.sequences
               if _keep(raw, options, dropped)]
    if not records:
        raise PoseCliError(f"no sequences left after the split/subject filters ({dict(dropped)})", files[0])
    notes = [note for _, item in parsed for note in item.notes]
    return ReaderResult(records=records, dataset=datasets.pop() if datasets else "custom",
                        source_layout=layout.name, joint_status=layout.status, sources=files,
                        dropped=dropped, notes=notes)
