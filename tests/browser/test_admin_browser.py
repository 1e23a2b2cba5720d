"""The owner's view in a real browser against `leadmagnet serve`, and the embedded form on
pages of other origins: signups, sends, sign-in, search, timeline, axe-core on every page."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from service.content.sequence import load_sequence
from service.core.settings import DEFAULT_SEQUENCE_FILE
from tests.browser.conftest import check_accessibility, check_fits_a_phone
from tests.conftest import free_port
from tests.e2e.test_serve import serve, stop_and_check_children
from tests.procs import BIN, clean_env, wait_until

pytestmark = pytest.mark.slow
OWNER = "owner@example.com"
PASSWORD = "a long owner password"
PHONE = {"width": 390, "height": 844}
SHIPPED = load_sequence(DEFAULT_SEQUENCE_FILE, DEFAULT_SEQUENCE_FILE.parent)
PREVIEWS = len(SHIPPED.steps) + 1  # every step, and the double opt-in confirmation
SENT = 60  # seconds: a cap for a guide to be sent on a busy machine, not a goal


class Service:
    def __init__(self, tmp_path: Path, env: dict[str, str], base: str) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.base = base

    @property
    def outbox(self) -> list[Path]:
        return sorted((self.tmp_path / "instance" / "outbox").glob("*.eml"))

    def leadmagnet(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "leadmagnet"), *args],
            input=stdin,
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def subscriber(self, address: str) -> dict | None:
        shown = self.leadmagnet("subscribers", "show", address)
        return json.loads(shown.stdout) if shown.returncode == 0 else None


def start_service(tmp_path: Path, **settings: str) -> tuple[object, Service]:
    env = clean_env(**settings)
    proc, base = serve(tmp_path, env)
    service = Service(tmp_path, env, base)
    created = service.leadmagnet("admin", "create", OWNER, "--password-stdin", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    return proc, service


class Blog(ThreadingHTTPServer):
    """Another site: one page holding the embed snippet."""

    def __init__(self, port: int, snippet: str) -> None:
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>A blog post</title></head><body><main><h1>Squats</h1>{snippet}"
            "</main></body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def sign_in(page, base: str, axe_source: str) -> None:
    page.goto(base + "/admin/")
    assert page.url.startswith(base + "/login?next=/admin/")
    check_accessibility(page, axe_source)
    check_fits_a_phone(page)
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/admin/")


def showing(page, predicate, timeout: float = SENT) -> bool:
    def reloaded() -> bool:
        if predicate():
            return True
        page.reload()
        return False

    return wait_until(reloaded, timeout, 0.2)


def hosted_signup(page, base: str, address: str, name: str) -> None:
    page.goto(base + "/")
    page.get_by_label("First name").fill(name)
    page.get_by_label("Email address").fill(address)
    page.locator("#consent").check()
    page.get_by_role("button", name="Send me the free guide").click()
    page.wait_for_url(base + "/thanks")


@pytest.fixture
def phone(chromium) -> Iterator[object]:
    context = chromium.new_context(viewport=PHONE, timezone_id="Europe/Berlin", bypass_csp=True)
    yield context.new_page()
    context.close()


def test_the_owner_signs_in_sees_the_signups_and_opens_a_timeline(tmp_path, phone, axe_source):
    proc, service = start_service(tmp_path)
    page = phone
    try:
        hosted_signup(page, service.base, "ann@example.com", "Ann")
        hosted_signup(page, service.base, "bob@example.com", "Bob")
        assert wait_until(lambda: len(service.outbox) == 2, SENT), "both guides were sent"

        sign_in(page, service.base, axe_source)
        funnel = page.locator(".funnel li")
        assert funnel.nth(0).inner_text().split() == ["2", "Signed", "up"]
        # The .eml is written just before the send is recorded: reload until both are.
        assert showing(
            page, lambda: funnel.nth(1).inner_text().split()[:3] == ["2", "Guide", "sent"]
        )
        chart = page.get_by_role("img", name="Signups per day, last 30 days")
        assert chart.is_visible()
        assert page.locator("table.visually-hidden td").last.inner_text() == "2"  # today
        assert "data-leadmagnet" in page.locator("#embed-snippet").inner_text()
        check_accessibility(page, axe_source)
        check_fits_a_phone(page)

        page.get_by_role("link", name="Subscribers").click()
        page.get_by_label("Address contains").fill("ANN@")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r"/admin/subscribers\?"))
        # The list before the search had both: wait for the page that answers it.
        expect(page.locator("table.data tbody tr")).to_have_count(1)
        check_accessibility(page, axe_source)
        check_fits_a_phone(page)

        page.get_by_role("link", name="ann@example.com").click()
        page.get_by_role("heading", name="ann@example.com", level=1).wait_for()
        timeline = page.locator(".timeline").inner_text()
        assert "Consented" in timeline and "Email “guide”: sent" in timeline
        assert "250 written to" in timeline  # the delivery attempt's reply
        assert "Message-ID" in timeline
        check_accessibility(page, axe_source)
        check_fits_a_phone(page)

        page.get_by_role("link", name="Sequence").click()
        # Counted as soon as the click returned, the old page had none: wait for the new one.
        expect(page.locator("iframe[sandbox]")).to_have_count(PREVIEWS)
        expect(page.locator("main")).to_contain_text("every step renders")
        check_accessibility(page, axe_source)
        check_fits_a_phone(page)

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(service.base + "/login")
        page.goto(service.base + "/admin/subscribers")
        assert page.url.startswith(service.base + "/login?next=")
    finally:
        stop_and_check_children(proc)


def test_the_embedded_form_signs_up_from_an_allowed_origin_only(tmp_path, chromium, axe_source):
    allowed_port, other_port = free_port(), free_port()
    proc, service = start_service(tmp_path, ALLOWED_ORIGINS=f"http://127.0.0.1:{allowed_port}")
    context = chromium.new_context(timezone_id="Europe/Berlin", bypass_csp=True)
    page = context.new_page()
    blogs: list[Blog] = []
    try:
        sign_in(page, service.base, axe_source)
        snippet = page.locator("#embed-snippet").inner_text()
        assert f'src="{service.base}/embed.js"' in snippet
        blog, stranger = Blog(allowed_port, snippet), Blog(other_port, snippet)
        blogs += [blog, stranger]

        page.goto(blog.url)
        check_accessibility(page, axe_source)
        page.get_by_label("Email address").fill("reader@example.com")
        page.get_by_role("button", name="Send me the free guide").click()
        error = page.locator("#leadmagnet-consent-error")
        error.wait_for()
        assert "tick the box" in error.inner_text()
        assert page.locator("#leadmagnet-consent").get_attribute("aria-invalid") == "true"
        check_accessibility(page, axe_source)

        page.get_by_label("First name").fill("Rea")
        page.locator("#leadmagnet-consent").check()
        page.get_by_role("button", name="Send me the free guide").click()
        status = page.get_by_role("status")
        status.filter(has_text="Thank you").wait_for()
        assert page.get_by_label("Email address").is_hidden()
        assert page.locator("[aria-live=polite]").inner_text().startswith("Thank you!")
        reader = service.subscriber("reader@example.com")
        assert reader is not None and reader["first_name"] == "Rea"
        assert reader["time_zone"] == "Europe/Berlin"  # filled in by embed.js
        assert reader["consents"][0]["page_url"] == blog.url
        assert wait_until(lambda: len(service.outbox) == 1, SENT), "the guide was sent"

        page.goto(stranger.url)
        page.get_by_label("Email address").fill("stranger@example.com")
        page.locator("#leadmagnet-consent").check()
        page.get_by_role("button", name="Send me the free guide").click()
        page.get_by_role("status").filter(has_text="could not reach").wait_for()
        assert service.subscriber("stranger@example.com") is None
    finally:
        for server in blogs:
            server.stop()
        context.close()
        stop_and_check_children(proc)


KNEES = Path(__file__).resolve().parents[1] / "fixtures" / "knee-checklist"


def test_another_magnets_page_and_snippet_sign_up_for_that_magnet(tmp_path, chromium, axe_source):
    """The knee checklist imported: its hosted page /m/knee-checklist and the dashboard's
    snippet of it (data-magnet) each sign up for it, with its own consent text."""
    blog_port = free_port()
    proc, service = start_service(tmp_path, ALLOWED_ORIGINS=f"http://127.0.0.1:{blog_port}")
    imported = service.leadmagnet("content", "import", str(KNEES), "--yes")
    assert imported.returncode == 0, imported.stderr
    context = chromium.new_context(timezone_id="Europe/Berlin", bypass_csp=True)
    page = context.new_page()
    blog = None
    try:
        page.goto(service.base + "/m/knee-checklist")
        check_accessibility(page, axe_source)
        check_fits_a_phone(page)
        expect(page.locator("label[for=consent]")).to_contain_text("Happy Knees Checklist")
        page.get_by_label("Email address").fill("page@example.com")
        page.locator("#consent").check()
        page.get_by_role("button", name="Send me the free guide").click()
        page.wait_for_url(service.base + "/m/knee-checklist/thanks")
        hosted = service.subscriber("page@example.com")
        assert hosted is not None and [m["slug"] for m in hosted["magnets"]] == ["knee-checklist"]

        sign_in(page, service.base, axe_source)
        page.get_by_label("Lead magnet", exact=True).select_option("knee-checklist")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(service.base + "/admin/?magnet=knee-checklist")
        check_accessibility(page, axe_source)
        snippet = page.locator("#embed-snippet").inner_text()
        assert 'data-magnet="knee-checklist"' in snippet
        blog = Blog(blog_port, snippet)
        page.goto(blog.url)
        page.get_by_label("Email address").fill("blog@example.com")
        page.locator("#leadmagnet-consent").check()
        page.get_by_role("button", name="Send me the free guide").click()
        page.get_by_role("status").filter(has_text="Thank you").wait_for()
        reader = service.subscriber("blog@example.com")
        assert reader is not None and reader["consents"][0]["magnet"] == "knee-checklist"
        assert "Happy Knees Checklist" in reader["consents"][0]["text"]
        assert wait_until(lambda: len(service.outbox) == 2, SENT), "both guides were sent"
    finally:
        if blog is not None:
            blog.stop()
        context.close()
        stop_and_check_children(proc)
