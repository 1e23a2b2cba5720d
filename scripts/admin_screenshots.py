#!/usr/bin/env python3
"""Screenshots of the owner's view: the dashboard, a timeline, the editor, the impact.

Usage: .venv/bin/python scripts/admin_screenshots.py [--out docs]

Builds the service on the embedded default in a temporary folder, fills it with a month
of made-up signups through the real code (signups, scheduler passes, downloads, unsubscribes,
bounces and complaints), signs in as an owner with Playwright and headless Chromium
(Debian's, at /usr/bin/chromium), and photographs the dashboard (900 px wide, down to the
embed snippet), one subscriber's timeline (on a 390 px phone), the sequence editor with a
new Markdown step and the impact shown before publishing it (900 px).
Needs the test extras: pip install -e '.[test]'.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OWNER = ("owner@example.com", "screenshots only, not a secret")
NOW = datetime(2026, 3, 30, 16, 0, tzinfo=UTC)
NAMES = ["Ann", "Ben", "Cleo", "Dev", "Ema", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lia"]
PROFILE = "sam.rivera@example.com"  # the timeline shown


def seed(app) -> int:
    """A month of signups; returns the id of the subscriber whose timeline is shown."""
    import time_machine
    from sqlalchemy import select

    from service.core import tokens
    from service.core.extensions import db
    from service.core.models import EventKind, Subscriber
    from service.people import owners
    from service.people.consent import RequestMeta
    from service.people.unsubscribe import unsubscribe
    from service.sending.context import for_app
    from service.webhooks.events import apply
    from service.webhooks.normalized import Event
    from tests.helpers import dispatch_inline

    rng = random.Random(7)
    client = app.test_client()
    start = NOW - timedelta(days=29, hours=NOW.hour)
    signups = []
    for day in range(30):
        for _ in range(rng.choice([1, 2, 2, 3, 4, 5, 6]) + day // 6):
            signups.append(start + timedelta(days=day, minutes=rng.randrange(8 * 60, 22 * 60)))
    signups.sort()
    pages = ["https://blog.example.com/squats", "https://blog.example.com/knees", None]
    for n, moment in enumerate(signups):
        with time_machine.travel(moment, tick=False):
            address = f"{NAMES[n % len(NAMES)].lower()}{n}@example.com"
            body = {
                "email": address,
                "first_name": NAMES[n % len(NAMES)],
                "consent": True,
                "time_zone": "Europe/Berlin",
                "page": pages[n % 3],
            }
            client.post(
                "/api/subscribe",
                json=body,
                headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0)"},
            )
        with time_machine.travel(moment + timedelta(seconds=rng.uniform(0.4, 3.5)), tick=False):
            dispatch_inline(app)
    with time_machine.travel(NOW - timedelta(days=9, hours=3), tick=False):
        client.post(
            "/api/subscribe",
            json={
                "email": PROFILE,
                "first_name": "Sam",
                "consent": True,
                "time_zone": "Europe/Berlin",
                "page": "https://blog.example.com/knees-over-toes",
            },
            headers={"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15"},
            environ_base={"REMOTE_ADDR": "203.0.113.24"},
        )
    with time_machine.travel(NOW - timedelta(days=9, hours=3) + timedelta(seconds=1.3), tick=False):
        dispatch_inline(app)
    moment = start
    while moment < NOW - timedelta(hours=2):  # the scheduler, every few hours
        moment += timedelta(hours=3)
        with time_machine.travel(moment, tick=False):
            dispatch_inline(app)
    with app.app_context():
        people = list(db.session.scalars(select(Subscriber).order_by(Subscriber.id)))
        keys = for_app(app).settings.secret_keys
        profile = next(p for p in people if p.email == PROFILE)
        guide_token = tokens.make_token(keys, tokens.GUIDE, profile)
        profile_id = profile.id
        leaving = [p.id for p in people if p.email != PROFILE][5::9]
        readers = [p for p in people if p.email != PROFILE][::2]
        bounced = [p.email for p in people if p.email != PROFILE][7::23]
        for person in readers:
            token = tokens.make_token(keys, tokens.GUIDE, person)
            with time_machine.travel(NOW - timedelta(hours=rng.randrange(1, 200)), tick=False):
                client.get(f"/guide/{token}")
        with time_machine.travel(NOW - timedelta(days=9, hours=2, minutes=48), tick=False):
            client.get(f"/guide/{guide_token}")
        for person_id in leaving:
            with time_machine.travel(NOW - timedelta(hours=rng.randrange(1, 300)), tick=False):
                unsubscribe(
                    for_app(app), person_id, RequestMeta("unsubscribe-link", None, None, None)
                )
        for n, address in enumerate(bounced):
            kind = EventKind.COMPLAINT if n % 3 == 2 else EventKind.HARD_BOUNCE
            with time_machine.travel(NOW - timedelta(hours=n * 7 + 5), tick=False):
                apply(for_app(app), [Event("postmark", f"event-{n}", kind, address, None, None)])
        owners.create(*OWNER)
    return profile_id


def serve_in_thread(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def photograph(base: str, profile_id: int, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        wide = browser.new_context(viewport={"width": 900, "height": 900}, color_scheme="light")
        page = wide.new_page()
        page.goto(f"{base}/login")
        page.get_by_label("Email address").fill(OWNER[0])
        page.get_by_label("Password").fill(OWNER[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/admin/")
        # Down to the embed snippet: the figures, not a block of HTML, are what to show.
        snippet_top = page.locator("section:has(#embed-heading)").evaluate(
            "e => e.getBoundingClientRect().top + window.scrollY"
        )
        shot(page, out / "dashboard.png", height=int(snippet_top) - 8)
        editor_and_impact(page, base, out)
        phone = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=1,
            storage_state=wide.storage_state(),
        )
        page = phone.new_page()
        page.goto(f"{base}/admin/subscribers/{profile_id}")
        shot(page, out / "timeline.png", height=2400)
        browser.close()


def editor_and_impact(page, base: str, out: Path) -> None:
    """The sequence editor with a new Markdown step, and the impact shown before publishing."""
    page.goto(f"{base}/admin/magnets")
    editor = base + page.locator("a", has_text="Edit sequence").first.get_attribute("href")
    page.goto(editor)
    page.get_by_label("New step's title").fill("Bonus: the goblet squat")
    page.get_by_role("button", name="Add step").click()
    page.wait_for_url(f"{editor}#step-bonus-the-goblet-squat")
    step = page.locator("fieldset.step").last
    step.get_by_label("Body (Markdown)").fill(
        "Hi {{ greeting_name }},\n\nHold a weight at your chest and squat **slowly**: "
        "your knees may pass your toes.\n\n[Open your guide]({{ guide_url }})\n"
    )
    step.get_by_label("Send window hours").fill("9-17")
    step.get_by_label("Send window days").fill("mon-fri")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(editor)
    step = page.locator("fieldset.step").last
    top = step.evaluate("e => e.getBoundingClientRect().top + window.scrollY")
    page.screenshot(
        path=str(out / "editor.png"),
        clip={"x": 0, "y": max(0, int(top) - 120), "width": 900, "height": 1100},
        full_page=True,
    )
    print("docs/editor.png")
    for _ in range(5):  # third, where people waiting move to it
        page.get_by_role("button", name="Move up bonus-the-goblet-squat").click()
        page.wait_for_load_state()
    page.get_by_role("button", name="Remove train-together").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Review and publish").click()
    page.wait_for_url(editor.replace("/edit", "/publish/2"))
    shot(page, out / "impact.png")


def shot(page, target: Path, height: int | None = None) -> None:
    """A full-page PNG, cut at `height` pixels if it is taller."""
    width, full = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": min(full, height or full)}
    page.screenshot(path=str(target), clip=clip, full_page=True)
    print(
        f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
        f"{target.stat().st_size // 1024} KB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    import time_machine
    from flask_migrate import upgrade

    from service import create_app

    with tempfile.TemporaryDirectory(prefix="leadmagnet-admin-shots-") as tmp:
        app = create_app(
            {
                "INSTANCE_PATH": str(Path(tmp) / "instance"),
                "PUBLIC_URL": "https://news.example.org",
                "ALLOWED_ORIGINS": "https://blog.example.com",
                "RATELIMIT_ENABLED": "false",
            }
        )
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
        profile_id = seed(app)
        server, base = serve_in_thread(app)
        try:
            with time_machine.travel(NOW, tick=True):
                photograph(base, profile_id, out)
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
