"""Consent, double opt-in, suppression and erasure: the evidence and the opt-outs hold."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text

from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import ConsentRecord, EventKind, Subscriber
from service.core.settings import settings_of
from service.people import records
from service.people.consent import RequestMeta
from service.people.housekeeping import purge_unconfirmed
from service.people.unsubscribe import unsubscribe
from service.sending.context import for_app
from service.sending.suppression import is_suppressed
from service.webhooks import events
from service.webhooks.normalized import Event
from tests.conftest import make_app
from tests.helpers import (
    api_signup,
    csrf_token,
    dispatch_inline,
    outbox_messages,
    parts,
    submit_form,
)

PUBLIC = "https://news.example.org"


def doi_app(env):
    return make_app({**env, "DOUBLE_OPT_IN": "true"})


def cookieless(app):
    """A client without the signup's session: as a mail client or another device posts."""
    return app.test_client(use_cookies=False)


def confirm_url(outbox) -> str:
    [msg] = [m for m in outbox_messages(outbox) if "Confirm" in m["Subject"]]
    return re.search(r"https://news\.example\.org/confirm/\S+", parts(msg)[0]).group(0)


def test_fifty_submissions_send_one_confirmation_and_nothing_else(env, outbox):
    app = doi_app(env)
    client = app.test_client()
    start = utcnow()
    for n in range(50):
        with time_machine.travel(start + timedelta(minutes=n), tick=False):
            assert api_signup(client, "bomb@example.com").status_code == 202
            dispatch_inline(app)
    subjects = [m["Subject"] for m in outbox_messages(outbox)]
    assert subjects == ["Confirm your email to get your free guide"]


def test_confirming_starts_the_guide_and_records_the_confirmation(env, outbox):
    app = doi_app(env)
    client = app.test_client()
    api_signup(client, "yes@example.com")
    dispatch_inline(app)
    path = confirm_url(outbox).removeprefix("https://news.example.org")
    assert cookieless(app).post(path).status_code == 200
    dispatch_inline(app)
    assert len(outbox_messages(outbox)) == 2
    assert "guide" in outbox_messages(outbox)[-1]["Subject"]
    with app.app_context():
        actions = db.session.scalars(select(ConsentRecord.action).order_by(ConsentRecord.id)).all()
        assert actions == ["consent", "confirmation"]
        assert db.session.scalars(select(Subscriber.confirmed_at)).one() is not None


def test_an_expired_confirmation_link_offers_a_new_one(env, outbox):
    app = doi_app(env)
    client = app.test_client()
    start = utcnow()
    with time_machine.travel(start, tick=False):
        api_signup(client, "slow@example.com")
        dispatch_inline(app)
    path = confirm_url(outbox).removeprefix("https://news.example.org")
    with time_machine.travel(start + timedelta(hours=73), tick=False):
        page = client.get(path)
        assert page.status_code == 410
        assert "Send me a new link" in page.get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        assert client.post(path + "/resend", data={"csrf_token": token.group(1)}).status_code == 200
        dispatch_inline(app)
    with app.app_context():
        assert db.session.scalars(select(Subscriber.status)).one() == "pending"
    assert len([m for m in outbox_messages(outbox) if "Confirm" in m["Subject"]]) == 2


def test_unconfirmed_signups_are_purged_after_thirty_days(env):
    app = doi_app(env)
    start = utcnow()
    with time_machine.travel(start, tick=False):
        api_signup(app.test_client(), "never@example.com")
    with app.app_context():
        with time_machine.travel(start + timedelta(days=29), tick=False):
            assert purge_unconfirmed(for_app(app)) == 0
        with time_machine.travel(start + timedelta(days=31), tick=False):
            assert purge_unconfirmed(for_app(app)) == 1
        assert db.session.scalars(select(Subscriber)).all() == []


def unsubscribe_path(outbox) -> str:
    msg = outbox_messages(outbox)[0]
    return msg["List-Unsubscribe"].strip("<>").removeprefix("https://news.example.org")


