"""A seeded generator of damaged inputs for every posecli command that reads user files, and a
worker that runs them through the real CLI entry point under a memory limit.

Each case is a small valid input (made here, no shared data) damaged one way: truncated at a random
offset, bytes flipped, NaN/inf or absurd numbers put in, huge sizes declared in headers, values of
the wrong type or shape. `must_fail` cases are invalid by construction and must exit 2; the others
(a flipped byte in a float may still be a float) may also succeed, but never with another code.
Used by tests/test_fuzz_inputs.py (a few hundred cases) and benchmarks/fuzz.py (thousands).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from posecli.skeleton import get_layout

MEMORY_LIMIT = 1536 << 20          # RLIMIT_AS of the worker process (torch alone maps ~750 MB)
CASE_SECONDS = 30                  # per-case wall-clock bound
# The worker runs with a per-file input limit of 64 MB (POSECLI_MAX_INPUT_BYTES) so that zip bombs
# past it stay quick to make; the mechanism is the same as at the default 1 GiB.
WORKER_INPUT_LIMIT = 64 << 20
BOMB_BYTES = 96 << 20

COCO17 = list(get_layout("coco17").joints)
STANDING = np.array([[80, 20], [83, 17], [77, 17], [86, 19], [74, 19], [92, 35], [68, 35], [96, 55],
                     [64, 55], [98, 72], [62, 72], [88, 70], [72, 70], [89, 90], [71, 90], [90, 110],
                     [70, 110]], dtype=np.float64)
VIDEO_FRAMES = 8


@dataclass
class Case:
    name: str                      # family/mutation, for counts
    argv: list[str]                # posecli arguments
    blame: str                     # the file the error line must name
    out: str                       # what must not exist afterwards
    must_fail: bool = True


@dataclass
class Outcome:
    name: str
    code: int | None
    error_lines: list[str] = field(default_factory=list)
    traceback: bool = False
    seconds: float = 0.0
    peak_mb: float = 0.0           # peak RSS of the worker during the case
    output_left: bool = False
    problem: str = ""              # empty when the case behaved


# ------------------------------------------------------------------ valid seeds

def _person_json(rng: np.random.Generator, frames: int) -> list:
    return (STANDING[None] + rng.normal(0, 2, (frames, 17, 2))).round(2).tolist()


def custom_json(rng: np.random.Generator) -> dict:
    return {"layout": "coco17", "fps": 30, "image_size": [640, 480],
            "sequences": [{"subject": "s1", "action": "walk", "keypoints2d": _person_json(rng, 6),
                           "confidence": np.full((6, 17), 0.9).tolist()}]}


def custom_csv(rng: np.random.Generator) -> str:
    buf = io.StringIO()
    buf.write("# layout: coco17\n# fps: 30\n")
    w = csv.writer(buf)
    w.writerow(["sequence", "frame", *[f"{a}_{j}" for j in COCO17 for a in "xyc"]])
    for f, pose in enumerate(np.asarray(_person_json(rng, 6))):
        w.writerow(["walk", f, *[f"{v:g}" for p in pose for v in (*p, 0.9)]])
    return buf.getvalue()


def coco_json(rng: np.random.Generator) -> dict:
    anns = []
    for i in range(3):
        pts = STANDING + rng.normal(0, 2, (17, 2)) + [40 * i, 0]
        anns.append({"id": 100 + i, "image_id": 1 + i % 2, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                     "bbox": [60.0 + 40 * i, 10.0, 50.0, 110.0], "area": 5500.0,
                     "keypoints": [v for p in pts.round(1) for v in (*p, 2)]})
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                       {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": COCO17}]}


def keypoints_json(rng: np.random.Generator) -> list:
    return [{"image_id": f, "score": 0.9,
             "keypoints": [v for p in (STANDING + [f, 0] + rng.normal(0, 1, (17, 2))).round(2) for v in (*p, 0.9)]}
            for f in range(VIDEO_FRAMES)]


def mocap_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    base = rng.normal(0, 0.2, (1, 38, 3)) + [0, 1.0, 0]
    base[0, :, 1] = np.linspace(0.0, 1.7, 38)
    walk = base + np.linspace(0, 0.5, 6)[:, None, None] * [1, 0, 0]
    return {"train__walk__01_01": walk.astype(np.float32)}


# A human BVH: the joint names posecli.skeleton maps to H36M-17, 3 rotation channels each.
_BVH_TREE = [("Hips", None, (0, 0, 0)), ("LeftUpLeg", "Hips", (10, 0, 0)), ("LeftLeg", "LeftUpLeg", (0, -45, 0)),
             ("LeftFoot", "LeftLeg", (0, -45, 0)), ("RightUpLeg", "Hips", (-10, 0, 0)),
             ("RightLeg", "RightUpLeg", (0, -45, 0)), ("RightFoot", "RightLeg", (0, -45, 0)),
             ("Spine", "Hips", (0, 25, 0)), ("Neck", "Spine", (0, 30, 0)), ("Head", "Neck", (0, 10, 0)),
             ("LeftArm", "Neck", (18, -5, 0)), ("LeftForeArm", "LeftArm", (0, -28, 0)),
             ("LeftHand", "LeftForeArm", (0, -25, 0)), ("RightArm", "Neck", (-18, -5, 0)),
             ("RightForeArm", "RightArm", (0, -28, 0)), ("RightHand", "RightForeArm", (0, -25, 0))]


def bvh_hierarchy() -> tuple[str, int]:
    """(HIERARCHY text, channel count) of the 16-joint human skeleton above, in centimetres."""
    children: dict[str | None, list] = {}
    for name, parent, offset in _BVH_TREE:
        children.setdefault(parent, []).append((name, offset))

    def block(name: str, offset, depth: int, root: bool) -> list[str]:
        pad = "  " * depth
        chans = "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" if root else \
            "3 Zrotation Xrotation Yrotation"
        lines = [f"{pad}{'ROOT' if root else 'JOINT'} {name}", f"{pad}{{", f"{pad}  OFFSET {' '.join(map(str, offset))}",
                 f"{pad}  CHANNELS {chans}"]
        kids = children.get(name, [])
        for kid, off in kids:
            lines += block(kid, off, depth + 1, False)
        if not kids:
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 -8 0", f"{pad}  }}"]
        return lines + [f"{pad}}}"]

    text = "\n".join(["HIERARCHY", *block("Hips", (0, 0, 0), 0, True)]) + "\n"
    return text, 6 + 3 * (len(_BVH_TREE) - 1)


def bvh_text(rng: np.random.Generator, frames: int = 4) -> str:
    hierarchy, channels = bvh_hierarchy()
    rows = [" ".join(f"{v:.3f}" for v in [0, 95, 0, *rng.normal(0, 5, channels - 3)]) for _ in range(frames)]
    return hierarchy + f"MOTION\nFrames: {frames}\nFrame Time: 0.0333333\n" + "\n".join(rows) + "\n"


def humaneva_npz(rng: np.random.Generator, path3d: Path, path2d: Path) -> None:
    world = (rng.normal(0, 0.3, (5, 15, 3)) + [3.0, 2.0, 1.0]).astype(np.float32)
    np.savez(path3d, positions_3d=np.array({"Train/S1": {"Walking 1": world}}, dtype=object))
    det = (rng.uniform(100, 400, (5, 15, 2))).astype(np.float32)
    np.savez(path2d, positions_2d=np.array({"Train/S1": {"Walking 1": [det, det, det]}}, dtype=object),
             metadata=np.array({"layout_name": "humaneva15"}, dtype=object))


PRESET = """model:
  name: stformer
  size: xs
