"""COCO-family 2D readers: COCO, CrowdPose, AI Challenger, Halpe, PoseTrack18 and COCO results JSON.

All share one path (pycocotools indexes the file): each person annotation becomes a length-1
sequence in H36M-17 (subject = image file name, or video name for PoseTrack18). Crowd regions and
persons without a labelled keypoint are dropped and counted. Visibility v=0 -> confidence 0, v=1/2
-> 1. A COCO *results* list (detector output) takes confidence from its per-keypoint scores, or
from the instance score when the third values are plain visibility flags; image sizes come from an
annotation file given as another input, if any. PoseTrack18 groups a video's frames by track_id
into sequences, split wherever a frame is unlabelled so every sequence is contiguous; the files do
not state a frame rate, so fps is stored as 0 (unknown).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from posecli.data.readers._files import load_json, require_finite
from posecli.data.readers.coco_npz import is_coco_npz, read_coco_npz
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.skeleton import Layout, convert_to_h36m, get_layout

NO_KEYPOINTS = "no labelled keypoints"
CROWD = "crowd region"
NOT_PERSON = "not a person category"


@dataclass(frozen=True)
class Family:
    """How one COCO-style dataset differs from COCO: its layouts (picked by the file's keypoint
    count, e.g. Halpe ships 26 and 136 points) and whether frames form tracks."""

    dataset: str
    layouts: tuple[str, ...]
    tracks: bool = False

    def layout_for(self, num_keypoints: int, path: Path) -> Layout:
        layouts = [get_layout(name) for name in self.layouts]
        for layout in layouts:
            if layout.num_joints == num_keypoints:
                return layout
        expected = " or ".join(f"{l.num_joints} ({l.name})" for l in layouts)
        raise PoseCliError(f"annotations have {num_keypoints} keypoints, expected {expected}", path)


COCO_FAMILY = Family("coco", ("coco17",))
CROWDPOSE = Family("crowdpose", ("crowdpose14",))
AIC = Family("aic", ("aic14",))
HALPE = Family("halpe", ("halpe26", "halpe136"))
POSETRACK18 = Family("posetrack18", ("posetrack18",), tracks=True)


def read_coco(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    """Official COCO JSON (annotations or results), or COCO's keypoints as one npz (coco_npz)."""
    npz = [p for p in inputs if is_coco_npz(p)]
    if npz:
        if len(inputs) > 1:
            raise PoseCliError("give the COCO keypoints npz on its own (it holds train2017 and val2017)", npz[0])
        return read_coco_npz(npz[0], options)
    return read_family(inputs, options, COCO_FAMILY)


