"""Slow clients: each sends a signup's headers at once, then its body a byte a second, as a
slowloris attacker (or a bad mobile link) does; and a /healthz probe with a deadline."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BODY_LENGTH = 200


def signup_body(address: str) -> bytes:
    """A valid signup, padded with JSON whitespace to BODY_LENGTH bytes."""
    body = json.dumps({"email": address, "consent": True}).encode()
    return body.ljust(BODY_LENGTH)


class SlowClient:
    def __init__(self, port: int, address: str) -> None:
        self.body = signup_body(address)
        self.sent = 0
        self.received = b""  # what the server answered, if anything
        self.closed = False  # by the server
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(
            b"POST /api/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(self.body)
        )

    def trickle(self) -> None:
        """One more byte of the body (never the last one), unless the server closed."""
        if self.check() and self.sent < len(self.body) - 1:
            try:
                self.sock.sendall(self.body[self.sent : self.sent + 1])
                self.sent += 1
            except OSError:
                self.closed = True

    def check(self) -> bool:
        """Keep what the server sent; True while the connection is open."""
        while not self.closed:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            self.received += data
            self.closed = not data
        return not self.closed

    def close(self) -> None:
        self.sock.close()


class Trickle:
    """`count` slow clients, each sent a byte a second from one thread (which alone touches
    their sockets), until stalled or stopped."""

    def __init__(self, port: int, count: int, prefix: str) -> None:
        self.clients = [SlowClient(port, f"{prefix}{n}@example.com") for n in range(count)]
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for client in self.clients:
            client.close()

    def stall(self) -> None:
        """No more bytes: the clients wait, connected, without sending anything."""
        self._stalled.set()

    def all_closed(self) -> bool:
        """Whether the server has closed every client's connection."""
        return all(client.closed for client in self.clients)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for client in self.clients:
                if self._stalled.is_set():
                    client.check()
                else:
                    client.trickle()


def healthz(base: str, within: float) -> int | str:
    """/healthz's status, or what went wrong if it did not answer within `within` seconds."""
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=within) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def healthz_in_parallel(base: str, count: int, within: float) -> list[int | str]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: healthz(base, within), range(count)))
