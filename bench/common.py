"""Shared benchmark helpers: interleaved rounds against a baseline, and a ratio."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable


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
