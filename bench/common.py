"""Shared benchmark helpers: interleaved rounds against a baseline, a ratio, a private Redis
database and a scratch PostgreSQL database."""

from __future__ import annotations

import math
import os
import platform
import resource
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.proc_cpu import idle_share

BASE_DB = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
# The same leases as tests/conftest.py private_redis_db (bench/ does not import tests/): a
# benchmark and a test run on the same server never get the same database number.
REDIS_DATABASES = range(1, 16)
REDIS_LEASE = 3600  # seconds: a run killed outright frees its database after this


# Every benchmark app signs with this: long and varied enough for the start-up check.
SECRET_KEY = "bench-key-Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5Df"


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) / calls * 1e6


def interleaved(
    ours: Callable[[], object], baseline: Callable[[], object], calls: int, rounds: int = 7
) -> tuple[float, float]:
    """Median microseconds per call of each, measured in alternating rounds so that machine
    noise hits both alike."""
    a, b = [], []
    for _ in range(rounds):
        a.append(per_call_us(ours, calls))
        b.append(per_call_us(baseline, calls))
    return statistics.median(a), statistics.median(b)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(ratio: float, goal: float, at_least: bool) -> str:
    met = ratio >= goal if at_least else ratio <= goal
    return f"goal {'>=' if at_least else '<='} {goal}: {'met' if met else 'NOT met'}"


def header(title: str) -> None:
    """The benchmark's title, the machine, and how quiet it was as the run began (goals are
    judged on a quiet machine: a busy one's figures say so here)."""
    print(f"# {title}  ({time.strftime('%Y-%m-%d %H:%M')}, {machine()})")
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"# machine at the start: load average {load}; {idle_share():.0%} idle over 1 s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    """Until something listens on 127.0.0.1:port (a server this run started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    fail(f"nothing listens on port {port} after {seconds:.0f} s")


def _admin():
    url = make_url(BASE_DB).set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def create_scratch_database() -> str:
    """A PostgreSQL database of the benchmark's own (BENCH_DATABASE_URL names the server)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(BASE_DB).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(url: str) -> None:
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def private_redis_db(server: str = REDIS_SERVER) -> Iterator[str]:
    """The URL of a Redis database leased to this run alone, emptied before and after."""
    import redis

    root = server.rstrip("/")
    if root.rsplit("/", 1)[-1].isdigit():
        root = root.rsplit("/", 1)[0]  # a database number in BENCH_REDIS_URL is not ours to use
    leases = redis.Redis.from_url(f"{root}/0")
    owner = f"bench-{os.getpid()}-{uuid.uuid4().hex}"
    number = next(
        (n for n in REDIS_DATABASES if leases.set(_lease_key(n), owner, nx=True, ex=REDIS_LEASE)),
        None,
    )
    if number is None:
        fail(f"all Redis databases {REDIS_DATABASES.start}-{REDIS_DATABASES.stop - 1} are leased")
    url = f"{root}/{number}"
    redis.Redis.from_url(url).flushdb()  # what a killed run left behind
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if leases.get(_lease_key(number)) == owner.encode():
            leases.delete(_lease_key(number))


def _lease_key(number: int) -> str:
    return f"leadmagnet-tests:redis-db:{number}"


def fail(reason: str) -> None:
    """A run that cannot give an honest figure says why and exits non-zero."""
    print(f"FAILED: {reason}", flush=True)
    sys.exit(1)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value that `share` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
