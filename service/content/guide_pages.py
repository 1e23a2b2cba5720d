"""The guide's page count, read from the PDF itself (once per version of the file): emails and
the hosted page must promise the pages the download has."""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path

from ..core.settings import Settings

log = logging.getLogger(__name__)
SAMPLE_GUIDE = Path(__file__).resolve().parents[1] / "assets" / "guide.pdf"


def guide_path(settings: Settings) -> Path | None:
    """The PDF the guide link serves; None when GUIDE_URL sends readers elsewhere."""
    if settings.guide_url:
        return None
    return settings.guide_file or SAMPLE_GUIDE


def page_count(path: Path) -> int | None:
    """Pages of the PDF at `path`, or None when it cannot be read."""
    try:
        found = path.stat()
    except OSError:
        return None
    return _count(path, found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=8)
def _count(path: Path, _mtime_ns: int, _size: int) -> int | None:
    # Modification time and size are in the key: a replaced file is counted again.
    from pypdf import PdfReader

    try:
        return len(PdfReader(path).pages)
    except Exception as exc:  # any malformed PDF: the emails go without a count
        log.warning("cannot count the pages of the guide %s: %s", path, exc)
        return None


def guide_for_templates(settings: Settings, table: dict, uploaded: str | None = None) -> dict:
    """The sequence file's [guide] table with `pages` counted from the PDF: the magnet's
    upload (`uploaded`, its storage key), else the default guide. Its own `pages` is only a
    fallback, for a GUIDE_URL whose file the service cannot read; None: say none."""
    if uploaded is not None:
        counted = stored_page_count(settings, uploaded)
    else:
        path = guide_path(settings)
        counted = page_count(path) if path else None
    return {**table, "pages": counted or table.get("pages")}


def stored_page_count(settings: Settings, key: str) -> int | None:
    """Pages of a stored guide (its key names its bytes, so the count is kept for good)."""
    if key in _stored_counts:
        return _stored_counts[key]
    from pypdf import PdfReader

    from .storage import storage_for

    try:
        count: int | None = len(PdfReader(io.BytesIO(storage_for(settings).get(key))).pages)
    except Exception as exc:  # missing or unreadable: the emails go without a count
        log.warning("cannot count the pages of the stored guide %s: %s", key, exc)
        return None
    _stored_counts[key] = count
    return count


_stored_counts: dict[str, int | None] = {}
