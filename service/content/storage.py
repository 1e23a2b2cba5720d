"""Files owners upload (guides), kept by key where every web container finds them: a folder
(the instance folder's files/ by default) or an S3-compatible bucket (STORAGE_URL)."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from ..core.settings import STORAGE_PATH, Settings, StorageUrl
from .pdf_check import check_pdf as check_pdf  # part of this interface: what may be stored

if TYPE_CHECKING:
    from .folder_storage import FolderStorage
    from .s3_storage import S3Storage

PDF = "application/pdf"


class Storage(Protocol):
    """Bytes by key. A key names its bytes for good (see guide_key): a put of a key that is
    there already changes nothing."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; KeyError when there are none."""
        ...

    def exists(self, key: str) -> bool: ...


class StorageError(Exception):
    """The store did not answer as it should (down, refused, misconfigured): the request
    that needed it answers 503, and the message (never the keys) goes to the log."""


def checked_key(key: str) -> str:
    """The key, if it is one (STORAGE_PATH: no "..", no leading "/", safe characters)."""
    if not STORAGE_PATH.fullmatch(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


def guide_key(data: bytes) -> str:
    """Where a guide's bytes are kept: named by their SHA-256, so one upload is one file."""
    return f"guides/{hashlib.sha256(data).hexdigest()}.pdf"


def storage_for(settings: Settings) -> Storage:
    """The store STORAGE_URL names (default: the instance folder's files/), one per process."""
    return _store(settings.storage_url, os.getpid())


def storage_problem(settings: Settings) -> str | None:
    """What keeps the store from answering now (for /readyz and its log), or None."""
    return _store(settings.storage_url, os.getpid()).problem()


@lru_cache(maxsize=4)
def _store(url: StorageUrl, _pid: int) -> FolderStorage | S3Storage:
    # By process: a forked worker must not share its parent's connections. Imported here so
    # that boto3 (slow to import, heavy) loads only where STORAGE_URL is s3://.
    if url.scheme == "s3":
        from .s3_storage import S3Storage

        return S3Storage(url)
    from .folder_storage import FolderStorage

    assert url.path is not None  # settings give every file:// store its folder
    return FolderStorage(url.path)
