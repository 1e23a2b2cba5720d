"""Signup rate limits under gunicorn with two workers sharing Redis: the allowance is counted
once for the whole service, not once per worker process (with in-memory counting each
worker would let the full allowance through, and two workers double every limit)."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import pytest

from service.web.ratelimits import Window
from service.web.signup_limits import PER_ADDRESS, PER_IP
from tests.conftest import SECRET, free_port, make_app
from tests.procs import BIN, clean_env, http_ok, start, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def allowance(limits: tuple[Window, ...]) -> int:
    """The tightest window's: 5 of "5 an hour, 20 a day"."""
    return min(window.most for window in limits)


class Gunicorn:
    """`gunicorn --workers 2` with sync workers (one request at a time each), logging the
    process id that served each request."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = folder / "access.log"
        args = [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{self.port}"]
        args += ["--access-logfile", str(self.log), "--access-logformat", "%(p)s %(U)s %(q)s"]
        self.proc = start([*args, "service:create_app()"], env, folder, folder / "web.log")
        if not wait_until(lambda: http_ok(f"http://127.0.0.1:{self.port}/healthz"), 40, 0.2):
            self.proc.kill()
            pytest.fail("gunicorn did not start:\n" + (folder / "web.log").read_text()[-3000:])

    def signup(self, n: int, address: str, client_ip: str) -> int:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(client_ip, 0)
        )
        try:
            body = json.dumps({"email": address, "consent": True})
            conn.request(
                "POST", f"/api/subscribe?n={n}", body, {"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def hold_a_worker(self) -> socket.socket:
        """A request whose headers never end: the worker that takes it waits on it, so every
        other request goes to the other worker until release()."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        return sock

    def release(self, sock: socket.socket) -> None:
        sock.sendall(b"\r\n")
        while sock.recv(65536):
            pass
        sock.close()

    def served_by(self) -> dict[int, str]:
        """Which worker process answered signup n, from the access log."""
        wait_until(lambda: self.log.exists(), 10)
        served = {}
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):  # the service's JSON log format
                line = json.loads(line)["message"]
            pid, path, query = [*line.split(" "), ""][:3]
            if path == "/api/subscribe" and query.startswith("n="):
                served[int(query[2:])] = pid
        return served


def statuses_across_both_workers(web: Gunicorn, limit: int, address, client_ip: str):
    """limit + 1 signups: the first half while one worker is held (so the other serves them),
    then the rest while the other is held."""
    half = limit // 2 + 1
    first = web.hold_a_worker()
    answers = [web.signup(n, address(n), client_ip) for n in range(half)]
    second = web.hold_a_worker()  # the worker that served the first half: the other is held
    web.release(first)
    answers += [web.signup(n, address(n), client_ip) for n in range(half, limit + 1)]
    web.release(second)
    return answers, half


@pytest.fixture
def web(tmp_path, pg_database, redis_db):
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "EMAIL_URL": f"file://{tmp_path / 'outbox'}",
    }
    make_app(settings)  # a clean schema at head
    server = Gunicorn(tmp_path, clean_env(**settings))
    yield server
    stop(server.proc)


@pytest.mark.parametrize(
    ("limits", "address"),
    [
        (PER_ADDRESS, lambda n: "same@example.com"),
        (PER_IP, lambda n: f"ip{n}@example.com"),
    ],
    ids=["per-address", "per-ip"],
)
def test_the_allowance_is_shared_by_both_gunicorn_workers(web, limits, address):
    limit = allowance(limits)
    answers, half = statuses_across_both_workers(web, limit, address, "127.0.5.2")
    served = web.served_by()
    first, second = {served[n] for n in range(half)}, {served[n] for n in range(half, limit + 1)}
    print(f"\n{limits}: {answers}, first {half} served by {first}, the rest by {second}")
    assert len(first) == len(second) == 1 and first != second, "each worker served its share"
    assert answers == [202] * limit + [429], "the 429 comes after the allowance of both"
