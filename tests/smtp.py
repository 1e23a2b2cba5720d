"""A real SMTP server for tests (aiosmtpd) that records messages and can be told how to answer."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    session: str = ""  # the client connection ("host:port") that brought it
    at: float = field(default_factory=time.monotonic)  # when the server took it in
    # The same moment by the wall clock, to set beside the time stamps of the workers' logs.
    wall: float = field(default_factory=time.time)

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """Answers DATA from `script` (one reply per message, None = accept), then accepts."""

    received: list[Received] = field(default_factory=list)
    script: list[str | None] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"
    stall: float = 0.0  # seconds to sit on DATA before answering
    drop: int = 0  # how many DATA commands to answer by dropping the connection
    # Seconds between taking a message in and answering 250: a client that dies in between
    # had its message accepted without ever hearing so (a send cut after the final dot).
    reply_delay: float = 0.0
    # While `gate` is clear, DATA waits at it (the whole message in, no answer yet) and
    # `waiting` says so: a test kills or signals a client it knows to be inside DATA. A
    # client gone by the time the gate opens had its message refused, never taken in.
    gate: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)
    quit: set[str] = field(default_factory=set)  # sessions that ended with QUIT
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.gate.set()

    def hold(self) -> None:
        """Hold every DATA at the gate from now on, until release()."""
        self.waiting.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def vanished(self, session: str) -> bool:
        """The client of this session went away without QUIT: killed, not closed."""
        return session not in self.quit

    async def handle_QUIT(self, server, session, envelope):
        self.quit.add(_name(session))
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        if self.stall:
            await asyncio.sleep(self.stall)
        if not self.gate.is_set():
            self.waiting.set()
            while not self.gate.is_set():  # a client that vanishes meanwhile cancels this
                await asyncio.sleep(0.01)
        if self.drop:
            self.drop -= 1
            server.transport.close()  # mid-DATA: the message is in, the reply never comes
            return "421 closing"
        with self.lock:
            reply = self.script.pop(0) if self.script else None
            if reply is not None:
                return reply
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    _name(session),
                )
            )
            accepted = f"250 2.0.0 Ok: queued as {len(self.received)}"
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        return accepted


def _name(session) -> str:
    host, port = session.peer[:2]
    return f"{host}:{port}"


class RecordingSMTPServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = Handler()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)
