"""Is this upload a PDF readers can open? Judged by its bytes, never by its name."""

from __future__ import annotations

import io

MAX_PDF_BYTES = 25 * 1024 * 1024
# Readers accept the header and the end marker anywhere in the first and last KiB.
WINDOW = 1024
# What a file that is not a PDF often is, to say so in the message.
LOOKS_LIKE = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (a Word, EPUB or similar file)"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
)


def check_pdf(data: bytes) -> None:
    """Raise ValueError saying what is wrong unless `data` is a whole, readable PDF within
    MAX_PDF_BYTES."""
    if not data:
        raise ValueError("the file is empty")
    if len(data) > MAX_PDF_BYTES:
        raise ValueError(
            f"the file is over the {MAX_PDF_BYTES // 2**20} MiB limit ({len(data) / 2**20:.1f} MiB)"
        )
    if b"%PDF-" not in data[:WINDOW]:
        raise ValueError(f"the file is not a PDF: it is {_looks_like(data)}")
    if b"%%EOF" not in data[-WINDOW:]:
        raise ValueError("the PDF is cut short (no %%EOF at its end): was the upload interrupted?")
    pages = _pages(data)
    if pages == 0:
        raise ValueError("the PDF has no pages")


def _looks_like(data: bytes) -> str:
    head = data[:WINDOW].lstrip().lower()
    found = (what for magic, what in LOOKS_LIKE if head.startswith(magic.lower()))
    return next(found, "something else (a PDF starts with %PDF-)")


def _pages(data: bytes) -> int:
    from pypdf import PdfReader  # only where a PDF is checked

    try:
        reader = PdfReader(io.BytesIO(data))
        # A password for changing the file only (the common kind) opens with an empty one.
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = 0 if locked else len(reader.pages)
    except Exception as exc:  # pypdf raises many kinds on a malformed file
        raise ValueError(f"the PDF cannot be read ({type(exc).__name__}: {exc})") from None
    if locked:
        raise ValueError("the PDF asks for a password: readers could not open it")
    return pages
