"""A guide upload is judged by its bytes: a whole PDF that readers open, within the size limit,
whatever its name says."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter

from service.content import pdf_check
from service.content.guide_pages import SAMPLE_GUIDE
from service.content.pdf_check import MAX_PDF_BYTES
from service.content.storage import check_pdf

GUIDE = SAMPLE_GUIDE.read_bytes()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def one_page(**encrypt: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    if encrypt:
        writer.encrypt(**encrypt)
    return written(writer)


@pytest.mark.parametrize(
    "data",
    [
        GUIDE,
        b"\xef\xbb\xbf \r\n" + GUIDE,  # a little before the header, as readers allow
        GUIDE + b"\r\n",
        one_page(user_password="", owner_password="owner"),  # opens without a password
    ],
    ids=["the sample", "bytes before the header", "a line after %%EOF", "owner password"],
)
def test_a_pdf_passes(data: bytes):
    check_pdf(data)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "the file is empty"),
        (PNG, "the file is not a PDF: it is a PNG image"),
        (b"<!DOCTYPE html>\n<html><body>guide.pdf</body></html>", "it is an HTML page"),
        (b" " * 1024 + GUIDE, "the file is not a PDF: it is something else"),
        (GUIDE[: len(GUIDE) // 2], r"the PDF is cut short \(no %%EOF at its end\)"),
        (b"%PDF-1.7\nnot a body at all\n%%EOF\n", "the PDF cannot be read"),
        (written(PdfWriter()), "the PDF has no pages"),
        (one_page(user_password="secret", owner_password="owner"), "asks for a password"),
    ],
    ids=["empty", "a PNG", "HTML", "header too late", "truncated", "garbage", "no pages", "locked"],
)
def test_anything_else_is_refused_naming_what_is_wrong(data: bytes, problem: str):
    with pytest.raises(ValueError, match=problem):
        check_pdf(data)


def test_a_file_over_the_limit_is_refused_before_it_is_read():
    too_big = GUIDE[:-6] + bytes(MAX_PDF_BYTES - len(GUIDE) + 1) + b"%%EOF\n"
    assert len(too_big) == MAX_PDF_BYTES + 1
    with pytest.raises(ValueError, match=r"over the 25 MiB limit \(25.0 MiB\)"):
        check_pdf(too_big)


def test_a_file_at_the_limit_passes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pdf_check, "MAX_PDF_BYTES", len(GUIDE))  # a small limit: a quick test
    check_pdf(GUIDE)
    with pytest.raises(ValueError, match="over the"):
        check_pdf(GUIDE + b"\n")
