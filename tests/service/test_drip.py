"""The drip engine with time travel: every step once, in order, on time, never after leaving."""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from service.extensions import db
from service.models import EmailStatus, ScheduledEmail, Subscriber
from service.rendering import TEMPLATES_DIR
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
# The shipped sequence file, read by eye: each step and its delay after the one before.
SHIPPED = [
    ("guide", timedelta(0)),
    ("knees-over-toes", timedelta(days=2)),
    ("ankle-mobility", timedelta(days=2)),
    ("quad-strength", timedelta(days=2)),
    ("real-life-strength", timedelta(days=3)),
    ("train-together", timedelta(days=2)),
    ("coaching", timedelta(days=3)),
]
PASS_EVERY = timedelta(hours=3)


def walk(app, start: datetime, days: int, every: timedelta = PASS_EVERY) -> datetime:
    """Run a scheduler pass every few hours of travelled time."""
    moment = start
    while moment < start + timedelta(days=days):
        moment += every
        with time_machine.travel(moment, tick=False):
            dispatch_inline(app)
    return moment


def sent_steps(app, email: str) -> list[ScheduledEmail]:
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        return list(
            db.session.scalars(
                select(ScheduledEmail)
                .where(
                    ScheduledEmail.subscriber_id == subscriber.id,
                    ScheduledEmail.status == EmailStatus.SENT,
                )
                .order_by(ScheduledEmail.sent_at)
            )
        )


def test_three_subscribers_walk_the_whole_sequence(app, client, outbox):
    people = ["ana@example.com", "ben@example.com", "cy@example.com"]
    for n, address in enumerate(people):
        with time_machine.travel(START + timedelta(hours=n), tick=False):
            assert api_signup(client, address).status_code == 202
    walk(app, START, days=30)
    for n, address in enumerate(people):
        sent = sent_steps(app, address)
        assert [e.step_id for e in sent] == [step for step, _ in SHIPPED]
        signed_up = START + timedelta(hours=n)
        gaps = [b.sent_at - a.sent_at for a, b in itertools.pairwise(sent)]
        for gap, (step, delay) in zip([sent[0].sent_at - signed_up, *gaps], SHIPPED, strict=True):
            # No earlier than its delay, and no later than the next pass after it.
            assert delay <= gap <= delay + PASS_EVERY, (address, step, gap)
    assert len(list(outbox.glob("*.eml"))) == 3 * len(SHIPPED)
    walk(app, START + timedelta(days=30), days=30, every=timedelta(days=1))
    assert len(list(outbox.glob("*.eml"))) == 3 * len(SHIPPED), "nothing after the last step"


def test_unsubscribing_mid_sequence_cancels_the_rest(app, client, outbox):
    with time_machine.travel(START, tick=False):
        api_signup(client, "quits@example.com")
    walk(app, START, days=3)  # guide and the first follow-up
    assert len(sent_steps(app, "quits@example.com")) == 2
    with app.app_context():
        from service.consent import RequestMeta
        from service.unsubscribe import unsubscribe

        subscriber = db.session.scalars(select(Subscriber)).one()
        with app.test_request_context():
            unsubscribe(subscriber.id, RequestMeta("test", None, None, None))
    walk(app, START + timedelta(days=3), days=30, every=timedelta(hours=12))
    assert len(sent_steps(app, "quits@example.com")) == 2
    with app.app_context():
        open_rows = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.status.in_(EmailStatus.OPEN))
        ).all()
        assert open_rows == []


def edited_sequence(tmp_path: Path, edit) -> Path:
    """A copy of the shipped templates folder with its sequence file edited."""
    folder = tmp_path / "email_templates"
    shutil.copytree(TEMPLATES_DIR, folder)
    path = folder / "sequence.toml"
    path.write_text(edit(path.read_text()))
    return path


def with_window(text: str) -> str:
    return text.replace(
        'id = "knees-over-toes"\ndelay = "2d"',
        'id = "knees-over-toes"\ndelay = "2d"\nwindow = { hours = "9-11", days = "mon-fri" }',
    )


def test_a_step_outside_its_window_waits_for_the_next_opening_in_the_subscribers_zone(
    env, tmp_path
):
    app = make_app({**env, "SEQUENCE_FILE": str(edited_sequence(tmp_path, with_window))})
    friday_evening_tokyo = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    with time_machine.travel(friday_evening_tokyo, tick=False):
        api_signup(app.test_client(), "kenji@example.jp", time_zone="Asia/Tokyo")
        dispatch_inline(app)  # the guide, at once
    # Two days later is Sunday 21:00 in Tokyo: the window opens Monday 09:00 Tokyo time.
    monday_nine_tokyo = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
    with app.app_context():
        row = db.session.scalars(
            select(ScheduledEmail).where(ScheduledEmail.step_id == "knees-over-toes")
        ).one()
        assert row.due_at == monday_nine_tokyo
    with time_machine.travel(monday_nine_tokyo - timedelta(minutes=1), tick=False):
        assert dispatch_inline(app) == []
    with time_machine.travel(monday_nine_tokyo, tick=False):
        assert dispatch_inline(app) == ["sent"]


