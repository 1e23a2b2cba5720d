"""TRUSTED_PROXIES: behind a load balancer, the client's address is the one it forwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from service.extensions import db
from service.models import ConsentRecord
from service.settings import Settings, SettingsError
from tests.conftest import make_app

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
PROXY = "10.0.0.5"  # the load balancer: every request arrives from it


def limited_app(env: dict[str, str], proxies: str) -> Iterator[Flask]:
    app = make_app({**env, "RATELIMIT_ENABLED": "true", "TRUSTED_PROXIES": proxies})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def behind_one_proxy(env: dict[str, str]) -> Iterator[Flask]:
    yield from limited_app(env, "1")


@pytest.fixture
def no_proxy(env: dict[str, str]) -> Iterator[Flask]:
    yield from limited_app(env, "0")


def signup(app: Flask, email: str, client_ip: str):
    return app.test_client().post(
        "/api/subscribe",
        json={"email": email, "consent": True},
        headers={"X-Forwarded-For": client_ip},
        environ_base={"REMOTE_ADDR": PROXY},
    )


def consent_ips(app: Flask) -> list[str | None]:
    with app.app_context():
        return list(db.session.scalars(select(ConsentRecord.ip).order_by(ConsentRecord.id)))


def test_the_consent_record_keeps_the_forwarded_client_address(behind_one_proxy: Flask):
    assert signup(behind_one_proxy, "ann@example.com", "203.0.113.7").status_code == 202
    assert consent_ips(behind_one_proxy) == ["203.0.113.7"]


def test_without_trusted_proxies_the_forwarded_address_is_ignored(no_proxy: Flask):
    assert signup(no_proxy, "ann@example.com", "203.0.113.7").status_code == 202
    assert consent_ips(no_proxy) == [PROXY]


def test_the_per_ip_limit_counts_each_forwarded_client(behind_one_proxy: Flask):
    with time_machine.travel(START, tick=False):
        for n in range(30):
            assert signup(behind_one_proxy, f"p{n}@example.com", "203.0.113.7").status_code == 202
        assert signup(behind_one_proxy, "more@example.com", "203.0.113.7").status_code == 429
        # Another visitor behind the same load balancer has an allowance of their own.
        assert signup(behind_one_proxy, "more@example.com", "203.0.113.8").status_code == 202


def test_without_trusted_proxies_everyone_behind_the_proxy_is_one_client(no_proxy: Flask):
    with time_machine.travel(START, tick=False):
        for n in range(30):
            assert signup(no_proxy, f"p{n}@example.com", f"203.0.113.{n}").status_code == 202
        assert signup(no_proxy, "more@example.com", "203.0.113.99").status_code == 429


def test_only_the_trusted_number_of_hops_counts(env: dict[str, str]):
    # A client that writes its own X-Forwarded-For in front of the proxy's cannot pick its
    # address: with one trusted hop, the last entry (the proxy's view) wins.
    app = make_app({**env, "TRUSTED_PROXIES": "1"})
    response = app.test_client().post(
        "/api/subscribe",
        json={"email": "ann@example.com", "consent": True},
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
        environ_base={"REMOTE_ADDR": PROXY},
    )
    assert response.status_code == 202
    assert consent_ips(app) == ["203.0.113.7"]


def test_a_client_reaching_the_app_directly_cannot_choose_its_address(behind_one_proxy: Flask):
    # TRUSTED_PROXIES=1, but the app is reachable without the proxy too: a public peer's own
    # X-Forwarded-For is ignored, so rotating it buys no fresh allowance.
    def direct(n: int):
        return behind_one_proxy.test_client().post(
            "/api/subscribe",
            json={"email": f"d{n}@example.com", "consent": True},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            environ_base={"REMOTE_ADDR": "203.0.113.50"},
        )

    with time_machine.travel(START, tick=False):
        for n in range(30):
            assert direct(n).status_code == 202
        assert direct(99).status_code == 429
    assert set(consent_ips(behind_one_proxy)) == {"203.0.113.50"}


def test_trusted_proxy_addresses_names_where_the_proxies_are(env: dict[str, str]):
    app = make_app(
        {**env, "TRUSTED_PROXIES": "1", "TRUSTED_PROXY_ADDRESSES": "198.51.100.0/24, 2001:db8::1"}
    )

    for peer, seen in [
        ("198.51.100.20", "203.0.113.7"),
        ("::ffff:198.51.100.20", "203.0.113.7"),  # a dual-stack listener's IPv4 peer
        ("2001:db8::1", "203.0.113.7"),
        (PROXY, PROXY),  # 10.0.0.5: private, but not in the list given
    ]:
        response = app.test_client().post(
            "/api/subscribe",
            json={"email": f"{len(consent_ips(app))}@example.com", "consent": True},
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": peer},
        )
        assert response.status_code == 202
        assert consent_ips(app)[-1] == seen, peer


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.internal", "10.0.0.5, nope"])
def test_a_malformed_trusted_proxy_address_is_named(env: dict[str, str], value: str):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**env, "TRUSTED_PROXY_ADDRESSES": value})
    assert str(refused.value).startswith("leadmagnet: setting TRUSTED_PROXY_ADDRESSES ")
