"""Atomic file output: write to a temp file (or folder) beside the target, rename into place when
complete.

A killed process or an error leaves the old file (or nothing) behind, never half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from posecli.errors import PoseCliError


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


@contextmanager
def atomic_folder(path: str | Path, merge: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it becomes `path`. An existing `path` is
    replaced whole (moved aside first, so it is never half old, half new), or with `merge` keeps
    the files this run did not write (infer writes several videos' outputs into one folder)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoseCliError(f"cannot create output folder ({exc.strerror})", path.parent) from None
    if path.exists() and not path.is_dir():
        raise PoseCliError("output path exists and is not a folder", path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        umask_permissions(tmp)
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
        elif merge:
            for item in tmp.iterdir():
                os.replace(item, path / item.name)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
