"""Production-like processes for the outage tests: gunicorn, a Celery worker and beat (as
README's Production section runs them), a PostgreSQL database of the test's own, and a
steady stream of signups from many client addresses."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.procs import BIN, http_ok, start, stop, wait_until, worker_command


@dataclass
class Answer:
    address: str
    status: int
    body: str
    headers: dict[str, str]
    at: float  # monotonic, when the answer came
    took: float  # seconds from the request to the answer


class Stack:
    """`gunicorn "service:create_app()"`, `celery -A worker worker` (solo pool) and
    `celery -A worker beat`, each with the given environment."""

    def __init__(self, folder: Path, env: dict[str, str], web_workers: int = 2) -> None:
        self.folder = folder
        self.env = env
        self.port = free_port()
        self.web_workers = web_workers
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        commands = {
            "web": [
                str(BIN / "gunicorn"),
                "--workers",
                str(self.web_workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "5",
                "service:create_app()",
            ],
            "worker": worker_command("--loglevel", "INFO"),
            "beat": [str(BIN / "celery"), "-A", "worker", "beat", "--loglevel", "INFO"],
        }
        for name, args in commands.items():
            self.procs[name] = start(args, self.env, self.folder, self.log(name))
        if not wait_until(lambda: http_ok(f"http://127.0.0.1:{self.port}/healthz"), 40, 0.2):
            self.stop()
            pytest.fail("gunicorn did not answer /healthz:\n" + self.tail("web"))

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def running(self) -> bool:
        return all(proc.poll() is None for proc in self.procs.values())

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)

    def post(self, path: str, payload: dict, client_ip: str = "127.0.0.1") -> Answer:
        """POST JSON from the given loopback address (127.0.0.0/8 is all ours): each
        visitor has an address of their own, as the per-IP rate limit expects."""
        began = time.monotonic()
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=15, source_address=(client_ip, 0)
        )
        try:
            conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            return Answer(
                str(payload.get("email")),
                response.status,
                body,
                dict(response.getheaders()),
                time.monotonic(),
                time.monotonic() - began,
            )
        finally:
            conn.close()

    def signup(self, address: str, client_ip: str = "127.0.0.1") -> Answer:
        return self.post("/api/subscribe", {"email": address, "consent": True}, client_ip)


@dataclass
class SignupStream:
    """Signups at a steady rate, each from its own client address, until stopped. The rate
    holds whatever the answers take (an open loop, as real visitors are): a slow answer
    does not slow the stream down, it piles requests up. Every answer is kept."""

    stack: Stack
    prefix: str
    rate: float = 4.0
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(64))

    def __enter__(self) -> SignupStream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        began = time.monotonic()
        n = 0
        while not self._stop.is_set():
            self._pool.submit(self._one, n)
            n += 1
            self._stop.wait(max(0.0, began + n / self.rate - time.monotonic()))

    def _one(self, n: int) -> None:
        address = f"{self.prefix}{n}@example.com"
        try:
            self.answers.append(self.stack.signup(address, f"127.0.{n // 250}.{2 + n % 250}"))
        except OSError as exc:  # no answer at all (refused, reset, timed out): as bad as a 500
            self.errors.append(f"{address}: {type(exc).__name__}: {exc}")

    def accepted(self) -> list[str]:
        return [a.address for a in self.answers if a.status == 202]
