"""`leadmagnet serve` under slow clients: its web server reads a request whole before a thread
takes it, so clients trickling their bodies hold no thread, and stalled ones are dropped."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.webserver import CLEANUP_INTERVAL, IDLE_TIMEOUT, MAX_BODY
from tests.conftest import SECRET
from tests.e2e.test_serve import serve, stop_and_check_children
from tests.procs import BIN, Browser, clean_env, wait_until
from tests.slow_clients import Trickle, healthz

pytestmark = pytest.mark.slow
SLOW_CLIENTS = 8  # twice the threads serve gives its web app on SQLite


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("serve")
    env = clean_env(SECRET_KEY=SECRET, TRUSTED_PROXIES="1")
    proc, base = serve(folder, env)
    try:
        yield base, folder
    finally:
        stop_and_check_children(proc)


def test_slow_clients_leave_healthz_answering_and_stalled_ones_are_dropped(served):
    base, _folder = served
    with Trickle(int(base.rsplit(":", 1)[1]), SLOW_CLIENTS, "slow") as slow:
        for _ in range(5):
            assert healthz(base, within=1.0) == 200
            time.sleep(1)
        assert not any(client.closed for client in slow.clients), "slow is not stalled"
        slow.stall()
        gone = wait_until(slow.all_closed, IDLE_TIMEOUT + 2 * CLEANUP_INTERVAL + 5, 0.5)
        assert gone, "stalled clients still connected after the idle timeout"
        assert not any(client.received for client in slow.clients), "the app answered one"
    quick = {"email": "quick@example.com", "consent": True}
    assert Browser(base).post_json("/api/subscribe", quick).status == 202


def test_the_app_still_reads_forwarded_headers(served):
    """waitress leaves X-Forwarded-For to the app, which trusts TRUSTED_PROXIES hops of it."""
    base, folder = served
    answer = Browser(base).request(
        "POST",
        "/api/subscribe",
        json.dumps({"email": "behind@example.com", "consent": True}).encode(),
        {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.5"},
    )
    assert answer.status == 202
    shown = subprocess.run(
        [str(BIN / "leadmagnet"), "subscribers", "show", "behind@example.com"],
        env=clean_env(SECRET_KEY=SECRET, INSTANCE_PATH=str(folder / "instance")),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    [consent] = json.loads(shown.stdout)["consents"]
    assert consent["ip"] == "203.0.113.5"


def test_a_body_over_a_mebibyte_is_refused_before_it_arrives(served):
    """waitress buffers a body whole before the app sees it: one larger than any the app takes
    (webhooks, 1 MiB) is refused on its Content-Length alone, not buffered first."""
    base, _folder = served
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/postmark HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
