"""The emails and the hosted page promise the pages the guide PDF has, counted from the file;
the footer says how unsubscribing works (a link, then one click on its page)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from flask import Flask
from pypdf import PdfWriter

from service import create_app
from service.content.guide_pages import SAMPLE_GUIDE
from service.core.models import Purpose
from service.core.settings import DEFAULT_SEQUENCE_FILE
from tests.conftest import SECRET
from tests.content.test_rendering import CASES, IDS, send_sample
from tests.helpers import parts


def app_with(tmp_path: Path, **settings: str) -> Flask:
    return create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            "SECRET_KEY": SECRET,
            "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
            **settings,
        }
    )


def promised(app: Flask) -> tuple[str, str, str]:
    """What the guide email's text and HTML parts and the hosted page say of the PDF."""
    _rendered, _data, msg = send_sample(app, "guide", Purpose.DRIP)
    text, html = parts(msg)
    page = app.test_client().get("/").get_data(as_text=True)
    return (
        re.search(r"Download it \(PDF[^)]*\)", text).group(0),
        re.search(r"Download the guide \(PDF[^)]*\)", html).group(0),
        re.search(r'<p class="eyebrow">([^<]*)</p>', page).group(1),
    )


def write_pdf(path: Path, pages: int) -> None:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    with path.open("wb") as handle:
        writer.write(handle)


def test_the_shipped_sample_is_promised_with_the_pages_it_has(tmp_path):
    # Counted here without the library: the sample's page objects are plain text.
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", SAMPLE_GUIDE.read_bytes()))
    assert pages == 7
    assert promised(app_with(tmp_path)) == (
        "Download it (PDF, 7 pages)",
        "Download the guide (PDF, 7 pages)",
        "Free 7-page guide",
    )


def test_a_guide_file_of_ones_own_is_counted_and_counted_again_when_replaced(tmp_path):
    guide = tmp_path / "guide.pdf"
    write_pdf(guide, 3)
    app = app_with(tmp_path, GUIDE_FILE=str(guide))
    assert promised(app)[0] == "Download it (PDF, 3 pages)"
    write_pdf(guide, 12)
    later = guide.stat().st_mtime_ns + 1_000_000_000
    os.utime(guide, ns=(later, later))
    assert promised(app) == (
        "Download it (PDF, 12 pages)",
        "Download the guide (PDF, 12 pages)",
        "Free 12-page guide",
    )


def test_an_unreadable_guide_promises_no_count(tmp_path):
    guide = tmp_path / "guide.pdf"
    guide.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    assert promised(app_with(tmp_path, GUIDE_FILE=str(guide))) == (
        "Download it (PDF)",
        "Download the guide (PDF)",
        "Free guide",
    )


@pytest.mark.parametrize(("fallback", "count"), [(None, None), ("24", "24")])
def test_with_guide_url_only_the_sequence_file_can_give_a_count(tmp_path, fallback, count):
    templates = tmp_path / "templates"
    shutil.copytree(DEFAULT_SEQUENCE_FILE.parent, templates)
    sequence = templates / DEFAULT_SEQUENCE_FILE.name
    if fallback:
        text = sequence.read_text().replace("[guide]\n", f"[guide]\npages = {fallback}\n")
        sequence.write_text(text)
    app = app_with(
        tmp_path, GUIDE_URL="https://cdn.example.com/guide.pdf", SEQUENCE_FILE=str(sequence)
    )
    suffix = f", {count} pages" if count else ""
    assert promised(app) == (
        f"Download it (PDF{suffix})",
        f"Download the guide (PDF{suffix})",
        f"Free {count}-page guide" if count else "Free guide",
    )


@pytest.mark.parametrize(("step_id", "purpose"), CASES, ids=IDS)
def test_the_footer_says_the_link_opens_a_page_with_the_one_click(render_app, step_id, purpose):
    _rendered, _data, msg = send_sample(render_app, step_id, purpose)
    text, html = parts(msg)
    for body in (text, html):
        flat = " ".join(re.sub(r"<[^>]+>", " ", body).split())
        assert "one click on the next page" in flat
        assert "in one click" not in flat and "one click at the bottom" not in flat
