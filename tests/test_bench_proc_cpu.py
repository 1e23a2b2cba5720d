"""bench/proc_cpu.py: what bench.signup prints per request is read off /proc, for the
server's worker processes (the children of the pid it is given), not for the server itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.proc_cpu import usage

# Burns 0.3 s of CPU, says so, then waits on its stdin (a voluntary context switch).
CHILD = (
    "import sys, time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_the_cpu_of_the_servers_children_is_counted_and_its_own_is_not():
    while time.process_time() < 1.5:  # this process's own CPU: more than the children's
        pass
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout and child.stdout.readline() == b"burnt\n"
        spent = usage(os.getpid())
    finally:
        for child in children:
            child.communicate()
    assert 0.6 <= spent.web < 1.2  # 2 x 0.3 s and their start-up, not this process's 1.5 s
    assert spent.voluntary >= 2
    line = (spent - spent).per_request(10)
    assert line.startswith("CPU a request: web 0.00 ms, PostgreSQL 0.00 ms")
