"""The owner edits in a real browser against `leadmagnet serve`: a new magnet with its PDF,
a Markdown step, previews at 375 px, a test send through SMTP, publishing with the impact
shown first, a real signup getting the new step, restoring, and two editors at once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from service.content.guide_pages import SAMPLE_GUIDE
from tests.browser.conftest import check_accessibility, check_fits_a_phone
from tests.browser.test_admin_browser import OWNER, PASSWORD, hosted_signup, start_service
from tests.e2e.test_serve import stop_and_check_children
from tests.procs import wait_until

pytestmark = pytest.mark.slow
PHONE = {"width": 375, "height": 812}
SENT = 60
BONUS_BODY = "Hi {{ first_name }},\n\nA **bonus** drill: [open your guide]({{ guide_url }})."


def sign_in(page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/admin/")


def checked(page, axe_source: str) -> None:
    check_accessibility(page, axe_source)
    check_fits_a_phone(page)


def subjects(smtpd, to: str) -> list[str]:
    found = []
    for received in smtpd.received:
        if to in received.recipients:
            found.append(received.message["Subject"])
    return found


def default_editor(page, base: str) -> str:
    """The default magnet's editor URL, as the magnets page links it (listed first)."""
    page.goto(base + "/admin/magnets")
    return base + page.locator("a", has_text="Edit sequence").first.get_attribute("href")


def add_step(page, title: str, body: str, delay: str) -> None:
    page.get_by_label("New step's title").fill(title)
    page.get_by_role("button", name="Add step").click()
    page.wait_for_url(re.compile(r"/edit(#step-.*)?$"))
    step = page.locator("fieldset.step").last
    step.get_by_label("Body (Markdown)").fill(body)
    step.get_by_label("Delay after the previous email").fill(delay)


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(viewport=PHONE, bypass_csp=False)
    yield context.new_page()
    context.close()


def test_the_owner_edits_previews_tests_publishes_and_restores(tmp_path, phone, smtpd, axe_source):
    proc, service = start_service(tmp_path, EMAIL_URL=smtpd.url, DISPATCH_INTERVAL="1")
    page = phone
    base = service.base
    try:
        for name in ("ann", "bob"):  # seeded subscribers of the default magnet
            hosted_signup(page, base, f"{name}@example.com", name.title())
        assert wait_until(lambda: len(smtpd.received) == 2, SENT), "both guides were sent"

        sign_in(page, base)
        page.get_by_role("link", name="Magnets").click()
        page.wait_for_url(base + "/admin/magnets")
        checked(page, axe_source)

        # A new magnet with its PDF.
        page.get_by_role("link", name="New magnet").click()
        checked(page, axe_source)
        page.get_by_label("Slug").fill("squats")
        page.get_by_label("Title").fill("Squat better")
        page.get_by_label("Guide PDF").set_input_files(str(SAMPLE_GUIDE))
        page.get_by_label("Page text").fill("Ten minutes a day.")
        page.get_by_role("button", name="Create magnet").click()
        page.wait_for_url(base + "/admin/magnets/squats/edit")
        checked(page, axe_source)

        page.goto(base + "/admin/magnets/squats/guide")
        checked(page, axe_source)
        expect(page.locator("main")).to_contain_text("current")
        page.goto(base + "/admin/magnets/squats/edit")

        # Add a step, write its Markdown, save, preview at 375 px, send a test.
        add_step(page, "Bonus drill", BONUS_BODY, "0")
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("status")).to_contain_text("Draft saved")
        page.get_by_role("link", name="Preview and test step bonus-drill").click()
        page.wait_for_url(base + "/admin/magnets/squats/steps/bonus-drill/preview")
        checked(page, axe_source)
        frame = page.locator("iframe.phone")
        assert frame.get_attribute("sandbox") == ""
        assert frame.bounding_box()["width"] <= 375
        assert "A bonus drill: open your guide:\nhttp" in page.locator(".preview-text").inner_text()
        page.get_by_role("button", name="Send me a test").click()
        expect(page.get_by_role("status")).to_contain_text("Sent to owner@example.com")
        assert wait_until(lambda: "[Test] Bonus drill" in subjects(smtpd, OWNER), SENT)

        # Published right after the guide, a signup on the magnet's own page gets both.
        page.goto(base + "/admin/magnets/squats/edit")
        for _ in range(6):
            page.get_by_role("button", name="Move up bonus-drill").click()
            page.wait_for_load_state()
        expect(page.locator("fieldset.step legend").nth(1)).to_have_text("Step 2: bonus-drill")
        page.get_by_role("button", name="Review and publish").click()
        page.wait_for_url(base + "/admin/magnets/squats/publish/2")
        expect(page.locator("table.impact tr", has_text="bonus-drill")).to_contain_text("added")
        page.get_by_role("button", name="Publish version 2").click()
        page.wait_for_url(base + "/admin/magnets/squats/history")
        page.goto(base + "/m/squats")
        page.get_by_label("First name").fill("Eve")
        page.get_by_label("Email address").fill("eve@example.com")
        page.locator("#consent").check()
        page.get_by_role("button", name="Send me the free guide").click()
        page.wait_for_url(re.compile(r"/thanks$"))
        assert wait_until(lambda: len(subjects(smtpd, "eve@example.com")) >= 2, SENT)
        assert subjects(smtpd, "eve@example.com")[1] == "Bonus drill"

        # The default magnet: a bonus step right after the guide, published with its impact.
        editor = default_editor(page, base)
        magnet = editor.removeprefix(base).split("/")[3]
        page.goto(editor)
        add_step(page, "Bonus drill", BONUS_BODY, "0")
        page.get_by_role("button", name="Move up bonus-drill").last.click()
        for _ in range(5):
            page.get_by_role("button", name="Move up bonus-drill").click()
        expect(page.locator("fieldset.step legend").nth(1)).to_have_text("Step 2: bonus-drill")
        page.get_by_role("button", name="Review and publish").click()
        page.wait_for_url(re.compile(rf"/admin/magnets/{magnet}/publish/2$"))
        checked(page, axe_source)
        added = page.locator("table.impact tr", has_text="bonus-drill")
        expect(added).to_contain_text("added")
        assert added.locator("td.num").inner_text() == "2"  # ann and bob have not reached it
        page.get_by_role("button", name="Publish version 2").click()
        page.wait_for_url(f"{base}/admin/magnets/{magnet}/history")
        checked(page, axe_source)

        # A real signup gets the guide, then the new step: the web process forgot its view
        # of the published version when it published, and each worker task reads it afresh.
        hosted_signup(page, base, "cleo@example.com", "Cleo")
        assert wait_until(lambda: len(subjects(smtpd, "cleo@example.com")) >= 2, SENT), (
            subjects(smtpd, "cleo@example.com"),
            service.subscriber("cleo@example.com")["emails"],
        )
        got = subjects(smtpd, "cleo@example.com")
        assert got[1] == "Bonus drill", got

        # Restore version 1 and publish it: the step is gone for whoever has not had it.
        page.goto(f"{base}/admin/magnets/{magnet}/history")  # still signed in
        page.get_by_role("button", name="Restore version 1").click()
        page.wait_for_url(editor)
        expect(page.locator("fieldset.step legend").nth(1)).not_to_have_text("Step 2: bonus-drill")
        page.get_by_role("button", name="Review and publish").click()
        page.wait_for_url(re.compile(r"/publish/3$"))
        expect(page.locator("table.impact tr", has_text="bonus-drill")).to_contain_text("removed")
        page.get_by_role("button", name="Publish version 3").click()
        page.wait_for_url(f"{base}/admin/magnets/{magnet}/history")
        hosted_signup(page, base, "dan@example.com", "Dan")
        assert wait_until(lambda: subjects(smtpd, "dan@example.com"), SENT)
        dan = service.subscriber("dan@example.com")
        assert dan is not None
        assert "bonus-drill" not in {e["step"] for e in dan["emails"]}

        # Archived, the magnet's page answers 410.
        page.goto(base + "/admin/magnets")
        page.get_by_label("Also stop its emails").check()
        page.get_by_role("button", name="Archive squats").click()
        expect(page.get_by_role("status")).to_contain_text("squats is archived")
        assert page.request.get(base + "/m/squats").status == 410

        page.goto(base + "/admin/audit")
        checked(page, axe_source)
        audit = page.locator("table.data").inner_text()
        for what in (
            "created squats",
            "new guide for squats",
            f"published {magnet} version 2",
            "signed in",
        ):
            assert what in audit
    finally:
        stop_and_check_children(proc)