def read_crowdpose(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    return read_family(inputs, options, CROWDPOSE)


def read_aic(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    return read_family(inputs, options, AIC)


def read_halpe(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    return read_family(inputs, options, HALPE)


def read_posetrack18(inputs: list[Path], options: PrepareOptions) -> ReaderResult:
    return read_family(inputs, options, POSETRACK18)


# ---------------------------------------------------------------- shared path

@dataclass
class _Persons:
    """Persons kept from one file, before conversion: keypoints in the source layout."""

    xy: np.ndarray            # float64 [P, K, 2]
    conf: np.ndarray          # float32 [P, K]
    anns: list[dict]
    images: dict[Any, dict]   # image_id -> image entry (may be empty for bare results)
    layout: Layout


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Folders stand for the *.json files in them (e.g. PoseTrack's one file per video)."""
    out: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise PoseCliError("folder has no .json files", path)
            out.extend(found)
        else:
            out.append(path)
    return out


def read_family(inputs: list[Path], options: PrepareOptions, family: Family) -> ReaderResult:
    """Read annotation files (dicts) or one results file (list) plus optional annotation files."""
    files = expand_inputs(inputs)
    loaded = [(path, load_json(path)) for path in files]
    for path, data in loaded:
        if not isinstance(data, (list, dict)):
            raise PoseCliError(f"expected a COCO annotation object or a results list, got {type(data).__name__}", path)
    results = [(p, d) for p, d in loaded if isinstance(d, list)]
    annotations = [(p, d) for p, d in loaded if isinstance(d, dict)]
    dropped: Counter = Counter()
    notes: list[str] = []
    if results:
        if len(results) > 1:
            raise PoseCliError("give one results JSON at a time (plus an annotation file for image sizes)",
                               results[1][0])
        images: dict[Any, dict] = {}
        for path, data in annotations:
            images.update(_index(data, path).imgs)
        path, data = results[0]
        persons = [(path, _results_persons(data, path, family, images, dropped, notes))]
        if not annotations:
            notes.append("no annotation file given: image sizes unknown, subject = image id")
    else:
        persons = [(path, _annotation_persons(_index(data, path), path, family, dropped))
                   for path, data in annotations]
    records: list[SequenceRecord] = []
    used = {group.layout.name: group.layout for _, group in persons if group.anns}
    if len(used) > 1:
        raise PoseCliError(f"inputs mix layouts {', '.join(used)}: prepare them into separate caches", files[0])
    layout = next(iter(used.values()), get_layout(family.layouts[0]))
    tracks = 0
    for path, group in persons:
        if not group.anns:
            continue
        kp, conf = convert_to_h36m(group.xy, group.conf, layout)
        if family.tracks:
            found, sequences = _track_records(kp, conf, group, path)
            tracks += found
            records.extend(sequences)
        else:
            records.extend(_photo_records(kp, conf, group))
    if family.tracks:
        notes.append(f"{tracks} tracks -> {len(records)} contiguous sequences (split at unlabelled frames); "
                     "frame rate unknown, fps stored as 0")
    return ReaderResult(records=records, dataset=family.dataset, source_layout=layout.name,
                        joint_status=layout.status, sources=files, dropped=dropped, notes=notes)


def _index(data: dict, path: Path) -> COCO:
    """pycocotools index of an annotation file, with structural errors named."""
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise PoseCliError(f"not a COCO keypoints file: no '{key}' list", path)
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise PoseCliError(f"malformed COCO annotation or image entry (missing {exc})", path) from None
    return coco


def _keypoint_array(anns: list[dict], path: Path, family: Family) -> tuple[np.ndarray, Layout]:
    """[P, K, 3] float64 keypoints and the family layout whose K the file uses."""
    labels = [a.get("id", a.get("image_id")) for a in anns]
    for ann, label in zip(anns, labels):
        values = ann.get("keypoints")
        if not isinstance(values, list) or len(values) % 3:
            raise PoseCliError(f"annotation {label}: 'keypoints' must be a list of x, y, v triplets", path)
    layout = family.layout_for(len(anns[0]["keypoints"]) // 3, path) if anns else get_layout(family.layouts[0])
    k = layout.num_joints
    for ann, label in zip(anns, labels):
        if len(ann["keypoints"]) != 3 * k:
            raise PoseCliError(f"annotation {label} has {len(ann['keypoints']) // 3} keypoints, "
                               f"expected {k} like the rest of the file", path)
    try:
        array = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), k, 3)
    except (TypeError, ValueError):
        raise PoseCliError("keypoints contain non-numeric values", path) from None
    require_finite(array, path, "annotation", labels)
    return array, layout


def _person_categories(coco: COCO) -> set | None:
    cats = coco.dataset.get("categories") or []
    ids = {c["id"] for c in cats if c.get("name") == "person"} or {c["id"] for c in cats}
    return ids or None


def _annotation_persons(coco: COCO, path: Path, family: Family, dropped: Counter) -> _Persons:
    person_ids = _person_categories(coco)
    anns = []
    for ann in coco.dataset["annotations"]:
        if person_ids is not None and ann.get("category_id") not in person_ids:
            dropped[NOT_PERSON] += 1
        elif ann.get("iscrowd"):
            dropped[CROWD] += 1
        else:
            anns.append(ann)
    for ann in anns:
        if ann.get("image_id") not in coco.imgs:
            raise PoseCliError(f"annotation {ann.get('id')} refers to image_id {ann.get('image_id')} "
                               f"that is not in 'images'", path)
    array, layout = _keypoint_array(anns, path, family)
    conf = (array[..., 2] > 0).astype(np.float32)
    return _keep_labelled(array[..., :2], conf, anns, coco.imgs, layout, dropped)


def _results_persons(data: list, path: Path, family: Family, images: dict[Any, dict],
                     dropped: Counter, notes: list[str]) -> _Persons:
    for entry in data:
        if not isinstance(entry, dict) or "image_id" not in entry:
            raise PoseCliError("results list entries need 'image_id' and 'keypoints'", path)
        if "keypoints" not in entry:
            raise PoseCliError("results have no 'keypoints' (box detections?): posecli needs keypoint results", path)
        if images and entry["image_id"] not in images:
            raise PoseCliError(f"result for image_id {entry['image_id']} has no image in the annotation file", path)
    array, layout = _keypoint_array(data, path, family)
    third = array[..., 2]
    if np.any(third != np.round(third)):
        conf = np.clip(third, 0.0, 1.0).astype(np.float32)
        notes.append("confidence = per-keypoint scores from the results file")
    else:
        scores = np.array([float(e.get("score", 1.0)) for e in data], dtype=np.float32).reshape(-1, 1)
        conf = np.where(third > 0, np.clip(scores, 0.0, 1.0), 0.0).astype(np.float32)
        notes.append("confidence = instance score (results carry visibility flags, not keypoint scores)")
    return _keep_labelled(array[..., :2], conf, list(data), images, layout, dropped)


def _keep_labelled(xy: np.ndarray, conf: np.ndarray, anns: list[dict], images: dict[Any, dict],
                   layout: Layout, dropped: Counter) -> _Persons:
    keep = (conf > 0).any(axis=1)
    if not keep.all():
        dropped[NO_KEYPOINTS] += int((~keep).sum())
    return _Persons(xy=xy[keep], conf=conf[keep], anns=[a for a, k in zip(anns, keep) if k], images=images,
                    layout=layout)


def _image_name(image: dict | None, image_id: Any) -> str:
    return str(image.get("file_name", image_id)) if image else str(image_id)


def _image_size(image: dict | None) -> tuple[float, float] | None:
    if image and "width" in image and "height" in image:
        return float(image["width"]), float(image["height"])
    return None


def _photo_records(kp: np.ndarray, conf: np.ndarray, persons: _Persons) -> list[SequenceRecord]:
    records = []
    for i, ann in enumerate(persons.anns):
        image = persons.images.get(ann["image_id"])
        name = _image_name(image, ann["image_id"])
        records.append(SequenceRecord(keypoints2d=kp[i:i + 1], confidence=conf[i:i + 1], subject=name,
                                      image_size=_image_size(image), frame_names=[name]))
    return records


def _video_and_frame(image: dict) -> tuple[str, int]:
    """PoseTrack image -> (video name, frame number), from its path 'images/val/<video>/<frame>.jpg'."""
    name = Path(str(image.get("file_name", "")))
    video = name.parent.name or str(image.get("vid_id", ""))
    frame = int(name.stem) if name.stem.isdigit() else int(image.get("frame_id", image["id"]))
    return video, frame


def _track_records(kp: np.ndarray, conf: np.ndarray, persons: _Persons,
                   path: Path) -> tuple[int, list[SequenceRecord]]:
    """Sequences of one file: a track's frames in order, split where a frame number is skipped."""
    tracks: dict[tuple[str, Any], list[tuple[int, int]]] = defaultdict(list)
    for i, ann in enumerate(persons.anns):
        if "track_id" not in ann:
            raise PoseCliError(f"annotation {ann.get('id')} has no track_id (not a PoseTrack file?)", path)
        video, frame = _video_and_frame(persons.images[ann["image_id"]])
        tracks[(video, ann["track_id"])].append((frame, i))
    records = []
    for (video, track), items in tracks.items():
        items.sort()
        runs: list[list[tuple[int, int]]] = [[items[0]]]
        for prev, cur in zip(items, items[1:]):
            if cur[0] == prev[0]:
                raise PoseCliError(f"video {video} track {track} appears twice in frame {cur[0]}", path)
            if cur[0] != prev[0] + 1:
                runs.append([])
            runs[-1].append(cur)
        for run in runs:
            idx = [i for _, i in run]
            first = persons.images[persons.anns[idx[0]]["image_id"]]
            records.append(SequenceRecord(
                keypoints2d=kp[idx], confidence=conf[idx], subject=video, action=f"track_{track}",
                image_size=_image_size(first), fps=0.0,
                frame_names=[_image_name(persons.images[persons.anns[i]["image_id"]], "") for i in idx]))
    return len(tracks), records
