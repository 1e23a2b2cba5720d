"""A worker SIGKILLed twice mid-broadcast: nothing is lost, and the only repeat allowed is a
send cut after the server accepted it (evidence: the SMTP server's record beside the killed
worker's log, as in test_kill_storm). Meanwhile `broadcast status` is run over and over
and never says finished while a recipient row is pending or being sent."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from service.core.extensions import db
from service.core.models import DeliveryAttempt, ScheduledEmail
from service.sending.broadcast_progress import progress
from tests.broadcast_helpers import add_subscribers, start_broadcast
from tests.conftest import SECRET, make_app
from tests.faults.evidence import Kill, copies_by_message, describe, unexplained_repeats
from tests.procs import BIN, clean_env, start, stop, wait_until, worker_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
RECIPIENTS = 300
KILLS = 2
LEASE = 2
WORKER = worker_command("--loglevel", "INFO")
BEAT = [str(BIN / "celery"), "-A", "worker", "beat", "--loglevel", "WARNING"]


def tail(path) -> str:
    return path.read_text()[-2000:] if path.exists() else "(no log)"


class StatusWatch(threading.Thread):
    """Runs `leadmagnet broadcast status` (in this process) until stopped; notes any answer
    that says finished with a recipient still remaining (one query reads both)."""

    def __init__(self, app, broadcast_id: int) -> None:
        super().__init__(daemon=True)
        self.runner, self.broadcast_id = app.test_cli_runner(), broadcast_id
        self.readings = 0
        self.lies: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            said = self.runner.invoke(args=["broadcast", "status", str(self.broadcast_id)])
            self.readings += 1
            if said.exit_code != 0:
                self.lies.append(f"exit {said.exit_code}: {said.output}")
            elif "state: finished" in said.output and "remaining: 0\n" not in said.output:
                self.lies.append(said.output)
            time.sleep(0.05)


def test_sigkilled_workers_lose_no_recipient_and_status_never_lies(
    tmp_path, pg_database, redis_db, smtpd
):
    rng = random.Random(int(os.environ.get("FAULT_SEED") or time.time_ns() % 1_000_000))
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SEND_LEASE": str(LEASE),
        "DISPATCH_INTERVAL": "1",
    }
    app = make_app(settings)
    add_subscribers(app, RECIPIENTS)
    broadcast_id = start_broadcast(app)
    env = clean_env(**settings)
    smtpd.handler.reply_delay = 0.05  # a kill may land between the accept and the 250
    kills: list[Kill] = []
    watch = StatusWatch(app, broadcast_id)
    watch.start()
    worker = beat = None
    try:
        beat = start(BEAT, env, tmp_path, tmp_path / "beat.log")
        for n in range(KILLS):
            log = tmp_path / f"worker{n}.log"
            worker = start(WORKER, env, tmp_path, log)
            before = len(smtpd.received)
            assert wait_until(lambda b=before: len(smtpd.received) > b, 60, 0.05), tail(log)
            time.sleep(rng.uniform(0.3, 1.5))
            stop(worker, signal.SIGKILL)
            kills.append(Kill(time.time(), log))
        assert len(smtpd.received) < RECIPIENTS, "the kills came too late to hit anything"
        log = tmp_path / "worker-last.log"
        worker = start(WORKER, env, tmp_path, log)
        smtpd.handler.reply_delay = 0

        def finished() -> bool:
            with app.app_context():
                found = progress(broadcast_id, datetime.now(UTC))
                db.session.rollback()
            return found is not None and found.status == "finished"

        assert wait_until(finished, 180, 0.5), tail(log)
    finally:
        watch.halt.set()
        for proc in (worker, beat):
            if proc is not None:
                stop(proc)
    watch.join(timeout=5)

    copies = copies_by_message(smtpd)
    arrivals = Counter({mid: len(got) for mid, got in copies.items()})
    unexplained = unexplained_repeats(smtpd, kills, LEASE)
    with app.app_context():
        rows = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.broadcast_id == broadcast_id)
        ).all()
        expected = {row.message_id for row in rows}
        statuses = Counter(row.status for row in rows)
        sent_logs = Counter(
            db.session.scalars(
                select(DeliveryAttempt.message_id).where(DeliveryAttempt.outcome == "sent")
            )
        )
    duplicates = {mid: n for mid, n in arrivals.items() if n > 1}
    print(
        f"\nbroadcast kill: {len(kills)} kills, {RECIPIENTS} recipients, {len(duplicates)} "
        f"repeats (all cut after the accept), {watch.readings} status readings"
    )
    assert not unexplained, (
        f"sent more than once without a kill to explain it: {unexplained}\n"
        f"{describe(smtpd, kills, unexplained)}"
    )
    assert set(arrivals) == expected, "every recipient got it, under its own Message-ID"
    assert statuses == {"sent": RECIPIENTS}
    assert len(sent_logs) == RECIPIENTS and set(sent_logs.values()) == {1}
    assert watch.readings > 10 and not watch.lies, watch.lies
