"""Mail transports: SMTP over one reused connection, or a folder of .eml files."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..core.clock import utcnow
from ..core.dkim_key import DkimKey
from ..core.file_modes import PRIVATE_FILE, PRIVATE_FOLDER
from ..core.settings import EmailUrl
from .mime import Outgoing

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 30
MAILBOX_STATUS = re.compile(rb"^\s*5\.[12]\.\d+")  # RFC 3463: bad mailbox or mailbox status
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SendResult:
    code: int
    reply: str


class DeliveryError(Exception):
    """A send that did not happen. `kind` says whose problem it is."""

    TRANSIENT = "transient"  # 4xx, timeouts, dropped connections: try again later
    BOUNCE = "bounce"  # 5xx about the recipient: suppress the address
    REJECTED = "rejected"  # 5xx about the sender or the message: our fault, alert

    def __init__(self, kind: str, code: int | None, reply: str) -> None:
        super().__init__(f"{code or '-'} {reply}")
        self.kind = kind
        self.code = code
        self.reply = reply


class FileTransport:
    """The embedded default's outbox: one .eml file per message, written atomically."""

    def __init__(self, folder: Path, dkim_key: DkimKey | None = None) -> None:
        self.folder = folder
        self.dkim_key = dkim_key

    def send(
        self, msg: Outgoing, sender: str, recipient: str, step: str | None = None
    ) -> SendResult:
        # Every subscriber's address and unsubscribe link: for the service's user alone.
        self.folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        name = outbox_name(msg.message_id, step, utcnow())
        target = self.folder / f"{name}.eml"
        partial = self.folder / f".{name}.eml.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(msg.as_bytes(self.dkim_key))
        os.replace(partial, target)
        return SendResult(250, f"written to {target}")

    def close(self) -> None:
        pass


class SmtpTransport:
    """One SMTP connection per process, reused across sends and reopened when dropped."""

    def __init__(
        self, url: EmailUrl, timeout: float = SMTP_TIMEOUT, dkim_key: DkimKey | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.dkim_key = dkim_key
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def send(
        self, msg: Outgoing, sender: str, recipient: str, step: str | None = None
    ) -> SendResult:
        utf8 = not (sender.isascii() and recipient.isascii())
        data = msg.as_bytes(self.dkim_key)
        with self._lock:
            try:
                return self._send_once(data, sender, recipient, utf8, retry_stale=True)
            except DeliveryError:
                raise
            except smtplib.SMTPResponseException as exc:
                self._drop()
                raise _classify(exc.smtp_code, exc.smtp_error, stage="connect") from None
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise DeliveryError(DeliveryError.TRANSIENT, None, _describe(exc)) from None

    def _send_once(
        self, data: bytes, sender: str, recipient: str, utf8: bool, retry_stale: bool
    ) -> SendResult:
        fresh = self._conn is None
        conn = self._connection()
        try:
            return _transaction(conn, data, sender, recipient, utf8)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self._drop()
            # A reused connection the server closed while idle: one fresh try, no more.
            if fresh or not retry_stale:
                raise
            return self._send_once(data, sender, recipient, utf8, retry_stale=False)

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = _connect(self.url, self.timeout)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    self._conn.quit()
            self._drop()


def outbox_name(message_id: str, step: str | None, when: datetime) -> str:
    """`<UTC time>-<step>-<Message-ID>`: sorts by time in a file listing and says which email
    it is; only letters, digits, `.`, `_` and `-` (no `/`, no `@`)."""
    parts = (f"{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}Z", step or "email", message_id)
    return "-".join(UNSAFE_IN_NAME.sub("_", part.strip("<>")) for part in parts)


def make_transport(url: EmailUrl, dkim_key: DkimKey | None = None) -> FileTransport | SmtpTransport:
    if url.path is not None:  # file://
        return FileTransport(url.path, dkim_key)
    return SmtpTransport(url, dkim_key=dkim_key)


def probe(url: EmailUrl, timeout: float) -> None:
    """Connect, EHLO (after STARTTLS where the URL asks for it), QUIT: raises SMTPException
    or OSError when the server is not there to take mail."""
    conn = _connect(url, timeout, log_in=False)
    try:
        code, reply = conn.ehlo()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        conn.quit()
    finally:
        conn.close()


def _connect(url: EmailUrl, timeout: float, log_in: bool = True) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if url.scheme == "smtps":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(url.host, url.port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(url.host, url.port, timeout=timeout)
        if url.scheme == "smtp+starttls":
            conn.ehlo()
            conn.starttls(context=context)
            conn.ehlo()
    if url.username and log_in:
        conn.login(url.username, url.password or "")
    return conn


def _transaction(
    conn: smtplib.SMTP, data: bytes, sender: str, recipient: str, utf8: bool
) -> SendResult:
    """MAIL, RCPT, DATA by hand: unlike sendmail(), this keeps the server's final reply."""
    conn.ehlo_or_helo_if_needed()
    options: list[str] = []
    if utf8:
        if not conn.has_extn("smtputf8"):
            raise DeliveryError(DeliveryError.REJECTED, None, "server does not offer SMTPUTF8")
        options = ["SMTPUTF8", "BODY=8BITMIME"]
    code, reply = conn.mail(sender, options)
    if code != 250:
        _reset(conn)
        raise _classify(code, reply, stage="mail")
    code, reply = conn.rcpt(recipient)
    if code not in (250, 251):
        _reset(conn)
        raise _classify(code, reply, stage="rcpt")
    code, reply = conn.data(data)
    if code != 250:
        _reset(conn)
        raise _classify(code, reply, stage="data")
    return SendResult(code, reply.decode("utf-8", "replace"))


def _reset(conn: smtplib.SMTP) -> None:
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _classify(code: int, reply: bytes | str, stage: str) -> DeliveryError:
    raw = reply if isinstance(reply, bytes) else reply.encode()
    text = f"{stage}: {raw.decode('utf-8', 'replace')}"
    if code == -1 or 400 <= code < 500:
        return DeliveryError(DeliveryError.TRANSIENT, code, text)
    if stage == "rcpt" or (stage == "data" and MAILBOX_STATUS.match(raw)):
        return DeliveryError(DeliveryError.BOUNCE, code, text)
    return DeliveryError(DeliveryError.REJECTED, code, text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out talking to the SMTP server"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
