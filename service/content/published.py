"""The content in force for each magnet, as one process knows it: the published version's
files parsed once per version (by fingerprint), or, for the magnet SEQUENCE_FILE manages,
the file as it is now. Which version is published is asked again every few seconds (a
publish in this process forgets it at once), so a request does not hold the database."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..core.extensions import db
from ..core.models import Magnet, MagnetVersion
from ..core.settings import Settings
from .magnet_files import load_files
from .magnets import ensure_default
from .sequence import Sequence, SequenceError, load_sequence

log = logging.getLogger(__name__)
REFRESH = 2.0  # seconds a process trusts what it read about a magnet's published version
PARSED = 32  # parsed versions kept per process


class NoContent(LookupError):
    """No such magnet, or one without a published version."""


@dataclass(frozen=True)
class _Entry:
    magnet_id: int | None
    version_id: int | None
    fingerprint: str | None
    read_at: float
    is_default: bool = True
    guide_key: str | None = None
    managed_by_file: str | None = None


@dataclass(frozen=True)
class InForce:
    """What a magnet has in force: its id (None: no magnets table yet), its content, whether
    it is the default, and its uploaded guide's storage key."""

    magnet_id: int | None
    content: Sequence
    is_default: bool
    guide_key: str | None


_parsed: OrderedDict[str, Sequence] = OrderedDict()
_parsed_lock = threading.Lock()


def sequence_of(version_id: int, fingerprint: str) -> Sequence:
    """A stored version parsed, once per process for each content (keyed by fingerprint)."""
    with _parsed_lock:
        found = _parsed.get(fingerprint)
        if found is not None:
            _parsed.move_to_end(fingerprint)
            return found
    version = db.session.get_one(MagnetVersion, version_id)
    from .versions import files_of

    sequence = load_files(files_of(version), where=f"version {version.number}")
    with _parsed_lock:
        _parsed[fingerprint] = sequence
        while len(_parsed) > PARSED:
            _parsed.popitem(last=False)
    return sequence


class Published:
    """One app's view of what each magnet has in force (kept on the app)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entries: dict[int | None, _Entry] = {}
        self._last_good_file: Sequence | None = None

    def forget(self) -> None:
        """After a publish: read the published versions again on next use."""
        self._entries = {}

    def content(self, magnet_id: int | None) -> InForce:
        """What the magnet has in force; None asks for the default magnet. The default
        falls back to the sequence file while the database has no magnets table (or cannot
        be read and nothing was read before)."""
        entry = self._entries.get(magnet_id)
        if entry is None or time.monotonic() - entry.read_at > REFRESH:
            entry = self._read(magnet_id, entry)
            self._entries[magnet_id] = entry
        if entry.version_id is None or entry.fingerprint is None or self._file_managed(entry):
            content = self.file_content()
        else:
            content = sequence_of(entry.version_id, entry.fingerprint)
        return InForce(entry.magnet_id, content, entry.is_default, entry.guide_key)

    def _file_managed(self, entry: _Entry) -> bool:
        return self.settings.sequence_file_managed and entry.is_default

    def _read(self, magnet_id: int | None, stale: _Entry | None) -> _Entry:
        fresh = not db.session().in_transaction()  # ours to end, so SQLite's lock is let go
        try:
            entry = self._query(magnet_id)
            if magnet_id is None and not self._ready(entry):
                ensure_default(self.settings, self.file_content())
                entry = self._query(None)
            if fresh:
                db.session.commit()
        except (OperationalError, ProgrammingError) as exc:
            if fresh:
                db.session.rollback()
            if stale is not None:
                log.warning("cannot read the published content, using what was read: %s", exc)
                return stale
            if magnet_id is not None:
                raise
            return _Entry(None, None, None, time.monotonic())  # no schema yet: the file
        if entry is None or entry.version_id is None:
            raise NoContent(f"magnet {magnet_id} has no published content")
        if magnet_id is None:
            self._entries[entry.magnet_id] = entry
        return entry

    def _ready(self, entry: _Entry | None) -> bool:
        """The default magnet has content, and SEQUENCE_FILE's say over it is recorded."""
        managed = str(self.settings.sequence_file) if self.settings.sequence_file_managed else None
        return (
            entry is not None and entry.version_id is not None and entry.managed_by_file == managed
        )

    def _query(self, magnet_id: int | None) -> _Entry | None:
        which = Magnet.is_default if magnet_id is None else Magnet.id == magnet_id
        row = db.session.execute(
            select(
                Magnet.id,
                Magnet.published_version_id,
                MagnetVersion.fingerprint,
                Magnet.is_default,
                Magnet.guide_key,
                Magnet.managed_by_file,
            )
            .outerjoin(MagnetVersion, MagnetVersion.id == Magnet.published_version_id)
            .where(which)
        ).first()
        if row is None:
            return None
        return _Entry(row[0], row[1], row[2], time.monotonic(), bool(row[3]), row[4], row[5])

    def file_content(self) -> Sequence:
        """The sequence file's folder as it is now: an edit takes effect without a restart,
        and an edit that breaks it keeps the last good version running (and says so)."""
        path = self.settings.sequence_file
        try:
            current = load_sequence(path, path.parent, folder_stamp(path))
        except (SequenceError, OSError) as exc:
            if self._last_good_file is None:
                raise
            log.error("the edited sequence file is not used: %s", exc)
            return self._last_good_file
        self._last_good_file = current
        return current


def folder_stamp(path: Path) -> int:
    """A number that changes when the sequence file or any template beside it is written:
    the newest modification time, plus how many files there are."""
    newest, count = path.stat().st_mtime_ns, 0
    for sub in os.scandir(path.parent):
        if sub.is_dir() and not sub.name.startswith((".", "__")):
            for entry in os.scandir(sub.path):
                newest, count = max(newest, entry.stat().st_mtime_ns), count + 1
    return newest * 1000 + count
