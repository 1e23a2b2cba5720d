"""Publishing a magnet's version: the impact first (each added, removed, retimed or edited
step and how many subscribers it touches), then, once and atomically under the magnet's row
lock, the schedule brought in line and the publication recorded, if the version in force is
still the one the impact was reviewed over (else StalePublish). A rollback is publishing an
older version again. SEQUENCE_FILE's magnet publishes each edit of its file the same way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal

from sqlalchemy import func, select

from ..content.magnet_files import fingerprint
from ..content.magnets import FILE, name_from
from ..content.published import sequence_of
from ..content.rendering import TemplateFiles
from ..content.sequence import Sequence, Step
from ..content.versions import mark_published, new_version, published_version
from ..core.extensions import db
from ..core.models import EmailStatus, Magnet, MagnetVersion, Purpose, ScheduledEmail
from .context import Context
from .schedule import same_magnet
from .sequence_sync import apply, plan

ADDED, REMOVED, RETIMED, EDITED = "added", "removed", "retimed", "edited"


class _Any(Enum):
    ANY = "whatever version is in force"


ANY = _Any.ANY  # publish over whatever is in force (the CLI, which says what it replaced)
Over = int | None | Literal[_Any.ANY]  # the version id reviewed in force (None: none was)
OTHER_PARTS = ("mail_from", "postal_address", "default_zone", "consent", "guide", "brand")


@dataclass(frozen=True)
class Change:
    kind: str  # added, removed, retimed or edited
    step: str
    subscribers: int  # how many it touches: moved to, skipping, rescheduled, or to get it
    detail: str = ""

    @property
    def step_id(self) -> str:
        return self.step

    def line(self) -> str:
        people = f"{self.subscribers} subscriber{'' if self.subscribers == 1 else 's'}"
        what = {
            ADDED: f"{people} waiting move to it",
            REMOVED: f"{people} waiting for it skip it",
            RETIMED: f"{people} rescheduled",
            EDITED: f"{people} waiting for it get the new text",
        }[self.kind]
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} step {self.step}{detail}: {what}"


@dataclass(frozen=True)
class Impact:
    changes: list[Change] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # [sender], [consent]... that changed
    replaced: int | None = None  # the number of the version that was in force, once published

    @property
    def empty(self) -> bool:
        return not self.changes and not self.other

    def as_lines(self) -> list[str]:
        lines = [change.line() for change in self.changes]
        lines += [f"edited {part}" for part in self.other]
        return lines or ["no changes"]

    def as_json(self) -> list[dict]:
        found: list[dict] = [
            {"kind": c.kind, "step": c.step, "subscribers": c.subscribers, "detail": c.detail}
            for c in self.changes
        ]
        return found + [{"kind": EDITED, "part": part} for part in self.other]


def impact(ctx: Context, magnet: Magnet, version: MagnetVersion) -> Impact:
    """What publishing the version would change, read before anything changes."""
    current = published_version(magnet)
    old = sequence_of(current.id, current.fingerprint) if current else None
    return impact_of(old, sequence_of(version.id, version.fingerprint), magnet.id)


def impact_of(old: Sequence | None, new: Sequence, magnet_id: int) -> Impact:
    """What replacing `old` content by `new` would change for the magnet's subscribers."""
    rows = plan(new, magnet_id)
    waiting = _waiting(magnet_id)
    before = {s.id: s for s in old.steps} if old else {}
    changes: list[Change] = []
    for step in new.steps:
        was = before.get(step.id)
        if was is None:
            moved = {c.subscriber_id for c in rows if c.new_step == step.id != c.old_step}
            changes.append(Change(ADDED, step.id, len(moved)))
            continue
        if (was.delay, was.window) != (step.delay, step.window):
            retimed = {c.subscriber_id for c in rows if c.new_step == step.id == c.old_step}
            changes.append(Change(RETIMED, step.id, len(retimed), _timing(was, step)))
        if old is not None and _edited(old, new, was, step):
            changes.append(Change(EDITED, step.id, waiting.get(step.id, 0)))
    gone = [s for s in before if new.step(s) is None]
    changes += [Change(REMOVED, s, waiting.get(s, 0)) for s in gone]
    other = [p for p in OTHER_PARTS if old is not None and getattr(old, p) != getattr(new, p)]
    return Impact(changes, other)


def _timing(was: Step, step: Step) -> str:
    from .sequence_check import format_delay

    parts = []
    if was.delay != step.delay:
        old, new = (format_delay(int(s.delay.total_seconds())) for s in (was, step))
        parts.append(f"delay {old} -> {new}")
    if was.window != step.window:
        parts.append("send window changed")
    return ", ".join(parts)


