"""The worker's metrics server reads the database in a thread of the prefork pool's parent:
a child forked while a scrape is inside a SQLite transaction would inherit the write lock as
held by a thread it does not have, and never write (CI: a deliver received, nothing sent).
The fork waits for the scrape instead."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text

from service.core.extensions import db
from tests.conftest import SECRET, make_app
from worker.app import between_forks

FORK_WAIT = 1.0  # how long a scrape holding the lock gives the fork to happen meanwhile


def child_writes(path: Path) -> int:
    """Forks; the child takes SQLite's write lock on a connection of its own (1 s busy
    timeout) and exits 0 if it got it; the child's exit code (9: hung, killed)."""
    pid = os.fork()
    if pid == 0:  # the child: nothing but this, then out
        code = 1
        try:
            conn = sqlite3.connect(path, timeout=1, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return 9


# The fork is the point: its child does one SQLite statement and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_during_a_scrape_can_write_to_sqlite(tmp_path):
    path = tmp_path / "test.sqlite3"
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
        }
    )
    forked = threading.Event()
    os.register_at_fork(after_in_parent=forked.set)
    codes: list[int] = []
    forkers: list[threading.Thread] = []

    class HoldsTheWriteLock:
        """A scrape's read: every transaction here begins with SQLite's write lock. While it
        holds it, a pool child is forked (if the fork does not wait for it)."""

        def collect(self) -> list:
            with app.app_context():
                db.session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE
                forkers.append(threading.Thread(target=lambda: codes.append(child_writes(path))))
                forkers[0].start()
                forked.wait(FORK_WAIT)  # only when the fork does not wait for this scrape
                db.session.rollback()
            return []

    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(HoldsTheWriteLock())
    generate_latest(between_forks(scrape))
    forkers[0].join(timeout=60)
    assert codes == [0], "the child forked mid-scrape could not take SQLite's write lock"
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