def test_an_invalid_time_zone_from_the_browser_falls_back_to_the_sequence_default(app, client):
    api_signup(client, "tz@example.com", time_zone="Mars/Olympus_Mons")
    with app.app_context():
        assert db.session.scalars(select(Subscriber.time_zone)).one() is None


def edit_mid_flight(text: str) -> str:
    """Add a step right after the guide, lengthen a delay, remove the last step."""
    text = text.replace(
        '[[steps]]\nid = "knees-over-toes"',
        '[[steps]]\nid = "welcome-extra"\ndelay = "1d"\ntemplate = "quad-strength"\n\n'
        '[[steps]]\nid = "knees-over-toes"',
    )
    text = text.replace(
        'id = "ankle-mobility"\ndelay = "2d"', 'id = "ankle-mobility"\ndelay = "4d"'
    )
    return text.split('[[steps]]\nid = "coaching"')[0]


def test_editing_the_sequence_mid_flight(env, tmp_path):
    sequence_file = edited_sequence(tmp_path, lambda text: text)
    app = make_app({**env, "SEQUENCE_FILE": str(sequence_file)})
    with time_machine.travel(START, tick=False):
        api_signup(app.test_client(), "mid@example.com")
        dispatch_inline(app)  # guide sent; knees-over-toes waits 2 days; the file is applied
    assert [e.step_id for e in sent_steps(app, "mid@example.com")] == ["guide"]

    sequence_file.write_text(edit_mid_flight(sequence_file.read_text()))
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        check = app.test_cli_runner().invoke(args=["sequence", "check"])
        assert check.exit_code == 0, check.output
        assert "added step welcome-extra" in check.output
        assert "removed step coaching" in check.output
        assert "step ankle-mobility: delay 2d -> 4d" in check.output
        assert "1 moved from knees-over-toes to welcome-extra" in check.output
        assert [e.step_id for e in sent_steps(app, "mid@example.com")] == ["guide"], (
            "check changes nothing"
        )
    walk(app, START, days=30)
    sent = sent_steps(app, "mid@example.com")
    assert [e.step_id for e in sent] == [
        "guide",
        "welcome-extra",
        "knees-over-toes",
        "ankle-mobility",
        "quad-strength",
        "real-life-strength",
        "train-together",
    ]
    gaps = {e.step_id: e.sent_at - p.sent_at for p, e in itertools.pairwise(sent)}
    assert timedelta(days=1) <= gaps["welcome-extra"] < timedelta(days=1, hours=4)
    assert timedelta(days=4) <= gaps["ankle-mobility"] < timedelta(days=4, hours=4)


BROKEN = {
    "bad delay": (
        (
            'delay = "2d"\ntemplate = "knees-over-toes"',
            'delay = "2 weeks"\ntemplate = "knees-over-toes"',
        ),
        "error: step 'knees-over-toes': delay '2 weeks' is not a duration",
    ),
    "unknown template": (
        ('template = "knees-over-toes"', 'template = "no-such-folder"'),
        "error: step 'knees-over-toes': unknown template 'no-such-folder'",
    ),
    "duplicate id": (
        ('id = "ankle-mobility"', 'id = "knees-over-toes"'),
        "error: step 3: duplicate id 'knees-over-toes'",
    ),
    "template that fails to render": (
        ('template = "coaching"', 'template = "coaching"  # its subject names no_such_thing'),
        "error: step 'coaching': template 'coaching' fails to render: 'no_such_thing' is undefined",
    ),
}


@pytest.mark.parametrize("fault", BROKEN.keys())
def test_sequence_check_names_each_fault_in_one_line(env, tmp_path, fault):
    sequence_file = edited_sequence(tmp_path, lambda text: text)
    app = make_app({**env, "SEQUENCE_FILE": str(sequence_file)})
    (old, new), message = BROKEN[fault]
    sequence_file.write_text(sequence_file.read_text().replace(old, new, 1))
    (sequence_file.parent / "coaching" / "subject.txt").write_text("Hi {{ no_such_thing }}")
    result = app.test_cli_runner().invoke(args=["sequence", "check"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.output
