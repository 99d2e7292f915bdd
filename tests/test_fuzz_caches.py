"""Seeded fuzzing of the cache readers and the options of the commands that read caches.

Damaged copies of a small valid cache (truncated at random offsets; datasets removed, renamed,
retyped, replaced by groups or reshaped; NaN/inf values; sequences out of range; attributes
missing or of the wrong type; datasets that declare 2^36 frames; random byte flips) are given to
the real commands, `info`, `eval` and `finetune` (tiny steps), in-process under an address-space
limit. Every one must exit 2 with one line naming the file, no traceback, nothing written, in
bounded time. Bad option values (zero, negative, NaN, huge) must exit 2 naming the option. Set
POSECLI_FUZZ_SEED / POSECLI_FUZZ_CASES to run other or more cases than the default few hundred.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine_data import make_cache
from posecli.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SEED = int(os.environ.get("POSECLI_FUZZ_SEED", "0"))
CASES = int(os.environ.get("POSECLI_FUZZ_CASES", "120"))     # damaged caches; each runs `info` and `eval`
FINETUNE_EVERY = 12                                         # and every 12th also a 1-step fine-tuning
MEMORY_HEADROOM = 1 << 30                                   # bytes of address space a command may add
SECONDS_PER_COMMAND = 60.0                                  # generous: CI machines are shared

FRAME = ("keypoints2d", "confidence", "keypoints3d")
SEQUENCE = ("seq_start", "seq_length", "subject", "action", "camera", "intrinsics", "image_size", "fps")


@contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM):
    """Cap this process's address space at its current size + `headroom` for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + headroom if hard == resource.RLIM_INFINITY else min(vm + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run(argv: list[str], capsys) -> tuple[int, str, float]:
    """Run the real CLI in-process; (exit code, stderr, seconds)."""
    capsys.readouterr()
    start = time.perf_counter()
    with memory_limit():
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, capsys.readouterr().err, time.perf_counter() - start


# ---------------------------------------------------------------- damage generators

def _replace(f: h5py.File, name: str, data, **kwargs) -> None:
    del f[name]
    f.create_dataset(name, data=data, **kwargs)


def _remove(f, rng, name):
    del f[name]
    return f"remove {name}"


def _rename(f, rng, name):
    f.move(name, name + "_old")
    return f"rename {name}"


def _as_group(f, rng, name):
    del f[name]
    f.create_group(name).create_dataset("x", data=np.zeros(3))
    return f"group where {name} belongs"


def _retype(f, rng, name):
    n = f[name].shape[0]
    _replace(f, name, np.array([b"x"] * n) if f[name].dtype.kind in "biuf" else np.zeros(n))
    return f"retype {name}"


def _reshape(f, rng, name):
    a = f[name][()]
    if a.dtype.kind not in "biuf":
        a = np.zeros(len(a))
    choice = int(rng.integers(4))
    if choice == 0 and a.ndim >= 2:
        a = a[:, :a.shape[1] - 1]                                   # 16 joints / fewer columns
    elif choice == 1:
        a = a[: max(len(a) - int(rng.integers(1, 3)), 0)]           # arrays of different lengths
    elif choice == 2:
        a = a.reshape(len(a), -1)[..., None]                        # an extra axis
    else:
        a = np.asarray(a.flat[0])                                   # a scalar
    _replace(f, name, a)
    return f"reshape {name} to {a.shape}"


def _non_finite(f, rng, name):
    a = f[name][()]
    flat = a.reshape(-1)
    flat[int(rng.integers(flat.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
    _replace(f, name, a)
    return f"non-finite {name}"


def _huge(f, rng, name):
    tail = f[name].shape[1:]
    del f[name]
    f.create_dataset(name, shape=(2 ** 36, *tail), dtype=np.float32, chunks=(512, *tail))
    return f"{name} declares 2^36 frames"


def _sequences(f, rng, name):
    start, length = f["seq_start"][()], f["seq_length"][()]
    i = int(rng.integers(len(start)))
    kind = int(rng.integers(5))
    if kind == 0:
        start[i] = -int(rng.integers(1, 10 ** 6))
    elif kind == 1:
        length[i] = -int(rng.integers(0, 5))
    elif kind == 2:
        start[i] += 10 ** int(rng.integers(2, 12))
    elif kind == 3:
        length[i] += int(rng.integers(1, 10 ** 6))
    else:
        length[i] = 0
    _replace(f, "seq_start", start)
    _replace(f, "seq_length", length)
    return f"sequence {i} out of range ({kind})"


def _attributes(f, rng, name):
    kind = int(rng.integers(7))
    if kind == 0:
        del f.attrs["schema_version"]
    elif kind == 1:
        f.attrs["schema_version"] = ["two", "2.5", "2"][int(rng.integers(3))]
    elif kind == 2:
        f.attrs["schema_version"] = 2.5
    elif kind == 3:
        f.attrs["schema_version"] = np.array([2, 2])
    elif kind == 4:
        del f.attrs["joint_status"]
    elif kind == 5:
        f.attrs["joint_status"] = np.zeros(16, np.uint8)
    else:
        f.attrs["joint_status"] = np.full(17, 9, np.uint8)
    return f"attribute damage {kind}"


STRUCTURAL = [
    (_remove, FRAME[:2] + SEQUENCE), (_rename, FRAME[:2] + SEQUENCE), (_as_group, FRAME + SEQUENCE),
    (_retype, FRAME + SEQUENCE), (_reshape, FRAME + SEQUENCE), (_non_finite, FRAME),
    (_huge, FRAME), (_sequences, ("seq_start",)), (_attributes, ("",)),
]


def damage(base: Path, out: Path, rng: np.random.Generator) -> tuple[str, bool]:
    """Write a damaged copy of `base` to `out`; (what was done, whether it must be refused)."""
    data = base.read_bytes()
    kind = int(rng.integers(10))
    if kind == 0:                                                   # truncated at a random offset
        cut = int(rng.integers(1, len(data)))
        out.write_bytes(data[:cut])
        return f"truncated at {cut} of {len(data)} bytes", True
    if kind == 1:                                                   # random bytes flipped
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 8))):
            buf[pos] ^= 1 << int(rng.integers(8))
        out.write_bytes(bytes(buf))
        return "bytes flipped", False                               # may land in unused space
    shutil.copyfile(base, out)
    fn, names = STRUCTURAL[int(rng.integers(len(STRUCTURAL)))]
    with h5py.File(out, "a") as f:
        what = fn(f, rng, names[int(rng.integers(len(names)))])
    return what, True


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def base_cache(tmp_path_factory) -> Path:
    return make_cache(tmp_path_factory.mktemp("fuzz") / "base.h5", sequences=3, length=12)


