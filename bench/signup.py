"""bench/signup: POST /api/subscribe on PostgreSQL + Redis under gunicorn, against a
validate-only endpoint and a bare GET served by the same gunicorn.

Run: .venv/bin/python -m bench.signup   (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import create_scratch_database, drop_scratch_database, header

HERE = Path(__file__).resolve().parent
BASE_DB = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
DURATION = os.environ.get("BENCH_DURATION", "10s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def wrk(url: str, script: Path | None = None, path_arg: str | None = None) -> dict:
    cmd = ["wrk", "-t2", "-c16", f"-d{DURATION}", "--latency", url]
    if script:
        cmd[5:5] = ["-s", str(script)]
        cmd += ["--", path_arg or ""]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    database_url = create_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-key-Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5Df",
        "RATELIMIT_ENABLED": "false",
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-signup-"),
        "EMAIL_URL": "file:///dev/null/never",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "leadmagnet"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.apps:create_app()",
        ],
        env=env,
        cwd=HERE.parent,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/_bench/bare", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        header("bench/signup (gunicorn sync, 2 workers; wrk -t2 -c16 on loopback)")
        results: dict[str, list[dict]] = {"signup": [], "validate": [], "bare": []}
        script = HERE / "unique_signup.lua"
        for _ in range(ROUNDS):  # interleaved, so noise hits all three alike
            results["signup"].append(wrk(base, script, "/api/subscribe"))
            results["validate"].append(wrk(base, script, "/_bench/validate"))
            results["bare"].append(wrk(base + "/_bench/bare"))
        best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
        for label, key in (
            ("POST /api/subscribe (validate+insert+nudge)", "signup"),
            ("POST validate-only", "validate"),
            ("GET bare", "bare"),
        ):
            r = best[key]
            print(
                f"{label:45s} {r['rps']:8.0f} rps  p50 {r['p50']:>8}  p99 {r['p99']:>8}"
                f"  non-2xx {r['non2xx']}"
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
        drop_scratch_database(database_url)


if __name__ == "__main__":
    main()
