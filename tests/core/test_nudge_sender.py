"""The web's nudge sender: a request hands its ids over and returns, whatever Redis does; ids
handed over while a push is on its way go together in the next one. Redis is real, reached
through a pipe that this test can hold shut."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask

from service.core import nudge_list
from tests.conftest import make_app

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


class Gate:
    """A TCP pipe to Redis whose client-to-server direction can be held shut; it counts the
    RPUSH commands that went through."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path
        self.open = threading.Event()
        self.arrived = threading.Event()  # a client sent something (held while shut)
        self.sent = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.listener.getsockname()[1]}{self.db}"

    def pushes(self) -> int:
        return self.sent.upper().count(b"RPUSH")

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(near, far, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        while chunk := source.recv(65536):
            if outbound:
                self.arrived.set()
                self.open.wait()
                self.sent += chunk
            sink.sendall(chunk)
        sink.close()


@pytest.fixture
def gate(redis_db: str) -> Iterator[Gate]:
    found = Gate(redis_db)
    yield found
    found.open.set()
    found.listener.close()


def listed(url: str) -> list[int]:
    return [int(i) for i in redis.Redis.from_url(url).lrange(nudge_list.NUDGES, 0, -1)]


def test_a_signup_returns_while_its_push_is_still_held(env, gate: Gate, redis_db: str):
    app: Flask = make_app({**env, "REDIS_URL": gate.url})
    answer = app.test_client().post(
        "/api/subscribe", json={"email": "ann@example.com", "consent": True}
    )
    assert answer.status_code == 202  # answered with the push held shut in the pipe
    sender = nudge_list.sender(app, gate.url)
    assert gate.arrived.wait(5) and not sender.flush(timeout=0)
    assert listed(redis_db) == []
    gate.open.set()
    assert sender.flush()
    assert len(listed(redis_db)) == 1


def test_ids_handed_over_during_a_push_share_the_next_one(env, gate: Gate, redis_db: str):
    app: Flask = make_app({**env, "REDIS_URL": gate.url})
    sender = nudge_list.sender(app, gate.url)
    sender.send([1])
    assert gate.arrived.wait(5)  # the first push is on its way, held in the pipe
    for ids in ([2], [3, 4], [5]):
        sender.send(ids)
    gate.open.set()
    assert sender.flush()
    assert listed(redis_db) == [1, 2, 3, 4, 5]
    assert gate.pushes() == 2  # [1], then the three hand-overs in one RPUSH


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_a_sender_of_its_own(env, redis_db: str):
    """A process forked after the parent's first nudge (a prefork worker's child, say) has
    none of its threads: its hand-overs must still be pushed, by a thread of its own."""
    app: Flask = make_app({**env, "REDIS_URL": redis_db})
    sender = nudge_list.sender(app, redis_db)
    sender.send([1])
    assert sender.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit code carries the verdict)
        sender.send([2])
        os._exit(0 if sender.flush() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert listed(redis_db) == [1, 2]
