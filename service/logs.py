"""Log lines: one JSON object per line (or plain text), with the ids a line is about."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

# Passed with `extra=` where a line is about one subscriber, email or step.
FIELDS = ("subscriber_id", "email_id", "step", "message_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# gunicorn writes its error and access lines through handlers of its own.
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")
ADDRESS = re.compile(r"([^\s<>\"'(),;:@]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Paths whose last segment is a capability (unsubscribe, download, confirm...): whoever
# reads the token can act as the subscriber, so access lines keep only the path's name.
TOKEN_PATH = re.compile(r"(/(?:unsubscribe|guide|confirm|resubscribe|r)/)[^/?#\s\"]+")


def mask(address: str) -> str:
    """`anna@example.com` -> `a***@example.com`: enough to tell lines apart, not to mail."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_addresses(text: str) -> str:
    """Every address in a free text (an SMTP reply quotes the recipient), masked."""
    return ADDRESS.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)


def redact_tokens(text: str) -> str:
    """`/unsubscribe/<token>` -> `/unsubscribe/[token]`, wherever it sits in the text."""
    return TOKEN_PATH.sub(r"\1[token]", text)


class AccessTokenFilter(logging.Filter):
    """Drops link tokens from gunicorn's access lines. gunicorn logs each request with its
    format string and one mapping of atoms (request line, path, query, referer, headers
    and environ): every text atom is redacted before any formatter reads it."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if isinstance(atoms, dict):
            for key, value in list(atoms.items()):
                if isinstance(value, str):
                    atoms[key] = redact_tokens(value)
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, and each of FIELDS the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the ids appended as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{n}={record.__dict__[n]}" for n in FIELDS if record.__dict__.get(n) is not None]
        return f"{line} {' '.join(ids)}" if ids else line


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record, not as it was at start: test runners
    and daemonizers swap it, and a handler holding a closed stream loses every line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(log_format: str, level: int | str = logging.INFO) -> None:
    """Install one stderr handler on the root logger (replacing ours from an earlier call,
    leaving others alone) and give gunicorn's handlers the same format."""
    chosen = formatter(log_format)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(chosen)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings too become lines of the format, not bare text
    for name in GUNICORN_LOGGERS:
        for other in logging.getLogger(name).handlers:
            other.setFormatter(chosen)
    access = logging.getLogger("gunicorn.access")
    if not any(isinstance(f, AccessTokenFilter) for f in access.filters):
        access.addFilter(AccessTokenFilter())
