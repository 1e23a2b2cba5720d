"""Database models: subscribers, the consent ledger, the schedule and the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum, nonmember
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .clock import utcnow
from .extensions import db

if TYPE_CHECKING:
    # db.Model is Base with Flask-SQLAlchemy's additions, made at run time: mypy reads Base.
    from .extensions import Base as Model
else:
    Model = db.Model
from .tokens import new_token_key


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The values the string columns below hold. StrEnum members are str, so they go into the
# columns and compare with what comes back as they are; the names are what mypy checks.


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # double opt-in: waiting for the confirmation click
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"

    OPEN = nonmember(("pending", "sending"))  # not sent yet, and not given up


class Purpose(StrEnum):
    DRIP = "drip"  # one row per subscriber and step, at most
    RESEND = "resend"  # the guide again, for someone who signed up twice
    CONFIRM = "confirm"  # double opt-in confirmation
    TEST = "test"  # an owner's "send me a test": counted in no subscriber figure
    BROADCAST = "broadcast"  # one row per broadcast and recipient, at most


class BroadcastStatus(StrEnum):
    DRAFT = "draft"  # written, not sent: the audience is not frozen yet
    SCHEDULED = "scheduled"  # the scheduler pass starts it at send_at
    SENDING = "sending"  # recipients materialised; workers claim its rows
    PAUSED = "paused"  # no new claims; resume picks up where it stopped
    FINISHED = "finished"  # no recipient row is pending or being sent
    STOPPED = "stopped"  # given up, with the reason in `reason`

    LIVE = nonmember(("sending", "paused"))  # recipients exist and some may still go


class ConsentAction(StrEnum):
    CONSENT = "consent"
    WITHDRAWAL = "withdrawal"
    CONFIRMATION = "confirmation"  # the double opt-in link followed


class Outcome(StrEnum):
    """What one delivery did: the first four are also the delivery log's outcomes."""

    SENT = "sent"
    DEFERRED = "deferred"  # 4xx or a dropped connection: tried again with backoff
    BOUNCED = "bounced"  # the server refused the recipient: suppressed
    FAILED = "failed"  # the server refused the sender or the message: our fault
    CANCELLED = "cancelled"  # no longer wanted when its turn came
    SKIPPED = "skipped"  # its step left the sequence: the next one is scheduled instead
    SPACED = "spaced"  # too soon after another magnet's email (EMAIL_MIN_GAP): moved later
    NOT_CLAIMED = "not-claimed"  # not due, or another worker has it


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    ERASED = "erased"


class Automated(StrEnum):
    """Why a click looks like a machine's (security scanners open every link of a message
    seconds after delivery, with a browser's user agent, so the agent proves nothing)."""

    HEAD = "head"  # a HEAD request: a link checker, never a person's browser
    PREFETCH = "prefetch"  # fetched ahead of a click (Sec-Purpose, Purpose or X-Moz)
    BURST = "burst"  # one of 3+ distinct links of one email hit within 2 seconds


