"""An SMTP server for the benchmarks that takes every message and writes its Message-ID, one a
line, to a file: the benchmark counts what arrived, what is missing and what came twice.

Run: python -m bench.sink PORT FILE   (in a process of its own, so it takes no CPU time
from the process being measured)
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.M | re.I)


class Recorder:
    def __init__(self, path: Path) -> None:
        self.file = path.open("ab", buffering=0)  # unbuffered: each line is there on the 250

    async def handle_DATA(self, server, session, envelope):
        head = envelope.original_content.partition(b"\r\n\r\n")[0]
        found = MESSAGE_ID.search(head)
        self.file.write((found.group(1) if found else b"-") + b"\n")
        return "250 OK"


def arrived(path: Path) -> Counter[str]:
    """How many times each Message-ID arrived ('-' for a message without one)."""
    if not path.exists():
        return Counter()
    return Counter(path.read_text().split())


def main() -> None:
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
