"""Real processes for end-to-end tests: `leadmagnet serve`, a Celery worker, a private Redis."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def worker_command(*extra: str) -> list[str]:
    """A Celery worker as production starts it, on the solo pool: one task at a time, and
    one process to kill."""
    return [
        str(BIN / "celery"),
        "-A",
        "worker",
        "worker",
        "--pool",
        "solo",
        "--without-gossip",
        "--without-mingle",
        *extra,
    ]


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][0] != "Z"


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(args, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without any leadmagnet setting of the developer's shell."""
    names = ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "SECRET_KEY", "PUBLIC_URL", "INSTANCE_PATH")
    env = {k: v for k, v in os.environ.items() if k not in names}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env.update(settings)
    return env


def wait_until(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Browser:
    """Just enough of a browser: a cookie jar, form posts, no automatic redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(self, method: str, path: str, data: bytes | None = None, headers=None):
        url = path if path.startswith("http") else self.base + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            return self.opener.open(req, timeout=10)
        except urllib.error.HTTPError as exc:
            return exc

    def submit_signup(self, **fields: str):
        page = self.request("GET", "/").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        return self.request(
            "POST", "/subscribe", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    def post_json(self, path: str, payload: dict):
        body = json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> float:
    """Signal and wait; return the seconds it took to exit."""
    began = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return time.monotonic() - began


class PrivateRedis:
    """A redis-server of the test's own on a free port, so it can be stopped and restarted."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
            except redis.RedisError:
                return False

        assert wait_until(up, 10), "private redis did not start"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