class EventKind(StrEnum):
    """What a mail provider's webhook reported."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    OTHER = "other"


class Subscriber(Model):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))  # normalized by email-validator
    # One person, one row: "Ann@X.org" and "ann@x.org" are the same subscriber.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    # The inbox behind the address (core/addresses.py): limits count per mailbox, so
    # "ann+1@" to "ann+9@" cannot each draw a confirmation email.
    mailbox_key: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(100))
    # A repeat signup's name and zone wait here: only the confirmation link, which proves
    # the person reads the address, makes them the subscriber's.
    requested_first_name: Mapped[str | None] = mapped_column(String(100))
    requested_time_zone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.ACTIVE)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    guide_downloads: Mapped[int] = mapped_column(Integer, default=0)
    first_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Links carry it beside the id: an erased person's link matches no later row.
    token_key: Mapped[str] = mapped_column(String(32), default=new_token_key)
    # Rows from before migration 0006, whose emails carry id-only links that must keep working.
    legacy_tokens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    consents: Mapped[list[ConsentRecord]] = relationship(
        back_populates="subscriber", order_by="ConsentRecord.id", passive_deletes="all"
    )
    emails: Mapped[list[ScheduledEmail]] = relationship(
        back_populates="subscriber", order_by="ScheduledEmail.id", passive_deletes="all"
    )

    # The purge of unconfirmed signups reads by status and age. AUTOINCREMENT: SQLite would
    # otherwise hand an erased person's id to the next newcomer.
    __table_args__ = (
        Index("ix_subscriber_status_created", "status", "created_at"),
        Index("ix_subscriber_mailbox_key", "mailbox_key"),
        {"sqlite_autoincrement": True},
    )


class ConsentRecord(Model):
    """Append-only evidence of each consent and withdrawal: what was shown, where, when."""

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    # The magnet this entry is about; None: all of them (a one-click withdrawal).
    magnet_id: Mapped[int | None] = mapped_column(ForeignKey("magnet.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # consent | withdrawal | confirmation
    text: Mapped[str] = mapped_column(Text)
    text_version: Mapped[str] = mapped_column(String(64))
    text_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))  # hosted-form | api | unsubscribe-link ...
    page_url: Mapped[str | None] = mapped_column(String(2048))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="consents")


@event.listens_for(ConsentRecord, "before_update")
def _consent_is_append_only(mapper: object, connection: object, target: object) -> None:
    raise RuntimeError("consent records are append-only")


class ScheduledEmail(Model):
    """One email to one subscriber: the schedule lives here, not in the broker."""

    __tablename__ = "scheduled_email"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    # Whose sequence (or guide) this email belongs to; None only for mail that belongs to
    # no magnet (a broadcast).
    magnet_id: Mapped[int | None] = mapped_column(ForeignKey("magnet.id"))
    # The broadcast this row delivers to its subscriber (purpose "broadcast"), else None.
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcast.id"))
    step_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16), default=Purpose.DRIP)
    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.PENDING)
    # The time the delay counts from (the previous send, or signup), so an edited delay
    # can be applied to rows not yet sent.
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="emails")
    deliveries: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="email", order_by="DeliveryAttempt.id", passive_deletes=True
    )

    __table_args__ = (
        # A step of a magnet's drip can exist once per subscriber: a second send is impossible.
        Index(
            "uq_scheduled_email_drip_step",
            "subscriber_id",
            "magnet_id",
            "step_id",
            unique=True,
            sqlite_where=text("purpose = 'drip'"),
            postgresql_where=text("purpose = 'drip'"),
        ),
        # A broadcast reaches a subscriber once: materialising twice inserts nothing new.
        Index(
            "uq_scheduled_email_broadcast",
            "broadcast_id",
            "subscriber_id",
            unique=True,
            sqlite_where=text("purpose = 'broadcast'"),
            postgresql_where=text("purpose = 'broadcast'"),
        ),
        # "Is anything of this broadcast left?" (finishing it, after each worker batch), and
        # how many of its rows wait for a later time: counted in the index alone (0019).
        Index(
            "ix_scheduled_email_broadcast_open",
            "broadcast_id",
            "status",
            "due_at",
            sqlite_where=text("status IN ('pending', 'sending') AND broadcast_id IS NOT NULL"),
            postgresql_where=text("status IN ('pending', 'sending') AND broadcast_id IS NOT NULL"),
        ),
        # The scheduler's claim reads only open rows; the partial indexes stay small.
        Index(
            "ix_scheduled_email_due",
            "due_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_scheduled_email_lease",
            "lease_until",
            sqlite_where=text("status = 'sending'"),
            postgresql_where=text("status = 'sending'"),
        ),
        Index("ix_scheduled_email_subscriber", "subscriber_id", "status"),
        # EMAIL_MIN_GAP's warning reads the last gap's sends and their people: a range of
        # this index alone, not every sent row.
        Index(
            "ix_scheduled_email_sent_at",
            "sent_at",
            "subscriber_id",
            sqlite_where=text("status = 'sent' AND purpose <> 'test'"),
            postgresql_where=text("status = 'sent' AND purpose <> 'test'"),
        ),
        # Room on each page for the hand-off's new row version: that update (queued_at, in
        # no index) is then heap-only and writes no index entry (migration 0015).
        {"postgresql_with": {"fillfactor": 90}},
    )


class Broadcast(Model):
    """A one-off email to an audience. Its recipients are scheduled_email rows (purpose
    "broadcast"), written in one statement when the send starts: the audience freezes then."""

    __tablename__ = "broadcast"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(998))
    # Markdown, or HTML with its plain-text twin; each a template with the steps' variables.
    body_md: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    body_txt: Mapped[str | None] = mapped_column(Text)
    # JSON: {"kind": "all"} | {"kind": "took", "magnets": [ids]} | {"kind": "finished", ...}
    audience: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.DRAFT)
    reason: Mapped[str | None] = mapped_column(Text)  # why it stopped (or was paused)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: when sent
    # Its own limit ("50/s"), on top of SEND_RATE; effective_rate is what throttling
    # replies from the server have lowered it to (per second), None: not lowered.
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    effective_rate: Mapped[float | None] = mapped_column(Float)
    throttled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int | None] = mapped_column(Integer)  # frozen at the start
    # Its send window, in each recipient's zone, as a step's ("9-17", "mon-fri"); None: any.
    window_hours: Mapped[str | None] = mapped_column(String(16))
    window_days: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_broadcast_status_send_at", "status", "send_at"),)


class DeliveryAttempt(Model):
    """The delivery log: every attempt and the SMTP server's reply to it."""

    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_id: Mapped[int] = mapped_column(
        ForeignKey("scheduled_email.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))  # sent | deferred | bounced | failed
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    email: Mapped[ScheduledEmail] = relationship(back_populates="deliveries")


class Click(Model):
    """One hit on a link's click redirect: which email, whose, which link, when, and why it
    looks automated (None: nothing says so). Deleted after 13 months (housekeeping)."""

    __tablename__ = "click"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("scheduled_email.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    # The email's step, copied: the figures group clicks without reading scheduled_email.
    step_id: Mapped[str] = mapped_column(String(64))
    # The email's magnet and broadcast, copied too: a hit's kept figures (insights/kept_sql.py)
    # are taken back from the row alone, even after its email went.
    magnet_id: Mapped[int | None] = mapped_column(Integer)
    broadcast_id: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))  # scheme and host lower-cased, no #fragment
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    automated: Mapped[str | None] = mapped_column(String(16))  # head | prefetch | burst

    __table_args__ = (
        Index("ix_click_email_at", "email_id", "at"),  # the burst check, and the cascade
        Index("ix_click_subscriber", "subscriber_id"),  # forgetting a person
        Index("ix_click_at", "at"),  # the 13-month purge
        Index("ix_click_step", "step_id", "subscriber_id"),  # the figures
    )


class Magnet(Model):
    """A lead magnet: a guide with its own page, consent, sequence and figures. Its content
    (sequence.toml and the template files) lives in immutable versions; one is published."""

    __tablename__ = "magnet"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # Exactly one magnet is the default: GET /, and an API signup naming no magnet.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when SEQUENCE_FILE names this magnet: the file is the truth, the editor reads only.
    managed_by_file: Mapped[str | None] = mapped_column(String(1024))
    # The uploaded guide's key in the store (content/storage.py); None: a GUIDE_URL or the
    # shipped sample.
    guide_key: Mapped[str | None] = mapped_column(String(255))
    published_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("magnet_version.id", use_alter=True, name="fk_magnet_published_version")
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "uq_magnet_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )


class MagnetVersion(Model):
    """One immutable version of a magnet's content: its files, as a folder of
    email_templates/ holds them ({"sequence.toml": ..., "guide/subject.txt": ...})."""

    __tablename__ = "magnet_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    magnet_id: Mapped[int] = mapped_column(ForeignKey("magnet.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, 3... per magnet
    files: Mapped[str] = mapped_column(Text)  # JSON object: relative path -> text
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical files
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))  # an owner's address, "cli", "file"
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("magnet_id", "number", name="uq_magnet_version_number"),)


