"""The evidence a repeat needs: the SMTP server's record of what it took in, and when, from
which connection, beside the workers' own "sent email" log lines and the moments of the
kills. The contract allows one kind of repeat only: the process died after the server
accepted the message and before it recorded the send."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from tests.smtp import Received, RecordingSMTPServer

# The logger of sending/delivery.py ("service.delivery" was its name before sending/).
DELIVERY_LOGGERS = ("service.sending.delivery", "service.delivery")


@dataclass(frozen=True)
class Record:
    """A process's "sent email" line: the send is in the database from then on."""

    wall: float
    email_id: int
    message_id: str


@dataclass(frozen=True)
class Kill:
    wall: float  # by then the process was dead (signalled and reaped)
    log: Path  # its log, with JSON lines at INFO


def records(log: Path) -> list[Record]:
    found = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") in DELIVERY_LOGGERS and entry["message"].startswith("sent email"):
            # The stamp is cut to the millisecond: the line came no earlier than it says.
            stamp = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            found.append(Record(stamp, entry["email_id"], entry["message_id"]))
    return found


def copies_by_message(smtpd: RecordingSMTPServer) -> dict[str, list[Received]]:
    copies: dict[str, list[Received]] = defaultdict(list)
    for received in smtpd.received:
        copies[received.message["Message-ID"]].append(received)
    return copies


def cut_after_accept(
    smtpd: RecordingSMTPServer, first: Received, again: Received, kill: Kill, lease: float
) -> bool:
    """The kill landed between the server's accept of the first copy and its record:
    - the first copy was the last message its connection carried, and that client never
      said QUIT (it vanished with the message in hand);
    - the killed worker recorded a send before it (or none) and nothing after: the first
      copy came in after its last record and before the kill, and it never recorded this
      message;
    - the second copy came after the first claim's lease could have run out, so it is a
      claim of an expired lease, not a race. The claim (or its extension) may predate the
      worker's last record, but the re-check before the first copy, made after that record,
      found at least half the lease left (delivery._recheck): the lease ran out no sooner
      than half a lease after the last record.
    """
    on_session = [r for r in smtpd.received if r.session == first.session]
    recorded = records(kill.log)
    last = max((r.wall for r in recorded if r.wall <= kill.wall), default=float("-inf"))
    message_id = first.message["Message-ID"]
    return (
        smtpd.handler.vanished(first.session)
        and on_session[-1] is first
        and last < first.wall < kill.wall
        and all(r.message_id != message_id for r in recorded)
        and again.wall > last + lease / 2
    )


def unexplained_repeats(smtpd: RecordingSMTPServer, kills: list[Kill], lease: float) -> list[str]:
    """Message-IDs that arrived more than once without kills to explain it: each copy after
    the first needs a kill of its own (a worker has one send in hand when it dies)."""
    unexplained, used = [], set()
    for message_id, copies in copies_by_message(smtpd).items():
        for first, again in pairwise(copies):
            kill = next(
                (
                    n
                    for n, k in enumerate(kills)
                    if n not in used and cut_after_accept(smtpd, first, again, k, lease)
                ),
                None,
            )
            if kill is None:
                unexplained.append(message_id)
                break
            used.add(kill)
    return unexplained


def describe(smtpd: RecordingSMTPServer, kills: list[Kill], message_ids: list[str]) -> str:
    """What the evidence held for these Message-IDs, for a failure's message: each copy's
    time and connection, and each kill's time beside its worker's last record before it."""
    lines = []
    for message_id in message_ids:
        for copy in copies_by_message(smtpd)[message_id]:
            on_session = [r for r in smtpd.received if r.session == copy.session]
            lines.append(
                f"{message_id}: in at {copy.wall:.3f} on {copy.session} "
                f"(vanished: {smtpd.handler.vanished(copy.session)}, "
                f"last on it: {on_session[-1] is copy})"
            )
    for kill in kills:
        recorded = [r.wall for r in records(kill.log) if r.wall <= kill.wall]
        last = f"{max(recorded):.3f}" if recorded else "none"
        lines.append(f"kill at {kill.wall:.3f}, its last record at {last}")
    return "\n".join(lines)