def _edited(old: Sequence, new: Sequence, was: Step, step: Step) -> bool:
    if (was.template, was.preheader) != (step.template, step.preheader):
        return True
    return any(_folder(old, folder) != _folder(new, folder) for folder in (step.template, "_base"))


def _folder(sequence: Sequence, folder: str) -> dict[str, str]:
    files = sequence.templates.files if isinstance(sequence.templates, TemplateFiles) else {}
    return {k: v for k, v in files.items() if k.startswith(f"{folder}/")}


def _waiting(magnet_id: int) -> dict[str, int]:
    """Subscribers with an email of each step not yet sent."""
    rows = db.session.execute(
        select(ScheduledEmail.step_id, func.count(func.distinct(ScheduledEmail.subscriber_id)))
        .where(
            same_magnet(magnet_id),
            ScheduledEmail.purpose == Purpose.DRIP,
            ScheduledEmail.status.in_(EmailStatus.OPEN),
        )
        .group_by(ScheduledEmail.step_id)
    )
    return {step_id: count for step_id, count in rows}


class StalePublish(Exception):
    """Another version was published since the impact was reviewed: nothing was applied."""

    def __init__(
        self, magnet: Magnet, version: MagnetVersion, in_force: MagnetVersion | None
    ) -> None:
        self.in_force = in_force.number if in_force is not None else None
        now = (
            f"version {self.in_force} was published" if in_force else "the version in force changed"
        )
        super().__init__(
            f"version {version.number} of {magnet.slug} was not published: {now} after its "
            "impact was reviewed; review it again"
        )


def publish(ctx: Context, magnet: Magnet, version: MagnetVersion, by: str, *, over: Over) -> Impact:
    """Put the version in force: the magnet's row locked, its unsent emails brought in line
    (added steps reach those before them, removed steps are skipped, changed delays apply
    to unsent rows), the publication recorded with its impact; one commit. `over` is the
    version (id) in force when the impact was reviewed: if another is in force now, nothing
    changes and StalePublish says which (ANY: over whatever is in force). Publishing the
    version already in force changes nothing."""
    _lock(magnet)  # a publish based on the same version waits here, then finds it stale
    in_force = published_version(magnet)
    if over is not ANY and magnet.published_version_id != over:
        stale = StalePublish(magnet, version, in_force)
        db.session.rollback()
        raise stale
    if magnet.published_version_id == version.id:
        db.session.rollback()
        return Impact()
    replaced = in_force.number if in_force is not None else None
    found = impact(ctx, magnet, version)
    sequence = sequence_of(version.id, version.fingerprint)
    apply(_for(ctx, magnet, sequence))
    mark_published(magnet, version, by, found.as_json())
    db.session.commit()
    ctx.forget_published()
    return replace(found, replaced=replaced)


def _for(ctx: Context, magnet: Magnet, sequence: Sequence) -> Context:
    sender = ctx.settings.mail_from or sequence.mail_from
    return replace(ctx, content=sequence, sender=sender, magnet_id=magnet.id)


def _lock(magnet: Magnet) -> None:
    db.session.execute(select(Magnet.id).where(Magnet.id == magnet.id).with_for_update())
    db.session.refresh(magnet)


def sync_file(ctx: Context) -> Impact | None:
    """Each scheduler pass (and at start): when SEQUENCE_FILE manages the default magnet
    and its folder changed, the folder becomes a new version, published by "file". None
    when nothing changed."""
    templates = ctx.content.templates
    if not ctx.settings.sequence_file_managed or ctx.magnet_id is None:
        return None
    if not isinstance(templates, TemplateFiles):  # parsed from a folder: always files
        return None
    magnet = db.session.get_one(Magnet, ctx.magnet_id)
    current = published_version(magnet)
    if current is not None and current.fingerprint == templates.key:
        db.session.rollback()
        return None
    _lock(magnet)  # another pass may be doing the same
    current = published_version(magnet)
    if current is not None and current.fingerprint == fingerprint(templates.files):
        db.session.rollback()
        return None
    version = new_version(magnet, templates.files, FILE, note=f"{ctx.settings.sequence_file}")
    name_from(magnet, ctx.content)
    return publish(ctx, magnet, version, FILE, over=current.id if current else None)


def impact_json(text: str | None) -> list[dict]:
    found: list[dict] = json.loads(text or "[]")
    return found