@event.listens_for(MagnetVersion, "before_update")
def _versions_are_immutable(mapper: object, connection: object, target: object) -> None:
    raise RuntimeError("magnet versions are immutable: make a new one")


class MagnetPublication(Model):
    """Each time a version was put in force (a rollback publishes an older one again):
    when, by whom, and the impact it had on the schedule."""

    __tablename__ = "magnet_publication"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    magnet_id: Mapped[int] = mapped_column(ForeignKey("magnet.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("magnet_version.id", ondelete="CASCADE"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(320))
    impact: Mapped[str | None] = mapped_column(Text)  # JSON: the preview shown before it

    __table_args__ = (Index("ix_magnet_publication_magnet", "magnet_id", "published_at"),)


class Enrolment(Model):
    """A person took a magnet: its consent entry, and whether its sequence still runs."""

    __tablename__ = "enrolment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    magnet_id: Mapped[int] = mapped_column(ForeignKey("magnet.id"))
    consent_id: Mapped[int | None] = mapped_column(
        ForeignKey("consent_record.id", ondelete="SET NULL")
    )
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "Only stop emails about this magnet", or the magnet archived with its emails stopped.
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    # Downloads of this magnet's guide by this person (the subscriber's own counts are of
    # every guide): a download of one guide is not one of another's.
    guide_downloads: Mapped[int] = mapped_column(Integer, server_default="0")
    first_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_download_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("subscriber_id", "magnet_id", name="uq_enrolment_subscriber_magnet"),
        Index("ix_enrolment_magnet", "magnet_id", "taken_at"),
    )


class Suppression(Model):
    """Addresses that must get no email until they consent again, kept only as keyed hashes
    so that erasing a person leaves no address in clear."""

    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(16))  # unsubscribed | bounced | complained | erased
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Model):
    """A bounce or complaint a mail provider reported, once per (provider, event id):
    the unique key is what makes a replayed webhook change nothing."""

    __tablename__ = "webhook_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # ses | postmark | mailgun | sendgrid
    event_id: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))  # hard_bounce | soft_bounce | complaint | other
    # A keyed hash, like the suppression list's: an erased person leaves no address here.
    email_hash: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)
    # Mailgun signs only (timestamp, token), not the event: a token seen twice is a replay.
    nonce: Mapped[str | None] = mapped_column(String(128))
    # The email of ours the report is about, found by the Message-ID the provider quoted
    # (None: not quoted, not ours, or erased since): what a late complaint is counted under.
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_email.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_webhook_event_provider_event_id"),
        UniqueConstraint("provider", "nonce", name="uq_webhook_event_provider_nonce"),
        Index("ix_webhook_event_email_hash_kind", "email_hash", "kind"),
    )


