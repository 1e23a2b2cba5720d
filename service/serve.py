"""`leadmagnet serve`: web app, Celery worker and beat as child processes, stopped together."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from . import metrics, runtime

WORKER_START = 30.0  # seconds to wait for the worker before opening the web app anyway
STOP_GRACE = 8.0  # seconds: the contract allows 10 for everything to be gone


def _die_with_parent() -> Callable[[], None] | None:
    """Children get SIGTERM if `serve` itself is killed outright (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def local_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def commands(app: Flask, host: str, port: int) -> dict[str, list[str]]:
    settings = runtime.settings(app)
    python = sys.executable
    # One web process; on SQLite, writes take turns whatever the number of threads.
    web_threads = "4" if settings.database_url.startswith("sqlite") else "8"
    return {
        # waitress, not gunicorn: it reads each request whole before a thread takes it, so
        # clients trickling their bodies cannot tie up the threads (see service/webserver.py).
        "web": [python, "-m", "service.webserver", host, str(port), web_threads],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        "beat": [python, "-m", "celery", "-A", "worker", "beat", "--loglevel", "WARNING"],
    }


def supervise(app: Flask, host: str, port: int) -> int:
    """Start the children, wait for a signal or a death, stop them all; return the exit code."""
    settings = runtime.settings(app)
    env = {**os.environ, "INSTANCE_PATH": str(settings.instance_path)}
    if not os.environ.get("PUBLIC_URL"):
        # Links in emails should reach this very server, whatever port it was given.
        env["PUBLIC_URL"] = local_url(host, port)
    # One metrics folder for all the children, emptied first: the web app's /metrics then
    # adds up its own counts and the worker's sends, and none from an earlier run.
    env[metrics.MULTIPROC_VARIABLE] = str(metrics.fresh_folder(settings.instance_path / "metrics"))
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda n, _frame: stopping.append(n))
    ready = settings.instance_path / "worker.ready"
    ready.unlink(missing_ok=True)
    children: dict[str, subprocess.Popen] = {}
    # Worker and beat first, the web app last.
    for name, cmd in sorted(commands(app, host, port).items(), key=lambda kv: kv[0] == "web"):
        if name == "web":
            # The web app opens only once the worker listens: "instant access" must hold
            # for the very first signup too.
            _wait_for(ready, children, stopping)
        children[name] = subprocess.Popen(
            cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent()
        )
    where = settings.email_url.path if settings.email_url.is_file else settings.email_url.host
    print(f"leadmagnet: serving {local_url(host, port)}/  (mail to {where})", flush=True)
    code = 0
    while not stopping:
        dead = [name for name, proc in children.items() if proc.poll() is not None]
        if dead:
            print(f"leadmagnet: {', '.join(dead)} stopped unexpectedly; stopping", file=sys.stderr)
            code = 1
            break
        time.sleep(0.2)
    _stop(children)
    return code


def _wait_for(ready: Path, children: dict[str, subprocess.Popen], stopping: list[int]) -> None:
    deadline = time.monotonic() + WORKER_START
    while not ready.exists() and not stopping and time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in children.values()):
            return  # the main loop reports the death
        time.sleep(0.05)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc in children.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for proc in children.values():
        # Kill the whole group: anything a child started goes with it.
        _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
