"""Two publishes reviewed over the same version in force (two owners, or the editor and the
CLI): exactly one is applied; the other is refused (StalePublish) and changes nothing, so no
version goes in force over one nobody reviewed. On PostgreSQL both are held at the magnet's
row lock until each has passed everything before it, then let go together."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from service.content.draft_steps import steps_of
from service.content.magnets import default_magnet
from service.content.versions import files_of, history, new_version, published_version
from service.core.extensions import db
from service.core.models import Magnet, MagnetPublication
from service.sending.context import for_app
from service.sending.publish import ANY, Over, StalePublish, publish
from tests.sending.test_content_import import cli

Outcome = tuple[str, int | None]  # ("published", replaced number) or ("stale", in force)


def two_versions(app: Flask) -> tuple[int, list[int]]:
    """The id of the version in force (v1) and the numbers of two new ones made over it."""
    with app.app_context():
        for_app(app)  # loads the default magnet's first version
        magnet = default_magnet()
        current = published_version(magnet)
        numbers = []
        for subject in ("From owner A", "From owner B"):
            files = files_of(current)
            files[f"{steps_of(files)[0].template}/subject.txt"] = subject + "\n"
            numbers.append(new_version(magnet, files, "owner@example.com").number)
        db.session.commit()
        return current.id, numbers


def publish_number(app: Flask, number: int, over: Over) -> Outcome:
    """One owner's confirm: a session of its own, the version's impact reviewed over `over`."""
    with app.app_context():
        magnet = default_magnet()
        version = next(v for v in _versions(magnet) if v.number == number)
        try:
            found = publish(for_app(app).for_magnet(magnet.id), magnet, version, "o", over=over)
        except StalePublish as stale:
            return ("stale", stale.in_force)
        return ("published", found.replaced)


def _versions(magnet: Magnet) -> list:
    return [v for v, _ in history(magnet)]


def in_force(app: Flask) -> tuple[int, int]:
    """The number in force and how many publications were recorded."""
    with app.app_context():
        number = published_version(default_magnet()).number
        count = db.session.scalar(select(func.count()).select_from(MagnetPublication))
        db.session.rollback()
        return number, count


def test_a_publish_reviewed_over_a_version_no_longer_in_force_is_refused(app):
    over, (a, b) = two_versions(app)
    _, before = in_force(app)
    assert publish_number(app, a, over) == ("published", 1)
    assert publish_number(app, b, over) == ("stale", a)  # reviewed over v1; v2 is in force
    assert in_force(app) == (a, before + 1)
    with app.app_context():
        magnet = default_magnet()
        version = next(v for v in _versions(magnet) if v.number == b)
        with pytest.raises(StalePublish, match=f"version {a} was published after its impact"):
            publish(for_app(app).for_magnet(magnet.id), magnet, version, "o", over=over)
    # The CLI's way: over whatever is in force, saying which it replaced.
    assert publish_number(app, b, ANY) == ("published", a)
    assert in_force(app) == (b, before + 2)


def test_two_publishes_at_once_over_the_same_version_exactly_one_wins(app):
    """Two threads, each with its session (both backends; SQLite takes them in turn)."""
    over, numbers = two_versions(app)
    _, before = in_force(app)
    start = threading.Barrier(2)
    outcomes: dict[int, Outcome] = {}

    def owner(number: int) -> None:
        start.wait()
        outcomes[number] = publish_number(app, number, over)

    threads = [threading.Thread(target=owner, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(kind for kind, _ in outcomes.values()) == ["published", "stale"], outcomes
    winner = next(n for n, (kind, _) in outcomes.items() if kind == "published")
    loser = next(n for n in numbers if n != winner)
    assert outcomes[loser] == ("stale", winner)
    assert in_force(app) == (winner, before + 1)


@pytest.mark.postgres
def test_both_held_at_the_row_lock_then_let_go_one_wins(pg_app):
    """Both publishes are made to wait at the magnet's row (another session holds it) until
    each has read everything it reads before its check; released together, the second to
    get the lock must see the first's version in force and refuse."""
    app = pg_app
    over, numbers = two_versions(app)
    _, before = in_force(app)
    outcomes: dict[int, Outcome] = {}

    def owner(number: int) -> None:
        outcomes[number] = publish_number(app, number, over)

    with app.app_context():
        gate = default_magnet()
        db.session.execute(select(Magnet.id).where(Magnet.id == gate.id).with_for_update())
        threads = [threading.Thread(target=owner, args=(n,)) for n in numbers]
        for thread in threads:
            thread.start()
        waiting_on_locks(2, threads)
        db.session.commit()  # let both go at once
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert sorted(kind for kind, _ in outcomes.values()) == ["published", "stale"], outcomes
    winner = next(n for n, (kind, _) in outcomes.items() if kind == "published")
    assert in_force(app) == (winner, before + 1)


def waiting_on_locks(count: int, threads: list[threading.Thread]) -> None:
    """Until `count` other sessions wait on a lock: polled state, not a guessed delay."""
    probe = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    with db.engine.connect() as conn:
        for _ in range(100_000):
            if conn.execute(probe).scalar() >= count:
                return
            assert all(t.is_alive() for t in threads), "a publish ended without waiting"
            conn.rollback()
    raise AssertionError("the publishes never reached the magnet's row lock")


def test_the_cli_publishes_over_whatever_is_in_force_and_says_which(app):
    _over, (a, b) = two_versions(app)
    with app.app_context():
        slug = default_magnet().slug
    for number, replaced in ((a, 1), (b, a)):
        shown = cli(app, "content", "publish", slug, str(number), "--yes").splitlines()
        assert shown[-1] == f"{slug}: v{number} published (it replaced v{replaced})"
    assert in_force(app)[0] == b
