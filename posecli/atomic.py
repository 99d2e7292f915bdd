"""Atomic file output: write to a temp file beside the target, rename into place when complete.

A killed process or an error leaves the old file (or nothing) behind, never half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask_permissions(path: str | Path) -> None:
    """Give a temp file or folder (created 0600/0700) the permissions a normal create would have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~mask)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target folder (same extension, so writers that infer the format
    from it still work); on success it gets a normal file mode and replaces `path`."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                    dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
