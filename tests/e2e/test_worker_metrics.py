"""A Celery worker on its own: METRICS_PORT serves its sends, and its log lines are JSON."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SECRET, free_port, make_app
from tests.helpers import api_signup
from tests.procs import BIN, clean_env, stop, wait_until

pytestmark = pytest.mark.slow


def sends(port: int) -> float | None:
    """leadmagnet_emails_sent_total{step="guide"} as the worker serves it, None if it does not."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "leadmagnet_emails_sent_total" and sample.labels == {"step": "guide"}:
                return sample.value
    return 0.0


def test_a_prefork_worker_serves_its_childrens_sends_on_metrics_port(tmp_path):
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": SECRET,
        "RATELIMIT_ENABLED": "false",
    }
    app = make_app(settings)  # the embedded default: SQLite, folder broker, folder outbox
    port = free_port()
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = clean_env(**settings, METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(shared))
    # As docker-compose runs it: the prefork pool, whose children do the sending.
    cmd = [str(BIN / "celery"), "-A", "worker", "worker", "--pool", "prefork", "--concurrency", "1"]
    cmd += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    with (tmp_path / "worker.err").open("wb") as err, (tmp_path / "worker.out").open("wb") as out:
        import subprocess

        worker = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=out, stderr=err)
    try:
        assert wait_until(lambda: sends(port) is not None, 30, 0.2), (
            tmp_path / "worker.err"
        ).read_text()[-3000:]
        assert sends(port) == 0
        assert api_signup(app.test_client(), "mo@example.com").status_code == 202
        assert wait_until(lambda: sends(port) == 1, 20, 0.1), (tmp_path / "worker.err").read_text()
    finally:
        stop(worker)

    lines = [line for line in (tmp_path / "worker.err").read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # Celery's set-up did not replace ours
    assert any(e["message"].startswith("sent email") and e["step"] == "guide" for e in entries)
    assert any("ready" in e["message"] and e["logger"].startswith("celery") for e in entries)
    assert not any("mo@example.com" in line for line in lines)
