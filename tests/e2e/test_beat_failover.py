"""No machine is special: two `celery -A worker beat` processes on PostgreSQL, one holding the
scheduler lock and sending the passes, the other standing by. SIGKILL the holder and the
standby takes over: what falls due next leaves within two DISPATCH_INTERVALs, and nothing is
sent twice. Rows are written straight into the database, never nudged: only a pass sends them."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import ScheduledEmail, Subscriber
from service.sending.message import new_message_id
from tests.conftest import SECRET, make_app
from tests.e2e.test_race import broker_idle
from tests.procs import BIN, clean_env, start, stop, wait_until, worker_command
from tests.sending.test_scheduler_lock import holder

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
INTERVAL = 2.0  # DISPATCH_INTERVAL, seconds
SENT_BY_BEAT = "Sending due task dispatch"


def write_due(app, dues: list[datetime]) -> dict[str, datetime]:
    """One subscriber and one guide email per due time, as a signup leaves them but with no
    nudge; returns each email's Message-ID with its due time."""
    now = utcnow()
    with app.app_context():
        first = db.session.scalar(select(db.func.count()).select_from(Subscriber))
        names = [f"f{first + n}@example.com" for n in range(len(dues))]
        ids = db.session.scalars(
            insert(Subscriber).returning(Subscriber.id),
            [
                {
                    "email": name,
                    "email_key": name,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "guide_downloads": 0,
                }
                for name in names
            ],
            execution_options={"sort_by_parameter_order": True},
        ).all()
        rows = [
            {
                "subscriber_id": subscriber_id,
                "step_id": "guide",
                "purpose": "drip",
                "status": "pending",
                "anchor_at": now,
                "due_at": due,
                "attempts": 0,
                "created_at": now,
                "message_id": new_message_id("x@insideoutstrength.example"),
            }
            for subscriber_id, due in zip(ids, dues, strict=True)
        ]
        db.session.execute(insert(ScheduledEmail), rows)
        db.session.commit()
    return {row["message_id"]: row["due_at"] for row in rows}


def beat_command(schedule: Path) -> list[str]:
    """`celery -A worker beat` with a schedule file of its own, as on a machine of its own."""
    return [str(BIN / "celery"), "-A", "worker", "beat", "--loglevel", "INFO", "-s", str(schedule)]


def beat_pid(database_url: str) -> int | None:
    """The process id of the beat whose session holds the scheduler lock."""
    name = holder(database_url)  # "leadmagnet beat <pid> <host>"
    return int(name.split()[2]) if name else None


def test_killing_the_beat_that_holds_the_lock_lets_another_take_over(
    tmp_path, pg_database, redis_db, smtpd
):
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DISPATCH_INTERVAL": str(INTERVAL),
    }
    app = make_app(settings)
    env = clean_env(**settings)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    procs = [start(worker_command("--loglevel", "INFO"), env, tmp_path, tmp_path / "worker.log")]
    beats = {}
    try:
        for name, log in logs.items():
            beats[name] = start(beat_command(tmp_path / f"{name}-schedule"), env, tmp_path, log)
        procs += beats.values()
        assert wait_until(lambda: beat_pid(pg_database), 60), "a beat took the lock"
        [held] = [name for name, proc in beats.items() if proc.pid == beat_pid(pg_database)]
        [standby] = set(beats) - {held}

        before = write_due(app, [utcnow()] * 3)
        assert len(smtpd.wait_for(len(before))) == len(before), "the holder's passes send"
        assert SENT_BY_BEAT in logs[held].read_text()
        assert SENT_BY_BEAT not in logs[standby].read_text(), "the standby sent passes too"

        soon = utcnow()
        after = write_due(app, [soon + timedelta(seconds=s) for s in (1, 1.5, 2, 3, 4, 5)])
        stop(beats[held], signal.SIGKILL)
        killed = utcnow()
        everything = {**before, **after}
        arrived = smtpd.wait_for(len(everything))
        assert len(arrived) >= len(everything), logs[standby].read_text()[-2000:]
        # Then until the workers are idle: a second copy of anything would have come by then.
        assert wait_until(lambda: broker_idle(redis_db), 30, 0.2)
        arrivals = {}
        for received in smtpd.received:
            arrivals.setdefault(received.message["Message-ID"], received.wall)
        due_after_kill = {mid: due for mid, due in after.items() if due > killed}
        first_due = min(due_after_kill, key=due_after_kill.__getitem__)
        late = arrivals[first_due] - due_after_kill[first_due].timestamp()
        print(f"\nfailover: the first email due after the kill left {late:.2f}s after its due time")
        assert late <= 2 * INTERVAL, f"{late:.1f}s late, over two DISPATCH_INTERVALs"
        assert beat_pid(pg_database) == beats[standby].pid
        assert SENT_BY_BEAT in logs[standby].read_text()
    finally:
        for proc in procs:
            stop(proc)

    counts = Counter(r.message["Message-ID"] for r in smtpd.received)
    assert set(counts) == set(everything)
    assert set(counts.values()) == {1}, "every email arrived exactly once"
    with app.app_context():
        sent = select(ScheduledEmail.status).where(ScheduledEmail.message_id.in_(everything))
        assert set(db.session.scalars(sent)) == {"sent"}, "and recorded as sent"
