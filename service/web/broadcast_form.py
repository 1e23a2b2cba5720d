"""The "New broadcast" form read back: its text, audience and time, or what is wrong with
them (each problem one line; the posted values are kept to show the form again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from ..content.broadcast_body import MAX_BODY, BodyError, BroadcastText, check
from ..core.extensions import db
from ..core.models import Magnet
from ..sending import broadcast_window
from ..sending.broadcast_audience import ALL, FINISHED, TOOK, Audience

MARKDOWN, HTML = "markdown", "html"
KINDS = (ALL, TOOK, FINISHED)


@dataclass
class Posted:
    subject: str = ""
    mode: str = MARKDOWN
    body_md: str = ""
    body_html: str = ""
    body_txt: str = ""
    kind: str = ALL
    magnets: list[int] = field(default_factory=list)
    when: str = "now"  # now | at
    at: str = ""  # datetime-local, in the site's zone
    window_hours: str = ""  # the send window, in each recipient's zone ("9-17")
    window_days: str = ""  # ("mon-fri")
    problems: list[str] = field(default_factory=list)

    def text(self) -> BroadcastText:
        if self.mode == HTML:
            return BroadcastText(self.subject, None, self.body_html, self.body_txt)
        return BroadcastText(self.subject, self.body_md)

    def window(self) -> tuple[str | None, str | None]:
        return self.window_hours or None, self.window_days or None

    def audience(self) -> Audience:
        return Audience(self.kind, () if self.kind == ALL else tuple(self.magnets))


def read(form: MultiDict[str, str]) -> Posted:
    """The posted values, unchecked (bodies kept as written, cut at MAX_BODY)."""
    ids = [int(v) for v in form.getlist("magnets") if v.isascii() and v.isdigit()]
    return Posted(
        subject=" ".join(form.get("subject", "").split()),
        mode=HTML if form.get("mode") == HTML else MARKDOWN,
        body_md=form.get("body_md", "").replace("\r\n", "\n")[:MAX_BODY],
        body_html=form.get("body_html", "").replace("\r\n", "\n")[:MAX_BODY],
        body_txt=form.get("body_txt", "").replace("\r\n", "\n")[:MAX_BODY],
        kind=form.get("kind", ALL) if form.get("kind") in KINDS else ALL,
        magnets=ids,
        when="at" if form.get("when") == "at" else "now",
        at=form.get("at", "").strip()[:32],
        window_hours=form.get("window_hours", "").strip()[:16],
        window_days=form.get("window_days", "").strip()[:32],
    )


def validate(posted: Posted, zone: tzinfo, now: datetime) -> datetime | None:
    """Fill `posted.problems`; the send time (aware) when one is asked and valid."""
    body = posted.body_md if posted.mode == MARKDOWN else posted.body_html
    if not posted.subject:
        posted.problems.append("Write a subject.")
    if not body.strip():
        posted.problems.append("Write the body of the broadcast.")
    elif posted.mode == HTML and not posted.body_txt.strip():
        posted.problems.append("In HTML mode, write the text part too.")
    elif posted.subject:
        try:
            check(posted.text())
        except BodyError as exc:
            posted.problems.append(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    if posted.kind != ALL:
        known = set(db.session.scalars(select(Magnet.id).where(Magnet.id.in_(posted.magnets))))
        if not known:
            posted.problems.append("Choose at least one magnet for this audience.")
    try:
        broadcast_window.parse(*posted.window())
    except broadcast_window.WindowError as exc:
        posted.problems.append(f"Send {exc}.")
    return _when(posted, zone, now)


def _when(posted: Posted, zone: tzinfo, now: datetime) -> datetime | None:
    if posted.when != "at":
        return None
    try:
        when = datetime.fromisoformat(posted.at).replace(tzinfo=zone)
    except ValueError:
        posted.problems.append("Give the send time as a date and a time.")
        return None
    if when <= now:
        posted.problems.append("The send time has passed: choose a later one, or send now.")
        return None
    return when
