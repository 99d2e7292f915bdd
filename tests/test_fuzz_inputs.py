"""Fuzz: seeded damaged inputs for every command that reads user files (prepare for each format
family, infer --keypoints in three forms, presets, checkpoints, videos), run through the real CLI
in one worker process under a 1.5 GB address-space limit. Every case must end with exit 2 and one
error line naming the damaged file, no traceback, no output or temp file left, in bounded time
(or, for damage that leaves a valid file, exit 0). benchmarks/fuzz.py runs thousands."""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("av", reason='needs the video extra: pip install "posecli[video]"')
from fuzz_support import FAMILIES, generate, run_in_worker

CASES = 240


def test_damaged_inputs_fail_cleanly(tmp_path):
    cases = generate(tmp_path, CASES, seed=15)
    outcomes = run_in_worker(cases, timeout=900)
    problems = [(c.name, o.problem, c.blame) for c, o in zip(cases, outcomes) if o.problem]
    assert problems == [], "\n".join(map(str, problems))
    refused = Counter(c.name.split("/")[0] for c, o in zip(cases, outcomes) if o.code == 2)
    assert set(refused) == set(FAMILIES)                      # every family had cases that failed
    assert sum(refused.values()) >= CASES * 0.7               # most damage is caught, not absorbed
    assert max(o.peak_mb for o in outcomes) < 1024            # the worker never neared 1 GB
