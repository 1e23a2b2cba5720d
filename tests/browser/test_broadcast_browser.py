"""The owner writes a broadcast in a real browser against `leadmagnet serve`: counts its
audience, sends a test through SMTP, schedules it, watches it reach 100% once its time has
come, and sees the click of a link in a received copy on the broadcast's page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from service import create_app
from service.core.clock import utcnow
from service.core.extensions import db
from service.core.models import Broadcast
from tests.browser.test_admin_browser import OWNER, hosted_signup, start_service
from tests.browser.test_editor_browser import SENT, checked, sign_in, subjects
from tests.e2e.test_serve import stop_and_check_children
from tests.procs import wait_until

pytestmark = pytest.mark.slow
PHONE = {"width": 375, "height": 812}
BODY = "Hi {{ first_name }},\n\nSome **big** news: [come and see]({{ public_url }}/)."


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport=PHONE, bypass_csp=False)
    yield context.new_page()
    context.close()


LATER = "2099-06-01T09:30"  # in the site's zone


def smtpd_copies(smtpd, subject: str) -> list:
    return [got for got in smtpd.received if got.message["Subject"] == subject]


def its_time_comes(service, broadcast_id: int) -> None:
    """Travel in time for a separate process: move the broadcast's time to now in its
    database, and let the scheduler pass (every DISPATCH_INTERVAL) start it."""
    app = create_app({**service.env, "INSTANCE_PATH": str(service.tmp_path / "instance")})
    with app.app_context():
        db.session.get_one(Broadcast, broadcast_id).send_at = utcnow()
        db.session.commit()

        def started() -> bool:
            state = db.session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))
            db.session.rollback()
            return state != "scheduled"

        assert wait_until(started, SENT, 0.2), "the scheduler started it"
        db.engine.dispose()


def received(smtpd, to: str, subject: str):
    for got in smtpd.received:
        if to in got.recipients and got.message["Subject"] == subject:
            return got.message
    return None


def test_the_owner_writes_tests_sends_and_watches_a_broadcast(tmp_path, phone, smtpd, axe_source):
    # No EMAIL_MIN_GAP: the broadcast follows the guides within seconds.
    proc, service = start_service(
        tmp_path, EMAIL_URL=smtpd.url, DISPATCH_INTERVAL="1", EMAIL_MIN_GAP="0"
    )
    page, base = phone, service.base
    try:
        for name in ("ann", "bob"):
            hosted_signup(page, base, f"{name}@example.com", name.title())
        assert wait_until(lambda: len(smtpd.received) == 2, SENT), "both guides were sent"

        sign_in(page, base)
        page.goto(base + "/admin/broadcasts")
        page.get_by_role("link", name="New broadcast").click()
        page.wait_for_url(base + "/admin/broadcasts/new")
        checked(page, axe_source)
        page.get_by_label("Subject").fill("Big news")
        page.locator("#body_md").fill("Hi {{ nope }}")
        page.get_by_role("button", name="Review: count, preview, test").click()
        expect(page.get_by_role("alert")).to_contain_text("nope")
        checked(page, axe_source)  # the refused form too
        assert page.get_by_label("Subject").input_value() == "Big news"  # kept
        page.locator("#body_md").fill(BODY)
        page.get_by_label("At this time").check()
        page.locator("#at").fill(LATER)
        page.get_by_role("button", name="Count the recipients").click()
        expect(page.locator("#recipient-count")).to_have_text("2 recipients now.")
        assert page.locator("#body_md").input_value() == BODY  # kept

        page.get_by_role("button", name="Review: count, preview, test").click()
        page.wait_for_url(re.compile(r"/admin/broadcasts/\d+/review$"))
        checked(page, axe_source)
        assert page.locator("iframe.phone").get_attribute("sandbox") == ""
        page.get_by_role("button", name="Send me a test").click()
        expect(page.get_by_role("status")).to_contain_text(f"Sent to {OWNER}")
        assert wait_until(lambda: "[Test] Big news" in subjects(smtpd, OWNER), SENT)

        expect(page.locator("main")).to_contain_text(f"Scheduled for {LATER.replace('T', ' ')}")
        page.get_by_role("button", name="Schedule it to 2 recipients").click()
        page.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
        broadcast_page = page.url
        expect(page.locator("main")).to_contain_text("State: scheduled")
        assert not smtpd_copies(smtpd, "Big news"), "nothing goes before its time"
        its_time_comes(service, int(broadcast_page.rsplit("/", 1)[1]))
        page.reload()
        # The page refreshes itself while the broadcast is live: wait for its state.
        expect(page.locator("main")).to_contain_text("State: finished", timeout=SENT * 1000)
        expect(page.locator("progress")).to_have_attribute("value", "2")
        expect(page.locator("progress")).to_have_attribute("max", "2")

        copy = received(smtpd, "ann@example.com", "Big news")
        assert copy is not None
        text = copy.get_body(preferencelist=("plain",)).get_content()
        link = re.search(re.escape(base) + r"/r/[^\s>]+", text).group(0)
        page.goto(link)  # a person's click, in a browser
        page.goto(broadcast_page)
        clicked = page.locator("dt", has_text="Clicked (people)").locator(
            "xpath=following-sibling::dd[1]"
        )
        expect(clicked).to_contain_text("1")
        checked(page, axe_source)
    finally:
        stop_and_check_children(proc)
