"""Consent, double opt-in, suppression and erasure: the evidence and the opt-outs hold."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta

import time_machine
from sqlalchemy import select, text

from service.clock import utcnow
from service.extensions import db
from service.models import ConsentRecord, Subscriber
from service.suppression import is_suppressed
from tests.conftest import make_app
from tests.helpers import api_signup, csrf_token, dispatch_inline, outbox_messages, parts


def doi_app(env):
    return make_app({**env, "DOUBLE_OPT_IN": "true"})


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
    page = client.get(confirm_url(outbox).removeprefix("https://news.example.org"))
    assert page.status_code == 200
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
    from service.housekeeping import purge_unconfirmed

    with app.app_context():
        with time_machine.travel(start + timedelta(days=29), tick=False):
            assert purge_unconfirmed() == 0
        with time_machine.travel(start + timedelta(days=31), tick=False):
            assert purge_unconfirmed() == 1
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
        assert is_suppressed("gone@example.com")
        assert is_suppressed("GONE@example.com")
    # Signing up again through the form is a fresh consent: it lifts the suppression.
    token = csrf_token(client)
    data = {"csrf_token": token, "email": "gone@example.com", "consent": "yes"}
    assert client.post("/subscribe", data=data).status_code == 303
    assert dispatch_inline(app) == ["sent"]


def test_suppression_blocks_a_send_even_when_the_row_says_active(app, client):
    api_signup(client, "blocked@example.com")
    with app.app_context():
        from service.suppression import suppress

        suppress("blocked@example.com", "complained")
        db.session.commit()
    assert dispatch_inline(app) == ["cancelled"]


def test_suppression_survives_a_key_rotation(env):
    app = make_app(env)
    api_signup(app.test_client(), "rot@example.com")
    with app.app_context():
        from service.suppression import suppress

        suppress("rot@example.com", "unsubscribed")
        db.session.commit()
    from service import create_app

    rotated = create_app(
        {**env, "SECRET_KEY": "brand-new-key-Pw5Rk8Tz2Mv9Qx4Ln7Hb3Gd," + env["SECRET_KEY"]}
    )
    with rotated.app_context():
        assert is_suppressed("rot@example.com")


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
        assert not is_suppressed("back@example.com")


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