def test_show_prints_every_consent_and_withdrawal_with_its_hash(app, client, outbox):
    api_signup(client, "shown@example.com", first_name="Shaun")
    dispatch_inline(app)
    client.post(unsubscribe_path(outbox))
    result = app.test_cli_runner().invoke(args=["subscribers", "show", "shown@example.com"])
    assert result.exit_code == 0, result.output
    held = json.loads(result.output)
    assert [c["action"] for c in held["consents"]] == ["consent", "withdrawal"]
    for consent in held["consents"]:
        assert re.fullmatch(r"[0-9a-f]{64}", consent["text_sha256"])
        assert consent["text"].startswith("Yes, email me the free guide")
    assert held["status"] == "unsubscribed" and held["suppressed"] is True
    assert held["emails"][0]["attempts"][0]["outcome"] == "sent"


def test_forget_leaves_no_address_in_clear_and_keeps_it_suppressed(app, client, outbox):
    api_signup(client, "gone@example.com", first_name="Gina")
    dispatch_inline(app)
    result = app.test_cli_runner().invoke(args=["subscribers", "forget", "gone@example.com"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)).all():
                assert "gone@example.com" not in repr(tuple(row)), f"address left in {table.name}"
        assert is_suppressed(for_app(app), "gone@example.com")
        assert is_suppressed(for_app(app), "GONE@example.com")
    # Signing up again through the form is a fresh consent, but anyone could send it: only
    # the confirmation link emailed to the address lifts the suppression.
    token = csrf_token(client)
    data = {"csrf_token": token, "email": "gone@example.com", "consent": "yes"}
    assert client.post("/subscribe", data=data).status_code == 303
    assert dispatch_inline(app) == ["sent"]
    assert [m["Subject"] for m in outbox_messages(outbox)][-1].startswith("Confirm")
    with app.app_context():
        assert is_suppressed(for_app(app), "gone@example.com")
    assert cookieless(app).post(confirm_url(outbox).removeprefix(PUBLIC)).status_code == 200
    assert dispatch_inline(app) == ["sent"]
    assert "your free guide" in outbox_messages(outbox)[-1]["Subject"]
    with app.app_context():
        assert not is_suppressed(for_app(app), "gone@example.com")


def test_a_person_read_in_full_can_then_be_forgotten_in_the_same_session(app, client, outbox):
    # describe() loads the consent and email collections; deleting the row must not then try
    # to null their foreign keys (an UPDATE the append-only consent ledger refuses).
    api_signup(client, "read-then-gone@example.com")
    dispatch_inline(app)
    with app.app_context():
        ctx = for_app(app)
        person = records.find("read-then-gone@example.com")
        assert records.describe(ctx, person)["consents"]
        records.forget(ctx, person)
        assert records.find("read-then-gone@example.com") is None
        assert db.session.scalar(select(func.count(ConsentRecord.id))) == 0


def test_suppression_blocks_a_send_even_when_the_row_says_active(app, client):
    api_signup(client, "blocked@example.com")
    with app.app_context():
        from service.sending.suppression import suppress

        suppress(for_app(app), "blocked@example.com", "complained")
        db.session.commit()
    assert dispatch_inline(app) == ["cancelled"]


def test_suppression_survives_a_key_rotation(env):
    app = make_app(env)
    api_signup(app.test_client(), "rot@example.com")
    with app.app_context():
        from service.sending.suppression import suppress

        suppress(for_app(app), "rot@example.com", "unsubscribed")
        db.session.commit()
    from service import create_app

    rotated = create_app(
        {**env, "SECRET_KEY": "brand-new-key-Pw5Rk8Tz2Mv9Qx4Ln7Hb3Gd," + env["SECRET_KEY"]}
    )
    with rotated.app_context():
        assert is_suppressed(for_app(app), "rot@example.com")


