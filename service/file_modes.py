"""The service's own files are its user's alone: folders 0700, files 0600. The instance
folder holds the database, the generated SECRET_KEY and every email sent."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy.engine import make_url

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def private_folder(path: Path) -> None:
    """Make the folder (and its parents) if need be, and keep others out of it."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change (a mount, another owner)
        path.chmod(PRIVATE_FOLDER)


def private_sqlite_file(database_url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644, and gives its -wal
    and -shm files the database file's mode), and tighten one made before."""
    url = make_url(database_url)
    name = url.database or ""
    if url.get_backend_name() != "sqlite" or name in ("", ":memory:") or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite will say so, in its own words
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for found in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            found.chmod(PRIVATE_FILE)
