"""gunicorn as the image runs it, with its access log on: link tokens never reach the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SECRET, free_port
from tests.procs import BIN, Browser, clean_env, http_ok, start, stop, wait_until

pytestmark = pytest.mark.slow
TOKEN = "eyJzIjoxN30.cmVhbC1ndW5pY29ybi10b2tlbg"


def test_gunicorn_access_lines_show_link_paths_without_their_tokens(tmp_path: Path):
    port = free_port()
    access = tmp_path / "access.log"
    env = clean_env(INSTANCE_PATH=str(tmp_path / "instance"), SECRET_KEY=SECRET)
    command = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    proc = start(
        [*command, "--access-logfile", str(access), "service:create_app()"],
        env,
        tmp_path,
        tmp_path / "gunicorn.log",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: http_ok(base + "/healthz"), 40, 0.2), (
            tmp_path / "gunicorn.log"
        ).read_text()[-3000:]
        browser = Browser(base)
        for path in (f"/unsubscribe/{TOKEN}", f"/guide/{TOKEN}", f"/confirm/{TOKEN}"):
            browser.request("GET", path, None, {"Referer": f"{base}{path}"})
        browser.request("POST", f"/unsubscribe/{TOKEN}", b"List-Unsubscribe=One-Click")
    finally:
        stop(proc)
    lines = [json.loads(line)["message"] for line in access.read_text().splitlines()]
    links = [line for line in lines if "/healthz" not in line]
    assert len(links) == 4, lines
    assert all(TOKEN not in line for line in lines), links
    assert '"GET /unsubscribe/[token] HTTP/1.1" 404' in links[0]
    assert '"POST /unsubscribe/[token] HTTP/1.1" 404' in links[3]
