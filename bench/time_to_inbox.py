"""bench/time_to_inbox: signups at a steady rate (50 a second, then 200 a second, 30 seconds
each) against web, worker and beat run as in production; for each signup, the time from
the moment its request is due to be sent (the generator's schedule: never later than it is
sent) to the SMTP server receiving its guide.

A signup that is not answered 202, a guide that never arrives and a guide that arrives
twice are failures: they are printed and fail the run (exit 1). So does a load generator
that could not keep the rate (the figures would be of a lighter load).

Run: .venv/bin/python -m bench.time_to_inbox   (PostgreSQL and Redis on this machine)
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller

from bench.apps import production_gunicorn
from bench.common import (
    SECRET_KEY,
    create_scratch_database,
    drop_scratch_database,
    fail,
    free_port,
    header,
    percentile,
    private_redis_db,
)

RATES = [int(rate) for rate in os.environ.get("BENCH_RATES", "50,200").split(",")]
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
WAIT = 60  # seconds after the last signup for the last guides
KEPT = 0.95  # share of the rate the load generator must keep


class Arrivals:
    """The SMTP server's side: when each recipient's messages arrived."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        message_from_bytes(envelope.original_content)  # as a real server would read it
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.at[recipient].append(now)
        return "250 OK"


def signup(port: int, address: str) -> str | None:
    """None, or what went wrong."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"email": address, "consent": True})
        conn.request("POST", "/api/subscribe", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
    except OSError as exc:
        return type(exc).__name__
    return None if response.status == 202 else f"HTTP {response.status}"


class Load:
    """One rate's signups: when each was due to be sent (the clock of each signup starts
    then: a generator or a server running late is measured, not hidden), when it was
    answered, the failed ones, and the rate the generator kept in fact."""

    def __init__(self) -> None:
        self.due: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.began: list[float] = []
        self.kept = 0.0


def load(rate: int, port: int, prefix: str) -> Load:
    """`rate` signups a second for SECONDS."""
    run = Load()
    lock = threading.Lock()

    def one(address: str) -> None:
        started = time.time()
        problem = signup(port, address)
        with lock:
            run.began.append(started)
            run.answered[address] = time.time()
            if problem:
                run.failed[address] = problem

    count = rate * SECONDS
    # Open loop: enough threads that a slow answer does not hold back the next request.
    with ThreadPoolExecutor(max_workers=min(512, max(16, rate * 2))) as pool:
        start, wall = time.monotonic(), time.time()
        for n in range(count):
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            address = f"{prefix}{n}@example.com"
            run.due[address] = wall + n / rate
            pool.submit(one, address)
    first, last = min(run.began), max(run.began)
    run.kept = (count - 1) / (last - first) if last > first else float("inf")
    return run


def arrivals_of(arrivals: Arrivals, run: Load) -> dict[str, list[float]]:
    deadline = time.time() + WAIT
    while time.time() < deadline:
        with arrivals.lock:
            if all(address in arrivals.at for address in run.due if address not in run.failed):
                break
        time.sleep(0.2)
    time.sleep(1)  # a duplicate would come soon after the first
    with arrivals.lock:
        return {address: list(arrivals.at.get(address, [])) for address in run.due}


def spread(seconds: list[float]) -> str:
    p99 = percentile(seconds, 0.99)
    return (
        f"p50 {statistics.median(seconds) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms"
    )


def report(rate: int, run: Load, arrived: dict) -> list[str]:
    """Print the figures of one rate; return its failures."""
    ok = [address for address in run.due if address not in run.failed]
    missing = [address for address in ok if not arrived[address]]
    twice = [address for address, times in arrived.items() if len(times) > 1]
    latencies = [arrived[a][0] - run.due[a] for a in ok if arrived[a]]
    print(
        f"{rate}/s for {SECONDS} s: {len(run.due)} signups sent (kept {run.kept:.0f}/s), "
        f"{len(run.failed)} failed, {len(missing)} guides missing, {len(twice)} arrived twice"
    )
    print(f"  answered: {spread([run.answered[a] - run.due[a] for a in run.due])}")
    if latencies:
        p99 = percentile(latencies, 0.99)
        print(
            f"  time from request to SMTP: {spread(latencies)} "
            f"(goal p99 < 1 s: {'met' if p99 < 1 else 'NOT met'})"
        )
    problems = [f"{a}: {why}" for a, why in list(run.failed.items())[:5]]
    problems += [f"{a}: no guide" for a in missing[:5]] + [f"{a}: guide twice" for a in twice[:5]]
    if run.kept < KEPT * rate:
        problems.append(f"the load generator kept {run.kept:.0f}/s of {rate}/s")
    for problem in problems:
        print(f"  failure: {problem}")
    return problems


def start_services(env: dict, web_port: int, log) -> list[subprocess.Popen]:
    bin_dir = Path(sys.executable).parent
    commands = [
        production_gunicorn(str(bin_dir / "gunicorn"), web_port, "service:create_app()"),
        [str(bin_dir / "celery"), "-A", "worker", "worker", "-c", "2", "--loglevel", "WARNING"],
        [str(bin_dir / "celery"), "-A", "worker", "beat", "--loglevel", "WARNING"],
    ]
    return [
        subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        for command in commands
    ]


def warm_up(web_port: int, arrivals: Arrivals) -> None:
    """One signup through to its guide: web, worker and broker are up (not measured)."""
    deadline = time.time() + 90
    while time.time() < deadline:
        problem = signup(web_port, "warm-up@example.com")
        if problem is None:
            break
        time.sleep(0.5)
    while time.time() < deadline:
        with arrivals.lock:
            if arrivals.at.get("warm-up@example.com"):
                return
        time.sleep(0.2)
    fail("the warm-up signup's guide did not arrive within 90 s: the services are not up")


def main() -> None:
    arrivals = Arrivals()
    smtp_port, web_port = free_port(), free_port()
    smtpd = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtpd.start()
    database_url = create_scratch_database()
    procs: list[subprocess.Popen] = []
    try:
        with private_redis_db() as redis_url:
            instance = tempfile.mkdtemp(prefix="bench-tti-")
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": SECRET_KEY,
                "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
                "RATELIMIT_ENABLED": "false",
                "INSTANCE_PATH": instance,
                "DISPATCH_INTERVAL": "30",
            }
            bin_dir = Path(sys.executable).parent
            subprocess.run(
                [str(bin_dir / "leadmagnet"), "db", "upgrade"],
                env=env,
                check=True,
                capture_output=True,
            )
            with open(Path(instance) / "services.log", "wb") as log:
                procs = start_services(env, web_port, log)
                warm_up(web_port, arrivals)
                measure(web_port, arrivals, log.name)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        smtpd.stop()
        drop_scratch_database(database_url)


def measure(web_port: int, arrivals: Arrivals, log: str) -> None:
    header(
        "bench/time_to_inbox (gunicorn as the Dockerfile runs it, celery prefork 2, beat; the "
        "clock starts when each request is due to be sent)"
    )
    problems = []
    for rate in RATES:
        run = load(rate, web_port, prefix=f"r{rate}-")
        problems += report(rate, run, arrivals_of(arrivals, run))
    if problems:
        fail(f"the failures above (the first of each kind; the services' log: {log})")


if __name__ == "__main__":
    main()
