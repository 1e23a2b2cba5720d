"""The web app under waitress, as `leadmagnet serve` runs it: a request reaches a thread only
once it has arrived whole, so a client that sends its body slowly holds a socket, not a thread."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from waitress.server import create_server

from . import create_app

# Seconds a connection may go without sending a byte before it is dropped (waitress checks
# every CLEANUP_INTERVAL seconds); a stalled body no longer waits out waitress' 120 s.
IDLE_TIMEOUT = 10
CLEANUP_INTERVAL = 1
# The largest body the app accepts (webhooks, 1 MiB): waitress buffers a body whole before the
# app sees it, so anything larger is refused (413) before it fills memory or disk.
MAX_BODY = 1024 * 1024
# Open connections at most; slow clients each hold one. poll(), since select() stops at fd 1024.
CONNECTION_LIMIT = 500


def _stop(_signum: int, _frame: FrameType | None) -> None:
    # waitress' loop ends on SystemExit and gives running requests 5 s to finish.
    raise SystemExit(0)


def main(host: str, port: int, threads: int) -> None:
    server = create_server(
        create_app(),
        host=host,
        port=port,
        threads=threads,
        channel_timeout=IDLE_TIMEOUT,
        cleanup_interval=CLEANUP_INTERVAL,
        max_request_body_size=MAX_BODY,
        connection_limit=CONNECTION_LIMIT,
        asyncore_use_poll=True,
        # X-Forwarded-* are the app's to judge (TRUSTED_PROXIES), not waitress' to strip.
        clear_untrusted_proxy_headers=False,
    )
    signal.signal(signal.SIGTERM, _stop)
    server.run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
