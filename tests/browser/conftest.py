"""Headless Chromium through Playwright, and axe-core to check each page's accessibility."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def missing(what: str, fix: str) -> None:
    message = f"{what} is missing ({fix})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; LEADMAGNET_REQUIRE_SERVICES=1 makes the browser tests mandatory")
    print(f"skipping the browser tests: {message}")
    pytest.skip(f"{message}; set LEADMAGNET_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core from npm, kept out of the repository (tests/browser/node_modules is ignored)."""
    if not AXE.exists() and shutil.which("npm"):
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(HERE),
                "--no-save",
                "--no-audit",
                "--no-fund",
                "axe-core@4",
            ],
            check=False,
            capture_output=True,
            timeout=300,
        )
    if not AXE.exists():
        missing("axe-core", "npm install --prefix tests/browser --no-save axe-core@4")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright", "pip install -e '.[test]'")
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        missing(str(CHROMIUM), "apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def check_accessibility(page: object, axe_source: str) -> None:
    """No serious or critical axe-core violation on the page as it is now. Email previews in
    sandboxed frames are left out: they run no script, so axe cannot look inside them."""
    page.evaluate(axe_source)  # type: ignore[attr-defined]
    result = page.evaluate(  # type: ignore[attr-defined]
        "axe.run(document, {iframes: false, resultTypes: ['violations']})"
    )
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    assert not found, f"{page.url}:\n" + "\n".join(found)  # type: ignore[attr-defined]


def check_fits_a_phone(page: object) -> None:
    """Nothing wider than the screen: no sideways scrolling of the whole page."""
    overflow = page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the phone"  # type: ignore[attr-defined]
