"""Headless Chromium through Playwright, and axe-core to check each page's accessibility."""

from __future__ import annotations

import json
import os
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
AXE_CORE = "4.14.1"  # pinned: a new axe-core brings new rules; .ci/run installs this one
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
AXE_PACKAGE = AXE.with_name("package.json")
SERIOUS = ("serious", "critical")


def missing(what: str, fix: str) -> None:
    message = f"{what} is missing ({fix})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; LEADMAGNET_REQUIRE_SERVICES=1 makes the browser tests mandatory")
    print(f"skipping the browser tests: {message}")
    pytest.skip(f"{message}; set LEADMAGNET_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core from npm, the exact version .ci/run installs, kept out of the repository
    (tests/browser/node_modules is ignored). Tests use it; they never install it."""
    installed = json.loads(AXE_PACKAGE.read_text())["version"] if AXE_PACKAGE.exists() else None
    if installed != AXE_CORE or not AXE.exists():
        missing(
            f"axe-core {AXE_CORE} (found: {installed or 'none'})",
            f"npm install --prefix tests/browser --no-save axe-core@{AXE_CORE}",
        )
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
