#!/usr/bin/env python3
"""Screenshots of the guide email (375 and 1200 px wide) and the outbox, with headless Chromium.

Usage: .venv/bin/python scripts/screenshots.py [--out screenshots]

Renders the guide email with sample data, then runs `leadmagnet serve` on a free port in a
temporary folder, signs up once, and photographs /outbox and the delivered email's page.
Installs Debian's chromium with apt-get when it is missing and we are root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTHS = (375, 1200)
SERVE_START = 90.0  # seconds: migrations, gunicorn, the worker and beat
MAIL_WAIT = 30.0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0:
        print("installing chromium with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        found = shutil.which("chromium")
    if found is None:
        sys.exit("screenshots: chromium is not installed (apt-get install chromium)")
    return found


def screenshot(
    browser: str, url: str, target: Path, width: int, profile: Path, height: int = 1200
) -> None:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            f"--screenshot={target}",
            f"--window-size={width},{height}",
            url,
        ],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(work: Path) -> dict[str, str]:
    """The embedded default in a folder of its own: nothing from the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    for name in ("EMAIL_URL", "PUBLIC_URL", "SECRET_KEY", "SEQUENCE_FILE", "DKIM_DOMAIN"):
        env.pop(name, None)
    env["INSTANCE_PATH"] = str(work / "instance")
    env["OUTBOX_OPEN_LOCALLY"] = "true"  # /outbox is photographed without signing in
    env.pop("TRUSTED_PROXIES", None)
    return env


def guide_email(work: Path) -> Path:
    from service import create_app
    from service.preview import render_preview

    app = create_app({**embedded_env(work), "PUBLIC_URL": "https://news.example.org"})
    with app.app_context():
        html = render_preview(app, "guide").rendered.html
    page = work / "guide.html"
    page.write_text(html, encoding="utf-8")
    return page


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    sys.exit(f"screenshots: {url} did not answer within {timeout:.0f} s")


def sign_up(base: str) -> None:
    body = json.dumps({"email": "sam@example.com", "first_name": "Sam", "consent": True})
    request = urllib.request.Request(
        f"{base}/api/subscribe",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status


def first_email(outbox: Path) -> Path:
    deadline = time.monotonic() + MAIL_WAIT
    while time.monotonic() < deadline:
        found = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
        if found:
            return found[0]
        time.sleep(0.3)
    sys.exit(f"screenshots: no email reached {outbox} within {MAIL_WAIT:.0f} s")


def outbox_pages(browser: str, work: Path, out: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    leadmagnet = Path(sys.executable).with_name("leadmagnet")
    command = [str(leadmagnet if leadmagnet.exists() else shutil.which("leadmagnet"))]
    serve = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        cwd=work,
        env=embedded_env(work),
        start_new_session=True,  # its own group, so a stuck child can be stopped with it
        stdout=(work / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"{base}/healthz", SERVE_START)
        sign_up(base)
        email = first_email(work / "instance" / "outbox")
        screenshot(browser, f"{base}/outbox", out / "outbox-375.png", 375, work / "profile")
        # Tall enough to show the headers, the text part and the HTML part's frame.
        detail = f"{base}/outbox/{email.name}"
        screenshot(browser, detail, out / "outbox-email-1200.png", 1200, work / "profile", 2400)
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="leadmagnet-shots-") as tmp:
        work = Path(tmp)
        page = guide_email(work)
        for width in WIDTHS:
            target = out / f"guide-{width}.png"
            screenshot(browser, page.as_uri(), target, width, work / "profile")
        outbox_pages(browser, work, out)


if __name__ == "__main__":
    main()
