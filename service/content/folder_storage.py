"""The folder store: one file per key under a root folder (the instance folder's files/ by
default), 0600 files in 0700 folders, each written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..core.file_modes import private_folder
from .storage import StorageError, checked_key


class FolderStorage:
    """Keeps only the bytes: a key's extension says what they are."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.is_file():
            return
        try:
            self._make_folders(path.parent)
            _write_whole(path, data)
        except OSError as exc:  # a full disk, a read-only or lost mount: the store is down
            raise StorageError(f"storage folder {self.root}: {type(exc).__name__}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageError(f"storage folder {self.root}: {type(exc).__name__}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def problem(self) -> str | None:
        with contextlib.suppress(OSError):
            private_folder(self.root)
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            return f"storage folder not writable: {self.root}"
        return None

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def _make_folders(self, folder: Path) -> None:
        """The root and each folder below it down to `folder`, all 0700 (mkdir -p would give
        the ones in between the umask's mode)."""
        private_folder(self.root)
        current = self.root
        for part in folder.relative_to(self.root).parts:
            current = current / part
            private_folder(current)


def _write_whole(path: Path, data: bytes) -> None:
    """A reader (another container on a shared volume) sees the whole file or none: written
    under a name no key can take (keys never start with a dot), then renamed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
