"""bench/proc_cpu.py: what bench.signup prints per request is read off /proc, for the
server's worker processes (the children of the pid it is given), not for the server itself;
and how idle the machine was as a benchmark began, from /proc/stat."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from bench import proc_cpu
from bench.proc_cpu import idle_share, usage

# A worker: burns 0.3 s of CPU, says so, then waits on its stdin (a voluntary switch).
WORKER = (
    "import sys, time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "sys.stdin.read()\n"
)
# A server of its own (the test process has children of other tests): burns 1 s itself,
# starts two workers, says when they are done, and waits on its stdin.
SERVER = (
    "import subprocess, sys, time\n"
    "end = time.process_time() + 1.0\n"
    "while time.process_time() < end: pass\n"
    "workers = [subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdin=subprocess.PIPE,"
    " stdout=subprocess.PIPE) for _ in range(2)]\n"
    "for w in workers: w.stdout.readline()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "for w in workers: w.communicate()\n"
)


def test_the_cpu_of_the_servers_children_is_counted_and_its_own_is_not():
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert server.stdout and server.stdout.readline() == b"ready\n"
        spent = usage(server.pid)
    finally:
        server.communicate(timeout=30)
    assert 0.6 <= spent.web < 1.0  # 2 x 0.3 s and their start-up, not the server's 1 s
    assert spent.voluntary >= 2
    line = (spent - spent).per_request(10)
    assert line.startswith("CPU a request: web 0.00 ms, PostgreSQL 0.00 ms")


def test_idle_share_counts_idle_and_iowait_of_every_core(monkeypatch):
    # user nice system idle iowait irq softirq steal: 100 ticks pass, 30 idle and 10 waiting
    readings = iter([[500, 0, 100, 900, 50, 0, 5, 0], [540, 0, 120, 930, 60, 0, 5, 0]])
    monkeypatch.setattr(proc_cpu, "_cpu_ticks", lambda: next(readings))
    monkeypatch.setattr(proc_cpu, "time", SimpleNamespace(sleep=lambda seconds: None))
    assert idle_share() == 0.4


def test_idle_share_reads_this_machine():
    assert 0.0 <= idle_share(0.05) <= 1.0
    assert len(proc_cpu._cpu_ticks()) >= 8  # /proc/stat's columns as the first test has them
