"""Shared benchmark helpers: interleaved rounds against a baseline, and a ratio."""

from __future__ import annotations

import os
import platform
import resource
import socket
import statistics
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BASE_DB = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


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
    print(f"# {title}  ({time.strftime('%Y-%m-%d')}, {machine()})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