train:
  steps: 2
  batch_size: 4
"""


# ------------------------------------------------------------------ mutations

def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(len(data.rstrip()) - 1, 1))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] = rng.randrange(256)
    return bytes(out)


def binary_garbage(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))


_BAD_VALUES = [float("nan"), float("inf"), -float("inf"), 1e308 * 10, "12", None, [], {}, [1, [2, 3]],
               True, 1e12, -1e12, "NaN"]


def _json_paths(doc, prefix=()) -> list[tuple]:
    """Every path to a leaf or container inside a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _json_paths(v, (*prefix, i))
    return out


def _set(doc, path: tuple, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def json_mutation(doc, rng: random.Random) -> tuple[str, bytes, bool]:
    """(mutation name, bytes, must_fail) of one structural change to a JSON document."""
    doc = copy.deepcopy(doc)
    kind = rng.choice(["value", "number_nan", "deep", "drop", "ragged", "huge_id"])
    paths = [p for p in _json_paths(doc) if p]
    if kind == "deep":
        depth = rng.choice([200, 5000, 100_000])
        return kind, ("[" * depth + "]" * depth).encode(), True
    if kind == "number_nan":
        numeric = [p for p in paths if isinstance(_get(doc, p), (int, float)) and not isinstance(_get(doc, p), bool)]
        path = rng.choice(numeric)
        _set(doc, path, rng.choice([float("nan"), float("inf"), -float("inf")]))
        return kind, json.dumps(doc).encode(), False
    if kind == "drop":
        path = rng.choice(paths)
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
        return kind, json.dumps(doc).encode(), False
    if kind == "ragged":
        lists = [p for p in paths if isinstance(_get(doc, p), list) and _get(doc, p)]
        path = rng.choice(lists)
        _get(doc, path).append(rng.choice([[1.0], "x", [[1, 2], [3]], None]))
        return kind, json.dumps(doc).encode(), False
    if kind == "huge_id":
        numeric = [p for p in paths if isinstance(_get(doc, p), int) and not isinstance(_get(doc, p), bool)]
        if numeric:
            _set(doc, rng.choice(numeric), rng.choice([3 * 10 ** 8, 10 ** 12, 2 ** 63, -1]))
        return kind, json.dumps(doc).encode(), False
    _set(doc, rng.choice(paths), rng.choice(_BAD_VALUES))
    return kind, json.dumps(doc).encode(), False


def _get(doc, path: tuple):
    for key in path:
        doc = doc[key]
    return doc


def text_mutation(text: str, rng: random.Random) -> tuple[str, bytes, bool]:
    """Line formats (CSV, BVH): a cell becomes NaN/inf/huge/garbage, a row loses or gains cells,
    or one line grows enormous."""
    lines = text.splitlines()
    kind = rng.choice(["cell", "cells", "long_line", "huge_number"])
    i = rng.randrange(len(lines))
    cells = lines[i].replace(",", " ").split()
    if kind == "long_line":
        lines[i] = lines[i] + "1," * rng.choice([10, 600_000])
        return kind, ("\n".join(lines) + "\n").encode(), False
    sep = "," if "," in lines[i] else " "
    parts = lines[i].split(sep)
    if kind == "cells" and len(parts) > 1:
        parts = parts[:-rng.randint(1, len(parts) - 1)] if rng.random() < 0.5 else parts + ["1"] * rng.randint(1, 4)
    elif parts:
        j = rng.randrange(len(parts))
        parts[j] = rng.choice(["nan", "inf", "-inf", "1e400", "abc", "", "1e12", "1000000000000", "-5", "²"]) \
            if kind == "cell" else rng.choice(["1e300", "999999999999", "1e-300"])
    del cells
    lines[i] = sep.join(parts)
    return kind, ("\n".join(lines) + "\n").encode(), False


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def npz_mutation(arrays: dict[str, np.ndarray], rng: random.Random) -> tuple[str, bytes, bool]:
    """An npz whose arrays hold NaN, have the wrong shape/dtype, or declare huge sizes."""
    arrays = {k: np.array(v) for k, v in arrays.items()}
    key = rng.choice(sorted(k for k, v in arrays.items() if v.dtype.kind in "fiu"))
    kind = rng.choice(["nan", "shape", "dtype", "huge_header", "bomb", "empty"])
    buf = io.BytesIO()
    if kind == "bomb":
        return kind, _bomb(key), True
    if kind == "huge_header":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for k, v in arrays.items():
                if k != key:
                    z.writestr(f"{k}.npy", _npy(v))
            shape = (rng.choice([2 ** 36, 2 ** 31, 10 ** 12]), *arrays[key].shape[1:])
            z.writestr(f"{key}.npy", npy_header(shape) + bytes(64))
        return kind, buf.getvalue(), True
    a = arrays[key].astype(np.float64)
    if kind == "nan":
        a.flat[rng.randrange(a.size)] = rng.choice([np.nan, np.inf])
        arrays[key] = a
    elif kind == "shape":
        arrays[key] = a.reshape(-1)[: rng.randint(0, a.size)].reshape(-1, 1) if rng.random() < 0.5 else a[..., :1]
    elif kind == "dtype":
        arrays[key] = np.array([["a", "b"]]) if rng.random() < 0.5 else np.array([1 + 2j])
    else:
        arrays[key] = a[:0]
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in arrays.items():
            z.writestr(f"{k}.npy", _npy(v))
    return kind, buf.getvalue(), False


_BOMBS: dict[str, bytes] = {}


def _bomb(key: str) -> bytes:
    """An npz of ~100 KB whose one entry inflates to BOMB_BYTES (made once per key, then reused)."""
    if key not in _BOMBS:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open(f"{key}.npy", "w", force_zip64=True) as f:
                f.write(npy_header((BOMB_BYTES // 4,)))
                block = bytes(1 << 22)
                for _ in range(BOMB_BYTES >> 22):
                    f.write(block)
        _BOMBS[key] = buf.getvalue()
    return _BOMBS[key]


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def byte_mutation(data: bytes, rng: random.Random, *, truncation_fails: bool) -> tuple[str, bytes, bool]:
    kind = rng.choice(["truncate", "truncate", "flip", "garbage", "empty"])
    if kind == "truncate":
        return kind, truncate(data, rng), truncation_fails
    if kind == "flip":
        return kind, flip_bytes(data, rng), False
    if kind == "garbage":
        return kind, binary_garbage(rng), True
    return kind, b"", True


# ------------------------------------------------------------------ case generation

class Fixtures:
    """Things several cases share: a short video, a tiny checkpoint, valid keypoints."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.video = root / "clip.mp4"
        self.checkpoint = root / "tiny.pt"
        self.keypoints = root / "kp.json"
        if not self.video.exists():
            _make_video(self.video)
        if not self.checkpoint.exists():
            _make_checkpoint(self.checkpoint)
        self.keypoints.write_text(json.dumps(keypoints_json(np.random.default_rng(0))))


def _make_video(path: Path) -> None:
    import av

    x = np.linspace(0, 255, 160, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        stream = c.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for f in range(VIDEO_FRAMES):
            img = np.broadcast_to((x + 8 * f) % 256, (120, 160, 3)).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)


def _make_checkpoint(path: Path) -> None:
    import torch

    from posecli.engine.checkpoint import save_checkpoint
    from posecli.models import build_model

    torch.manual_seed(0)
    cfg = {"model": {"name": "stformer", "size": "xs", "window": 9, "dim": 32, "depth": 1}}
    save_checkpoint(path, build_model(dict(cfg["model"])).eval(), cfg)


FAMILIES = ("custom_json", "custom_csv", "coco", "mocap_npz", "bvh", "humaneva", "keypoints_json",
            "keypoints_npz", "preset", "checkpoint", "video")


def generate(root: Path, count: int, seed: int = 0, families: tuple[str, ...] = FAMILIES) -> list[Case]:
    """`count` damaged-input cases spread over the families, files written under `root`."""
    fixtures = Fixtures(root / "fixtures")
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        family = families[i % len(families)]
        folder = root / f"case{i:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        cases.append(_case(family, folder, rng, np.random.default_rng([seed, i]), fixtures))
    return cases


def _prepare_case(fmt: str, name: str, files: list[Path], blame: Path, folder: Path, must_fail: bool,
                  extra: tuple[str, ...] = ()) -> Case:
    out = folder / "out" / "cache.h5"
    out.parent.mkdir(exist_ok=True)
    return Case(name, ["prepare", fmt, *map(str, files), "-o", str(out), *extra], str(blame), str(out), must_fail)


def _infer_case(name: str, video: Path, folder: Path, blame: Path, must_fail: bool, *,
                keypoints: Path, checkpoint: Path) -> Case:
    out = folder / "out"
    return Case(name, ["infer", str(video), "--out", str(out), "--keypoints", str(keypoints), "--checkpoint",
                       str(checkpoint), "--no-viewer", "--device", "cpu"], str(blame), str(out), must_fail)


def _case(family: str, folder: Path, rng: random.Random, nrng: np.random.Generator, fx: Fixtures) -> Case:
    structural = rng.random() < 0.6
    if family in ("custom_json", "coco", "keypoints_json"):
        doc = {"custom_json": custom_json, "coco": coco_json, "keypoints_json": keypoints_json}[family](nrng)
        if structural:
            kind, data, must = json_mutation(doc, rng)
        else:
            kind, data, must = byte_mutation(json.dumps(doc, indent=1).encode(), rng, truncation_fails=True)
        path = folder / ("kp.json" if family == "keypoints_json" else "data.json")
        path.write_bytes(data)
        name = f"{family}/{kind}"
        if family == "keypoints_json":
            return _infer_case(name, fx.video, folder, path, must, keypoints=path, checkpoint=fx.checkpoint)
        return _prepare_case("custom" if family == "custom_json" else "coco", name, [path], path, folder, must)
    if family in ("custom_csv", "bvh"):
        text = custom_csv(nrng) if family == "custom_csv" else bvh_text(nrng)
        if structural:
            kind, data, must = text_mutation(text, rng)
        else:
            kind, data, must = byte_mutation(text.encode(), rng, truncation_fails=False)
        path = folder / ("data.csv" if family == "custom_csv" else "take.bvh")
        path.write_bytes(data)
        fmt = "custom" if family == "custom_csv" else "mocap"
        return _prepare_case(fmt, f"{family}/{kind}", [path], path, folder, must, ("--cameras", "1"))
    if family in ("mocap_npz", "keypoints_npz"):
        arrays = mocap_arrays(nrng) if family == "mocap_npz" else {
            "keypoints2d": (STANDING[None] + nrng.normal(0, 1, (VIDEO_FRAMES, 17, 2))).astype(np.float32)}
        if family == "keypoints_npz":
            arrays["skeleton"] = np.array("coco17")
        if structural:
            kind, data, must = npz_mutation(arrays, rng)
            must = kind in ("huge_header", "bomb", "dtype", "empty") or (kind == "shape" and family == "mocap_npz")
            if kind == "nan" and family == "mocap_npz":
                must = True
        else:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            kind, data, must = byte_mutation(buf.getvalue(), rng, truncation_fails=True)
        path = folder / ("cmu.npz" if family == "mocap_npz" else "kp.npz")
        path.write_bytes(data)
        name = f"{family}/{kind}"
        if family == "keypoints_npz":
            return _infer_case(name, fx.video, folder, path, must, keypoints=path, checkpoint=fx.checkpoint)
        return _prepare_case("mocap", name, [path], path, folder, must, ("--cameras", "1"))
    if family == "humaneva":
        p3, p2 = folder / "data_3d_humaneva15.npz", folder / "data_2d_humaneva15_gt.npz"
        humaneva_npz(nrng, p3, p2)
        victim = rng.choice([p3, p2])
        kind, data, must = byte_mutation(victim.read_bytes(), rng, truncation_fails=True)
        victim.write_bytes(data)
        return _prepare_case("humaneva", f"humaneva/{kind}", [p3, p2], victim, folder, must, ("--allow-pickle",))
    if family == "preset":
        path = folder / "bad.yaml"
        kind = rng.choice(["binary", "truncate", "type", "deep", "flip"])
        must = True
        if kind == "binary":
            data = binary_garbage(rng) + b"\xff\xfe\x00"
        elif kind == "truncate":
            data, must = truncate(PRESET.encode(), rng), False
        elif kind == "type":
            data = PRESET.replace("steps: 2", rng.choice(["steps: [1, 2]", "steps: {a: 1}", "steps: abc",
                                                          "steps: .nan"])).encode()
        elif kind == "deep":
            data = ("model: " + "[" * 400 + "]" * 400 + "\n").encode()
        else:
            data, must = flip_bytes(PRESET.encode(), rng), False
        path.write_bytes(data)
        out = folder / "run"
        return Case(f"preset/{kind}", ["pretrain", "--preset", str(path), "--run-dir", str(out), "--steps", "1",
                                       "--device", "cpu"], str(path), str(out), must)
    if family == "checkpoint":
        path = folder / "model.pt"
        kind, data, must = byte_mutation(fx.checkpoint.read_bytes(), rng, truncation_fails=True)
        path.write_bytes(data)
        return _infer_case(f"checkpoint/{kind}", fx.video, folder, path, must, keypoints=fx.keypoints,
                           checkpoint=path)
    path = folder / "clip.mp4"
    kind, data, must = byte_mutation(fx.video.read_bytes(), rng, truncation_fails=False)
    path.write_bytes(data)
    return _infer_case(f"video/{kind}", path, folder, path, must, keypoints=fx.keypoints, checkpoint=fx.checkpoint)


# ------------------------------------------------------------------ worker

def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_case(case: Case) -> Outcome:
    """Run one case in this process through posecli.cli.main and judge it."""
    import contextlib

    from posecli.cli import main

    err, out = io.StringIO(), io.StringIO()
    code: int | None = None
    _reset_peak()
    base = _peak_rss_mb()
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                main(list(case.argv))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except _Timeout:
        code = None
    except BaseException as exc:  # a crash the CLI let through: exactly what the fuzz hunts
        import traceback

        err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
        code = 1
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    text = err.getvalue() + out.getvalue()
    outcome = Outcome(case.name, code, [ln for ln in text.splitlines() if ln.startswith("error:")],
                      "Traceback" in text, seconds, max(_peak_rss_mb() - base, 0.0) + base,
                      _output_left(Path(case.out)))
    outcome.problem = judge(case, outcome, text)
    return outcome


def _output_left(out: Path) -> bool:
    """True when the command left its output (or a temp file beside it)."""
    if out.exists():
        return True
    return any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())


def judge(case: Case, o: Outcome, text: str) -> str:
    if o.code is None:
        return f"ran past {CASE_SECONDS} s"
    if o.traceback or o.code not in (0, 2):
        return f"exit {o.code}, traceback: {text.strip().splitlines()[-1][:300] if text.strip() else ''}"
    if o.code == 0:
        return "exit 0 on an input that is invalid by construction" if case.must_fail else ""
    if len(o.error_lines) != 1:
        return f"{len(o.error_lines)} error lines"
    if Path(case.blame).name not in o.error_lines[0]:
        return f"error does not name {Path(case.blame).name}: {o.error_lines[0][:300]}"
    if o.output_left:
        return "failed but left output"
    return ""


def worker_main() -> None:
    """Read cases (JSON lines) on stdin, print outcomes (JSON lines), under the memory limit."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import torch  # noqa: F401  (import once, outside the per-case peaks)

    import posecli.cli  # noqa: F401

    for line in sys.stdin:
        case = Case(**json.loads(line))
        print(json.dumps(asdict(run_case(case))), flush=True)


def run_in_worker(cases: list[Case], timeout: float) -> list[Outcome]:
    """Run all cases in one worker subprocess under RLIMIT_AS (torch is imported once)."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "POSECLI_MAX_INPUT_BYTES": str(WORKER_INPUT_LIMIT),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "worker"],
                          input="".join(json.dumps(asdict(c)) + "\n" for c in cases), capture_output=True,
                          text=True, env=env, timeout=timeout)
    outcomes = [Outcome(**json.loads(line)) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(outcomes) != len(cases):
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"worker stopped after {len(outcomes)} of {len(cases)} cases (exit {proc.returncode}): "
                           + " | ".join(tail))
    return outcomes


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    worker_main()