def test_two_editors_at_once_the_second_save_is_refused_and_kept(tmp_path, chromium, axe_source):
    proc, service = start_service(tmp_path)
    contexts = [chromium.new_context(viewport={"width": 1000, "height": 900}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        for page in (first, second):
            sign_in(page, service.base)
            page.goto(default_editor(page, service.base))
        first.locator("fieldset.step").first.get_by_label("Subject", exact=True).fill(
            "First owner's subject"
        )
        first.get_by_role("button", name="Save draft").click()
        expect(first.get_by_role("status")).to_contain_text("Draft saved")
        subject = second.locator("fieldset.step").first.get_by_label("Subject", exact=True)
        subject.fill("Second owner's subject")
        second.get_by_role("button", name="Save draft").click()
        expect(second.get_by_role("alert")).to_contain_text("changed since you opened it")
        expect(
            second.locator("fieldset.step").first.get_by_label("Subject", exact=True)
        ).to_have_value("Second owner's subject")
        check_accessibility(second, axe_source)
        # The error is announced, and the editor's script put the focus on it.
        assert second.evaluate("document.activeElement.id") == "editor-error"
        first.reload()
        expect(
            first.locator("fieldset.step").first.get_by_label("Subject", exact=True)
        ).to_have_value("First owner's subject")
    finally:
        for context in contexts:
            context.close()
        stop_and_check_children(proc)


def test_a_version_the_cli_published_meanwhile_is_shown_and_not_overwritten(
    tmp_path, chromium, axe_source
):
    proc, service = start_service(tmp_path)
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, service.base)
        page.goto(default_editor(page, service.base))
        page.locator("fieldset.step").nth(1).get_by_label("Subject", exact=True).fill(
            "The owner's subject"
        )
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("status")).to_contain_text("Draft saved")
        # Meanwhile, on the server: an export, one subject edited, an import that publishes.
        folder = tmp_path / "content"
        assert service.leadmagnet("content", "export", str(folder)).returncode == 0
        next(folder.glob("*/guide/subject.txt")).write_text("From the command line\n")
        done = service.leadmagnet("content", "import", str(folder), "--yes")
        assert done.returncode == 0, done.stderr
        page.get_by_role("button", name="Review and publish").click()
        page.wait_for_url(re.compile(r"/conflict$"))
        expect(page.get_by_label("Diff of version 2")).to_contain_text("+From the command line")
        expect(page.get_by_label("Diff of your draft")).to_contain_text("+The owner's subject")
        checked(page, axe_source)
        page.get_by_role("button", name="Keep my draft and review it").click()
        page.wait_for_url(re.compile(r"/publish/3$"))
        page.get_by_role("button", name="Publish version 3").click()
        expect(page.get_by_role("status")).to_contain_text("Version 3 is published")
    finally:
        context.close()
        stop_and_check_children(proc)
