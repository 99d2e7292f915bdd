"""The one output-path check, run by every command (prepare, eval, infer, export, train, info
--plot) before any work: a result computed for minutes must not fail at the last step because its
output was a folder where a file belongs, a file where a folder belongs, or not writable.

Writability is tested by creating (and removing) a temp file in the folder that will receive the
output, which is what the atomic writers (posecli.atomic) do next; permission bits alone lie for
root and on read-only mounts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from posecli.errors import PoseCliError


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of `path` that exists; a file there blocks the folders below it."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PoseCliError(f"'{parent}' is a file where a folder belongs", path)
            return parent
    return Path(".")


def _probe_writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PoseCliError("output folder is not writable", folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".posecli-write-test-", dir=folder)
    except OSError as exc:
        raise PoseCliError(f"output folder is not writable ({exc.strerror or exc.__class__.__name__})",
                           folder) from None
    os.close(fd)
    os.unlink(name)


def check_output_file(path: str | Path, *, create_parents: bool = True) -> Path:
    """`path` can be written as a file: not a folder, its folder exists (or can be created below
    an existing folder when `create_parents`) and accepts new files."""
    path = Path(path)
    if path.is_dir():
        raise PoseCliError("output is a folder where a file belongs; give a file name", path)
    if path.exists() and not path.is_file():
        raise PoseCliError("output exists and is not a regular file", path)
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise PoseCliError(f"'{parent}' is a file where a folder belongs", path)
    if not parent.is_dir():
        if not create_parents:
            raise PoseCliError("output folder does not exist", parent)
        parent = _existing_ancestor(path)
    _probe_writable(parent)
    return path


def check_output_folder(path: str | Path) -> Path:
    """`path` can be written as a folder: not a file, and the folder (or, when it does not exist
    yet, its nearest existing ancestor) accepts new files. Missing parents are created later."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PoseCliError("output is a file where a folder belongs", path)
    if path.is_dir():
        _probe_writable(path)
        parent = path.parent if str(path.parent) else Path(".")
    else:
        parent = _existing_ancestor(path)
    _probe_writable(parent)
    return path
