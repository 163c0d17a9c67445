"""Files that hold secrets or private data, created with their final mode from the first byte.

A file written with the default umask and ``chmod``'ed afterwards is readable by others in between (and stays
so if the process dies before the chmod). :func:`write_private` writes to a temporary file created with mode
0600 (``O_CREAT | O_EXCL``, so the umask can only narrow it) and renames it into place, so a reader sees
either the old file or the whole new one, never a wider mode. :func:`create_with_mode` does the same for a
file that is opened and appended to (a SQLite database, a service log).

    write_private(state / "api-token", token + "\\n")
    with open_append(service_dir / "service.log", LOG_FILE_MODE) as log: ...
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gxlib.errors import GxError

PRIVATE_FILE_MODE = 0o600
LOG_FILE_MODE = 0o640


class PrivateFileError(GxError):
    """A private file could not be written with the mode it needs."""


def write_private(path: Path, data: bytes | str, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``data`` to ``path`` atomically; the file has ``mode`` (0600) from its first byte.

    The parent directory is created if missing. An existing file is replaced whole (its mode too)."""
    content = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        # mkstemp creates the file O_EXCL with mode 0600 under a name no other writer can pick.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        # The umask may have narrowed the mode, never widened it; fchmod makes it exactly ``mode``.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise PrivateFileError(f"cannot write the private file {path}: {exc.strerror or exc}",
                               hint="check that its directory is writable by this user") from exc


def create_with_mode(path: Path, mode: int) -> None:
    """Create ``path`` empty with ``mode`` unless it exists; an existing file is narrowed to ``mode`` (never
    widened). For files that another component opens later (a SQLite database)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            path.chmod(current & mode)
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_append(path: Path, mode: int) -> Iterator[BinaryIO]:
    """Open ``path`` for appending in binary mode, creating it with ``mode`` (an existing file is narrowed to
    ``mode``, never widened)."""
    create_with_mode(path, mode)
    with path.open("ab") as handle:
        yield handle
