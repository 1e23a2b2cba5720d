"""bench/signup: POST /api/subscribe on PostgreSQL + Redis under gunicorn as production runs
it (the Dockerfile's CMD: workers and threads; rate limits on, each request from its own
client through a trusted proxy), against a validate-only endpoint and a bare GET served by
the same gunicorn, in alternating rounds (the order reversed every other round); wrk's
connections are made anew every 25 requests (unique_signup.lua says why). Any answer other
than 2xx, or a socket error, is printed and fails the run: a rate of refusals is no rate.
Redis is a database leased to this run, emptied before and after. Under each median round:
its CPU per request (the web workers', PostgreSQL's) and the web workers' context switches,
from /proc: where a ratio's difference goes.

Run: .venv/bin/python -m bench.signup   (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench.apps import production_gunicorn
from bench.common import (
    SECRET_KEY,
    create_scratch_database,
    drop_scratch_database,
    fail,
    free_port,
    header,
    private_redis_db,
    wait_for_port,
)
from bench.proc_cpu import usage

HERE = Path(__file__).resolve().parent
DURATION = os.environ.get("BENCH_DURATION", "10s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RATELIMIT = os.environ.get("BENCH_RATELIMIT", "true")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(url: str, path: str, method: str = "POST") -> dict:
    """One round of wrk on `path`; every answer not 2xx is counted by the script."""
    script = HERE / "unique_signup.lua"
    cmd = ["wrk", "-t2", "-c16", f"-d{DURATION}", "--latency", "-s", str(script), url]
    out = subprocess.run(
        [*cmd, "--", path, method], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    refused = re.search(r"Not 2xx: (\d+)", out)
    if refused is None:
        fail(f"wrk printed no count of answers that were not 2xx: {out}")
    sockets = SOCKET_ERRORS.search(out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non2xx": int(refused.group(1)),
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
    }


def main() -> None:
    with private_redis_db() as redis_url:
        run(redis_url)


def run(redis_url: str) -> None:
    database_url = create_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET_KEY,
        # Rate limits on, as production runs them; each request comes from its own client
        # through one trusted proxy (unique_signup.lua), so they are read and counted, never
        # reached. BENCH_RATELIMIT=false measures without them, as runs before 2026-12-01 did.
        "RATELIMIT_ENABLED": RATELIMIT,
        "TRUSTED_PROXIES": "1",
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-signup-"),
        "EMAIL_URL": "file:///dev/null/never",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "leadmagnet"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    # A log line or two per request (access log, signup): to a file, not between the figures.
    server_log = open(Path(env["INSTANCE_PATH"]) / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        production_gunicorn(str(bin_dir / "gunicorn"), port, "bench.apps:create_app()"),
        env=env,
        cwd=HERE.parent,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        urllib.request.urlopen(base + "/_bench/bare", timeout=10)
        header(
            "bench/signup (gunicorn as the Dockerfile runs it: 2 workers x 4 threads; "
            f"rate limits {'on' if RATELIMIT == 'true' else 'OFF'}; "
            "wrk -t2 -c16 on loopback, each connection made anew after 25 requests)"
        )
        rounds = {
            "signup": ("/api/subscribe", "POST"),
            "validate": ("/_bench/validate", "POST"),
            "bare": ("/_bench/bare", "GET"),
        }
        results: dict[str, list[dict]] = {key: [] for key in rounds}
        for n in range(ROUNDS):  # interleaved, so noise hits all three alike; the order
            # turns each round, so none always follows the signups' database work
            for key in list(rounds) if n % 2 == 0 else reversed(rounds):
                before = usage(server.pid)
                result = wrk(base, *rounds[key])
                result["usage"] = usage(server.pid) - before
                results[key].append(result)
        # The median round of each (not the best): ratios of figures measured alike.
        best = {k: sorted(v, key=lambda r: r["rps"])[len(v) // 2] for k, v in results.items()}
        for label, key in (
            ("POST /api/subscribe (validate+insert+nudge)", "signup"),
            ("POST validate-only", "validate"),
            ("GET bare", "bare"),
        ):
            r = best[key]
            rounds = ", ".join(f"{run['rps']:.0f}" for run in results[key])
            print(
                f"{label:45s} {r['rps']:8.0f} rps  p50 {r['p50']:>8}  p99 {r['p99']:>8}"
                f"  (rounds: {rounds})"
            )
            print(f"{'':45s} {r['usage'].per_request(r['requests'])}")
        failures = {
            key: (sum(r["non2xx"] for r in runs), sum(r["socket_errors"] for r in runs))
            for key, runs in results.items()
        }
        total = sum(r["requests"] for runs in results.values() for r in runs)
        print(
            f"{total} requests; non-2xx / socket errors: "
            + ", ".join(f"{key} {refused}/{broken}" for key, (refused, broken) in failures.items())
        )
        if any(refused or broken for refused, broken in failures.values()):
            fail(
                "some requests got no 2xx answer (see above; the server's log is "
                f"{server_log.name}): these rates are not of signups"
            )
        ratio_v = best["signup"]["rps"] / best["validate"]["rps"]
        ratio_b = best["signup"]["rps"] / best["bare"]["rps"]
        print(
            f"ratio signup / validate-only: {ratio_v:.2f}  (goal >= 0.3: "
            f"{'met' if ratio_v >= 0.3 else 'NOT met'})"
        )
        print(f"ratio signup / bare GET:      {ratio_b:.2f}")
        rss = subprocess.run(
            ["ps", "--ppid", str(server.pid), "-o", "rss="], capture_output=True, text=True
        ).stdout.split()
        print(f"web worker RSS after the run: {max(int(r) for r in rss) / 1024:.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()
