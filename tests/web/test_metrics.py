"""GET /metrics: who may read it, what each counter counts, the oldest-due gauge."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages

TOKEN = "scrape-token-0123456789"
START = datetime(2027, 5, 3, 8, 0, tzinfo=UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "METRICS_TOKEN": TOKEN}


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Counts:
    """Counters are per process and tests share one: each test looks at what it added."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.before = scrape(client)

    def added(self, name: str, **labels: str) -> float:
        return value(scrape(self.client), name, **labels) - value(self.before, name, **labels)


# --- who may read it ----------------------------------------------------------------------


def test_without_a_token_setting_there_is_no_metrics_page(env: dict[str, str]):
    app = make_app({k: v for k, v in env.items() if k != "METRICS_TOKEN"})
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
def test_a_missing_or_wrong_token_is_401(client: FlaskClient, authorization: str | None):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"leadmagnet_" not in response.data


def test_the_right_token_gets_prometheus_text(client: FlaskClient):
    response = client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {
        "leadmagnet_signups",
        "leadmagnet_emails_sent",
        "leadmagnet_send_failures",
        "leadmagnet_unsubscribes",
        "leadmagnet_bounces",
        "leadmagnet_complaints",
        "leadmagnet_oldest_due_email_age_seconds",
    } <= families


def test_prometheus_gets_openmetrics_when_it_asks(client: FlaskClient):
    response = client.get(
        "/metrics",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        },
    )
    assert response.status_code == 200
    assert response.mimetype == "application/openmetrics-text"
    assert response.get_data(as_text=True).endswith("# EOF\n")


# --- what the counters count --------------------------------------------------------------


def test_signups_sends_and_unsubscribes_are_counted(app: Flask, client: FlaskClient, outbox):
    counts = Counts(client)
    assert api_signup(client, "ann@example.com").status_code == 202
    assert api_signup(client, "bea@example.com", website="spam").status_code == 202  # honeypot
    assert counts.added("leadmagnet_signups_total") == 1
    assert dispatch_inline(app) == ["sent"]
    assert counts.added("leadmagnet_emails_sent_total", step="guide") == 1

    [msg] = outbox_messages(outbox)
    unsubscribe = urlsplit(msg["List-Unsubscribe"].strip("<>")).path
    for _ in range(2):  # the second is harmless, and not a second unsubscribe
        assert client.post(unsubscribe, data="List-Unsubscribe=One-Click").status_code == 200
    assert counts.added("leadmagnet_unsubscribes_total", step="guide") == 1
    assert counts.added("leadmagnet_unsubscribes_total", step="none") == 0


def test_an_unsubscribe_before_any_email_counts_under_none(app: Flask, client: FlaskClient):
    from service import tokens
    from service.extensions import db
    from service.models import Subscriber

    counts = Counts(client)
    api_signup(client, "cal@example.com")
    with app.app_context():
        subscriber = db.session.query(Subscriber).one()
        token = tokens.make_token((app.config["SECRET_KEY"],), tokens.UNSUBSCRIBE, subscriber)
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert counts.added("leadmagnet_unsubscribes_total", step="none") == 1


@pytest.mark.parametrize(
    ("how", "outcome"),
    [
        ({"script": ["451 4.3.0 try again later"]}, "deferred"),
        ({"rcpt_reply": "550 5.1.1 no such user"}, "bounced"),
        ({"script": ["554 5.7.1 message content rejected"]}, "failed"),
    ],
)
def test_send_failures_are_counted_by_reason(env, smtpd, how: dict, outcome: str):
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    client = app.test_client()
    for name, setting in how.items():
        setattr(smtpd.handler, name, copy.deepcopy(setting))  # parametrize shares lists
    counts = Counts(client)
    api_signup(client, "dee@example.com")
    assert dispatch_inline(app) == [outcome]
    for reason in ("deferred", "bounced", "failed"):
        expected = 1 if reason == outcome else 0
        assert counts.added("leadmagnet_send_failures_total", reason=reason) == expected, reason
    assert counts.added("leadmagnet_emails_sent_total", step="guide") == 0


# --- the oldest-due gauge -----------------------------------------------------------------


def test_the_oldest_due_email_age_is_read_at_each_scrape(app: Flask, client: FlaskClient):
    gauge = "leadmagnet_oldest_due_email_age_seconds"
    with time_machine.travel(START, tick=False) as traveller:
        assert value(scrape(client), gauge) == 0  # nothing waits
        api_signup(client, "eve@example.com")  # the guide is due at once; no worker runs
        traveller.shift(timedelta(seconds=90))
        assert value(scrape(client), gauge) == pytest.approx(90)
        traveller.shift(timedelta(minutes=10))
        assert value(scrape(client), gauge) == pytest.approx(690)
        assert dispatch_inline(app) == ["sent"]
        # The next step is pending but not due for two days: nothing is late.
        assert value(scrape(client), gauge) == 0


# --- several processes --------------------------------------------------------------------


def test_with_a_multiprocess_folder_the_counts_of_other_processes_add_up(
    client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "metrics"
    folder.mkdir()
    # Another process (a worker, say) counts two sends into the folder and exits.
    other = "from service import metrics; metrics.email_sent('guide'); metrics.email_sent('guide')"
    subprocess.run(
        [sys.executable, "-c", other],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        check=True,
    )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    samples = scrape(client)
    assert value(samples, "leadmagnet_emails_sent_total", step="guide") == 2
    assert ("leadmagnet_oldest_due_email_age_seconds", ()) in samples
