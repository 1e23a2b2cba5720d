"""The guide PDF a guide link serves, read through storage, so that every web container serves
the same bytes: a magnet's uploaded guide (kept under its content's key), else, for the
default magnet, GUIDE_FILE or the shipped sample, put in the store the first time a link
asks for it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..core.settings import Settings
from .guide_pages import SAMPLE_GUIDE
from .storage import PDF, StorageError, check_pdf, guide_key, storage_for


def default_guide_key(settings: Settings) -> str:
    """The storage key of the default guide, stored first if the store lacks it (a new
    bucket, a GUIDE_FILE changed since): one HEAD when it is there."""
    path = settings.guide_file or SAMPLE_GUIDE
    store = storage_for(settings)
    try:
        found = path.stat()
        key = _key_of(path, found.st_mtime_ns, found.st_size)
        if store.exists(key):
            return key
        data = path.read_bytes()
    except OSError as exc:  # GUIDE_FILE gone since the start: the link cannot be served now
        raise StorageError(f"guide file {path}: {type(exc).__name__}") from exc
    key = guide_key(data)  # of the bytes read, should the file have changed meanwhile
    store.put(key, data, PDF)
    return key


def guide_pdf(settings: Settings, key: str) -> bytes:
    """The bytes of the guide stored under `key` (KeyError when there are none)."""
    return storage_for(settings).get(key)


@lru_cache(maxsize=8)
def _key_of(path: Path, _mtime_ns: int, _size: int) -> str:
    # Modification time and size are in the cache key: a replaced file is hashed again.
    return guide_key(path.read_bytes())


def store_guide(settings: Settings, data: bytes) -> str:
    """Keep an uploaded guide (a PDF, else ValueError) and return its key, for
    Magnet.guide_key: one file per content, however many magnets share it."""
    check_pdf(data)
    key = guide_key(data)
    store = storage_for(settings)
    if not store.exists(key):
        store.put(key, data, PDF)
    return key


def magnet_guide_key(settings: Settings, uploaded: str | None) -> str:
    """The key of the guide a magnet's link serves: its upload, else the default guide."""
    return uploaded if uploaded is not None else default_guide_key(settings)
