"""What `serve` makes sure of before it starts anything: its port is free, no other serve
runs on its instance folder, and the outbox folder is there to look in."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from .core.file_modes import PRIVATE_FILE, private_folder
from .core.settings import EmailUrl

LOCK_FILE = "serve.lock"


class ServeRefused(Exception):
    """Why serve will not start, in one line."""


def check_port(host: str, port: int) -> None:
    """Bind every address waitress would listen on, and let go: a port in use stops the
    start now, before a worker starts sending links that point at someone else's server."""
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ServeRefused(f"cannot listen on {host}: {exc.strerror}") from None
    for family, kind, proto, _name, address in found:
        with socket.socket(family, kind, proto) as sock:
            # As waitress does: a port the last run left in TIME_WAIT is free to take.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ServeRefused(
                        f"port {port} is in use; choose another with --port"
                    ) from None
                raise ServeRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def claim_instance(folder: Path) -> IO[str]:
    """Lock the instance folder for this serve's lifetime (close the returned file to let
    go; the system lets go when the process dies). Two serves on one folder would share its
    database, outbox and embedded broker: each worker would send the other's signups links
    to its own port."""
    path = folder / LOCK_FILE
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE), "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ServeRefused(
            f"another serve (pid {holder}) is running on the instance folder {folder}; "
            "stop it first, or give this one its own INSTANCE_PATH"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def prepare_outbox(url: EmailUrl) -> None:
    """A file:// outbox exists from the start, 0700: the first place a newcomer looks."""
    if not url.is_file or url.path is None:
        return
    try:
        private_folder(url.path)
    except OSError as exc:
        raise ServeRefused(f"cannot make the outbox folder {url.path}: {exc.strerror}") from None