def assert_refused(code: int, err: str, seconds: float, name: str, what: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{what}: exit {code}\n{err}"
    assert len(lines) == 1 and name in lines[0], f"{what}: not one line naming {name}:\n{err}"
    assert "Traceback" not in err and seconds < SECONDS_PER_COMMAND, what


def test_damaged_caches_are_refused_by_every_command(base_cache, tmp_path, capsys):
    rng = np.random.default_rng(SEED)
    refused = tolerated = 0
    for case in range(CASES):
        cache = tmp_path / f"case{case:04d}.h5"
        what, must_refuse = damage(base_cache, cache, rng)
        report, run_dir = tmp_path / f"report{case}", tmp_path / f"run{case}"
        commands = [["info", str(cache)],
                    ["eval", "--checkpoint", "default", "--data", str(cache), "--out", str(report)]]
        if case % FINETUNE_EVERY == 0:
            commands.append(["finetune", "cmu", "--preset", "base", "--data", str(cache), "--steps", "1",
                             "--run-dir", str(run_dir), "--device", "cpu",
                             "--set", "model.size=xs", "--set", "model.window=9", "--set", "objective.mpjpe=1",
                             "--set", "train.batch_size=2", "--set", "train.tensorboard=false"])
        for argv in commands:
            code, err, seconds = run(argv, capsys)
            assert "Traceback" not in err and seconds < SECONDS_PER_COMMAND, f"{what}: {argv[0]}\n{err}"
            if must_refuse or code != 0:
                assert_refused(code, err, seconds, cache.name, f"{what}: {argv[0]}")
                assert not report.exists() and not run_dir.exists(), f"{what}: {argv[0]} left output"
                refused += 1
            else:
                tolerated += 1
            shutil.rmtree(report, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
        cache.unlink()
    assert refused >= 1.5 * CASES              # nearly every case is refused by every command
    assert sorted(p.name for p in tmp_path.iterdir()) == []


BAD_NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e30"]
OPTION_CASES = (
    [(["eval", "--checkpoint", "default", "--data", "{cache}", "--out", "{out}", option, value], option)
     for option in ("--stride", "--batch-size", "--input-noise", "--every") for value in BAD_NUMBERS
     if not (option == "--input-noise" and value == "0")]
    + [(["finetune", "cmu", "--preset", "base", "--data", "{cache}", "--run-dir", "{out}", "--set",
         f"train.{key}={value}"], f"train.{key}")
       for key in ("steps", "batch_size", "lr", "log_every", "val_every", "ckpt_every", "accumulate")
       for value in BAD_NUMBERS + ["-1e-3", "1.5", "x"] if not (key == "lr" and value in ("1.5",))]
    + [(["finetune", "cmu", "--preset", "base", "--data", "{cache}", "--run-dir", "{out}", "--steps", value],
        "--steps") for value in ("0", "-3", "nan")]
    + [(["export", "onnx", "--checkpoint", "default", "--output", "{out}.onnx", "--opset", value], "--opset")
       for value in ("0", "-1", "5", "1000", "nan")]
    + [(["prepare", "mocap", "{cache}", "-o", "{out}.h5", option, value], option)
       for option in ("--fps", "--units", "--cameras", "--seed") for value in ("0", "-1", "nan", "inf", "1e30")
       if not (option == "--seed" and value == "0")]
)


@pytest.mark.parametrize("case", range(len(OPTION_CASES)))
def test_bad_option_values_are_refused_before_any_work(case, base_cache, tmp_path, capsys):
    template, option = OPTION_CASES[case]
    out = tmp_path / "out"
    argv = [a.format(cache=base_cache, out=out) for a in template]
    code, err, seconds = run(argv, capsys)
    assert code == 2, f"{argv}: exit {code}\n{err}"
    assert "Traceback" not in err and seconds < SECONDS_PER_COMMAND
    assert option in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], f"{argv} left output"