class Owner(Model):
    """Someone who may sign in to /admin: the list's owner, made with `leadmagnet admin create`."""

    __tablename__ = "owner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # casefolded
    password_hash: Mapped[str] = mapped_column(String(255))  # werkzeug scrypt
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sessions carry the value they were made with; signing out and a new password bump it,
    # so a copied session cookie stops working with them.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MagnetDraft(Model):
    """A magnet's content as the editor left it, not yet a version: one per magnet. Every
    save bumps `revision`; a save that names an older revision is refused, so two owners
    editing at once never overwrite each other unseen."""

    __tablename__ = "magnet_draft"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    magnet_id: Mapped[int] = mapped_column(ForeignKey("magnet.id", ondelete="CASCADE"), unique=True)
    files: Mapped[str] = mapped_column(Text)  # JSON object, as MagnetVersion.files
    # The version the draft started from: publishing another one meanwhile is visible.
    base_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("magnet_version.id", ondelete="SET NULL")
    )
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320))


class GuideUpload(Model):
    """Each guide PDF a magnet was given. A replaced one stays served, for 30 days, to the
    links sent while it was the magnet's guide (content/guides.py picks)."""

    __tablename__ = "guide_upload"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    magnet_id: Mapped[int] = mapped_column(ForeignKey("magnet.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))  # in the store (content/storage.py)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(320))
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_guide_upload_magnet", "magnet_id", "uploaded_at"),)


class AuditEntry(Model):
    """Who did what to the list's content and when: publishes, archives, uploads, sign-ins.
    Append-only, shown on /admin/audit."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    who: Mapped[str] = mapped_column(String(320))  # an owner's address, "cli"
    action: Mapped[str] = mapped_column(String(32))  # AuditAction
    what: Mapped[str] = mapped_column(Text)  # one line a person reads
    magnet_id: Mapped[int | None] = mapped_column(ForeignKey("magnet.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_audit_entry_at", "at"),)


class AuditAction(StrEnum):
    SIGN_IN = "sign-in"
    CREATE = "create"
    PUBLISH = "publish"
    ARCHIVE = "archive"
    UPLOAD = "upload"
    RESTORE = "restore"
    TEST_SEND = "test-send"


@event.listens_for(AuditEntry, "before_update")
def _audit_is_append_only(mapper: object, connection: object, target: object) -> None:
    raise RuntimeError("audit entries are append-only")


# A newcomer's statement (capture/newcomer.py) appends the new person's four figure rows
# itself, and names the rows it inserts in these settings, local to its transaction: the two
# insert triggers skip those rows (migration 0021; their plpgsql cost ~190 us of PostgreSQL's
# CPU a signup, the statement's own rows far less). Other inserts name none, and count.
COUNTED_PERSON = "leadmagnet.counted_person"  # the subscriber row's email_key
COUNTED_TAKER = "leadmagnet.counted_taker"  # the enrolment row's subscriber_id


class FigureDelta(Model):
    """A change to one of the dashboard's figures, appended by the database's own triggers in
    the transaction of the change (migration 0013), and by a newcomer's statement for the
    rows it inserts (COUNTED_PERSON); many workers append at once without waiting on a
    shared counter row. The fold moves them into `figure_total` (service/insights/rollup.py)."""

    __tablename__ = "figure_delta"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    magnet_id: Mapped[int] = mapped_column(Integer)  # 0: everyone's (people figures)
    name: Mapped[str] = mapped_column(String(16))  # sent, failed, signups, inbox...
    part: Mapped[str] = mapped_column(String(1100))  # the step, the day, the bucket, a link...
    n: Mapped[int] = mapped_column(Integer)


class FigureTotal(Model):
    """The folded sum of a figure's deltas; a figure is its total plus its unfolded deltas."""

    __tablename__ = "figure_total"

    magnet_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    part: Mapped[str] = mapped_column(String(1100), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
