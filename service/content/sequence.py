"""The drip sequence file: TOML steps with delays, templates and send windows."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .rendering import Templates

DURATION = re.compile(r"^\s*([0-9]+)\s*([smhd]?)\s*$")  # ASCII digits: \d takes any script's
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAGNET_SLUG = re.compile(r"[a-z0-9-]{1,64}")  # a magnet's slug: lowercase letters, digits, -


class SequenceError(ValueError):
    """The sequence file is wrong; the message is one line naming the place."""


def parse_delay(value: object) -> timedelta:
    """`0`, `45s`, `10m`, `2h`, `3d` (a bare number is seconds)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise SequenceError(f"delay {value!r} is not a duration like 0, 45s, 10m, 2h or 3d")
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class Window:
    """Hours [start, end) on some weekdays, in the subscriber's own zone."""

    start: time
    end: time
    weekdays: frozenset[int]

    def next_opening(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first instant at or after `moment` that falls inside the window."""
        local = moment.astimezone(zone)
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            if date.weekday() not in self.weekdays:
                continue
            opens = datetime.combine(date, self.start, zone)
            closes = datetime.combine(date, self.end, zone)
            if day == 0 and opens <= local < closes:
                return moment
            if local < opens:
                return opens.astimezone(moment.tzinfo)
        raise SequenceError("send window never opens")  # unreachable: weekdays is not empty

    @classmethod
    def parse(cls, raw: object) -> Window:
        if not isinstance(raw, dict):
            raise SequenceError('window must be a table like { hours = "9-17", days = "mon-fri" }')
        start, end = _parse_hours(raw.get("hours", "0-24"))
        return cls(start=start, end=end, weekdays=_parse_days(raw.get("days", "mon-sun")))


def _parse_hours(raw: object) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2})(?::(\d\d))?\s*-\s*(\d{1,2})(?::(\d\d))?\s*", str(raw))
    if not match:
        raise SequenceError(f'window hours {raw!r} must look like "9-17" or "08:30-20:00"')
    h1, m1, h2, m2 = (int(g or 0) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2) or (h1, m1) >= (h2, m2):
        raise SequenceError(f"window hours {raw!r} are not a range within one day")
    return time(h1, m1), (time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2))


def _parse_days(raw: object) -> frozenset[int]:
    days: set[int] = set()
    for part in str(raw).lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise SequenceError(f'window days {raw!r} must look like "mon-fri" or "sat,sun"')
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@dataclass(frozen=True)
class Step:
    id: str
    delay: timedelta
    template: str
    window: Window | None = None
    preheader: str = ""

    def due_after(self, anchor: datetime, zone: ZoneInfo) -> datetime:
        due = anchor + self.delay
        return self.window.next_opening(due, zone) if self.window else due


@dataclass(frozen=True)
class Consent:
    text: str
    version: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Sequence:
    steps: tuple[Step, ...]
    mail_from: str
    postal_address: str
    default_zone: ZoneInfo
    consent: Consent
    guide: dict
    brand: dict
    templates: Templates = field(default=Path(), compare=False)  # what its emails render from
    magnet: dict = field(default_factory=dict)  # [magnet]: slug and title, both optional

    @property
    def first(self) -> Step:
        return self.steps[0]

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def after(self, step_id: str, sent_ids: set[str]) -> Step | None:
        """The step to send after `step_id`; unsent steps added earlier in the file are not
        sent back in time, a removed step is skipped."""
        ids = [s.id for s in self.steps]
        start = ids.index(step_id) + 1 if step_id in ids else 0
        return next((s for s in self.steps[start:] if s.id not in sent_ids), None)


@lru_cache(maxsize=8)
def load_sequence(path: Path, templates_dir: Path, version: int = 0) -> Sequence:
    """Parse and check the sequence file and the templates beside it (read from the folder
    into memory, as a stored version holds them); raise SequenceError with one line on the
    first fault.

    `version` (the file's mtime) is only part of the cache key, so an edit is read again."""
    # Imported here: magnet_files parses with this module's rules, and is the one reader.
    from .magnet_files import load_files, read_sequence_folder

    try:
        files = read_sequence_folder(path)
    except OSError as exc:
        raise SequenceError(f"{path}: {exc}") from None
    return load_files(files, where=str(path))


def parse_sequence(
    text: str, template_names: Collection[str], templates: Templates, where: str
) -> Sequence:
    """The sequence file's text, checked against the template folders there are
    (`template_names`); `templates` is what its emails render from, `where` names the file
    in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SequenceError(f"{where}: {exc}") from None
    sender = _table(data, "sender")
    steps = _steps(data.get("steps"), template_names)
    mail_from = str(sender.get("from", ""))
    if "@" not in parseaddr(mail_from)[1]:
        raise SequenceError("[sender] from must look like 'Name <address@example.com>'")
    postal = str(sender.get("postal_address", "")).strip()
    if not postal:
        raise SequenceError(
            "[sender] postal_address is required (CAN-SPAM): where you can be reached"
        )
    consent = _table(data, "consent")
    if not consent.get("text") or not consent.get("version"):
        raise SequenceError("[consent] needs text and version: the exact words beside the checkbox")
    return Sequence(
        steps=steps,
        mail_from=mail_from,
        postal_address=postal,
        default_zone=_zone(sender.get("time_zone", "UTC")),
        consent=Consent(text=str(consent["text"]).strip(), version=str(consent["version"])),
        guide=_table(data, "guide"),
        brand=data.get("brand", {}),
        templates=templates,
        magnet=_magnet(data.get("magnet", {})),
    )


def _magnet(raw: object) -> dict:
    """The optional [magnet] table: the slug and title the magnet is known by."""
    if not isinstance(raw, dict):
        raise SequenceError("[magnet] must be a table with slug and title")
    slug = raw.get("slug")
    if slug is not None and not (isinstance(slug, str) and MAGNET_SLUG.fullmatch(slug)):
        raise SequenceError(f"[magnet] slug {slug!r} must be 1-64 lowercase letters, digits or -")
    title = raw.get("title")
    if title is not None and not (isinstance(title, str) and title.strip()):
        raise SequenceError("[magnet] title must be some text")
    return raw


def _table(data: dict, name: str) -> dict:
    table = data.get(name)
    if not isinstance(table, dict):
        raise SequenceError(f"the sequence file needs a [{name}] table")
    return table


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise SequenceError(f"[sender] time_zone {name!r} is not an IANA time zone") from None


def _steps(raw: object, template_names: Collection[str]) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise SequenceError("the sequence file needs at least one [[steps]] table")
    steps: list[Step] = []
    for number, entry in enumerate(raw, start=1):
        where = f"step {number}"
        if not isinstance(entry, dict):
            raise SequenceError(f"{where}: must be a table")
        step_id = str(entry.get("id", ""))
        if not STEP_ID.match(step_id):
            raise SequenceError(
                f"{where}: id {step_id!r} must be lowercase letters, digits, - or _"
            )
        if any(s.id == step_id for s in steps):
            raise SequenceError(f"{where}: duplicate id {step_id!r}")
        template = str(entry.get("template", step_id))
        if template not in template_names:
            raise SequenceError(f"step {step_id!r}: unknown template {template!r}")
        try:
            delay = parse_delay(entry.get("delay"))
            window = Window.parse(entry["window"]) if "window" in entry else None
        except SequenceError as exc:
            raise SequenceError(f"step {step_id!r}: {exc}") from None
        steps.append(Step(step_id, delay, template, window, str(entry.get("preheader", ""))))
    return tuple(steps)
