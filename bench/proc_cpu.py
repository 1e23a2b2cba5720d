"""CPU time and context switches of a web server's workers and of the PostgreSQL server's
live processes, read from /proc (Linux): what a benchmark round cost, per request."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK")  # /proc is Linux: so is sysconf


@dataclass(frozen=True)
class Usage:
    web: float  # CPU seconds of the server's worker processes (every thread)
    postgres: float  # CPU seconds of PostgreSQL's processes alive at both readings
    voluntary: int  # the workers' threads' context switches: waits (I/O, locks, the GIL)
    involuntary: int  # and preemptions

    def __sub__(self, before: Usage) -> Usage:
        return Usage(
            self.web - before.web,
            self.postgres - before.postgres,
            self.voluntary - before.voluntary,
            self.involuntary - before.involuntary,
        )

    def per_request(self, requests: int) -> str:
        """One line: milliseconds of CPU and switches per request."""
        n = max(requests, 1)
        return (
            f"CPU a request: web {self.web / n * 1e3:.2f} ms, PostgreSQL "
            f"{self.postgres / n * 1e3:.2f} ms; web context switches a request: "
            f"{self.voluntary / n:.1f} voluntary, {self.involuntary / n:.1f} involuntary"
        )


def usage(server_pid: int) -> Usage:
    """Now: the server's children (gunicorn's workers) and every `postgres` process."""
    web = postgres = 0.0
    voluntary = involuntary = 0
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        if int(fields[1]) == server_pid:
            web += cpu
            v, i = _switches(stat.parent)
            voluntary, involuntary = voluntary + v, involuntary + i
        elif name.startswith("postgres"):
            postgres += cpu
    return Usage(web, postgres, voluntary, involuntary)


def _switches(process: Path) -> tuple[int, int]:
    voluntary = involuntary = 0
    for status in process.glob("task/*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def idle_share(seconds: float = 1.0) -> float:
    """The share of all cores' time spent idle (or waiting on I/O) over the next `seconds`:
    whether the machine was quiet as a benchmark began."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    total = sum(after) - sum(before)
    idle = (after[3] + after[4]) - (before[3] + before[4])  # idle, iowait
    return idle / total if total else 1.0


def _cpu_ticks() -> list[int]:
    # /proc/stat's first line: cpu user nice system idle iowait irq softirq steal ...
    return [int(n) for n in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
