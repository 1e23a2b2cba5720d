"""bench/time_to_inbox: signups at a steady 50 a second for 30 seconds against web, worker
and beat run as in production; for each, the time from the 202 to the SMTP server
receiving the guide.

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
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path

from aiosmtpd.controller import Controller

from bench.common import create_scratch_database, drop_scratch_database, free_port, header

BASE_DB = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
RATE = int(os.environ.get("BENCH_RATE", "50"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):
        self.at[envelope.rcpt_tos[0]] = time.time()
        message_from_bytes(envelope.original_content)  # as a real server would read it
        return "250 OK"


def post(port: int, address: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": address, "consent": True})
    conn.request("POST", "/api/subscribe", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 202, response.status
    return time.time()


def main() -> None:
    arrivals = Arrivals()
    smtp_port, web_port = free_port(), free_port()
    smtpd = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtpd.start()
    database_url = create_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-key-Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5Df",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "RATELIMIT_ENABLED": "false",
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-tti-"),
        "DISPATCH_INTERVAL": "30",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "leadmagnet"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--log-level",
                "warning",
                "service:create_app()",
            ],
            env=env,
        ),
        subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "worker",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
            ],
            env=env,
        ),
        subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "worker", "beat", "--loglevel", "WARNING"], env=env
        ),
    ]
    try:
        time.sleep(6)  # web, worker and beat up
        accepted: dict[str, float] = {}
        lock = threading.Lock()

        def one(address: str) -> None:
            at = post(web_port, address)
            with lock:
                accepted[address] = at

        with ThreadPoolExecutor(max_workers=16) as pool:
            began = time.monotonic()
            for n in range(RATE * SECONDS):
                pause = began + n / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(one, f"t{n}@example.com")
        deadline = time.time() + 60
        while len(arrivals.at) < len(accepted) and time.time() < deadline:
            time.sleep(0.2)
        latencies = sorted(arrivals.at[a] - t for a, t in accepted.items() if a in arrivals.at)
        header(f"bench/time_to_inbox ({RATE}/s for {SECONDS}s; gunicorn 2, celery prefork 2, beat)")
        print(f"signups {len(accepted)}, guides received {len(latencies)}")
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"time from 202 to SMTP: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
            f"(goal p99 < 1 s: {'met' if p99 < 1 else 'NOT met'})"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        smtpd.stop()
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()
