"""The kill tests' evidence rule itself: a repeat is a send cut after the accept only if its
second copy came once the dead worker's lease could have run out, and no sooner."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.evidence import Kill, unexplained_repeats
from tests.smtp import Handler, Received

LEASE = 2.0
LAST_RECORD = 1_000.0  # the killed worker's last "sent email" line


class Server:
    """The parts of RecordingSMTPServer the evidence reads, filled by hand."""

    def __init__(self, received: list[Received]) -> None:
        self.received = received
        self.handler = Handler(received=received)


def copy(wall: float, session: str) -> Received:
    data = b"Message-ID: <x@example.test>\r\nSubject: s\r\n\r\nbody\r\n"
    return Received("from@example.test", ["to@example.test"], data, session, wall=wall)


def killed_worker(tmp_path: Path) -> Kill:
    log = tmp_path / "worker.log"
    stamp = datetime.fromtimestamp(LAST_RECORD, UTC).isoformat(timespec="milliseconds")
    line = {
        "time": stamp.replace("+00:00", "Z"),
        "logger": "service.sending.delivery",
        "message": "sent email 7",
        "email_id": 7,
        "message_id": "<earlier@example.test>",
    }
    log.write_text(json.dumps(line) + "\n")
    return Kill(LAST_RECORD + 0.3, log)


@pytest.mark.parametrize(
    ("after_last_record", "explained"),
    [
        # The batch's lease may have been taken before the last record, so it can run out
        # well before a whole lease after it: a second copy then is a claim of a dead lease.
        (LEASE * 0.6, True),
        # The re-check before the first copy found half a lease left: a copy sooner than
        # that was sent while the first claim still held, i.e. a race.
        (LEASE * 0.4, False),
    ],
)
def test_a_repeat_is_explained_only_once_the_dead_claim_could_have_run_out(
    tmp_path, after_last_record, explained
):
    first = copy(LAST_RECORD + 0.1, "127.0.0.1:1001")  # its worker killed after the accept
    again = copy(LAST_RECORD + after_last_record, "127.0.0.1:1002")
    server = Server([first, again])
    server.handler.quit.add("127.0.0.1:1002")
    found = unexplained_repeats(server, [killed_worker(tmp_path)], LEASE)  # type: ignore[arg-type]
    assert found == ([] if explained else ["<x@example.test>"])
