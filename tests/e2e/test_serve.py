"""`leadmagnet serve` for real: web, worker and beat as processes, from signup to inbox."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SECRET, free_port, make_app
from tests.procs import BIN, Browser, alive, child_pids, clean_env, http_ok, start, stop, wait_until

pytestmark = pytest.mark.slow
METRICS_TOKEN = "serve-metrics-token-0123"


def serve(tmp_path: Path, env: dict[str, str]):
    port = free_port()
    proc = start(
        [str(BIN / "leadmagnet"), "serve", "--port", str(port)],
        env,
        tmp_path,
        tmp_path / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(base + "/healthz"), 40, 0.2):
        stop(proc)
        pytest.fail(
            "serve did not answer /healthz:\n" + (tmp_path / "serve.log").read_text()[-3000:]
        )
    return proc, base


def stop_and_check_children(proc) -> None:
    children = child_pids(proc.pid)
    grandchildren = [g for c in children for g in child_pids(c)]
    assert len(children) == 3, "web, worker and beat run as children"
    took = stop(proc)
    assert proc.returncode == 0
    assert took < 10, f"serve took {took:.1f}s to stop"
    assert not [p for p in children + grandchildren if alive(p)], "no child process left behind"


def scraped(browser: Browser) -> dict[tuple[str, tuple], float]:
    answer = browser.request("GET", "/metrics", None, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.read().decode())
        for sample in family.samples
    }


# No scheduler pass comes within a test's time: a guide that arrives came with the nudge.
NO_PASS = "3600"


def test_embedded_default_from_form_to_outbox_to_unsubscribe(tmp_path):
    env = clean_env(METRICS_TOKEN=METRICS_TOKEN, DISPATCH_INTERVAL=NO_PASS)
    proc, base = serve(tmp_path, env)
    try:
        browser = Browser(base)
        answer = browser.submit_signup(email="ann@example.com", first_name="Ann", consent="yes")
        submitted = time.monotonic()
        assert answer.status == 303
        assert browser.request("GET", answer.headers["Location"]).status == 200

        outbox = tmp_path / "instance" / "outbox"
        files = wait_until(lambda: list(outbox.glob("*.eml")), 60, 0.05)
        assert files, "the nudge sent the guide, without waiting for a scheduler pass"
        print(f"guide in outbox {time.monotonic() - submitted:.2f}s after the 303 (goal: 5 s)")
        msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",)).get_content()
        guide_url = next(w for w in text.split() if "/guide/" in w)
        assert guide_url.startswith(base), "links point at the server that sent them"

        download = browser.request("GET", guide_url)
        assert download.status == 200
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.read(5) == b"%PDF-"

        unsubscribe_url = msg["List-Unsubscribe"].strip("<>")
        page = browser.request("GET", unsubscribe_url)
        assert page.status == 200 and "<form" in page.read().decode()
        one_click = Browser(base).request(
            "POST",
            unsubscribe_url,
            b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status == 200
        assert "unsubscribed" in one_click.read().decode()

        # The web app's /metrics adds up its own counts and the worker process's send.
        counts = scraped(browser)
        assert counts[("leadmagnet_signups_total", ())] == 1
        assert counts[("leadmagnet_emails_sent_total", (("step", "guide"),))] == 1
        assert counts[("leadmagnet_unsubscribes_total", (("step", "guide"),))] == 1
    finally:
        stop_and_check_children(proc)


@pytest.mark.postgres
@pytest.mark.redis
def test_postgres_redis_and_smtp(tmp_path, pg_database, redis_db, smtpd):
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis_db,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DISPATCH_INTERVAL": NO_PASS,
    }
    make_app(settings)  # a clean schema at head
    proc, base = serve(tmp_path, clean_env(**settings))
    try:
        answer = Browser(base).post_json(
            "/api/subscribe", {"email": "pat@example.com", "first_name": "Pat", "consent": True}
        )
        assert answer.status == 202
        [received] = smtpd.wait_for(1)  # sent on the nudge: no pass runs in this test
        msg = received.message
        assert received.recipients == ["pat@example.com"]
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
            assert msg[name], name
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    finally:
        stop_and_check_children(proc)
