"""The one user-facing error type.

Anything a user can cause (a bad file, a bad option) raises PoseCliError with a message that names
the file and the problem; the CLI prints it as one red line and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path

EXIT_USER_ERROR = 2


class PoseCliError(Exception):
    """An error caused by input the user controls; its message is shown as-is."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class PoseCliWarning(UserWarning):
    """Something the user should know about their input that does not stop the command; the CLI
    prints it as one yellow line naming the file."""


def warn(message: str, path: str | Path | None = None) -> None:
    """Emit a PoseCliWarning (shown once per message; tests catch it with pytest.warns)."""
    import warnings

    warnings.warn(f"{Path(path)}: {message}" if path is not None else message, PoseCliWarning, stacklevel=2)
