"""Shared fixtures. Tests that need the real data beside the clone (../shared/data) skip cleanly
when it is absent; set POSECLI_SHARED_DATA to point elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One torch thread for every test: results do not depend on the machine's core count, and tests
# running beside other work do not oversubscribe the CPU.
torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("POSECLI_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def shared_file(relative: str) -> Path:
    """Path to a file under the shared data, skipping the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data file not found: {relative}")
    return path
