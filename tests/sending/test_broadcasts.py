"""Broadcasts through the drip engine: exactly once, re-checked at send time, pausable,
finished only when nothing is left, with each recipient's outcome kept."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from service.core.extensions import db
from service.core.models import (
    Broadcast,
    BroadcastStatus,
    EmailStatus,
    Enrolment,
    Magnet,
    Outcome,
    ScheduledEmail,
    Subscriber,
)
from service.people.consent import RequestMeta
from service.people.unsubscribe import unsubscribe
from service.sending import broadcasts
from service.sending.broadcast_audience import FINISHED, TOOK, Audience, size
from service.sending.broadcast_progress import progress
from service.sending.context import for_app
from service.sending.delivery import deliver
from service.sending.suppression import suppress
from tests.broadcast_helpers import (
    add_subscribers,
    deliver_ids,
    hand_out,
    rows,
    start_broadcast,
)
from tests.helpers import outbox_messages

META = RequestMeta(source="unsubscribe-link", ip="127.0.0.1", user_agent="test", page_url=None)


def recipients(outbox) -> Counter:
    return Counter(m["To"].addresses[0].addr_spec for m in outbox_messages(outbox))


def test_fifty_minus_unsubscribed_and_suppressed_each_get_it_once(app, outbox):
    ids = add_subscribers(app, 50)
    with app.app_context():
        ctx = for_app(app)
        for subscriber_id in ids[:3]:  # suppressed, yet still marked active
            suppress(ctx, db.session.get_one(Subscriber, subscriber_id).email, "complained")
        db.session.commit()
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    assert len(handed) == 50

    late = ids[40:45]  # unsubscribe once the send is under way, before their turn

    def midway(n: int) -> None:
        if n == 20:
            ctx = for_app(app)
            for subscriber_id in late:
                unsubscribe(ctx, subscriber_id, META)

    outcomes = deliver_ids(app, handed, midway)
    assert Counter(outcomes) == {Outcome.SENT: 42, Outcome.CANCELLED: 3, Outcome.NOT_CLAIMED: 5}
    got = recipients(outbox)
    assert len(got) == 42 and set(got.values()) == {1}
    with app.app_context():
        people = db.session.scalars(select(Subscriber).where(Subscriber.id.in_(ids)))
        emails = {s.id: s.email for s in people}
    assert set(got) == {emails[i] for i in ids[3:40] + ids[45:]}
    # A second worker handed the same rows sends nothing again.
    assert set(deliver_ids(app, handed)) == {Outcome.NOT_CLAIMED}
    skipped = {
        r.subscriber_id: r.last_error for r in rows(app, broadcast_id) if r.status == "cancelled"
    }
    assert {skipped[i] for i in ids[:3]} == {"address suppressed"}
    assert set(late) <= set(skipped)
    hand_out(app)  # the pass that sees nothing open marks it finished
    with app.app_context():
        found = progress(broadcast_id, for_app(app).now())
        assert found is not None
        assert (found.status, found.sent, found.skipped, found.remaining) == ("finished", 42, 8, 0)


def test_the_audience_is_frozen_and_materialised_once(app):
    add_subscribers(app, 7)
    broadcast_id = start_broadcast(app)
    add_subscribers(app, 3, prefix="late")  # signed up after the start: not in it
    with app.app_context():
        ctx = for_app(app)
        assert broadcasts.start(ctx, broadcast_id) == 0  # a second start writes nothing
        with pytest.raises(broadcasts.BroadcastError):
            broadcasts.send(ctx, broadcast_id)
    assert len(rows(app, broadcast_id)) == 7
    assert len({r.message_id for r in rows(app, broadcast_id)}) == 7


def test_pause_stops_the_next_claim_and_resume_sends_the_rest_once(app, outbox):
    add_subscribers(app, 20)
    broadcast_id = start_broadcast(app)
    batch = hand_out(app)

    def pause_after_five(n: int) -> None:
        if n == 5:
            broadcasts.pause(for_app(app), broadcast_id)

    outcomes = deliver_ids(app, batch, pause_after_five)
    # The very next claim after the pause is refused: nothing more of this batch goes.
    assert outcomes[:5] == [Outcome.SENT] * 5
    assert set(outcomes[5:]) == {Outcome.NOT_CLAIMED}
    assert hand_out(app) == []  # a paused broadcast's rows are not handed out
    with app.app_context():
        assert progress(broadcast_id, for_app(app).now()).status == "paused"
        broadcasts.resume(for_app(app), broadcast_id)
    deliver_ids(app, hand_out(app))
    got = recipients(outbox)
    assert len(got) == 20 and set(got.values()) == {1}


def test_status_is_never_finished_while_a_row_is_open(app):
    add_subscribers(app, 6)
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    with app.app_context():
        ctx = for_app(app)
        for n, email_id in enumerate(handed):
            broadcasts.finish_done(ctx.now())
            found = progress(broadcast_id, ctx.now())
            assert found.status == "sending" and found.remaining == len(handed) - n
            deliver(ctx, email_id)
        # A claimed row whose worker died counts as open too, until it is sent.
        broadcasts.finish_done(ctx.now())
        assert progress(broadcast_id, ctx.now()).status == "finished"


def test_a_row_leased_by_a_dead_worker_keeps_it_sending(app):
    add_subscribers(app, 2)
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    deliver_ids(app, handed[:1])
    with app.app_context():
        row = db.session.get_one(ScheduledEmail, handed[1])
        row.status = EmailStatus.SENDING  # claimed, never recorded
        db.session.commit()
        broadcasts.finish_done(for_app(app).now())
        assert db.session.get_one(Broadcast, broadcast_id).status == BroadcastStatus.SENDING


def test_retry_failed_sends_the_refused_ones_again(env, smtpd):
    from tests.conftest import make_app

    app = make_app({**env, "EMAIL_URL": smtpd.url})
    add_subscribers(app, 6)
    smtpd.handler.script = [None, "554 5.6.0 message refused", None, "554 5.6.0 refused"]
    broadcast_id = start_broadcast(app)
    outcomes = deliver_ids(app, hand_out(app))
    assert Counter(outcomes) == {Outcome.SENT: 4, Outcome.FAILED: 2}
    failed = [r for r in rows(app, broadcast_id) if r.status == "failed"]
    assert all("554" in (r.last_error or "") for r in failed)
    hand_out(app)
    with app.app_context():
        assert progress(broadcast_id, for_app(app).now()).status == "finished"
        assert broadcasts.retry_failed(for_app(app), broadcast_id) == 2
        assert progress(broadcast_id, for_app(app).now()).status == "sending"
    assert Counter(deliver_ids(app, hand_out(app))) == {Outcome.SENT: 2}
    assert len(smtpd.received) == 6
    assert len({r.recipients[0] for r in smtpd.received}) == 6


def test_a_server_refusing_everything_stops_the_broadcast_with_the_reason(env, smtpd):
    from tests.conftest import make_app

    app = make_app({**env, "EMAIL_URL": smtpd.url})
    add_subscribers(app, 15)
    smtpd.handler.script = ["554 5.7.1 sender not allowed"] * 15
    broadcast_id = start_broadcast(app)
    outcomes = deliver_ids(app, hand_out(app))
    assert Counter(outcomes)[Outcome.FAILED] == broadcasts.STOP_AFTER
    assert set(outcomes[broadcasts.STOP_AFTER :]) == {Outcome.NOT_CLAIMED}
    with app.app_context():
        found = progress(broadcast_id, for_app(app).now())
        assert found.status == "stopped"
        assert "refused 10 of 10" in found.reason and "sender not allowed" in found.reason


def test_throttling_replies_slow_the_send_and_fail_nothing(env, smtpd):
    from datetime import timedelta

    import time_machine

    from tests.conftest import make_app

    app = make_app({**env, "EMAIL_URL": smtpd.url})
    add_subscribers(app, 30)
    smtpd.handler.script = ([None] * 9 + ["421 4.7.0 try again later"]) * 3
    # A limit of its own to halve: unlimited, the pace halved is the observed one (~1/s),
    # and the test would wait for it in real time.
    broadcast_id = start_broadcast(app, rate="200/s")
    outcomes = deliver_ids(app, hand_out(app))
    assert Counter(outcomes) == {Outcome.SENT: 27, Outcome.DEFERRED: 3}
    with app.app_context():
        lowered = db.session.get_one(Broadcast, broadcast_id).effective_rate
        assert lowered is not None and 0 < lowered <= 100
        later = for_app(app).now() + timedelta(seconds=10)
    with time_machine.travel(later, tick=False):
        assert Counter(deliver_ids(app, hand_out(app))) == {Outcome.SENT: 3}
        hand_out(app)
    assert len(smtpd.received) == 30
    assert len({r.recipients[0] for r in smtpd.received}) == 30
    with app.app_context():
        found = progress(broadcast_id, for_app(app).now())
        assert (found.status, found.sent, found.failed) == ("finished", 30, 0)


def _magnet(slug: str) -> Magnet:
    magnet = Magnet(slug=slug, title=slug)
    db.session.add(magnet)
    db.session.flush()
    return magnet


def test_audiences_by_magnet_taken_and_sequence_finished(app):
    ids = add_subscribers(app, 6)
    with app.app_context():
        a, b = _magnet("bc-a"), _magnet("bc-b")
        for subscriber_id in ids[:3]:
            db.session.add(Enrolment(subscriber_id=subscriber_id, magnet_id=a.id))
        db.session.add(Enrolment(subscriber_id=ids[3], magnet_id=b.id))
        stopped = Enrolment(subscriber_id=ids[4], magnet_id=a.id, stop_reason="stopped")
        stopped.stopped_at = stopped.taken_at = for_app(app).now()
        db.session.add(stopped)
        now = for_app(app).now()
        # ids[0] finished a's drip; ids[1] still has a step to go; ids[2] has had none.
        for subscriber_id, status in ((ids[0], "sent"), (ids[1], "sent"), (ids[1], "pending")):
            db.session.add(
                ScheduledEmail(
                    subscriber_id=subscriber_id,
                    magnet_id=a.id,
                    step_id=f"s{status}",
                    purpose="drip",
                    status=status,
                    anchor_at=now,
                    due_at=now,
                    message_id=f"<{subscriber_id}{status}@x>",
                )
            )
        db.session.commit()
        assert size(Audience()) == 6
        assert size(Audience(TOOK, (a.id,))) == 3
        assert size(Audience(TOOK, (a.id, b.id))) == 4
        assert size(Audience(FINISHED, (a.id,))) == 1
        unsubscribe(for_app(app), ids[0], META)
        assert size(Audience(FINISHED, (a.id,))) == 0


def test_the_email_has_the_layout_unsubscribe_headers_and_tracked_links(app, outbox):
    add_subscribers(app, 1)
    start_broadcast(app)
    deliver_ids(app, hand_out(app))
    [msg] = outbox_messages(outbox)
    assert msg["Subject"] == "News for N0"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in msg["List-Unsubscribe"]
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<h1" in html and "Hello N0" in html and "style=" in html  # CSS inlined
    assert "https://blog.example.org/post" not in html  # through the click redirect
    assert "/r/" in html and "/unsubscribe/" in html
    assert "Hello N0" in text and "/unsubscribe/" in text


def test_one_progress_query_counts_every_outcome(app):
    add_subscribers(app, 4)
    broadcast_id = start_broadcast(app)
    with app.app_context():
        found = progress(broadcast_id, for_app(app).now())
        assert (found.recipients, found.remaining, found.sent) == (4, 4, 0)
        assert found.eta is None  # nothing sent yet: no rate to tell by
        total = db.session.scalar(select(func.count()).where(ScheduledEmail.purpose == "broadcast"))
        assert total == 4


def test_a_worker_batch_claims_broadcast_rows_and_a_pause_stops_it_within_one_batch(app, outbox):
    from service.sending.batch_claims import CLAIM_BATCH
    from service.sending.dispatch import deliver_batch

    add_subscribers(app, CLAIM_BATCH * 3)
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    sends = [0]

    def stopping() -> bool:  # asked before each row: the owner pauses after the fifth send
        sends[0] += 1
        if sends[0] == 6:
            broadcasts.pause(for_app(app), broadcast_id)
        return False

    with app.app_context():
        sent = deliver_batch(for_app(app), handed, stopping)
    # The rows already claimed with the first batch go; no later batch is claimed.
    assert sent == CLAIM_BATCH
    assert len(outbox_messages(outbox)) == CLAIM_BATCH
    with app.app_context():
        broadcasts.resume(for_app(app), broadcast_id)
        assert deliver_batch(for_app(app), hand_out(app), lambda: False) == CLAIM_BATCH * 2
        # The batch that sent the last row marked it finished, with no pass in between.
        assert progress(broadcast_id, for_app(app).now()).status == "finished"
    got = recipients(outbox)
    assert len(got) == CLAIM_BATCH * 3 and set(got.values()) == {1}


def test_a_batch_row_whose_lease_ran_short_is_left_for_its_next_claim(app, outbox):
    from datetime import timedelta

    import time_machine

    from service.sending.batch_claims import claim_batch
    from service.sending.delivery import deliver_claimed

    add_subscribers(app, 2)
    start_broadcast(app)
    handed = hand_out(app)
    with app.app_context():
        ctx = for_app(app)
        now = ctx.now()
        claimed, held = claim_batch(handed, now, ctx.settings.send_lease)
        assert claimed == sorted(handed)
        assert deliver_claimed(ctx, claimed[0], now, held) == Outcome.SENT
        late = now + timedelta(seconds=ctx.settings.send_lease * 0.6)
        with time_machine.travel(late, tick=False):
            # Over half its lease gone: another worker may claim it soon; this one does not send.
            assert deliver_claimed(ctx, claimed[1], late, held) == Outcome.NOT_CLAIMED
        assert db.session.get_one(ScheduledEmail, claimed[1]).status == "sending"
    assert len(outbox_messages(outbox)) == 1


def test_a_batch_whose_worker_died_after_claiming_it_is_sent_by_another_once(app, outbox):
    """SIGKILL in process, on both backends (tests/faults/test_broadcast_kill.py kills real
    workers on PostgreSQL): a worker claims a batch, sends one row and is gone; once its
    lease runs out the next pass hands the rest to another worker, and nothing goes twice."""
    from datetime import timedelta

    import time_machine

    from service.sending.batch_claims import claim_batch
    from service.sending.delivery import deliver_claimed
    from service.sending.dispatch import deliver_batch

    add_subscribers(app, 6)
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    with app.app_context():
        ctx = for_app(app)
        now = ctx.now()
        claimed, held = claim_batch(handed, now, ctx.settings.send_lease)
        assert deliver_claimed(ctx, claimed[0], now, held) == Outcome.SENT
        later = now + timedelta(seconds=ctx.settings.send_lease + 1)
    assert hand_out(app) == []  # still leased to the dead worker: nobody else sends them
    with time_machine.travel(later, tick=False):
        again = hand_out(app)
        assert sorted(again) == sorted(claimed[1:])
        with app.app_context():
            assert deliver_batch(for_app(app), again, lambda: False) == 5
            assert progress(broadcast_id, for_app(app).now()).status == "finished"
    got = recipients(outbox)
    assert len(got) == 6 and set(got.values()) == {1}
