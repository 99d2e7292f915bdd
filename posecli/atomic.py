"""Atomic file output: write to a temp file (or folder) beside the target, rename into place when
complete.

A killed process or an error leaves the old file (or nothing) behind, never half a file. Temp
names carry the writing host and process id (`.<name>.<host>-<pid>.<random>.tmp<suffix>`), so
the next write of the same output (a rerun, a resumed training) removes the temp files of
writers on this host that died (kill -9, power loss) instead of letting them pile up. With
`overwrite=False` the final step is a hard link, which fails if the target appeared meanwhile:
checking "does the output exist?" and putting the file in place are one atomic step, so two runs
racing for one output cannot both succeed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from posecli.errors import PoseCliError


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"


def _owner() -> str:
    """The `<host>-<pid>` tag put in temp names."""
    return f"{_host()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files/folders of `path` left by dead writers on this host; returns them."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:tmp-|old-)?{re.escape(_host())}-(\d+)\.")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def umask_permissions(path: str | Path) -> None:
    """Give a temp file or folder (created 0600/0700) the permissions a normal create would have."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~mask)


@contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp path in the target folder (same extension, so writers that infer the format
    from it still work); on success it gets a normal file mode and replaces `path` (or, with
    `overwrite=False`, is linked into place only if `path` still does not exist)."""
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=f".tmp{path.suffix}",
                                    dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask_permissions(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path` only if nothing is there: link() refuses an existing target atomically."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise PoseCliError("output exists (use --force to overwrite)", path) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():            # no hard links on this file system: best effort
            raise PoseCliError("output exists (use --force to overwrite)", path) from None
        os.replace(tmp, path)


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
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_owner()}.", dir=path.parent))
    try:
        umask_permissions(tmp)
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
        elif merge:
            for item in tmp.iterdir():
                os.replace(item, path / item.name)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-{_owner()}.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