def test_resubscribing_from_the_unsubscribed_page_takes_a_fresh_consent(app, client, outbox):
    api_signup(client, "back@example.com")
    dispatch_inline(app)
    path = unsubscribe_path(outbox)
    page = client.post(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resubscribe = path.replace("/unsubscribe/", "/resubscribe/")
    assert client.post(resubscribe, data={"csrf_token": token}).status_code == 422
    answer = client.post(resubscribe, data={"csrf_token": token, "consent": "yes"})
    assert answer.status_code == 303
    with app.app_context():
        subscriber = db.session.scalars(select(Subscriber)).one()
        assert subscriber.status == "active"
        actions = [c.action for c in subscriber.consents]
        assert actions == ["consent", "withdrawal", "consent"]
        assert subscriber.consents[-1].source == "resubscribe-page"
        assert not is_suppressed(for_app(app), "back@example.com")


def test_export_writes_csv_with_status_and_consent_times(app, client, tmp_path):
    for n in range(3):
        api_signup(client, f"csv{n}@example.com", first_name=f"C{n}")
    target = tmp_path / "list.csv"
    result = app.test_cli_runner().invoke(args=["subscribers", "export", "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(target.open()))
    assert [r["email"] for r in rows] == [f"csv{n}@example.com" for n in range(3)]
    assert all(r["status"] == "active" and r["consented_at"] for r in rows)
    assert "exported 3 subscribers" in result.output


def test_consent_records_are_append_only(app, client):
    api_signup(client, "ledger@example.com")
    with app.app_context():
        record = db.session.scalars(select(ConsentRecord)).one()
        record.text = "something else"
        try:
            db.session.commit()
        except RuntimeError:
            db.session.rollback()
        else:
            raise AssertionError("a consent record was changed")
        assert (
            db.session.execute(text("SELECT text FROM consent_record")).scalar().startswith("Yes")
        )


# --- coming back after an opt-out, and list bombing across spellings ------------------------


def subjects(outbox) -> list[str]:
    return [m["Subject"] for m in outbox_messages(outbox)]


def status_of(app, address: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Subscriber.status).where(Subscriber.email == address))


def opt_out(app, address: str, how: str) -> None:
    """Stop all mail to an active subscriber the way each kind of opt-out does."""
    if how == "forgotten":
        result = app.test_cli_runner().invoke(args=["subscribers", "forget", address])
        assert result.exit_code == 0, result.output
        return
    with app.app_context():
        person = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
        if how == "unsubscribed":
            unsubscribe(for_app(app), person.id, RequestMeta("test", None, None, None))
        else:
            kind = {"bounced": EventKind.HARD_BOUNCE, "complained": EventKind.COMPLAINT}[how]
            assert (
                events.apply(
                    for_app(app), [Event("postmark", f"{how}-1", kind, address, None, None)]
                )
                == 1
            )
        assert is_suppressed(for_app(app), address)


def active_with_the_guide(app, client, outbox, address: str, name: str) -> None:
    assert api_signup(client, address, first_name=name).status_code == 202
    dispatch_inline(app)
    if settings_of(app).double_opt_in:
        assert cookieless(app).post(confirm_url(outbox).removeprefix(PUBLIC)).status_code == 200
        dispatch_inline(app)
    assert subjects(outbox)[-1] == f"{name}, your free guide is here"


@pytest.mark.parametrize("double_opt_in", ["false", "true"], ids=["direct", "double-opt-in"])
@pytest.mark.parametrize("how", ["unsubscribed", "bounced", "complained", "forgotten"])
def test_an_opted_out_address_comes_back_only_through_its_confirmation_link(
    env, outbox, how, double_opt_in
):
    app = make_app({**env, "DOUBLE_OPT_IN": double_opt_in})
    client = app.test_client()
    start = utcnow()
    with time_machine.travel(start, tick=False) as traveller:
        active_with_the_guide(app, client, outbox, "ann@example.com", "Ann")
        opt_out(app, "ann@example.com", how)
        sent_before = len(subjects(outbox))
        traveller.shift(timedelta(days=2))

        # A stranger (or Ann) signs her up again, three ways: one confirmation, nothing else.
        assert api_signup(client, "ann@example.com", first_name="Mallory").status_code == 202
        assert submit_form(client, email="ann@example.com").status_code == 303
        assert api_signup(client, "Ann+again@example.com").status_code == 202
        assert dispatch_inline(app) == ["sent"]
        assert subjects(outbox)[sent_before:] == ["Confirm your email to get your free guide"]
        assert status_of(app, "ann@example.com") == "pending"
        assert status_of(app, "Ann+again@example.com") == "pending"  # her mailbox opted out
        with app.app_context():
            assert is_suppressed(for_app(app), "ann@example.com")
        traveller.shift(timedelta(hours=1))
        assert dispatch_inline(app) == []  # the drip stays stopped

        # The link in that email is the way back: suppression lifted, the guide again.
        path = confirm_url_of(outbox_messages(outbox)[-1])
        assert cookieless(app).post(path).status_code == 200
        assert status_of(app, "ann@example.com") == "active"
        with app.app_context():
            assert not is_suppressed(for_app(app), "ann@example.com")
        assert dispatch_inline(app) == ["sent"]
        assert subjects(outbox)[-1] == "Mallory, your free guide is here"


def confirm_url_of(msg) -> str:
    link = re.search(r"https://news\.example\.org(/confirm/\S+)", parts(msg)[0])
    return link.group(1)


def test_the_resubscribe_button_needs_no_confirmation_link(app, client, outbox):
    """Its token came in an email to the address: that is the proof a confirmation gives."""
    start = utcnow()
    with time_machine.travel(start, tick=False):
        api_signup(client, "back@example.com")
        dispatch_inline(app)
        path = unsubscribe_path(outbox)
        page = client.post(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resubscribe = path.replace("/unsubscribe/", "/resubscribe/")
    with time_machine.travel(start + timedelta(days=2), tick=False):
        answer = client.post(resubscribe, data={"csrf_token": token, "consent": "y"})
        assert answer.status_code == 303
        assert status_of(app, "back@example.com") == "active"
        assert dispatch_inline(app) == ["sent"]  # the guide again, no confirmation
    assert "guide" in subjects(outbox)[-1]


def test_plus_addresses_of_one_mailbox_draw_one_confirmation_a_day(env, outbox):
    app = doi_app(env)
    client = app.test_client()
    start = utcnow()
    with time_machine.travel(start, tick=False) as traveller:
        for n in range(1, 7):
            assert api_signup(client, f"victim+{n}@gmail.com").status_code == 202
        assert submit_form(client, email="v.i.c.t.i.m@googlemail.com").status_code == 303
        dispatch_inline(app)
        [confirmation] = outbox_messages(outbox)
        assert confirmation["To"].addresses[0].addr_spec == "victim+1@gmail.com"  # as typed
        traveller.shift(timedelta(hours=23))
        assert api_signup(client, "victim+7@gmail.com").status_code == 202
        assert dispatch_inline(app) == []
        traveller.shift(timedelta(hours=2))
        assert api_signup(client, "victim+8@gmail.com").status_code == 202
        assert dispatch_inline(app) == ["sent"]
        assert api_signup(client, "someone-else@gmail.com").status_code == 202
        assert dispatch_inline(app) == ["sent"]


def test_someone_coming_back_is_not_purged_with_old_unconfirmed_signups(env, outbox):
    """The purge counts 30 days from when they came back, not from their first signup."""
    app = make_app(env)
    client = app.test_client()
    start = utcnow()
    with time_machine.travel(start, tick=False) as traveller:
        active_with_the_guide(app, client, outbox, "old@example.com", "Olga")
        opt_out(app, "old@example.com", "unsubscribed")
        traveller.shift(timedelta(days=60))
        assert api_signup(client, "old@example.com").status_code == 202
        dispatch_inline(app)
        with app.app_context():
            assert purge_unconfirmed(for_app(app)) == 0
        assert cookieless(app).post(confirm_url_of(outbox_messages(outbox)[-1])).status_code == 200
        assert status_of(app, "old@example.com") == "active"
